//! A crate's module tree read from its files, and every reference between sibling modules
//! (an edge), found by resolving each `use` and each `crate::`/`super::`/`self::` path.

use super::lex;
use super::parse::{self, Binding, Body, EXTERN};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One module of the crate, test modules (`#[cfg(test)]`) left out.
#[derive(Debug)]
struct Module {
    path: Vec<String>,
    file: PathBuf,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
    imports: BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
    items: BTreeSet<String>,
    refs: Vec<(Vec<String>, u32)>,
}

/// Where a module refers to a sibling: the file, the line and the path as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Site {
    pub file: PathBuf,
    pub line: u32,
    pub path: String,
}

/// Sibling edges per level: parent module path → (from child, to child) → where.
pub type Edges = BTreeMap<Vec<String>, BTreeMap<(String, String), Vec<Site>>>;

/// A crate's modules, read from its root file (`lib.rs` or `main.rs`).
#[derive(Debug)]
pub struct Tree {
    modules: Vec<Module>,
}

/// Resolution follows at most this many `use`s in a row (a `use` cycle is a compile error).
const MAX_HOPS: usize = 32;

impl Tree {
    /// Reads the crate whose root file is `root`, following every `mod name;` that is not
    /// `#[cfg(test)]`. Fails on a file it cannot read or a declared module without a file.
    pub fn read(root: &Path) -> Result<Tree, String> {
        let mut tree = Tree {
            modules: Vec::new(),
        };
        tree.file(Vec::new(), root, true, None)?;
        Ok(tree)
    }

    /// The number of (non-test) modules.
    pub fn len(&self) -> usize {
        self.modules.len()
    }

    fn file(
        &mut self,
        path: Vec<String>,
        file: &Path,
        mod_rs: bool,
        parent: Option<usize>,
    ) -> Result<usize, String> {
        let source = std::fs::read_to_string(file)
            .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
        let body = parse::body(&lex::tokens(&source));
        let here = file.parent().unwrap_or(Path::new("")).to_path_buf();
        let dir = match (mod_rs, file.file_stem()) {
            (false, Some(stem)) => here.join(stem),
            _ => here.clone(),
        };
        self.body(path, file, body, &dir, &here, parent)
    }

    fn body(
        &mut self,
        path: Vec<String>,
        file: &Path,
        body: Body,
        dir: &Path,
        here: &Path,
        parent: Option<usize>,
    ) -> Result<usize, String> {
        let index = self.modules.len();
        let mut module = Module {
            path: path.clone(),
            file: file.to_path_buf(),
            parent,
            children: BTreeMap::new(),
            imports: BTreeMap::new(),
            globs: Vec::new(),
            items: body.items,
            refs: body
                .paths
                .into_iter()
                .map(|p| (p.segments, p.line))
                .collect(),
        };
        for u in body.uses {
            match u.binding {
                Binding::Name(name) => {
                    module.imports.insert(name, u.segments.clone());
                }
                Binding::Glob => module.globs.push(u.segments.clone()),
            }
            module.refs.push((u.segments, u.line));
        }
        self.modules.push(module);
        for decl in body.file_modules.into_iter().filter(|m| !m.test) {
            let child_path = [path.clone(), vec![decl.name.clone()]].concat();
            let (child_file, mod_rs) = match &decl.path {
                Some(p) => (here.join(p), true),
                None => locate(dir, &decl.name).ok_or_else(|| {
                    format!(
                        "{}:{}: `mod {};` but neither {} nor {} exists",
                        file.display(),
                        decl.line,
                        decl.name,
                        dir.join(format!("{}.rs", decl.name)).display(),
                        dir.join(&decl.name).join("mod.rs").display()
                    )
                })?,
            };
            let child = self.file(child_path, &child_file, mod_rs, Some(index))?;
            self.modules[index].children.insert(decl.name, child);
        }
        for (name, inner) in body.inline_modules {
            let child_path = [path.clone(), vec![name.clone()]].concat();
            let child = self.body(child_path, file, inner, &dir.join(&name), here, Some(index))?;
            self.modules[index].children.insert(name, child);
        }
        Ok(index)
    }

    /// Every reference from one module to a sibling, per level, with where it is written.
    pub fn edges(&self) -> Edges {
        let mut edges = Edges::new();
        for (index, module) in self.modules.iter().enumerate() {
            for (segments, line) in &module.refs {
                let Some(target) = self.resolve(index, segments, 0) else {
                    continue;
                };
                let (from, to) = (&module.path, &self.modules[target].path);
                let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
                if common < from.len() && common < to.len() {
                    let site = Site {
                        file: module.file.clone(),
                        line: *line,
                        path: segments.join("::"),
                    };
                    edges
                        .entry(from[..common].to_vec())
                        .or_default()
                        .entry((from[common].clone(), to[common].clone()))
                        .or_default()
                        .push(site);
                }
            }
        }
        edges
    }

    /// The module a path written in module `from` leads to (for an item, the module that
    /// defines it), following `use`s and re-exports; `None` for another crate's path.
    fn resolve(&self, from: usize, segments: &[String], hops: usize) -> Option<usize> {
        let (first, rest) = segments.split_first()?;
        if hops > MAX_HOPS {
            return None;
        }
        let start = match first.as_str() {
            "crate" => 0,
            "self" => from,
            "super" => self.modules[from].parent?,
            EXTERN => return None,
            name => {
                let module = &self.modules[from];
                if let Some(&child) = module.children.get(name) {
                    child
                } else {
                    let target = module.imports.get(name)?;
                    if target.len() == 1 && target[0] == *name {
                        return None;
                    }
                    self.resolve(from, target, hops + 1)?
                }
            }
        };
        self.walk(start, rest, hops)
    }

    /// Walks `segments` down from module `at`.
    fn walk(&self, mut at: usize, segments: &[String], hops: usize) -> Option<usize> {
        for (i, segment) in segments.iter().enumerate() {
            let module = &self.modules[at];
            if segment == "super" {
                at = module.parent?;
            } else if segment == "self" {
                continue;
            } else if let Some(&child) = module.children.get(segment) {
                at = child;
            } else if let Some(target) = module.imports.get(segment) {
                let imported = self.resolve(at, target, hops + 1)?;
                return self.walk(imported, &segments[i + 1..], hops + 1);
            } else if module.items.contains(segment) {
                return Some(at);
            } else {
                return Some(self.through_globs(at, &segments[i..], hops).unwrap_or(at));
            }
        }
        Some(at)
    }

    /// A name that module `at` neither defines nor imports by name, looked up in the local
    /// modules it glob-imports (`pub use inner::*`).
    fn through_globs(&self, at: usize, segments: &[String], hops: usize) -> Option<usize> {
        let name = &segments[0];
        self.modules[at].globs.iter().find_map(|glob| {
            let base = self.resolve(at, glob, hops + 1)?;
            let m = &self.modules[base];
            let knows = m.children.contains_key(name)
                || m.imports.contains_key(name)
                || m.items.contains(name);
            (knows && base != at).then(|| self.walk(base, segments, hops + 1))?
        })
    }
}

fn locate(dir: &Path, name: &str) -> Option<(PathBuf, bool)> {
    let flat = dir.join(format!("{name}.rs"));
    let nested = dir.join(name).join("mod.rs");
    if flat.is_file() {
        Some((flat, false))
    } else if nested.is_file() {
        Some((nested, true))
    } else {
        None
    }
}
