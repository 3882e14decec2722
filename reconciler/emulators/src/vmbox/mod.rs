//! VMs in a box: each server the Hetzner emulator boots becomes a Debian container
//! (`systemd-nspawn --boot` on a copy of the [`rootfs`] image, sharing the host's network, so
//! its loopback reaches the emulators), seeded with the server's user_data as a NoCloud
//! datasource so the real cloud-init runs it, with a `tailscale` command that joins the
//! Tailscale emulator (`POST /_emulator/join`) with the key cloud-init gives it.
//!
//! [`Boxes`] is the [`MachineHooks`] of this mode: boot starts the container (the first boot
//! makes its disk), power off and delete stop it, rebuild wipes its disk so the next boot is a
//! first boot again. Opt-in: the fast mode (the enroller reading the user_data) stays the
//! default. Needs root, `systemd-nspawn` and `mmdebstrap` ([`available`]).

pub mod rootfs;

use crate::tailscale::Enroller;
use crate::{BootedServer, MachineHooks};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

/// The box's `tailscale` command.
const TAILSCALE: &str = include_str!("tailscale.sh");

/// What went wrong making or running a box.
#[derive(Debug, thiserror::Error)]
pub enum BoxError {
    /// A tool the boxes need could not be started.
    #[error(
        "cannot run {tool}: {source} (install it: apt-get install mmdebstrap systemd-container)"
    )]
    Tool {
        /// The tool.
        tool: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A tool ran and failed.
    #[error("{what} failed: {output}")]
    Failed {
        /// The command, naming the box or image.
        what: String,
        /// Its error output.
        output: String,
    },
    /// A file of a box could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Why boxes cannot run on this machine, or `None` when they can: root, `systemd-nspawn` and
/// `mmdebstrap` are needed.
pub fn available() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok();
    let root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Some("boxes need root (systemd-nspawn)".to_owned());
    }
    for tool in ["systemd-nspawn", "mmdebstrap"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "no {tool} (apt-get install mmdebstrap systemd-container)"
            ));
        }
    }
    None
}

/// Where the boxes live and what they reach.
#[derive(Debug, Clone)]
pub struct BoxOptions {
    /// The image every box is copied from ([`rootfs::ensure`]).
    pub rootfs: PathBuf,
    /// A folder for the boxes' disks and console logs; one `srv-<id>` folder per server.
    pub machines: PathBuf,
    /// The Tailscale emulator's URL, as the box's `tailscale up` reaches it.
    pub tailscale_url: String,
}

/// One box: its container process while it runs.
#[derive(Debug, Default)]
struct Machine {
    child: Option<Child>,
}

/// A machine event, handled in order by the boxes' worker thread (a boot copies an image and
/// a stop waits for a shutdown: neither may block the emulator that reports them).
#[derive(Debug)]
enum Event {
    Booted(BootedServer),
    Stopped(u64),
    Rebuilt(u64),
}

/// The machine hooks of the box mode. Dropping it stops every box.
#[derive(Debug)]
pub struct Boxes {
    inner: Arc<Inner>,
    events: Option<mpsc::Sender<Event>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Boxes {
    /// Boxes from `options`; `enroller` takes nodes offline and back as boxes stop and start.
    pub fn new(options: BoxOptions, enroller: Enroller) -> Boxes {
        let inner = Arc::new(Inner {
            options,
            enroller,
            machines: Mutex::new(BTreeMap::new()),
        });
        let (events, queue) = mpsc::channel();
        let worker = {
            let inner = inner.clone();
            std::thread::spawn(move || {
                for event in queue {
                    inner.handle(event);
                }
            })
        };
        Boxes {
            inner,
            events: Some(events),
            worker: Some(worker),
        }
    }

    /// The disk of server `id`'s box.
    pub fn disk(&self, id: u64) -> PathBuf {
        self.inner.disk(id)
    }

    /// The ids of the servers whose box runs now.
    pub fn running(&self) -> Vec<u64> {
        self.inner.running()
    }

    /// The journal of server `id`'s box and its console, for a test that failed.
    pub fn journal(&self, id: u64) -> String {
        self.inner.journal(id)
    }

    fn send(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

/// What the hooks and the worker share.
#[derive(Debug)]
struct Inner {
    options: BoxOptions,
    enroller: Enroller,
    machines: Mutex<BTreeMap<u64, Machine>>,
}

impl Inner {
    fn handle(&self, event: Event) {
        match event {
            Event::Booted(server) => {
                if let Err(e) = self.start(&server) {
                    tracing::error!(provider = "vm-box", server_id = server.id, error = %e, "box did not start");
                }
            }
            Event::Stopped(id) => {
                self.stop(id);
                self.enroller.stopped(id);
            }
            Event::Rebuilt(id) => {
                self.stop(id);
                let disk = self.disk(id);
                if let Err(e) = std::fs::remove_dir_all(&disk) {
                    tracing::warn!(provider = "vm-box", server_id = id, error = %e, "removing the rebuilt box's disk failed");
                }
                self.enroller.rebuilt(id);
            }
        }
    }

    fn disk(&self, id: u64) -> PathBuf {
        self.options.machines.join(format!("srv-{id}"))
    }

    /// The console output of server `id`'s box (every boot, appended).
    fn console(&self, id: u64) -> PathBuf {
        self.options.machines.join(format!("srv-{id}.console"))
    }

    fn running(&self) -> Vec<u64> {
        let mut machines = self.lock();
        machines
            .iter_mut()
            .filter_map(|(id, m)| {
                let child = m.child.as_mut()?;
                matches!(child.try_wait(), Ok(None)).then_some(*id)
            })
            .collect()
    }

    fn journal(&self, id: u64) -> String {
        let disk = self.disk(id);
        let journal = Command::new("journalctl")
            .arg("--directory")
            .arg(disk.join("var/log/journal"))
            .args(["--no-pager", "-o", "short-monotonic", "-n", "300"])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_else(|e| format!("(journalctl: {e})"));
        let console = std::fs::read_to_string(self.console(id)).unwrap_or_default();
        let cloud =
            std::fs::read_to_string(disk.join("var/log/cloud-init-output.log")).unwrap_or_default();
        format!(
            "--- box of server {id}: journal ---\n{journal}\n--- console ---\n{console}\n--- cloud-init-output.log ---\n{cloud}"
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Machine>> {
        self.machines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes server `server`'s disk: a copy of the image, the NoCloud seed, the `tailscale`
    /// command and its settings, and a persistent journal.
    fn make_disk(&self, server: &BootedServer, disk: &Path) -> Result<(), BoxError> {
        let out = Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(&self.options.rootfs)
            .arg(disk)
            .output()
            .map_err(|source| BoxError::Tool { tool: "cp", source })?;
        if !out.status.success() {
            return Err(BoxError::Failed {
                what: format!("copying the image to {}", disk.display()),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let seed = disk.join("var/lib/cloud/seed/nocloud");
        let files = [
            (
                seed.join("user-data"),
                server.user_data.clone().unwrap_or_default(),
                0o600,
            ),
            (
                seed.join("meta-data"),
                format!(
                    "instance-id: hcloud-{}\nlocal-hostname: {}\n",
                    server.id, server.name
                ),
                0o644,
            ),
            (
                disk.join("usr/local/bin/tailscale"),
                TAILSCALE.to_owned(),
                0o755,
            ),
            (
                disk.join("etc/tether-box/tailscale.env"),
                format!(
                    "TS_EMULATOR_URL='{}'\nSERVER_ID={}\n",
                    self.options.tailscale_url, server.id
                ),
                0o644,
            ),
        ];
        for (path, content, mode) in files {
            write(&path, &content, mode)?;
        }
        let journal = disk.join("var/log/journal");
        std::fs::create_dir_all(&journal).map_err(|source| BoxError::Io {
            what: format!("creating {}", journal.display()),
            source,
        })
    }

    /// Starts server `server`'s box, making its disk on its first boot.
    fn start(&self, server: &BootedServer) -> Result<(), BoxError> {
        let disk = self.disk(server.id);
        if disk.exists() {
            self.enroller.reconnect(server.id);
        } else {
            self.make_disk(server, &disk)?;
        }
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.console(server.id))
            .map_err(|source| BoxError::Io {
                what: format!("opening the console log of server {}", server.id),
                source,
            })?;
        let err = console.try_clone().map_err(|source| BoxError::Io {
            what: format!("opening the console log of server {}", server.id),
            source,
        })?;
        let child = Command::new("systemd-nspawn")
            .arg("-D")
            .arg(&disk)
            .args([
                "--register=no",
                "--keep-unit",
                "--boot",
                "--console=passive",
            ])
            .arg(format!("--machine=srv-{}", server.id))
            .arg(format!("--hostname={}", server.name))
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(err)
            .spawn()
            .map_err(|source| BoxError::Tool {
                tool: "systemd-nspawn",
                source,
            })?;
        tracing::info!(
            provider = "vm-box",
            server_id = server.id,
            pid = child.id(),
            "box booting"
        );
        self.lock().entry(server.id).or_default().child = Some(child);
        Ok(())
    }

    /// Stops server `id`'s box: an orderly shutdown (SIGTERM to systemd-nspawn powers the
    /// container off), killed after 30 s.
    fn stop(&self, id: u64) {
        let Some(mut child) = self.lock().get_mut(&id).and_then(|m| m.child.take()) else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                tracing::info!(provider = "vm-box", server_id = id, "box stopped");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        tracing::warn!(provider = "vm-box", server_id = id, "box killed after 30 s");
    }
}

fn write(path: &Path, content: &str, mode: u32) -> Result<(), BoxError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| BoxError::Io {
        what: format!("writing {}", path.display()),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, content).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)
}

impl MachineHooks for Boxes {
    fn booted(&self, server: &BootedServer) {
        self.send(Event::Booted(server.clone()));
    }

    fn stopped(&self, server_id: u64) {
        self.send(Event::Stopped(server_id));
    }

    fn rebuilt(&self, server_id: u64) {
        self.send(Event::Rebuilt(server_id));
    }
}

impl Drop for Boxes {
    fn drop(&mut self) {
        self.events = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        let ids: Vec<u64> = self.inner.lock().keys().copied().collect();
        for id in ids {
            self.inner.stop(id);
        }
    }
}
