//! GitHub's list pagination: `per_page` (default 30, at most 100) and `page` (from 1), and the
//! RFC 5988 `Link` header with `prev`, `next`, `last` and `first` relations that keeps every
//! other query parameter.

use std::collections::BTreeMap;

/// Default page size.
pub const DEFAULT_PER_PAGE: usize = 30;
/// Largest page size.
pub const MAX_PER_PAGE: usize = 100;

/// One page of a list, and its `Link` header (absent when everything fits on one page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    /// The items on the requested page (empty past the last page).
    pub items: Vec<T>,
    /// The `Link` header value.
    pub link: Option<String>,
}

/// The page `query` asks for out of `items`; `url` is the list's absolute URL without query.
///
/// `per_page` outside 1–100 is clamped and an unparsable one means the default; `page`
/// below 1 or unparsable means 1 (what GitHub does with such values is not documented).
pub fn paginate<T>(items: Vec<T>, query: &BTreeMap<String, String>, url: &str) -> Paged<T> {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let link = (last > 1).then(|| link_header(query, url, page, last));
    let items = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    Paged { items, link }
}

fn link_header(query: &BTreeMap<String, String>, url: &str, page: usize, last: usize) -> String {
    let href = |n: usize| {
        let mut params = query.clone();
        params.insert("page".into(), n.to_string());
        let encoded = serde_urlencoded::to_string(&params).unwrap_or_default();
        format!("<{url}?{encoded}>")
    };
    let mut rels = Vec::new();
    if page > 1 {
        rels.push(format!("{}; rel=\"prev\"", href(page.min(last + 1) - 1)));
    }
    if page < last {
        rels.push(format!("{}; rel=\"next\"", href(page + 1)));
        rels.push(format!("{}; rel=\"last\"", href(last)));
    }
    if page > 1 {
        rels.push(format!("{}; rel=\"first\"", href(1)));
    }
    rels.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn pages_default_to_thirty_and_link_to_their_neighbours() {
        let url = "http://h/repos/o/r/issues/1/comments";
        let first = paginate((1..=65).collect(), &query(&[]), url);
        assert_eq!(first.items, (1..=30).collect::<Vec<_>>());
        assert_eq!(
            first.link.as_deref(),
            Some(
                "<http://h/repos/o/r/issues/1/comments?page=2>; rel=\"next\", <http://h/repos/o/r/issues/1/comments?page=3>; rel=\"last\""
            )
        );
        let middle = paginate(
            (1..=65).collect(),
            &query(&[("page", "2"), ("since", "x")]),
            url,
        );
        assert_eq!(middle.items, (31..=60).collect::<Vec<_>>());
        let link = middle.link.expect("link");
        assert!(link.contains("?page=1&since=x>; rel=\"prev\""), "{link}");
        assert!(link.contains("?page=3&since=x>; rel=\"next\""), "{link}");
        assert!(link.contains("?page=1&since=x>; rel=\"first\""), "{link}");
        let last = paginate((1..=65).collect(), &query(&[("page", "3")]), url);
        assert_eq!(last.items, (61..=65).collect::<Vec<_>>());
        assert!(!last.link.expect("link").contains("next"));
    }

    #[test]
    fn page_size_is_clamped_to_one_hundred_and_a_single_page_has_no_link() {
        let big = paginate((1..=250).collect(), &query(&[("per_page", "500")]), "u");
        assert_eq!(big.items.len(), 100);
        let small = paginate((1..=5).collect::<Vec<i32>>(), &query(&[]), "u");
        assert_eq!((small.items.len(), small.link), (5, None));
        let past = paginate((1..=5).collect::<Vec<i32>>(), &query(&[("page", "9")]), "u");
        assert!(past.items.is_empty());
    }
}
