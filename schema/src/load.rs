//! Loading a whole fleet from its files: classify each file, decode, parse, validate, then
//! check rules that span files (unique names and subscriptions).
//!
//! # Guarantees
//! - A fleet that has any problem is an error listing every problem found, never a partial or
//!   empty fleet.
//! - No input makes this panic or run unbounded: sizes, depth and node counts are capped.

use crate::diagnostic::{self, Code, Diagnostic, Span, span_of_byte};
use crate::model::{Agent, Fleet};
use crate::names::AgentName;
use crate::raw::{RawAgent, RawFleet};
use crate::report::Report;
use crate::text;
use crate::validate::{self, FleetContext};
use crate::yaml::de::{self, UnknownField};
use crate::yaml::node::{self, Node, NodeKind};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Largest spec file accepted, in bytes.
pub const MAX_SPEC_BYTES: u64 = 64 * 1024;
/// The fleet settings file, at the repository root.
pub const FLEET_FILE: &str = "fleet.yaml";
/// The folder holding agent specs (sub-folders allowed).
pub const AGENTS_DIR: &str = "agents/";

/// One file of a fleet repository as a source handed it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Repository-relative path with `/` separators.
    pub path: String,
    /// What the source found there.
    pub content: Content,
}

/// What a source found at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The file's bytes (at most [`MAX_SPEC_BYTES`]).
    Bytes(Vec<u8>),
    /// A file larger than [`MAX_SPEC_BYTES`], not read.
    TooLarge {
        /// Its size in bytes.
        size: u64,
    },
    /// A symbolic link, not followed.
    Symlink {
        /// Where it points, as written.
        target: String,
    },
    /// A file the source could not read.
    Unreadable {
        /// Why.
        reason: String,
    },
}

/// A fleet that failed to load, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Every problem, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        write!(
            f,
            "the fleet has {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        if let Some(first) = self.diagnostics.first() {
            write!(f, "; first: {first}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Whether `path` is one the loader reads: `fleet.yaml` or anything under `agents/`.
pub fn is_fleet_path(path: &str) -> bool {
    path == FLEET_FILE || path.starts_with(AGENTS_DIR)
}

/// Loads and validates a fleet from its files: `fleet.yaml` and everything under `agents/`.
/// Other paths are ignored, so a source may hand over the whole repository.
///
/// # Errors
/// Every problem in every file, as [`Diagnostic`]s sorted by file and position.
pub fn load_fleet(files: &[SourceFile]) -> Result<Fleet, LoadError> {
    let mut out = Vec::new();
    let fleet_file = files.iter().find(|f| f.path == FLEET_FILE);
    let fleet = match fleet_file {
        None => {
            out.push(
                Diagnostic::new(FLEET_FILE, None, Code::MissingFleet, "fleet.yaml not found at the repository root")
                    .with_hint("every fleet repository needs a `kind: Fleet` document in fleet.yaml; see fleet/fleet.yaml for an example"),
            );
            None
        }
        Some(file) => load_settings(file, &mut out),
    };
    let mut agent_files: Vec<&SourceFile> = files
        .iter()
        .filter(|f| f.path.starts_with(AGENTS_DIR))
        .collect();
    agent_files.sort_by(|a, b| a.path.cmp(&b.path));
    // Each agent with the spans of its name and subscription.
    let mut agents: Vec<(Agent, (Span, Span))> = Vec::with_capacity(agent_files.len());
    for file in agent_files {
        if let Some((agent, name_span, sub_span)) = load_agent(file, fleet.as_ref(), &mut out) {
            agents.push((agent, (name_span, sub_span)));
        }
    }
    check_unique(&agents, &mut out);
    if !out.is_empty() {
        diagnostic::sort(&mut out);
        return Err(LoadError { diagnostics: out });
    }
    let Some(fleet) = fleet else {
        return Err(LoadError { diagnostics: out });
    };
    let agents: BTreeMap<AgentName, Agent> = agents
        .into_iter()
        .map(|(a, _)| (a.name.clone(), a))
        .collect();
    Ok(Fleet {
        settings: fleet.settings,
        agents,
    })
}

/// The project names `fleet.yaml` among `files` declares, in order, read without the agents:
/// what the provider clients must be built for before the fleet is loaded. Empty when there
/// is no fleet.yaml, it declares no projects, or it is invalid (loading it reports why).
pub fn declared_projects(files: &[SourceFile]) -> Vec<String> {
    let Some(file) = files.iter().find(|f| f.path == FLEET_FILE) else {
        return Vec::new();
    };
    load_settings(file, &mut Vec::new())
        .map(|ctx| ctx.settings.project_names())
        .unwrap_or_default()
}

/// Parses and validates `fleet.yaml`, reporting every problem to `out`.
pub(crate) fn load_settings(file: &SourceFile, out: &mut Vec<Diagnostic>) -> Option<FleetContext> {
    let node = read_tree(file, out)?;
    let raw: RawFleet = deserialize(&node, "Fleet", &file.path, out)?;
    validate::fleet(raw, &mut Report::new(&file.path, out))
}

/// Parses and validates one agent file against the fleet's settings; `None` (with problems in
/// `out`, or none for a `.gitkeep`) when it yields no agent.
pub(crate) fn load_agent(
    file: &SourceFile,
    fleet: Option<&FleetContext>,
    out: &mut Vec<Diagnostic>,
) -> Option<(Agent, Span, Span)> {
    let base = file.path.rsplit('/').next().unwrap_or_default();
    if base == ".gitkeep" {
        return None;
    }
    let is_yaml = file.path.ends_with(".yaml") || file.path.ends_with(".yml");
    if !is_yaml && matches!(file.content, Content::Bytes(_)) {
        out.push(
            Diagnostic::new(
                &file.path,
                None,
                Code::NotYaml,
                "not a YAML file: agents/ holds only `.yaml` agent specs",
            )
            .with_hint("move this file out of agents/, or rename it to `.yaml` if it is a spec"),
        );
        return None;
    }
    let node = read_tree(file, out)?;
    let raw: RawAgent = deserialize(&node, "Agent", &file.path, out)?;
    let name_span = raw.metadata.name.span;
    let sub_span = raw.spec.subscription.span;
    let agent = validate::agent(raw, &file.path, fleet, &mut Report::new(&file.path, out))?;
    Some((agent, name_span, sub_span))
}

/// Decodes and parses one file into a tree, reporting what stops it.
fn read_tree(file: &SourceFile, out: &mut Vec<Diagnostic>) -> Option<Node> {
    let path = file.path.as_str();
    let bytes = match &file.content {
        Content::Bytes(b) if b.len() as u64 > MAX_SPEC_BYTES => {
            out.push(too_large(path, b.len() as u64));
            return None;
        }
        Content::Bytes(b) => b,
        Content::TooLarge { size } => {
            out.push(too_large(path, *size));
            return None;
        }
        Content::Symlink { target } => {
            out.push(
                Diagnostic::new(path, None, Code::Symlink, format!("a symbolic link (to `{target}`), not a file"))
                    .with_hint("fleet specs must be regular files; replace the link with the file it points to"),
            );
            return None;
        }
        Content::Unreadable { reason } => {
            out.push(
                Diagnostic::new(
                    path,
                    None,
                    Code::Unreadable,
                    format!("cannot read the file: {reason}"),
                )
                .with_hint("check the file's permissions"),
            );
            return None;
        }
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = span_of_byte(bytes, e.valid_up_to());
            out.push(
                Diagnostic::new(
                    path,
                    Some(at),
                    Code::InvalidUtf8,
                    "the file is not valid UTF-8",
                )
                .with_hint("save the file as UTF-8"),
            );
            return None;
        }
    };
    let text = text.strip_prefix(text::BOM).unwrap_or(text);
    let found = text::scan_file(text);
    if !found.is_empty() {
        report_forbidden(path, found, false, out);
        return None;
    }
    if text.trim().is_empty() {
        out.push(
            Diagnostic::new(path, None, Code::Empty, "the file is empty")
                .with_hint("write a spec here, or delete the file"),
        );
        return None;
    }
    match node::parse(text) {
        Ok(n) => {
            let found = text::scan_values(&n);
            if !found.is_empty() {
                report_forbidden(path, found, true, out);
                return None;
            }
            Some(n)
        }
        Err(e) => {
            let mut d = Diagnostic::new(path, Some(e.span), e.code, e.message);
            d.hint = e.hint;
            out.push(d);
            None
        }
    }
}

/// Most refused characters reported one by one per file; the rest are counted in one more.
pub const MAX_FORBIDDEN_REPORTED: usize = 20;

/// Reports refused characters (in the file itself, or in values where an escape produced
/// them): the first [`MAX_FORBIDDEN_REPORTED`] each on its own, then how many more.
fn report_forbidden(path: &str, found: Vec<text::Found>, escaped: bool, out: &mut Vec<Diagnostic>) {
    let more = found.len().saturating_sub(MAX_FORBIDDEN_REPORTED);
    let mut found = found.into_iter();
    out.extend(
        found
            .by_ref()
            .take(MAX_FORBIDDEN_REPORTED)
            .map(|f| forbidden(path, f, escaped)),
    );
    if let Some(next) = found.next() {
        out.push(
            Diagnostic::new(path, Some(next.span), Code::ForbiddenCharacter, format!("{more} more refused characters from here on"))
                .with_hint("this file is probably not a text spec: check its encoding, or rewrite it as plain UTF-8 text"),
        );
    }
}

/// One refused character.
fn forbidden(path: &str, f: text::Found, escaped: bool) -> Diagnostic {
    let what = text::describe(f.c);
    let (message, hint) = if escaped {
        (
            format!("a value holds {what}, {}, written as an escape", f.why),
            "remove the escape (`\\u…`, `\\x…`, `\\0`, `\\N`, `\\L`, `\\P`…) from the quoted value: spec values are printable text",
        )
    } else if f.c == '\r' {
        (
            format!("the file holds {what}, {}", f.why),
            "save the file with LF (or CRLF) line ends",
        )
    } else {
        (
            format!("the file holds {what}, {}", f.why),
            "delete the character; editors may not show it, `cat -A` does",
        )
    };
    Diagnostic::new(path, Some(f.span), Code::ForbiddenCharacter, message)
        .at_path(f.path)
        .with_hint(hint)
}

fn too_large(path: &str, size: u64) -> Diagnostic {
    Diagnostic::new(
        path,
        None,
        Code::TooLarge,
        format!("the file is {size} bytes; spec files are limited to {MAX_SPEC_BYTES} bytes"),
    )
    .with_hint("an agent spec is a few hundred bytes; check that this is the right file")
}

/// Checks the document's kind, then reads it as `T`, reporting unknown fields and the first
/// type error.
fn deserialize<T: serde::de::DeserializeOwned>(
    node: &Node,
    kind: &str,
    path: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    if !matches!(node.kind, NodeKind::Mapping(_)) {
        out.push(
            Diagnostic::new(
                path,
                Some(node.span),
                Code::InvalidType,
                format!(
                    "expected a `kind: {kind}` mapping, found {}",
                    node.describe()
                ),
            )
            .with_hint("a spec is a mapping with apiVersion, kind, metadata and spec"),
        );
        return None;
    }
    if let Some(found) = node.get("kind")
        && let NodeKind::Scalar { text, .. } = &found.kind
        && text != kind
    {
        let hint = match text.as_str() {
            "Fleet" => "the Fleet document lives in fleet.yaml at the repository root".to_owned(),
            "Agent" => "Agent documents live under agents/".to_owned(),
            _ => format!("this file must hold a `kind: {kind}` document"),
        };
        out.push(
            Diagnostic::new(
                path,
                Some(found.span),
                Code::WrongKind,
                format!("expected kind `{kind}`, found `{text}`"),
            )
            .at_path("kind")
            .with_hint(hint),
        );
        return None;
    }
    let (result, unknown) = de::from_node::<T>(node);
    for u in unknown {
        out.push(unknown_field(path, u));
    }
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            let mut d = Diagnostic::new(path, e.span, e.code, e.message)
                .at_path(e.path.unwrap_or_default());
            d.hint = e.hint;
            out.push(d);
            None
        }
    }
}

fn unknown_field(path: &str, u: UnknownField) -> Diagnostic {
    let hint = match u.suggestion {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "known fields here: {}",
            u.expected
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Diagnostic::new(
        path,
        Some(u.span),
        Code::UnknownField,
        format!("unknown field `{}`", u.key),
    )
    .at_path(u.path)
    .with_hint(hint)
}

fn check_unique(agents: &[(Agent, (Span, Span))], out: &mut Vec<Diagnostic>) {
    let mut names: HashMap<&str, &Agent> = HashMap::with_capacity(agents.len());
    let mut subs: HashMap<&str, &Agent> = HashMap::with_capacity(agents.len());
    for (agent, (name_span, sub_span)) in agents {
        let (name_span, sub_span) = (*name_span, *sub_span);
        if let Some(first) = names.insert(agent.name.as_str(), agent) {
            names.insert(first.name.as_str(), first);
            out.push(
                Diagnostic::new(
                    &agent.source,
                    Some(name_span),
                    Code::DuplicateName,
                    format!(
                        "agent name `{}` is already used by {}",
                        agent.name, first.source
                    ),
                )
                .at_path("metadata.name")
                .with_hint("agent names are unique in the fleet; rename one of the two agents"),
            );
        }
        if let Some(first) = subs.insert(agent.subscription.as_str(), agent) {
            subs.insert(first.subscription.as_str(), first);
            out.push(
                Diagnostic::new(
                    &agent.source,
                    Some(sub_span),
                    Code::DuplicateSubscription,
                    format!(
                        "subscription `{}` already has agent `{}` ({})",
                        agent.subscription, first.name, first.source
                    ),
                )
                .at_path("spec.subscription")
                .with_hint("one subscription gets one agent; remove one of the two specs"),
            );
        }
    }
}
