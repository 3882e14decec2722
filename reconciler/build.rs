//! Build script: puts the git commit and its date into `tether --version`
//! (`tether 0.1.0 (abc1234 2026-11-29)`), or `unknown` outside a git checkout.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let detail = match (
        git(&["rev-parse", "--short=7", "HEAD"]),
        git(&["log", "-1", "--format=%cs", "HEAD"]),
    ) {
        (Some(commit), Some(date)) => format!("{commit} {date}"),
        (Some(commit), None) => commit,
        _ => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=TETHER_BUILD_COMMIT={detail}");
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it names (a commit), and
    // packed-refs (a branch packed by gc). Only files that exist are watched: Cargo reruns a
    // build script whose watched file is missing on every command, which would recompile tether
    // each time in a checkout without packed-refs. A file that appears later (gc packing the
    // branch) comes with the loose branch file's removal, which is watched.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
