//! Billing's index of the fleet branch, kept in the repository's git directory
//! (`<git dir>/tether/billing-index`), so `tether agent add/remove` costs about the same on
//! 10,000 specs as on 5: the specs already checked are known by their blob, and the
//! idempotency keys of the history by the commit they were read up to. See
//! `docs/decisions/025-billing-index.md` (its "Sorted sections" amendment for the layout).
//!
//! The file holds four sorted sections (specs by path, paths by agent name, paths by
//! subscription, commits by idempotency key) that a call searches in place ([`sorted`]): it
//! reads the file but parses only the lines it looks up, and writes it back with its few lines
//! changed, or not at all when nothing changed.
//!
//! # Guarantees
//! - Every entry is content-addressed, so a stale or foreign index can make billing slower,
//!   never wrong: a spec entry holds for its path, its blob and the `fleet.yaml` blob it was
//!   checked against; the keys hold for the history of the commit they were read up to, and
//!   are used only when that commit is the tip or one of its ancestors.
//! - The file is replaced atomically (written aside, then renamed); a file whose header or
//!   section lengths do not match its size (truncated, another version) is an empty index.

mod sorted;

use git2::{Oid, Repository};
use sorted::{Edit, Field};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Where the index lives, under the git directory.
const FILE: &str = "tether/billing-index";
/// The first line of the file; any other first line is an empty index.
const HEADER: &str = "tether billing index v2";
/// The header line giving the four sections' lengths in bytes.
const LAYOUT: &str = "layout";

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

impl Checked {
    fn name_and_subscription(&self) -> Option<(&str, &str)> {
        match self {
            Checked::Agent { name, subscription } => Some((name, subscription)),
            Checked::Skipped => None,
        }
    }
}

/// The file's sections, in order.
const SPECS: usize = 0;
const NAMES: usize = 1;
const SUBSCRIPTIONS: usize = 2;
const KEYS: usize = 3;
/// How each section is sorted: lines `path⇥blob⇥name⇥subscription`, `name⇥path`,
/// `subscription⇥path`, `key⇥commit`.
const FIELDS: [Field; 4] = [Field::First, Field::First, Field::First, Field::AllButLast];

/// The index as read from disk, changed in memory, written back with [`Index::save`].
#[derive(Debug, Default)]
pub(super) struct Index {
    /// The `fleet.yaml` blob the spec entries were checked against.
    fleet: Option<Oid>,
    /// The `agents/` tree whose spec files are exactly the specs (`None`: a superset, or
    /// unknown).
    agents: Option<Oid>,
    /// The commit whose whole history the keys cover.
    keys_through: Option<Oid>,
    /// The stored sections as read.
    stored: [Vec<u8>; 4],
    /// Specs changed since reading, by path (`None`: removed).
    spec_changes: BTreeMap<String, Option<(Oid, Checked)>>,
    /// Whether `spec_changes` holds every spec (the stored ones no longer count).
    specs_replaced: bool,
    /// Keys learnt since reading.
    key_changes: BTreeMap<String, Oid>,
    /// Whether `key_changes` holds every key (the stored ones no longer count).
    keys_replaced: bool,
    /// Whether the header changed since reading.
    header_changed: bool,
}

impl Index {
    fn path(repo: &Repository) -> PathBuf {
        repo.path().join(FILE)
    }

    /// Reads the index of `repo`; missing or unreadable: an empty one.
    pub fn load(repo: &Repository) -> Index {
        std::fs::read(Index::path(repo))
            .ok()
            .and_then(|bytes| Index::parse(&bytes))
            .unwrap_or_default()
    }

    /// The index in `bytes`, or `None` when they are not a whole index of this version.
    fn parse(bytes: &[u8]) -> Option<Index> {
        let mut index = Index::default();
        let head = format!("{HEADER}\n");
        if !bytes.starts_with(head.as_bytes()) {
            return None;
        }
        let mut at = head.len();
        let lengths = loop {
            let end = at + bytes[at..].iter().position(|&b| b == b'\n')?;
            let line = std::str::from_utf8(&bytes[at..end]).ok()?;
            at = end + 1;
            let (kind, rest) = line.split_once('\t')?;
            let oid = || Oid::from_str(rest).ok();
            match kind {
                "fleet" => index.fleet = Some(oid()?),
                "agents" => index.agents = Some(oid()?),
                "keys-through" => index.keys_through = Some(oid()?),
                LAYOUT => {
                    let n: Vec<usize> = rest.split('\t').filter_map(|n| n.parse().ok()).collect();
                    break <[usize; 4]>::try_from(n).ok()?;
                }
                _ => return None,
            }
        };
        for (section, len) in index.stored.iter_mut().zip(lengths) {
            let body = bytes.get(at..at.checked_add(len)?)?;
            if !body.is_empty() && !body.ends_with(b"\n") {
                return None;
            }
            *section = body.to_vec();
            at += len;
        }
        (at == bytes.len()).then_some(index)
    }

    /// Writes the index back, atomically, if anything changed; a failure only costs speed next
    /// time.
    pub fn save(&self, repo: &Repository) {
        let unchanged = !self.header_changed
            && self.spec_changes.is_empty()
            && !self.specs_replaced
            && self.key_changes.is_empty()
            && !self.keys_replaced;
        if unchanged {
            return;
        }
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

    fn render(&self) -> Vec<u8> {
        let mut sections: [Vec<u8>; 4] = Default::default();
        let (spec_edits, key_edits) = (self.spec_edits(), self.key_edits());
        for (i, edits) in spec_edits.into_iter().chain([key_edits]).enumerate() {
            sorted::apply(self.base(i), FIELDS[i], edits, &mut sections[i]);
        }
        let mut out = format!("{HEADER}\n");
        // A spec that cannot be stored (a path with a tab or line break) leaves the index
        // describing a superset: `agents` unknown.
        let agents = self.agents.filter(|_| {
            self.spec_changes
                .keys()
                .all(|p| !p.contains(['\t', '\n', '\r']))
        });
        for (kind, oid) in [
            ("fleet", self.fleet),
            ("agents", agents),
            ("keys-through", self.keys_through),
        ] {
            if let Some(oid) = oid {
                out.push_str(&format!("{kind}\t{oid}\n"));
            }
        }
        let lengths: Vec<String> = sections.iter().map(|s| s.len().to_string()).collect();
        out.push_str(&format!("{LAYOUT}\t{}\n", lengths.join("\t")));
        let mut out = out.into_bytes();
        for section in &sections {
            out.extend_from_slice(section);
        }
        out
    }

    /// The edits of the three spec sections.
    fn spec_edits(&self) -> [Vec<Edit>; 3] {
        let mut edits: [Vec<Edit>; 3] = Default::default();
        for (path, change) in &self.spec_changes {
            if path.contains(['\t', '\n', '\r']) {
                continue;
            }
            if let Some((old, range)) = self.stored_spec(path) {
                edits[SPECS].push(Edit::remove(range));
                if let Some((name, subscription)) = old.1.name_and_subscription() {
                    for (i, key) in [(NAMES, name), (SUBSCRIPTIONS, subscription)] {
                        if let Some((line, range)) =
                            sorted::find(self.base(i), FIELDS[i], key.as_bytes())
                            && line.ends_with(format!("\t{path}").as_bytes())
                        {
                            edits[i].push(Edit::remove(range));
                        }
                    }
                }
            }
            let Some((blob, checked)) = change else {
                continue;
            };
            let (name, subscription) = checked.name_and_subscription().unwrap_or_default();
            let line = format!("{path}\t{blob}\t{name}\t{subscription}");
            edits[SPECS].push(Edit::insert(
                self.base(SPECS),
                FIELDS[SPECS],
                line.into_bytes(),
            ));
            if !name.is_empty() {
                for (i, key) in [(NAMES, name), (SUBSCRIPTIONS, subscription)] {
                    let line = format!("{key}\t{path}").into_bytes();
                    edits[i].push(Edit::insert(self.base(i), FIELDS[i], line));
                }
            }
        }
        edits
    }

    /// The edits of the keys section.
    fn key_edits(&self) -> Vec<Edit> {
        self.key_changes
            .iter()
            .filter(|(key, _)| !key.contains('\n'))
            .map(|(key, commit)| {
                let line = format!("{key}\t{commit}").into_bytes();
                Edit::insert(self.base(KEYS), Field::AllButLast, line)
            })
            .collect()
    }

    /// Stored section `i` as it still counts: empty once its entries were replaced.
    fn base(&self, i: usize) -> &[u8] {
        let replaced = if i == KEYS {
            self.keys_replaced
        } else {
            self.specs_replaced
        };
        if replaced { &[] } else { &self.stored[i] }
    }

    /// The stored entry of `path` (blob and what it holds) and its line, unless the stored
    /// specs were replaced.
    fn stored_spec(&self, path: &str) -> Option<((Oid, Checked), std::ops::Range<usize>)> {
        if self.specs_replaced {
            return None;
        }
        let (line, range) = sorted::find(&self.stored[SPECS], Field::First, path.as_bytes())?;
        let line = std::str::from_utf8(line).ok()?;
        let mut fields = line.split('\t').skip(1);
        let (blob, name, subscription) = (fields.next()?, fields.next()?, fields.next()?);
        let blob = Oid::from_str(blob).ok()?;
        let checked = if name.is_empty() {
            Checked::Skipped
        } else {
            Checked::Agent {
                name: name.to_owned(),
                subscription: subscription.to_owned(),
            }
        };
        Some(((blob, checked), range))
    }

    /// The spec at `path` now: its blob and what it holds.
    pub fn spec_at(&self, path: &str) -> Option<(Oid, Checked)> {
        match self.spec_changes.get(path) {
            Some(change) => change.clone(),
            None => self.stored_spec(path).map(|(spec, _)| spec),
        }
    }

    /// The path now holding the spec whose `name` (section `NAMES`) or subscription (section
    /// `SUBSCRIPTIONS`) is `key`.
    fn path_of(&self, section: usize, key: &str) -> Option<String> {
        let changed = self.spec_changes.iter().find_map(|(path, change)| {
            let (_, checked) = change.as_ref()?;
            let (name, subscription) = checked.name_and_subscription()?;
            let found = if section == NAMES { name } else { subscription };
            (found == key).then(|| path.clone())
        });
        if changed.is_some() || self.specs_replaced {
            return changed;
        }
        let (line, _) = sorted::find(&self.stored[section], Field::First, key.as_bytes())?;
        let path = std::str::from_utf8(line).ok()?.split_once('\t')?.1;
        // A stored path changed since: its new spec, if any, was looked at above.
        (!self.spec_changes.contains_key(path)).then(|| path.to_owned())
    }

    /// What is known of the spec at `path` with content `blob`, checked against `fleet`.
    pub fn spec(&self, fleet: Oid, path: &str, blob: Oid) -> Option<Checked> {
        if self.fleet != Some(fleet) {
            return None;
        }
        self.spec_at(path)
            .filter(|(known, _)| *known == blob)
            .map(|(_, checked)| checked)
    }

    /// The path and blob of the spec whose subscription is `subscription`.
    pub fn by_subscription(&self, subscription: &str) -> Option<(String, Oid)> {
        let path = self.path_of(SUBSCRIPTIONS, subscription)?;
        let (blob, _) = self.spec_at(&path)?;
        Some((path, blob))
    }

    /// Whether a spec other than the one at `path` has `checked`'s name or subscription.
    pub fn clashes(&self, path: &str, checked: &Checked) -> bool {
        let Some((name, subscription)) = checked.name_and_subscription() else {
            return false;
        };
        [(NAMES, name), (SUBSCRIPTIONS, subscription)]
            .into_iter()
            .any(|(section, key)| self.path_of(section, key).is_some_and(|p| p != path))
    }

    /// Whether the spec entries are exactly the spec files of the `agents/` tree `agents`
    /// (`None`: the tree has no `agents/`), checked against the `fleet.yaml` blob `fleet`.
    pub fn describes(&self, fleet: Oid, agents: Option<Oid>) -> bool {
        self.fleet == Some(fleet) && self.agents.is_some() && self.agents == agents
    }

    /// Keeps exactly `specs`: the spec files of the `agents/` tree `agents`, checked against
    /// `fleet`, so the index does not grow with history. The names and subscriptions of
    /// `specs` must be unique.
    pub fn set_specs(
        &mut self,
        fleet: Oid,
        agents: Option<Oid>,
        specs: HashMap<(String, Oid), Checked>,
    ) {
        self.fleet = Some(fleet);
        self.agents = agents;
        self.spec_changes = specs
            .into_iter()
            .map(|((path, blob), checked)| (path, Some((blob, checked))))
            .collect();
        self.specs_replaced = true;
        self.header_changed = true;
    }

    /// Sets the spec at `path` (`None`: removed), checked against the current `fleet.yaml`;
    /// the index then describes the `agents/` tree `agents` when it described the one before.
    pub fn set_spec(&mut self, path: &str, spec: Option<(Oid, Checked)>, agents: Option<Oid>) {
        self.spec_changes.insert(path.to_owned(), spec);
        if self.agents.is_some() {
            self.agents = agents;
        }
        self.header_changed = true;
    }

    /// The commit carrying `key`, as far as the index knows.
    fn key(&self, key: &str) -> Option<Oid> {
        if let Some(commit) = self.key_changes.get(key) {
            return Some(*commit);
        }
        if self.keys_replaced {
            return None;
        }
        let (line, _) = sorted::find(&self.stored[KEYS], Field::AllButLast, key.as_bytes())?;
        let commit = std::str::from_utf8(line).ok()?.rsplit_once('\t')?.1;
        Oid::from_str(commit).ok()
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
        if self.keys_through == Some(tip) {
            return Ok(self.key(key));
        }
        let reusable = match self.keys_through {
            Some(through) => repo.graph_descendant_of(tip, through)?,
            None => false,
        };
        let mut walk = repo.revwalk()?;
        walk.push(tip)?;
        match self.keys_through {
            Some(through) if reusable => walk.hide(through)?,
            _ => {
                self.key_changes.clear();
                self.keys_replaced = true;
            }
        }
        let prefix = format!("{trailer}: ");
        let mut found: HashMap<String, Oid> = HashMap::new();
        for oid in walk {
            let oid = oid?;
            let commit = repo.find_commit(oid)?;
            for line in commit.message().unwrap_or_default().lines() {
                if let Some(key) = line.trim().strip_prefix(&prefix) {
                    // The walk runs newest first: an older commit with the same key wins.
                    found.insert(key.to_owned(), oid);
                }
            }
        }
        for (key, commit) in found {
            // A key the index already has was applied in an older commit, which wins.
            if self.key(&key).is_none() {
                self.key_changes.insert(key, commit);
            }
        }
        self.keys_through = Some(tip);
        self.header_changed = true;
        Ok(self.key(key))
    }

    /// Records `key` as applied in `commit`, a child of the tip the keys were read up to.
    pub fn add_key(&mut self, key: &str, commit: Oid, parent: Oid) {
        if self.keys_through == Some(parent) {
            if key.contains('\n') {
                // Not storable in a line; the next call walks the commit instead.
                return;
            }
            if self.key(key).is_none() {
                self.key_changes.insert(key.to_owned(), commit);
            }
            self.keys_through = Some(commit);
            self.header_changed = true;
        }
    }
}

#[cfg(test)]
mod tests;
