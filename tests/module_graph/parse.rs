//! What one file says about modules: the modules it declares, its `use` trees, the
//! `crate::`/`super::`/`self::` paths in its code, and the names of the items it defines.

use super::lex::{Tok, Token};
use std::collections::BTreeSet;

/// What `use` binds: one name, or everything (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    Name(String),
    Glob,
}

/// One leaf of a `use` tree, its path spelled out (`use a::{b, c::d as e}` gives `a::b` and
/// `a::c::d` bound as `e`). A leading `::` becomes the segment [`EXTERN`].
#[derive(Debug, Clone)]
pub struct Use {
    pub segments: Vec<String>,
    pub binding: Binding,
    pub line: u32,
}

/// A path in code that starts at `crate`, `super` or `self`, or such a path written in an
/// attribute's string (`#[serde(with = "crate::x")]`).
#[derive(Debug, Clone)]
pub struct PathRef {
    pub segments: Vec<String>,
    pub line: u32,
}

/// `mod name;`: a module in its own file.
#[derive(Debug, Clone)]
pub struct FileModule {
    pub name: String,
    /// The `#[path = "…"]` attribute's value, if any.
    pub path: Option<String>,
    /// Declared under `#[cfg(test)]`.
    pub test: bool,
    pub line: u32,
}

/// What one module body (a file, or an inline `mod name { … }`) holds.
#[derive(Debug, Clone, Default)]
pub struct Body {
    /// The body is compiled for tests only (`#![cfg(test)]`).
    pub test: bool,
    pub uses: Vec<Use>,
    pub paths: Vec<PathRef>,
    /// Names of the items defined in the body (functions, types, constants, macros).
    pub items: BTreeSet<String>,
    pub file_modules: Vec<FileModule>,
    /// Inline modules that are not `#[cfg(test)]`, with their bodies.
    pub inline_modules: Vec<(String, Body)>,
}

/// The first segment of a `use` path written with a leading `::` (an external crate).
pub const EXTERN: &str = "::";

/// Reads one file's tokens into its module body.
pub fn body(tokens: &[Token]) -> Body {
    let parser = Parser {
        toks: tokens,
        close: matching_brackets(tokens),
    };
    parser.body(0, tokens.len())
}

/// For each opening bracket, the index of the bracket that closes it (the end for an unclosed
/// one); other tokens map to themselves.
fn matching_brackets(tokens: &[Token]) -> Vec<usize> {
    let mut close: Vec<usize> = (0..tokens.len()).collect();
    let mut open = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t.tok {
            Tok::Punct('{' | '(' | '[') => open.push(i),
            Tok::Punct('}' | ')' | ']') => {
                if let Some(o) = open.pop() {
                    close[o] = i;
                }
            }
            _ => {}
        }
    }
    for o in open {
        close[o] = tokens.len();
    }
    close
}

const ITEM_KEYWORDS: [&str; 8] = [
    "fn", "struct", "enum", "trait", "type", "const", "static", "union",
];

struct Parser<'a> {
    toks: &'a [Token],
    close: Vec<usize>,
}

/// Attributes seen before the item they belong to.
#[derive(Default)]
struct Pending {
    test: bool,
    path: Option<String>,
}

impl Parser<'_> {
    fn tok(&self, i: usize) -> Option<&Tok> {
        self.toks.get(i).map(|t| &t.tok)
    }

    fn ident(&self, i: usize) -> Option<&str> {
        match self.tok(i) {
            Some(Tok::Ident(s)) => Some(s),
            _ => None,
        }
    }

    fn is_punct(&self, i: usize, c: char) -> bool {
        self.tok(i) == Some(&Tok::Punct(c))
    }

    fn line(&self, i: usize) -> u32 {
        self.toks.get(i).or(self.toks.last()).map_or(0, |t| t.line)
    }

    fn body(&self, start: usize, end: usize) -> Body {
        let mut body = Body::default();
        let mut pending = Pending::default();
        let mut i = start;
        while i < end {
            if self.is_punct(i, '#') {
                let inner = self.is_punct(i + 1, '!');
                let open = if inner { i + 2 } else { i + 1 };
                if self.is_punct(open, '[') {
                    let close = self.close[open];
                    self.attribute(open + 1, close, &mut body, &mut pending);
                    if inner && pending.test {
                        body.test = true;
                        pending.test = false;
                    }
                    i = close + 1;
                    continue;
                }
            }
            i = self.item(i, end, &mut body, std::mem::take(&mut pending));
        }
        body
    }

    /// Reads one attribute's tokens (between `#[` and `]`).
    fn attribute(&self, start: usize, end: usize, body: &mut Body, pending: &mut Pending) {
        let words: Vec<&Tok> = self.toks[start..end].iter().map(|t| &t.tok).collect();
        let word = |i: usize, w: &str| matches!(words.get(i), Some(Tok::Ident(s)) if s == w);
        if word(0, "cfg") && (word(2, "test") || (word(2, "all") && word(4, "test"))) {
            pending.test = true;
        }
        if word(0, "path")
            && let Some(Tok::Str(p)) = words.get(2)
        {
            pending.path = Some(p.clone());
        }
        for t in &self.toks[start..end] {
            if let Tok::Str(s) = &t.tok {
                let segments: Vec<String> = s.split("::").map(str::to_owned).collect();
                let anchored = matches!(segments[0].as_str(), "crate" | "super" | "self");
                if anchored && segments.len() > 1 && segments.iter().all(|s| is_ident(s)) {
                    body.paths.push(PathRef {
                        segments,
                        line: t.line,
                    });
                }
            }
        }
    }

    /// Reads the token at `i` (an item's start, or any token within one) and returns where to
    /// go on.
    fn item(&self, i: usize, end: usize, body: &mut Body, pending: Pending) -> usize {
        let mut at = i;
        if self.ident(at) == Some("pub") {
            at += 1;
            if self.is_punct(at, '(') {
                at = self.close[at] + 1;
            }
        }
        if self.ident(at) == Some("mod")
            && let Some(name) = self.ident(at + 1)
        {
            return self.module(name.to_owned(), at + 2, body, pending);
        }
        if pending.test {
            return self.skip_item(at, end);
        }
        let Some(word) = self.ident(at) else {
            return at + 1;
        };
        match word {
            "use" => self.use_tree(at + 1, Vec::new(), &mut body.uses) + 1,
            "crate" | "super" | "self" if self.tok(at + 1) == Some(&Tok::PathSep) => {
                self.path(at, body)
            }
            "macro_rules" if self.is_punct(at + 1, '!') => {
                if let Some(name) = self.ident(at + 2) {
                    body.items.insert(name.to_owned());
                }
                at + 2
            }
            w if ITEM_KEYWORDS.contains(&w) => {
                if let Some(name) = self.ident(at + 1) {
                    body.items.insert(name.to_owned());
                }
                at + 1
            }
            _ => at + 1,
        }
    }

    /// `mod name` followed by `;` or a body at `next`.
    fn module(&self, name: String, next: usize, body: &mut Body, pending: Pending) -> usize {
        if self.is_punct(next, '{') {
            let close = self.close[next];
            if !pending.test {
                let inner = self.body(next + 1, close);
                if !inner.test {
                    body.inline_modules.push((name, inner));
                }
            }
            return close + 1;
        }
        body.file_modules.push(FileModule {
            name,
            path: pending.path,
            test: pending.test,
            line: self.line(next),
        });
        next + 1
    }

    /// Skips an item: up to its `;` or through its first `{ … }` block.
    fn skip_item(&self, start: usize, end: usize) -> usize {
        let mut i = start;
        while i < end {
            match self.tok(i) {
                Some(Tok::Punct(';')) => return i + 1,
                Some(Tok::Punct('{')) => return self.close[i] + 1,
                Some(Tok::Punct('(' | '[')) => i = self.close[i] + 1,
                _ => i += 1,
            }
        }
        end
    }

    /// A path in code from its `crate`/`super`/`self` at `start`.
    fn path(&self, start: usize, body: &mut Body) -> usize {
        let mut segments = Vec::new();
        let mut i = start;
        while let Some(name) = self.ident(i) {
            segments.push(name.to_owned());
            if self.tok(i + 1) != Some(&Tok::PathSep) {
                i += 1;
                break;
            }
            i += 2;
        }
        body.paths.push(PathRef {
            segments,
            line: self.line(start),
        });
        i
    }

    /// One `use` tree from `i` under `prefix`; returns the index after it (its `,`, `}` or `;`).
    fn use_tree(&self, mut i: usize, prefix: Vec<String>, out: &mut Vec<Use>) -> usize {
        let mut segments = prefix;
        if segments.is_empty() && self.tok(i) == Some(&Tok::PathSep) {
            segments.push(EXTERN.to_owned());
            i += 1;
        }
        loop {
            match self.tok(i) {
                Some(Tok::Ident(name)) => {
                    let line = self.line(i);
                    segments.push(name.clone());
                    i += 1;
                    if self.tok(i) == Some(&Tok::PathSep) {
                        i += 1;
                        continue;
                    }
                    if segments.last().is_some_and(|s| s == "self") {
                        segments.pop();
                    }
                    let mut binding = segments.last().cloned().unwrap_or_default();
                    if self.ident(i) == Some("as")
                        && let Some(alias) = self.ident(i + 1)
                    {
                        binding = alias.to_owned();
                        i += 2;
                    }
                    out.push(Use {
                        segments,
                        binding: Binding::Name(binding),
                        line,
                    });
                    return i;
                }
                Some(Tok::Punct('*')) => {
                    out.push(Use {
                        segments,
                        binding: Binding::Glob,
                        line: self.line(i),
                    });
                    return i + 1;
                }
                Some(Tok::Punct('{')) => {
                    let close = self.close[i];
                    let mut j = i + 1;
                    while j < close {
                        // past the `,` (or whatever ended the subtree)
                        j = self.use_tree(j, segments.clone(), out) + 1;
                    }
                    return close + 1;
                }
                _ => return i + 1,
            }
        }
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}
