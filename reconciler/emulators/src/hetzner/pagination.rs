//! Pagination (`page`, `per_page`, `meta.pagination`, the RFC 5988 `Link` header with absolute
//! URLs) and sorting (`sort=field`, `field:asc|desc`, repeatable), as in api-facts §1.2.

use super::errors::ApiError;
use super::query::Params;
use serde_json::{Value, json};
use std::cmp::Ordering;

/// `per_page` when the client sends none.
pub const DEFAULT_PER_PAGE: u64 = 25;
/// The largest `per_page` honoured; larger values are capped.
pub const MAX_PER_PAGE: u64 = 50;

/// Where a list lives, to build absolute `Link` URLs: `http://{host}{path}?{other params}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUrl {
    /// Host header of the request, e.g. `127.0.0.1:4000`.
    pub host: String,
    /// Request path, e.g. `/v1/servers`.
    pub path: String,
}

/// One page of a list, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The entries on this page.
    pub items: Vec<T>,
    /// `{"pagination": {...}}`.
    pub meta: Value,
    /// The `Link` header value, when any relation applies.
    pub link: Option<String>,
}

/// Cuts `items` (already filtered and sorted) to the page `params` asks for.
///
/// # Errors
/// `invalid_input` when `page` or `per_page` is not a positive integer.
pub fn paginate<T>(items: Vec<T>, params: &Params, url: &ListUrl) -> Result<Page<T>, ApiError> {
    let page = positive(params, "page")?.unwrap_or(1);
    let per_page = positive(params, "per_page")?
        .unwrap_or(DEFAULT_PER_PAGE)
        .min(MAX_PER_PAGE);
    let total = items.len() as u64;
    let last = total.div_ceil(per_page).max(1);
    let previous = (page > 1).then(|| (page - 1).min(last));
    let next = (page < last).then_some(page + 1);
    let skip = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let take = usize::try_from(per_page).unwrap_or(usize::MAX);
    let items: Vec<T> = items.into_iter().skip(skip).take(take).collect();
    let meta = json!({"pagination": {
        "page": page,
        "per_page": per_page,
        "previous_page": previous,
        "next_page": next,
        "last_page": last,
        "total_entries": total,
    }});
    let others = params.without(&["page", "per_page"]);
    let rels: Vec<String> = [("prev", previous), ("next", next), ("last", Some(last))]
        .into_iter()
        .filter(|(rel, p)| p.is_some() && !(*rel == "last" && page == last))
        .filter_map(|(rel, p)| {
            p.map(|p| format!("<{}>; rel=\"{rel}\"", link(url, &others, p, per_page)))
        })
        .collect();
    Ok(Page {
        items,
        meta,
        link: (!rels.is_empty()).then(|| rels.join(", ")),
    })
}

fn link(url: &ListUrl, others: &[(String, String)], page: u64, per_page: u64) -> String {
    let mut pairs = others.to_vec();
    pairs.push(("page".into(), page.to_string()));
    pairs.push(("per_page".into(), per_page.to_string()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("http://{}{}?{query}", url.host, url.path)
}

fn positive(params: &Params, key: &str) -> Result<Option<u64>, ApiError> {
    params
        .one(key)
        .map(|v| match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ApiError::invalid_field(key, "must be a positive integer")),
        })
        .transpose()
}

/// One `sort` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// Field name.
    pub field: String,
    /// `:desc`.
    pub descending: bool,
}

/// A value to sort by. `Null` sorts first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortValue {
    /// An absent value (e.g. `finished` of a running action).
    Null,
    /// Numbers and timestamps (as UNIX nanoseconds).
    Number(i128),
    /// Text.
    Text(String),
}

/// Parses every `sort` parameter against the fields the endpoint allows.
///
/// # Errors
/// `invalid_input` naming `sort` for an unknown field or direction.
pub fn sort_keys(params: &Params, fields: &[&str]) -> Result<Vec<SortKey>, ApiError> {
    params
        .all("sort")
        .into_iter()
        .map(|s| {
            let (field, direction) = s.split_once(':').unwrap_or((s, "asc"));
            let descending = match direction {
                "asc" => false,
                "desc" => true,
                _ => {
                    return Err(ApiError::invalid_field(
                        "sort",
                        format!("'{s}': unknown direction"),
                    ));
                }
            };
            if !fields.contains(&field) {
                return Err(ApiError::invalid_field(
                    "sort",
                    format!("'{field}' is not one of {}", fields.join(", ")),
                ));
            }
            Ok(SortKey {
                field: field.to_owned(),
                descending,
            })
        })
        .collect()
}

/// Sorts by each key in turn; items equal on every key keep their order (callers pass them by
/// ascending id, the default order).
pub fn sort_by<T>(items: &mut [T], keys: &[SortKey], value: impl Fn(&T, &str) -> SortValue) {
    items.sort_by(|a, b| {
        keys.iter()
            .map(|k| {
                let order = value(a, &k.field).cmp(&value(b, &k.field));
                if k.descending { order.reverse() } else { order }
            })
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> ListUrl {
        ListUrl {
            host: "127.0.0.1:9".into(),
            path: "/v1/servers".into(),
        }
    }

    fn page_of(n: u32, query: &str) -> Page<u32> {
        let params = Params::parse(Some(query)).expect("query");
        paginate((1..=n).collect(), &params, &url()).expect("paginate")
    }

    #[test]
    fn defaults_are_page_one_of_twenty_five() {
        let p = page_of(30, "");
        assert_eq!(p.items.len(), 25);
        assert_eq!(p.meta["pagination"]["per_page"], 25);
        assert_eq!(p.meta["pagination"]["next_page"], 2);
        assert_eq!(p.meta["pagination"]["previous_page"], Value::Null);
        assert_eq!(p.meta["pagination"]["last_page"], 2);
        assert_eq!(p.meta["pagination"]["total_entries"], 30);
    }

    #[test]
    fn per_page_is_capped_at_fifty() {
        let p = page_of(120, "per_page=500");
        assert_eq!(p.items.len(), 50);
        assert_eq!(p.meta["pagination"]["per_page"], 50);
        assert_eq!(p.meta["pagination"]["last_page"], 3);
    }

    #[test]
    fn link_header_has_absolute_urls_and_keeps_other_parameters() {
        let p = page_of(10, "label_selector=env%3Dprod&page=2&per_page=3");
        assert_eq!(p.items, [4, 5, 6]);
        assert_eq!(
            p.link.as_deref(),
            Some(concat!(
                "<http://127.0.0.1:9/v1/servers?label_selector=env%3Dprod&page=1&per_page=3>; rel=\"prev\", ",
                "<http://127.0.0.1:9/v1/servers?label_selector=env%3Dprod&page=3&per_page=3>; rel=\"next\", ",
                "<http://127.0.0.1:9/v1/servers?label_selector=env%3Dprod&page=4&per_page=3>; rel=\"last\""
            ))
        );
    }

    #[test]
    fn the_last_page_links_only_back() {
        let p = page_of(4, "page=2&per_page=2");
        assert_eq!(p.meta["pagination"]["next_page"], Value::Null);
        let link = p.link.expect("prev link");
        assert!(link.ends_with("rel=\"prev\""), "{link}");
        assert!(!link.contains("rel=\"last\""));
    }

    #[test]
    fn an_empty_list_is_one_empty_page_without_links() {
        let p = page_of(0, "");
        assert!(p.items.is_empty());
        assert_eq!(p.meta["pagination"]["last_page"], 1);
        assert_eq!(p.link, None);
    }

    #[test]
    fn zero_or_text_pages_are_invalid_input() {
        for q in ["page=0", "per_page=0", "page=x", "per_page=-1"] {
            let params = Params::parse(Some(q)).expect("query");
            let e = paginate(vec![1], &params, &url()).expect_err(q);
            assert_eq!(e.code, "invalid_input");
        }
    }

    #[test]
    fn sort_keys_apply_in_order_with_directions() {
        let params = Params::parse(Some("sort=name:desc&sort=id")).expect("query");
        let keys = sort_keys(&params, &["id", "name"]).expect("keys");
        let mut items = vec![(1, "a"), (2, "b"), (3, "a")];
        sort_by(&mut items, &keys, |item, field| match field {
            "id" => SortValue::Number(item.0),
            _ => SortValue::Text(item.1.to_owned()),
        });
        assert_eq!(items, [(2, "b"), (1, "a"), (3, "a")]);
    }

    #[test]
    fn unknown_sort_fields_and_directions_are_invalid_input() {
        for q in ["sort=size", "sort=id:up"] {
            let params = Params::parse(Some(q)).expect("query");
            assert!(sort_keys(&params, &["id"]).is_err(), "{q}");
        }
    }
}
