//! [`GitHub`]: the [`Forge`] on GitHub's REST API, through `octocrab`. Every call is retried by
//! the shared policy in [`crate::cloud::retry`]; every text is checked by [`super::guard`]
//! before it is sent.

use super::convert::{self, changed_file, status_state};
use super::error::{Error, Scope, Target};
use super::guard::{find_secret, truncate_description};
use super::{
    ChangedFile, CommentId, CommitStatus, Config, Forge, NewPullRequest, PrHead, PrNumber,
};
use crate::cloud::retry::{self, Clock, TokioClock};
use crate::plan::render::markdown::MARKER;
use octocrab::models::issues::Comment;
use octocrab::models::repos::DiffEntry;
use octocrab::{Octocrab, Page};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Largest page GitHub serves.
const PER_PAGE: u8 = 100;

/// Whose comments are tether's: the token's user when `GET /user` answers; when it is refused
/// (an Actions or App installation token), any bot account.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    User(String),
    Integration,
}

/// The GitHub client; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct GitHub<C: Clock = TokioClock> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    octo: Octocrab,
    config: Config,
    clock: C,
    identity: OnceCell<Identity>,
}

impl<C: Clock> fmt::Debug for GitHub<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHub")
            .field("api_url", &self.inner.config.api_url)
            .field("repository", &self.inner.config.repository.to_string())
            .finish_non_exhaustive()
    }
}

impl GitHub<TokioClock> {
    /// A client with the real clock.
    ///
    /// # Errors
    /// The URL is invalid or the HTTP client cannot be built.
    pub fn new(config: Config) -> Result<Self, Error> {
        GitHub::with_clock(config, TokioClock)
    }
}

impl<C: Clock + 'static> GitHub<C> {
    /// A client with the given clock (a `ManualClock` in tests, so retries take no time).
    ///
    /// # Errors
    /// The URL is invalid or the HTTP client cannot be built.
    pub fn with_clock(config: Config, clock: C) -> Result<Self, Error> {
        let octo = Octocrab::builder()
            .personal_token(config.token.expose().clone())
            .base_uri(config.api_url.as_str())
            .map_err(|e| Error::Config(format!("GITHUB_API_URL `{}`: {e}", config.api_url)))?
            .set_connect_timeout(Some(config.connect_timeout))
            .set_read_timeout(Some(config.read_timeout))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(GitHub {
            inner: Arc::new(Inner {
                octo,
                config,
                clock,
                identity: OnceCell::new(),
            }),
        })
    }

    fn scope(&self, target: Target, operation: &'static str) -> Scope {
        Scope {
            repo: self.inner.config.repository.to_string(),
            target,
            operation,
        }
    }

    fn repo(&self) -> (&str, &str) {
        let r = &self.inner.config.repository;
        (&r.owner, &r.name)
    }

    /// Refuses `text` when it holds secret-looking material.
    fn guard(&self, scope: &Scope, field: &'static str, text: &str) -> Result<(), Error> {
        match find_secret(text, self.inner.config.token.expose()) {
            None => Ok(()),
            Some(finding) => Err(Error::SecretRefused {
                scope: scope.clone(),
                field,
                finding,
            }),
        }
    }

    async fn retrying<T, Fut>(&self, scope: &Scope, op: impl FnMut() -> Fut) -> Result<T, Error>
    where
        Fut: Future<Output = Result<T, Error>>,
    {
        let inner = &self.inner;
        retry::retry(
            &inner.config.backoff,
            &inner.clock,
            "github",
            scope.operation,
            Error::retry,
            op,
        )
        .await
    }

    fn convert(&self, scope: &Scope, err: octocrab::Error) -> Error {
        convert::error(
            scope,
            err,
            self.inner.config.token.expose(),
            self.inner.clock.now(),
        )
    }

    /// Whose comments count as tether's; asked once per client.
    async fn identity(&self) -> Result<&Identity, Error> {
        let scope = self.scope(Target::Repository, "read the token's user");
        self.inner
            .identity
            .get_or_try_init(|| {
                self.retrying(&scope, || async {
                    match self.inner.octo.current().user().await {
                        Ok(user) => Ok(Identity::User(user.login)),
                        Err(e) => match self.convert(&scope, e) {
                            Error::Api(a) if a.status == 403 && !a.rate_limited => {
                                Ok(Identity::Integration)
                            }
                            other => Err(other),
                        },
                    }
                })
            })
            .await
    }

    async fn list_comments(&self, scope: &Scope, pr: PrNumber) -> Result<Vec<Comment>, Error> {
        let (owner, name) = self.repo();
        let octo = &self.inner.octo;
        let first = octo
            .issues(owner, name)
            .list_comments(pr.0)
            .per_page(PER_PAGE)
            .send()
            .await
            .map_err(|e| self.convert(scope, e))?;
        octo.all_pages(first)
            .await
            .map_err(|e| self.convert(scope, e))
    }

    /// Creates or edits tether's plan comment on `pr`; returns its id.
    ///
    /// # Guarantees
    /// - At most one comment is created per call, and none when tether's comment exists: each
    ///   attempt (retries included) lists the comments first, so a create whose answer was
    ///   lost is found and edited on the next attempt instead of duplicated.
    /// - A body that does not start with [`MARKER`] gets it prepended, so the comment is found
    ///   next time.
    /// - An unchanged body is not sent again.
    ///
    /// # Assumptions
    /// tether's comment is the oldest one whose body starts with [`MARKER`] and whose author is
    /// the token's user, or any bot when the token cannot read `GET /user` (Actions and App
    /// installation tokens). Other comments, even quoting the marker, are never touched.
    ///
    /// # Errors
    /// The body holds secret-looking material ([`Error::SecretRefused`], nothing sent); GitHub
    /// refuses it (422 over 65,536 characters); the API fails after retries.
    pub async fn upsert_plan_comment(
        &self,
        pr: PrNumber,
        markdown: &str,
    ) -> Result<CommentId, Error> {
        let scope = self.scope(Target::Pr(pr.0), "upsert plan comment");
        let body = if markdown.trim_start().starts_with(MARKER) {
            markdown.to_owned()
        } else {
            format!("{MARKER}\n{markdown}")
        };
        self.guard(&scope, "comment body", &body)?;
        let me = self.identity().await?;
        let (owner, name) = self.repo();
        let issues = self.inner.octo.issues(owner, name);
        self.retrying(&scope, || async {
            let comments = self.list_comments(&scope, pr).await?;
            let ours = comments
                .iter()
                .filter(|c| is_tether_comment(c, me))
                .min_by_key(|c| c.id);
            let result = match ours {
                Some(c) if c.body.as_deref() == Some(body.as_str()) => {
                    return Ok(CommentId(c.id.0));
                }
                // GitHub documents PATCH for an edit; octocrab's `update_comment` sends POST.
                Some(c) => {
                    let route = format!("/repos/{owner}/{name}/issues/comments/{}", c.id);
                    let edit = serde_json::json!({ "body": body.as_str() });
                    self.inner
                        .octo
                        .patch::<octocrab::models::issues::Comment, _, _>(route, Some(&edit))
                        .await
                }
                None => issues.create_comment(pr.0, &body).await,
            };
            result
                .map(|c| CommentId(c.id.0))
                .map_err(|e| self.convert(&scope, e))
        })
        .await
    }

    /// Posts `status` under the context `tether/<fleet>`, its description cut to 140
    /// characters. Retried freely: the latest status per context is the one GitHub shows.
    ///
    /// # Errors
    /// The description holds secret-looking material; the API fails after retries.
    pub async fn set_status(&self, status: &CommitStatus) -> Result<(), Error> {
        let scope = self.scope(Target::Commit(status.sha.clone()), "set commit status");
        let description = truncate_description(&status.description);
        self.guard(&scope, "status description", &description)?;
        let (owner, name) = self.repo();
        let repos = self.inner.octo.repos(owner, name);
        self.retrying(&scope, || async {
            let mut request = repos
                .create_status(status.sha.clone(), status_state(status.state))
                .context(status.context())
                .description(description.clone());
            if let Some(url) = &status.target_url {
                request = request.target(url.clone());
            }
            request
                .send()
                .await
                .map(drop)
                .map_err(|e| self.convert(&scope, e))
        })
        .await
    }

    /// Every file `pr` changes, 100 per page.
    ///
    /// # Errors
    /// The API fails after retries.
    pub async fn pr_files(&self, pr: PrNumber) -> Result<Vec<ChangedFile>, Error> {
        let scope = self.scope(Target::Pr(pr.0), "list changed files");
        let (owner, name) = self.repo();
        let route = format!("/repos/{owner}/{name}/pulls/{}/files", pr.0);
        let octo = &self.inner.octo;
        self.retrying(&scope, || async {
            let first: Page<DiffEntry> = octo
                .get(&route, Some(&[("per_page", PER_PAGE)]))
                .await
                .map_err(|e| self.convert(&scope, e))?;
            let all = octo
                .all_pages(first)
                .await
                .map_err(|e| self.convert(&scope, e))?;
            Ok(all.into_iter().map(changed_file).collect())
        })
        .await
    }

    /// The head commit and branch of `pr`.
    ///
    /// # Errors
    /// The API fails after retries (404 when there is no such pull request).
    pub async fn pr_head(&self, pr: PrNumber) -> Result<PrHead, Error> {
        let scope = self.scope(Target::Pr(pr.0), "read pull request head");
        let (owner, name) = self.repo();
        let pulls = self.inner.octo.pulls(owner, name);
        self.retrying(&scope, || async {
            let pr = pulls.get(pr.0).await.map_err(|e| self.convert(&scope, e))?;
            Ok(PrHead {
                sha: pr.head.sha,
                branch: pr.head.ref_field,
            })
        })
        .await
    }

    /// Opens a pull request from `new.head` into `new.base`, or finds the open one; returns its
    /// number.
    ///
    /// # Guarantees
    /// Never opens a second pull request for one head and base: every attempt (retries
    /// included) first looks for an open pull request with the same head and base and returns
    /// it. So a create whose answer was lost is not repeated, and running the same request
    /// again (`tether agent add --open-pr` twice) finds the first pull request.
    ///
    /// # Errors
    /// A text holds secret-looking material; GitHub refuses (422: no commits between the
    /// branches, a branch is missing); the API fails.
    pub async fn create_pull_request(&self, new: &NewPullRequest) -> Result<PrNumber, Error> {
        let scope = self.scope(Target::Repository, "open pull request");
        self.guard(&scope, "pull request title", &new.title)?;
        self.guard(&scope, "pull request body", &new.body)?;
        let (owner, name) = self.repo();
        let pulls = self.inner.octo.pulls(owner, name);
        self.retrying(&scope, || async {
            let open = pulls
                .list()
                .state(octocrab::params::State::Open)
                .head(format!("{owner}:{}", new.head))
                .base(new.base.as_str())
                .per_page(PER_PAGE)
                .send()
                .await
                .map_err(|e| self.convert(&scope, e))?;
            if let Some(pr) = open.items.first() {
                return Ok(PrNumber(pr.number));
            }
            pulls
                .create(new.title.as_str(), new.head.as_str(), new.base.as_str())
                .body(new.body.as_str())
                .send()
                .await
                .map(|pr| PrNumber(pr.number))
                .map_err(|e| self.convert(&scope, e))
        })
        .await
    }
}

impl<C: Clock + 'static> Forge for GitHub<C> {
    async fn upsert_plan_comment(&self, pr: PrNumber, markdown: &str) -> Result<CommentId, Error> {
        GitHub::upsert_plan_comment(self, pr, markdown).await
    }

    async fn set_status(&self, status: &CommitStatus) -> Result<(), Error> {
        GitHub::set_status(self, status).await
    }

    async fn pr_files(&self, pr: PrNumber) -> Result<Vec<ChangedFile>, Error> {
        GitHub::pr_files(self, pr).await
    }

    async fn pr_head(&self, pr: PrNumber) -> Result<PrHead, Error> {
        GitHub::pr_head(self, pr).await
    }

    async fn create_pull_request(&self, new: &NewPullRequest) -> Result<PrNumber, Error> {
        GitHub::create_pull_request(self, new).await
    }
}

fn is_tether_comment(comment: &Comment, me: &Identity) -> bool {
    let marked = comment
        .body
        .as_deref()
        .is_some_and(|b| b.trim_start().starts_with(MARKER));
    let ours = match me {
        Identity::User(login) => comment.user.login == *login,
        Identity::Integration => comment.user.r#type == "Bot",
    };
    marked && ours
}
