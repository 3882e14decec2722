//! The module-order check: inside each crate, the modules at every level of the `src/` tree
//! must point one way, as the crates do. Start at [`check`].
//!
//! A module refers to a sibling through a `use` (re-exports followed to where the item is
//! defined, so a `pub use` hides no edge) or a `crate::`/`super::`/`self::` path in code.
//! References from a module to its own descendants or ancestors are not sibling edges.
//! `#[cfg(test)]` modules and items are left out: tests may use anything in the crate.

mod lex;
mod parse;
mod tree;

pub use tree::Site;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The crates of the workspace whose module order is checked: name and root file, relative
/// to the workspace root.
pub const WORKSPACE_CRATES: [(&str, &str); 6] = [
    ("tether-schema", "schema/src/lib.rs"),
    ("tether-core", "reconciler/core/src/lib.rs"),
    ("tether", "reconciler/src/lib.rs"),
    ("tether-emulators", "reconciler/emulators/src/lib.rs"),
    ("tether-e2e", "tests/e2e/main.rs"),
    ("module_graph", "tests/module_graph/lib.rs"),
];

/// Loops the workspace still has, each to be broken: crate, parent module and the loop's
/// modules in name order. The check reports them without failing, fails on any other loop, and
/// fails when a listed loop is gone, so this list only shrinks.
pub const KNOWN_LOOPS: &[(&str, &str, &[&str])] = &[
    (
        "tether",
        "crate::audit",
        &["heal", "invariants", "ledger", "status"],
    ),
    (
        "tether-emulators",
        "crate::github",
        &["comments", "gate", "pulls", "routes", "statuses"],
    ),
];

/// One crate's module graph, checked.
#[derive(Debug)]
pub struct Report {
    pub crate_name: String,
    pub modules: usize,
    pub edges: usize,
    pub loops: Vec<Loop>,
    /// The top-level modules in layers, lowest first (each uses only modules of earlier
    /// layers); empty when the top level has a loop.
    pub layers: Vec<Vec<String>>,
}

/// Modules at one level that refer to each other in a circle.
#[derive(Debug, Clone)]
pub struct Loop {
    pub crate_name: String,
    /// The parent module, `crate` for the top level.
    pub parent: String,
    /// The modules of the loop (each reaches every other), in name order.
    pub members: Vec<String>,
    /// One cycle through the loop, its first module repeated at the end.
    pub cycle: Vec<String>,
    /// Every edge between the loop's modules, with where it is written.
    pub edges: Vec<((String, String), Vec<Site>)>,
}

/// Reads the crate whose root file is `root` and checks its module graph.
pub fn check(crate_name: &str, root: &Path) -> Result<Report, String> {
    let tree = tree::Tree::read(root)?;
    let edges = tree.edges();
    let mut loops = Vec::new();
    let mut layers = Vec::new();
    for (parent, level) in &edges {
        let graph = Graph::new(level);
        let components = graph.loops();
        if parent.is_empty() && components.is_empty() {
            layers = graph.layers();
        }
        for component in components {
            loops.push(Loop {
                crate_name: crate_name.to_owned(),
                parent: ["crate".to_owned()]
                    .iter()
                    .chain(parent)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("::"),
                cycle: graph.cycle(&component),
                members: component.clone(),
                edges: level
                    .iter()
                    .filter(|((a, b), _)| component.contains(a) && component.contains(b))
                    .map(|(edge, sites)| (edge.clone(), sites.clone()))
                    .collect(),
            });
        }
    }
    Ok(Report {
        crate_name: crate_name.to_owned(),
        modules: tree.len(),
        edges: edges.values().map(BTreeMap::len).sum(),
        loops,
        layers,
    })
}

/// The entries of [`KNOWN_LOOPS`] that no report has any more.
pub fn stale_known_loops(
    reports: &[Report],
) -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    KNOWN_LOOPS
        .iter()
        .filter(|known| {
            !reports
                .iter()
                .flat_map(|r| &r.loops)
                .any(|l| l.matches(known))
        })
        .copied()
        .collect()
}

impl Loop {
    /// Listed in [`KNOWN_LOOPS`].
    pub fn is_known(&self) -> bool {
        KNOWN_LOOPS.iter().any(|known| self.matches(known))
    }

    fn matches(&self, (crate_name, parent, members): &(&str, &str, &[&str])) -> bool {
        self.crate_name == *crate_name && self.parent == *parent && self.members == *members
    }

    /// The loop in one line: crate, level and cycle.
    pub fn title(&self) -> String {
        format!(
            "{}: module loop in `{}`: {}",
            self.crate_name,
            self.parent,
            self.cycle.join(" → ")
        )
    }
}

/// Checks every crate of [`WORKSPACE_CRATES`] under the workspace root `workspace`.
pub fn check_workspace(workspace: &Path) -> Result<Vec<Report>, String> {
    WORKSPACE_CRATES
        .iter()
        .map(|(name, root)| check(name, &workspace.join(root)))
        .collect()
}

/// The sibling modules of one level and who uses whom.
struct Graph<'a> {
    uses: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> Graph<'a> {
    fn new(level: &'a BTreeMap<(String, String), Vec<Site>>) -> Self {
        let mut uses: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (from, to) in level.keys() {
            uses.entry(from).or_default().push(to);
            uses.entry(to).or_default();
        }
        Graph { uses }
    }

    /// The strongly connected components of more than one module (Tarjan), in name order.
    fn loops(&self) -> Vec<Vec<String>> {
        let mut tarjan = Tarjan {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            found: Vec::new(),
        };
        for node in self.uses.keys() {
            if !tarjan.index.contains_key(node) {
                tarjan.visit(node);
            }
        }
        let mut found = tarjan.found;
        found.iter_mut().for_each(|c| c.sort());
        found.sort();
        found
    }

    /// A shortest cycle through the component's first module.
    fn cycle(&self, component: &[String]) -> Vec<String> {
        let start = component[0].as_str();
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            for &next in &self.uses[node] {
                if !component.iter().any(|c| c == next) {
                    continue;
                }
                if next == start {
                    let mut cycle = vec![start.to_owned()];
                    let mut at = node;
                    while at != start {
                        cycle.push(at.to_owned());
                        at = previous[at];
                    }
                    cycle.push(start.to_owned());
                    cycle.reverse();
                    return cycle;
                }
                if !previous.contains_key(next) {
                    previous.insert(next, node);
                    queue.push_back(next);
                }
            }
        }
        component.to_vec()
    }

    /// Layers of an acyclic level, lowest first.
    fn layers(&self) -> Vec<Vec<String>> {
        let mut layer: BTreeMap<&str, usize> = BTreeMap::new();
        while layer.len() < self.uses.len() {
            for (node, uses) in &self.uses {
                if !layer.contains_key(node)
                    && let Some(below) = uses
                        .iter()
                        .map(|u| layer.get(u))
                        .collect::<Option<Vec<_>>>()
                {
                    layer.insert(node, below.into_iter().max().map_or(0, |l| l + 1));
                }
            }
        }
        let mut layers = vec![Vec::new(); layer.values().max().map_or(0, |l| l + 1)];
        for (node, l) in layer {
            layers[l].push(node.to_owned());
        }
        layers
    }
}

struct Tarjan<'g, 'a> {
    graph: &'g Graph<'a>,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    found: Vec<Vec<String>>,
}

impl<'a> Tarjan<'_, 'a> {
    fn visit(&mut self, node: &'a str) {
        let index = self.index.len();
        self.index.insert(node, index);
        self.low.insert(node, index);
        self.stack.push(node);
        for &next in &self.graph.uses[node] {
            if !self.index.contains_key(next) {
                self.visit(next);
                let low = self.low[node].min(self.low[next]);
                self.low.insert(node, low);
            } else if self.stack.contains(&next) {
                let low = self.low[node].min(self.index[next]);
                self.low.insert(node, low);
            }
        }
        if self.low[node] == index {
            let mut component = Vec::new();
            while let Some(top) = self.stack.pop() {
                component.push(top.to_owned());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                self.found.push(component);
            }
        }
    }
}

/// How many places are shown for each edge of a loop.
const SITES_SHOWN: usize = 3;

impl fmt::Display for Loop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.title())?;
        writeln!(f, "  the loop's modules: {}", self.members.join(", "))?;
        for ((from, to), sites) in &self.edges {
            let on_cycle = self.cycle.windows(2).any(|w| w[0] == *from && w[1] == *to);
            let mark = if on_cycle {
                ""
            } else {
                " (also inside the loop)"
            };
            writeln!(f, "  {from} → {to}{mark}:")?;
            for site in sites.iter().take(SITES_SHOWN) {
                writeln!(
                    f,
                    "    {}:{}  {}",
                    display(&site.file),
                    site.line,
                    site.path
                )?;
            }
            if sites.len() > SITES_SHOWN {
                writeln!(f, "    … and {} more", sites.len() - SITES_SHOWN)?;
            }
        }
        write!(
            f,
            "  Modules at one level must point one way (docs/architecture.md, \"Module order\"): \
             find the edge that points against the order and move the items it uses down into \
             the module that needs them, or into a module below both. A `pub use` does not hide \
             an edge: the check follows it to where the item is defined."
        )
    }
}

fn display(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    path.strip_prefix(&cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}
