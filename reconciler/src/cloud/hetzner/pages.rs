//! List endpoints, every page: page 1 first, then — when it names the last page — the others
//! concurrently, at most [`PAGES_IN_FLIGHT`] at once and each through the rate limiter like
//! any request; when the API does not say how many pages there are, one after another by
//! `next_page`. Items keep the API's order.

use super::wire::Pagination;
use super::{Client, Error, PER_PAGE};
use crate::cloud::retry::Clock;
use futures_util::StreamExt;
use reqwest::Method;
use serde::de::DeserializeOwned;

/// Most pages of one listing requested at once.
pub const PAGES_IN_FLIGHT: usize = 6;

impl<C: Clock + Clone + 'static> Client<C> {
    /// Every page of a list endpoint; `extract` pulls the items and the pagination.
    pub(super) async fn list_all<R: DeserializeOwned, I>(
        &self,
        operation: &str,
        path: &str,
        query: &[(&str, String)],
        extract: impl Fn(R) -> (Vec<I>, Pagination),
    ) -> Result<Vec<I>, Error> {
        let (mut items, first) = extract(self.page(operation, path, query, 1).await?);
        match first.last_page {
            Some(last) if last > 1 && first.next_page == Some(2) => {
                let mut rest = futures_util::stream::iter(2..=last)
                    .map(|n| self.page::<R>(operation, path, query, n))
                    .buffered(PAGES_IN_FLIGHT);
                while let Some(page) = rest.next().await {
                    items.append(&mut extract(page?).0);
                }
                Ok(items)
            }
            _ => {
                let mut next = first.next_page.filter(|n| *n > 1);
                while let Some(n) = next {
                    let (mut batch, pagination) =
                        extract(self.page(operation, path, query, n).await?);
                    items.append(&mut batch);
                    next = pagination.next_page.filter(|m| *m > n);
                }
                Ok(items)
            }
        }
    }

    /// Page `n` of a list endpoint, at the largest page size.
    async fn page<R: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        query: &[(&str, String)],
        n: u32,
    ) -> Result<R, Error> {
        let mut q = query.to_vec();
        q.push(("page", n.to_string()));
        q.push(("per_page", PER_PAGE.to_string()));
        self.call(operation, Method::GET, path, &q, None).await
    }
}
