//! Shared helpers: build and locate the `tether` binary, run it, and make fleet folders and git
//! repositories to run it against.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The `tether` binary of this build profile, built once per test run so it is never stale.
pub fn tether_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace())
            .args(["build", "--quiet", "-p", "tether", "--bin", "tether"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("run cargo build for the tether binary");
        assert!(status.success(), "building the tether binary failed");
        profile_dir.join("tether")
    })
}

/// The result of one `tether` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o
                .status
                .code()
                .expect("tether exited normally, not by a signal"),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `tether ARGS` in `dir`.
pub fn tether(dir: &Path, args: &[&str]) -> Run {
    Command::new(tether_bin())
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run tether")
        .into()
}

/// Copies the folder `from` into `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create target folder");
    for entry in std::fs::read_dir(from).expect("read source folder") {
        let entry = entry.expect("read entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A copy of the example fleet in a fresh temporary folder.
pub fn example_fleet() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&workspace().join("fleet"), dir.path());
    dir
}

/// Turns quarantine off in the block-style `fleet.yaml` of `dir` (`quarantineGrace: "0"`), so a
/// removed spec's server is deleted at once: for tests about what happens when it is deleted.
pub fn without_quarantine(dir: &Path) {
    let path = dir.join("fleet.yaml");
    let text = std::fs::read_to_string(&path).expect("read fleet.yaml");
    assert!(
        text.contains("\n  policy:\n"),
        "a block-style policy in fleet.yaml"
    );
    let text = text.replacen(
        "\n  policy:\n",
        "\n  policy:\n    quarantineGrace: \"0\"\n",
        1,
    );
    std::fs::write(&path, text).expect("write fleet.yaml");
}

/// Commits the whole work tree of `repo` (created if needed) on `branch` and returns the id.
pub fn commit_all(repo_dir: &Path, branch: &str, message: &str) -> String {
    let repo = git2::Repository::open(repo_dir)
        .or_else(|_| git2::Repository::init(repo_dir))
        .expect("open or init repository");
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("stage files");
    index.update_all(["*"], None).expect("stage deletions");
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("write tree"))
        .expect("tree");
    let sig = git2::Signature::now("Billing Bot", "billing@example.com").expect("signature");
    let refname = format!("refs/heads/{branch}");
    let parent = repo
        .find_reference(&refname)
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some(&refname), &sig, &sig, message, &tree, &parents)
        .expect("commit")
        .to_string()
}

/// The messages of the status branch, newest first.
pub fn status_log(repo: &std::path::Path) -> Vec<String> {
    let r = git2::Repository::open(repo).expect("open");
    let Ok(tip) = r.revparse_single("tether/status") else {
        return Vec::new();
    };
    let mut walk = r.revwalk().expect("walk");
    walk.push(tip.id()).expect("push");
    walk.map(|id| {
        r.find_commit(id.expect("id"))
            .expect("commit")
            .message()
            .unwrap_or("")
            .to_owned()
    })
    .collect()
}

/// `status/<name>` at the tip of the status branch.
pub fn status_file(repo: &std::path::Path, name: &str) -> String {
    let r = git2::Repository::open(repo).expect("open");
    let tree = r
        .revparse_single("tether/status")
        .expect("status branch")
        .peel_to_commit()
        .expect("commit")
        .tree()
        .expect("tree");
    let entry = tree
        .get_path(std::path::Path::new(&format!("status/{name}")))
        .expect("status file");
    String::from_utf8(r.find_blob(entry.id()).expect("blob").content().to_vec()).expect("utf-8")
}

/// `tether apply --git <repo> --rev main` against the emulators of `stack`, with fast polling,
/// a short lease (2 s) and up to 30 s of waiting for it, so an apply after a killed one goes
/// ahead once the killed one's lease has expired.
pub fn apply_command(
    stack: &tether::sandbox::stack::Stack,
    repo: &Path,
    extra: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(tether_bin());
    cmd.args(["apply", "--auto-approve", "--git"])
        .arg(repo)
        .args([
            "--rev",
            "main",
            "--device-poll-ms",
            "50",
            "--device-timeout",
            "20",
            "--lock-ttl",
            "2s",
            "--lock-wait",
            "30s",
        ])
        .args(extra)
        .env("HCLOUD_POLL_INTERVAL_MS", "25")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    for (k, v) in stack.env() {
        cmd.env(k, v);
    }
    cmd
}

/// Runs [`apply_command`] to the end: (exit code, stdout, stderr).
pub async fn apply(
    stack: &tether::sandbox::stack::Stack,
    repo: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    let out = apply_command(stack, repo, extra)
        .output()
        .await
        .expect("run tether apply");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
