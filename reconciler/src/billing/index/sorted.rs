//! Sorted runs of text lines searched in place: the sections of billing's index file. A
//! section is a byte slice of `\n`-terminated lines sorted by a key field; a lookup is a binary
//! search over byte offsets (a few probes of one line each, no parsing of the rest), and a change
//! is a list of [`Edit`]s copied around the untouched bytes. So a call on an index of 10,000
//! specs reads and writes a few lines' worth of work, however large the file.

use std::cmp::Ordering;

/// Which part of a line a section is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// Everything before the first tab (or the whole line).
    First,
    /// Everything before the last tab (a key that may itself hold tabs).
    AllButLast,
}

impl Field {
    /// The sort key of `line` (without its `\n`).
    pub fn of(self, line: &[u8]) -> &[u8] {
        let tab = match self {
            Field::First => line.iter().position(|&b| b == b'\t'),
            Field::AllButLast => line.iter().rposition(|&b| b == b'\t'),
        };
        tab.map_or(line, |t| &line[..t])
    }
}

/// The start of the line holding byte `at` (the byte after the previous `\n`).
fn line_start(section: &[u8], at: usize) -> usize {
    section[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |nl| nl + 1)
}

/// The end of the line starting at `start`, past its `\n`.
fn line_end(section: &[u8], start: usize) -> usize {
    section[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(section.len(), |nl| start + nl + 1)
}

/// The offset of the first line whose key is not less than `key` (`section.len()` if none).
pub(super) fn lower_bound(section: &[u8], field: Field, key: &[u8]) -> usize {
    let (mut lo, mut hi) = (0, section.len());
    while lo < hi {
        let start = line_start(section, lo + (hi - lo) / 2).max(lo);
        let end = line_end(section, start);
        let line = section[start..end].strip_suffix(b"\n").unwrap_or_default();
        if field.of(line).cmp(key) == Ordering::Less {
            lo = end;
        } else {
            hi = start;
        }
    }
    lo
}

/// The line whose key is `key` (without its `\n`) and where it lies, if there is one.
pub(super) fn find<'s>(
    section: &'s [u8],
    field: Field,
    key: &[u8],
) -> Option<(&'s [u8], std::ops::Range<usize>)> {
    let start = lower_bound(section, field, key);
    let end = line_end(section, start);
    let line = section.get(start..end)?.strip_suffix(b"\n")?;
    (field.of(line) == key).then_some((line, start..end))
}

/// Replace `range` of a section with `line` (empty: remove; an empty range: insert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Edit {
    /// The bytes replaced (line boundaries).
    pub range: std::ops::Range<usize>,
    /// The new line with its `\n`, or nothing.
    pub line: Vec<u8>,
}

impl Edit {
    /// Removes the line at `range`.
    pub fn remove(range: std::ops::Range<usize>) -> Edit {
        Edit {
            range,
            line: Vec::new(),
        }
    }

    /// Inserts `line` (its `\n` added) where its key sorts.
    pub fn insert(section: &[u8], field: Field, line: Vec<u8>) -> Edit {
        let at = lower_bound(section, field, field.of(&line));
        let mut line = line;
        line.push(b'\n');
        Edit {
            range: at..at,
            line,
        }
    }
}

/// `section` with `edits` applied, appended to `out`. Edits must not overlap; an insertion and
/// a removal at the same offset both apply, and insertions at one offset keep their keys'
/// order.
pub(super) fn apply(section: &[u8], field: Field, mut edits: Vec<Edit>, out: &mut Vec<u8>) {
    edits.sort_by(|a, b| {
        (a.range.start, a.range.end, field.of(&a.line)).cmp(&(
            b.range.start,
            b.range.end,
            field.of(&b.line),
        ))
    });
    let mut at = 0;
    for edit in edits {
        let start = edit.range.start.max(at);
        out.extend_from_slice(&section[at..start]);
        out.extend_from_slice(&edit.line);
        at = edit.range.end.max(start);
    }
    out.extend_from_slice(&section[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(lines: &[&str]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect()
    }

    #[test]
    fn every_line_is_found_and_nothing_else_is() {
        let keys: Vec<String> = (0..500).map(|i| format!("k{:04}\tv{i}", i * 2)).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let s = section(&refs);
        for i in 0..500 {
            let (line, _) = find(&s, Field::First, format!("k{:04}", i * 2).as_bytes())
                .expect("a stored key is found");
            assert_eq!(line, format!("k{:04}\tv{i}", i * 2).as_bytes());
            assert!(find(&s, Field::First, format!("k{:04}", i * 2 + 1).as_bytes()).is_none());
        }
        assert!(find(&[], Field::First, b"k").is_none());
        assert!(find(&s, Field::First, b"k").is_none());
        assert!(find(&s, Field::First, b"z").is_none());
    }

    #[test]
    fn keys_with_tabs_sort_by_everything_before_the_last_tab() {
        let s = section(&["a\tb\tc1", "a\tc\tc2", "ab\tc3"]);
        let (line, _) = find(&s, Field::AllButLast, b"a\tc").expect("found");
        assert_eq!(line, b"a\tc\tc2");
        assert!(find(&s, Field::AllButLast, b"a").is_none());
    }

    #[test]
    fn edits_insert_in_order_remove_and_replace() {
        let s = section(&["b\t1", "d\t2", "f\t3"]);
        let (_, d) = find(&s, Field::First, b"d").expect("d");
        let edits = vec![
            Edit::insert(&s, Field::First, b"e\t5".to_vec()),
            Edit::remove(d.clone()),
            Edit::insert(&s, Field::First, b"a\t0".to_vec()),
            Edit::insert(&s, Field::First, b"d\t9".to_vec()),
            Edit::insert(&s, Field::First, b"z\t6".to_vec()),
            Edit::insert(&s, Field::First, b"c\t4".to_vec()),
        ];
        let mut out = Vec::new();
        apply(&s, Field::First, edits, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("text"),
            "a\t0\nb\t1\nc\t4\nd\t9\ne\t5\nf\t3\nz\t6\n"
        );
    }
}
