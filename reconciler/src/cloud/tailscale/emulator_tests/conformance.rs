//! Conformance with a client nobody on tether wrote: the `tailscale` package on PyPI drives
//! the emulator through `.ci/conformance/tailscale_python.py`. Skipped, loudly, only outside
//! CI when the package is not installed; `.ci/run` installs it.

use super::*;
use crate::cloud::tailscale::Tailnet;
use std::path::Path;
use std::process::Command;

/// The pinned version `.ci/run` installs.
const PACKAGE: &str = "tailscale==1.0.0";

fn python_has_tailscale() -> bool {
    Command::new("python3")
        .args(["-c", "import tailscale"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn the_tailscale_pypi_client_reads_and_drives_the_emulator() {
    if !python_has_tailscale() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the `{PACKAGE}` Python package: .ci/run installs it"
        );
        eprintln!(
            "\n*** SKIPPED the Python conformance check: `python3 -c \"import tailscale\"` failed. \
             Install it with `python3 -m pip install {PACKAGE}`. ***\n"
        );
        return;
    }
    let emulator = start().await;
    let key = client(&emulator, admin())
        .create_auth_key(&agent_key("conformance", &["tag:agent"]))
        .await
        .expect("key");
    enroll(&emulator, &key.secret, "conformance-1", 1).expect("seed a device");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/conformance/tailscale_python.py");
    let args = [
        emulator.url(),
        ADMIN_TOKEN.to_owned(),
        READER_ID.to_owned(),
        READER_SECRET.to_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3").arg(script).args(args).output()
    })
    .await
    .expect("join")
    .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the Python client disagrees with the emulator:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert!(
        emulator.devices().is_empty(),
        "the script deletes the device"
    );
    emulator.shutdown().await;
}
