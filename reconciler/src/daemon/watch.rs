//! Watching a local fleet directory ([`FleetWatcher`]): file changes under it, debounced,
//! become [`Trigger::FileChange`]s.
//!
//! Only writes count: opening and reading files (which tether itself does on every reconcile)
//! do not. Inside `.git/` only ref changes (`HEAD`, `packed-refs`, `refs/**` but tether's own
//! `refs/tether/**`) count, so a
//! commit or a pull in the fleet's work tree triggers but git's object writes do not. Editor
//! swap files and `*.lock` files are ignored. A change is reported after the debounce window
//! ([`DEFAULT_DEBOUNCE`], 200 ms), well within a second.

use crate::daemon::trigger::{Trigger, TriggerSender};
use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long changes are gathered after the first one before triggering.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);
/// Most distinct paths reported per debounce window; more changes still trigger.
const MAX_PATHS: usize = 64;

/// Why a directory could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The OS watch could not be set up (missing directory, inotify limits).
    #[error("cannot watch `{path}`: {message}")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
}

impl WatchError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        "check that the fleet directory exists; on Linux, raise fs.inotify.max_user_watches"
    }
}

/// A running recursive watch. Dropping it stops watching.
#[derive(Debug)]
pub struct FleetWatcher {
    root: PathBuf,
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl FleetWatcher {
    /// Watches `root` recursively and sends one [`Trigger::FileChange`] per changed path
    /// (relative to `root`) after each `debounce` window. Must be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// `root` cannot be resolved or watched.
    pub fn start(
        root: &Path,
        sender: TriggerSender,
        debounce: Duration,
    ) -> Result<FleetWatcher, WatchError> {
        let fail = |message: String| WatchError::Watch {
            path: root.to_owned(),
            message,
        };
        let root = root.canonicalize().map_err(|e| fail(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let filter_root = root.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<Event>| match event {
                Ok(event) => {
                    for path in relevant(&filter_root, &event) {
                        let _ = tx.send(path);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "file watch error"),
            })
            .map_err(|e| fail(e.to_string()))?;
        watcher
            .watch(&root, RecursiveMode::Recursive)
            .map_err(|e| fail(e.to_string()))?;
        let task = tokio::spawn(debounce_loop(rx, sender, debounce));
        Ok(FleetWatcher {
            root,
            _watcher: watcher,
            task,
        })
    }

    /// The watched directory, resolved.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for FleetWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn debounce_loop(
    mut changes: mpsc::UnboundedReceiver<PathBuf>,
    sender: TriggerSender,
    debounce: Duration,
) {
    while let Some(first) = changes.recv().await {
        let mut paths = vec![first];
        let window = tokio::time::sleep(debounce);
        tokio::pin!(window);
        loop {
            tokio::select! {
                _ = &mut window => break,
                next = changes.recv() => match next {
                    Some(path) if paths.len() < MAX_PATHS && !paths.contains(&path) => {
                        paths.push(path);
                    }
                    Some(_) => {}
                    None => break,
                },
            }
        }
        for path in paths {
            if !sender.send(Trigger::FileChange { path }) {
                return;
            }
        }
    }
}

/// The paths of `event`, relative to `root`, that should trigger a reconcile.
fn relevant(root: &Path, event: &Event) -> Vec<PathBuf> {
    let counts = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
    };
    if !counts {
        return Vec::new();
    }
    event
        .paths
        .iter()
        .filter_map(|p| p.strip_prefix(root).ok())
        .filter(|p| !p.as_os_str().is_empty() && wanted(p))
        .map(Path::to_path_buf)
        .collect()
}

/// Whether a change to `relative` (a path under the root) matters.
fn wanted(relative: &Path) -> bool {
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let swap = name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with('~')
        || name.ends_with(".lock")
        || name == "4913";
    if swap {
        return false;
    }
    let mut components = relative.components();
    if components.next() != Some(Component::Normal(".git".as_ref())) {
        return true;
    }
    let rest = components.as_path();
    // `refs/tether/` holds tether's own bookkeeping (the lease, the events cursors): writing it
    // changes no fleet, so it must not trigger the pass that writes it again.
    rest == Path::new("HEAD")
        || rest == Path::new("packed-refs")
        || (rest.starts_with("refs") && !rest.starts_with("refs/tether"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::retry::ManualClock;
    use crate::daemon::trigger::{DEFAULT_SETTLE, coalescer};
    use notify::event::{CreateKind, DataChange};
    use std::time::SystemTime;

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(Path::new("/fleet").join(path))
    }

    fn paths(kind: EventKind, path: &str) -> Vec<PathBuf> {
        relevant(Path::new("/fleet"), &event(kind, path))
    }

    #[test]
    fn writes_count_and_reads_do_not() {
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert_eq!(
            paths(write, "agents/a.yaml"),
            [PathBuf::from("agents/a.yaml")]
        );
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(paths(closed, "fleet.yaml"), [PathBuf::from("fleet.yaml")]);
        assert!(
            paths(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                "fleet.yaml"
            )
            .is_empty()
        );
        let atime = EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime));
        assert!(paths(atime, "fleet.yaml").is_empty());
        assert!(
            paths(
                EventKind::Remove(notify::event::RemoveKind::File),
                "agents/b.yaml"
            )
            .len()
                == 1
        );
    }

    #[test]
    fn git_internals_are_ignored_except_refs() {
        let create = EventKind::Create(CreateKind::File);
        assert!(paths(create, ".git/objects/ab/cdef").is_empty());
        assert!(paths(create, ".git/index").is_empty());
        assert!(paths(create, ".git/refs/heads/main.lock").is_empty());
        assert_eq!(paths(create, ".git/refs/heads/main").len(), 1);
        assert!(paths(create, ".git/refs/tether/events/aura/app").is_empty());
        assert!(paths(create, ".git/refs/tether/locks/aura").is_empty());
        assert_eq!(paths(create, ".git/HEAD").len(), 1);
        assert_eq!(paths(create, ".git/packed-refs").len(), 1);
        assert!(paths(create, "agents/.a.yaml.swp").is_empty());
        assert!(paths(create, "agents/a.yaml~").is_empty());
    }

    #[tokio::test]
    async fn an_edit_in_the_watched_directory_triggers_a_file_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("agents")).expect("mkdir");
        let (sender, mut triggers) =
            coalescer(ManualClock::new(SystemTime::UNIX_EPOCH), DEFAULT_SETTLE);
        let watcher = FleetWatcher::start(dir.path(), sender, DEFAULT_DEBOUNCE).expect("watch");
        std::fs::write(dir.path().join("agents/a.yaml"), "x: 1\n").expect("write");
        // Generous bound: this checks that the change arrives, not how fast.
        let batch = tokio::time::timeout(Duration::from_secs(10), triggers.next())
            .await
            .expect("a trigger for the edit");
        assert!(
            batch.triggers().contains(&Trigger::FileChange {
                path: PathBuf::from("agents/a.yaml")
            }),
            "{batch:?}"
        );
        drop(watcher);
    }

    #[test]
    fn watching_a_missing_directory_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let (sender, _triggers) =
            coalescer(ManualClock::new(SystemTime::UNIX_EPOCH), DEFAULT_SETTLE);
        let err = FleetWatcher::start(&missing, sender, DEFAULT_DEBOUNCE).expect_err("missing");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
