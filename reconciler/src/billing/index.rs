//! Billing's index of the fleet branch, kept in the repository's git directory
//! (`<git dir>/tether/billing-index`), so `tether agent add/remove` costs about the same on
//! 10,000 specs as on 5: the specs already checked are known by their blob, and the
//! idempotency keys of the history by the commit they were read up to. See
//! `docs/decisions/025-billing-index.md`.
//!
//! # Guarantees
//! - Every entry is content-addressed, so a stale, foreign or truncated index can make billing
//!   slower, never wrong: a spec entry holds for its path, its blob and the `fleet.yaml` blob it
//!   was checked against; the keys hold for the history of the commit they were read up to,
//!   and are used only when that commit is the tip or one of its ancestors.
//! - The file is replaced atomically (written aside, then renamed); an unreadable file is an
//!   empty index.

use git2::{Oid, Repository};
use std::collections::HashMap;
use std::path::PathBuf;

/// Where the index lives, under the git directory.
const FILE: &str = "tether/billing-index";
/// The first line of the file; any other first line is an empty index.
const HEADER: &str = "tether billing index v1";

/// What checking one spec file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Checked {
    /// A valid agent spec.
    Agent {
        /// Its `metadata.name`.
        name: String,
        /// Its `spec.subscription`.
        subscription: String,
    },
    /// A file the loader skips (`.gitkeep`).
    Skipped,
}

/// The index as read from disk, updated in memory, written back with [`Index::save`].
#[derive(Debug, Default)]
pub(super) struct Index {
    /// The `fleet.yaml` blob the spec entries were checked against.
    fleet: Option<Oid>,
    /// The `agents/` tree whose spec files are exactly `specs` (`None`: a superset, or unknown).
    agents: Option<Oid>,
    /// Valid spec files by (path, blob).
    specs: HashMap<(String, Oid), Checked>,
    /// The commit whose whole history `keys` covers.
    keys_through: Option<Oid>,
    /// Idempotency key → the commit carrying it.
    keys: HashMap<String, Oid>,
}

impl Index {
    fn path(repo: &Repository) -> PathBuf {
        repo.path().join(FILE)
    }

    /// Reads the index of `repo`; missing or unreadable: an empty one.
    pub fn load(repo: &Repository) -> Index {
        std::fs::read_to_string(Index::path(repo))
            .map(|text| Index::parse(&text))
            .unwrap_or_default()
    }

    fn parse(text: &str) -> Index {
        let mut lines = text.lines();
        let mut index = Index::default();
        if lines.next() != Some(HEADER) {
            return index;
        }
        let oid = |s: &str| Oid::from_str(s).ok();
        for line in lines {
            let Some((kind, rest)) = line.split_once('\t') else {
                continue;
            };
            match kind {
                "fleet" => index.fleet = oid(rest),
                "agents" => index.agents = oid(rest),
                "keys-through" => index.keys_through = oid(rest),
                "key" => {
                    if let Some((id, key)) = rest.split_once('\t')
                        && let Some(commit) = oid(id)
                    {
                        index.keys.insert(key.to_owned(), commit);
                    }
                }
                "spec" => {
                    let fields: Vec<&str> = rest.splitn(4, '\t').collect();
                    if let [id, name, subscription, path] = fields.as_slice()
                        && let Some(blob) = oid(id)
                    {
                        let checked = if name.is_empty() {
                            Checked::Skipped
                        } else {
                            Checked::Agent {
                                name: (*name).to_owned(),
                                subscription: (*subscription).to_owned(),
                            }
                        };
                        index.specs.insert(((*path).to_owned(), blob), checked);
                    }
                }
                _ => {}
            }
        }
        index
    }

    fn render(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(fleet) = self.fleet {
            out.push_str(&format!("fleet\t{fleet}\n"));
        }
        if let Some(agents) = self.agents {
            out.push_str(&format!("agents\t{agents}\n"));
        }
        if let Some(through) = self.keys_through {
            out.push_str(&format!("keys-through\t{through}\n"));
        }
        for (key, commit) in &self.keys {
            out.push_str(&format!("key\t{commit}\t{key}\n"));
        }
        for ((path, blob), checked) in &self.specs {
            let (name, subscription) = match checked {
                Checked::Agent { name, subscription } => (name.as_str(), subscription.as_str()),
                Checked::Skipped => ("", ""),
            };
            out.push_str(&format!("spec\t{blob}\t{name}\t{subscription}\t{path}\n"));
        }
        out
    }

    /// Writes the index back, atomically; a failure only costs speed next time.
    pub fn save(&self, repo: &Repository) {
        let path = Index::path(repo);
        let aside = path.with_extension(format!("{}.tmp", std::process::id()));
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&aside, self.render()))
            .and_then(|()| std::fs::rename(&aside, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&aside);
            tracing::debug!(path = %path.display(), error = %e, "billing index not saved");
        }
    }

    /// What is known of the spec at `path` with content `blob`, checked against `fleet`.
    pub fn spec(&self, fleet: Oid, path: &str, blob: Oid) -> Option<&Checked> {
        if self.fleet != Some(fleet) {
            return None;
        }
        self.specs.get(&(path.to_owned(), blob))
    }

    /// Whether the spec entries are exactly the spec files of the `agents/` tree `agents`
    /// (`None`: the tree has no `agents/`), checked against the `fleet.yaml` blob `fleet`.
    pub fn describes(&self, fleet: Oid, agents: Option<Oid>) -> bool {
        self.fleet == Some(fleet) && self.agents.is_some() && self.agents == agents
    }

    /// Every spec file described: (path, blob) and what it holds.
    pub fn specs(&self) -> impl Iterator<Item = (&str, Oid, &Checked)> {
        self.specs
            .iter()
            .map(|((path, blob), checked)| (path.as_str(), *blob, checked))
    }

    /// Keeps exactly `specs`: the spec files of the `agents/` tree `agents`, checked against
    /// `fleet`, so the index does not grow with history.
    pub fn set_specs(
        &mut self,
        fleet: Oid,
        agents: Option<Oid>,
        specs: HashMap<(String, Oid), Checked>,
    ) {
        self.fleet = Some(fleet);
        self.agents = agents;
        self.specs = specs;
    }

    /// Sets the spec at `path` (`None`: removed), checked against the current `fleet.yaml`;
    /// the index then describes the `agents/` tree `agents` when it described the one before.
    pub fn set_spec(&mut self, path: &str, spec: Option<(Oid, Checked)>, agents: Option<Oid>) {
        self.specs.retain(|(p, _), _| p != path);
        if let Some((blob, checked)) = spec {
            self.specs.insert((path.to_owned(), blob), checked);
        }
        if self.agents.is_some() {
            self.agents = agents;
        }
    }

    /// The commit in `tip`'s history whose message carries `needle` (the whole trailer line),
    /// reading only the commits added since the index last looked.
    ///
    /// # Errors
    /// libgit2 cannot walk the history.
    pub fn find_key(
        &mut self,
        repo: &Repository,
        tip: Oid,
        trailer: &str,
        key: &str,
    ) -> Result<Option<Oid>, git2::Error> {
        let reusable = match self.keys_through {
            Some(through) => through == tip || repo.graph_descendant_of(tip, through)?,
            None => false,
        };
        let mut walk = repo.revwalk()?;
        walk.push(tip)?;
        match self.keys_through {
            Some(through) if reusable => walk.hide(through)?,
            _ => self.keys.clear(),
        }
        let prefix = format!("{trailer}: ");
        for oid in walk {
            let oid = oid?;
            let commit = repo.find_commit(oid)?;
            for line in commit.message().unwrap_or_default().lines() {
                if let Some(found) = line.trim().strip_prefix(&prefix) {
                    // The walk runs newest first: an older commit with the same key wins.
                    self.keys.insert(found.to_owned(), oid);
                }
            }
        }
        self.keys_through = Some(tip);
        Ok(self.keys.get(key).copied())
    }

    /// Records `key` as applied in `commit`, a child of the tip the keys were read up to.
    pub fn add_key(&mut self, key: &str, commit: Oid, parent: Oid) {
        if self.keys_through == Some(parent) {
            self.keys.insert(key.to_owned(), commit);
            self.keys_through = Some(commit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_reads_back_what_it_wrote_and_ignores_what_it_does_not_know() {
        let (a, b) = (
            Oid::hash_object(git2::ObjectType::Blob, b"a"),
            Oid::hash_object(git2::ObjectType::Blob, b"b"),
        );
        let (a, b) = (a.expect("oid"), b.expect("oid"));
        let mut index = Index::default();
        index.set_specs(
            a,
            Some(b),
            HashMap::from([
                (
                    ("agents/x y/a.yaml".to_owned(), b),
                    Checked::Agent {
                        name: "a".into(),
                        subscription: "sub_a".into(),
                    },
                ),
                (("agents/.gitkeep".to_owned(), a), Checked::Skipped),
            ]),
        );
        index.keys_through = Some(b);
        index.keys.insert("evt 1\tx".into(), a);
        let back = Index::parse(&index.render());
        assert_eq!(back.fleet, Some(a));
        assert!(back.describes(a, Some(b)) && !back.describes(a, Some(a)));
        assert_eq!(back.specs, index.specs);
        assert_eq!(back.keys, index.keys);
        assert_eq!(back.keys_through, Some(b));
        assert_eq!(
            back.spec(b, "agents/x y/a.yaml", b),
            None,
            "another fleet.yaml"
        );
        assert!(Index::parse("something else\nfleet\tzz\n").fleet.is_none());
        assert!(
            Index::parse(&format!("{HEADER}\nspec\tnot-an-oid\ta\ts\tp\n"))
                .specs
                .is_empty()
        );
    }
}
