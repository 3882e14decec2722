//! The Debian root filesystem every box starts from: built once with `mmdebstrap` (minbase,
//! systemd as init, cloud-init, curl) into a cache folder, then reused by every box and every
//! test run.

use super::BoxError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The Debian release of the image.
pub const SUITE: &str = "bookworm";
/// The packages beyond minbase: systemd as PID 1, cloud-init to run the user_data, curl for
/// the agent download and the box's `tailscale`.
pub const PACKAGES: &str = "systemd,systemd-sysv,dbus,cloud-init,ca-certificates,curl";

/// One build at a time in this process; the rename at the end makes the cache folder appear
/// whole or not at all for other processes.
static BUILD: Mutex<()> = Mutex::new(());

/// The image under `cache`, built first when missing: `cache/<SUITE>-rootfs`.
///
/// # Errors
/// `mmdebstrap` is missing or fails (its output is in the error), or the folder cannot be made.
pub fn ensure(cache: &Path) -> Result<PathBuf, BoxError> {
    let _one = BUILD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let done = cache.join(format!("{SUITE}-rootfs"));
    if done.join("usr/bin/cloud-init").exists() {
        return Ok(done);
    }
    let partial = cache.join(format!("{SUITE}-rootfs.partial"));
    let io = |what: &str, source| BoxError::Io {
        what: format!("{what} {}", partial.display()),
        source,
    };
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io("removing", e))?;
    }
    std::fs::create_dir_all(cache).map_err(|e| io("creating the cache of", e))?;
    let out = Command::new("mmdebstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
        .arg(&partial)
        .output()
        .map_err(|source| BoxError::Tool {
            tool: "mmdebstrap",
            source,
        })?;
    if !out.status.success() {
        return Err(BoxError::Failed {
            what: format!("mmdebstrap {SUITE} {}", partial.display()),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    std::fs::rename(&partial, &done).map_err(|e| io("renaming", e))?;
    Ok(done)
}
