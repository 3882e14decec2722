//! Tests of [`RepoCache`] against real repositories made with git2 in temporary directories,
//! and against a loopback HTTP server that asks for credentials.

use super::*;
use crate::source::git;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use git2::Signature;
use std::sync::Mutex;

/// Commits `fleet.yaml` with `text` on `refs/heads/<branch>` of the repository at `dir`.
fn commit(dir: &Path, branch: &str, text: &str) -> String {
    let repo = Repository::open(dir)
        .or_else(|_| Repository::init(dir))
        .expect("origin repository");
    let blob = repo.blob(text.as_bytes()).expect("blob");
    let mut tree = repo.treebuilder(None).expect("treebuilder");
    tree.insert("fleet.yaml", blob, 0o100_644).expect("insert");
    let tree = repo
        .find_tree(tree.write().expect("tree"))
        .expect("find tree");
    let sig = Signature::now("test", "test@example.com").expect("signature");
    let refname = format!("refs/heads/{branch}");
    let parent = repo
        .find_reference(&refname)
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    let parents: Vec<_> = parent.iter().collect();
    repo.commit(Some(&refname), &sig, &sig, "edit", &tree, &parents)
        .expect("commit")
        .to_string()
}

#[test]
fn fetch_follows_new_commits_and_the_snapshot_reads_them() {
    let origin = tempfile::tempdir().expect("tempdir");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let first = commit(origin.path(), "main", "one");
    let url = format!("file://{}", origin.path().display());
    let cache = RepoCache::open(cache_dir.path(), &url, Credentials::None).expect("open");

    assert_eq!(cache.fetch("main").expect("fetch"), first);
    let snapshot = git::read(cache.path(), &first).expect("read");
    assert_eq!(snapshot.text("fleet.yaml"), Some("one"));

    let second = commit(origin.path(), "main", "two");
    assert_ne!(first, second);
    assert_eq!(cache.fetch("main").expect("fetch again"), second);
    let tracking = RepoCache::tracking_ref("main");
    let snapshot = git::read(cache.path(), &tracking).expect("read tracking ref");
    assert_eq!(snapshot.text("fleet.yaml"), Some("two"));
    assert_eq!(snapshot.commit.as_deref(), Some(second.as_str()));
}

#[test]
fn reopening_a_cache_reuses_it_and_refuses_another_remote() {
    let origin = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let id = commit(origin.path(), "main", "one");
    let path = origin.path().to_string_lossy().into_owned();
    RepoCache::open(cache_dir.path(), &path, Credentials::None)
        .expect("open")
        .fetch("main")
        .expect("fetch");

    let reopened = RepoCache::open(cache_dir.path(), &path, Credentials::None).expect("reopen");
    let objects = reopened.repository().expect("repository");
    assert!(
        objects
            .find_commit(git2::Oid::from_str(&id).expect("oid"))
            .is_ok()
    );

    let other_url = other.path().to_string_lossy().into_owned();
    let err = RepoCache::open(cache_dir.path(), &other_url, Credentials::None)
        .expect_err("a cache mirrors one remote");
    assert!(matches!(err, RemoteError::CacheMismatch { .. }), "{err}");
}

#[test]
fn a_directory_that_is_not_a_repository_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "keep me").expect("write");
    let err = RepoCache::open(dir.path(), "/srv/fleet", Credentials::None).expect_err("refused");
    assert!(matches!(err, RemoteError::CacheDir { .. }), "{err}");
    assert!(dir.path().join("notes.txt").exists());
}

#[test]
fn fetching_a_missing_branch_names_it() {
    let origin = tempfile::tempdir().expect("tempdir");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    commit(origin.path(), "main", "one");
    let url = origin.path().to_string_lossy().into_owned();
    let cache = RepoCache::open(cache_dir.path(), &url, Credentials::None).expect("open");
    let err = cache.fetch("release").expect_err("no such branch");
    assert!(
        matches!(&err, RemoteError::BranchNotFound { branch, .. } if branch == "release"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("branch `release` does not exist in `{url}`")
    );
    let err = cache.fetch("bad..name").expect_err("invalid");
    assert!(matches!(err, RemoteError::InvalidBranch { .. }), "{err}");
}

#[test]
fn urls_with_credentials_or_unsupported_transports_are_refused_without_echoing_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in [
        "https://x-access-token:ghp_hunter2@github.com/acme/fleet.git",
        "https://ghp_hunter2@github.com/acme/fleet.git",
    ] {
        let err = RepoCache::open(dir.path(), url, Credentials::None).expect_err("inline");
        assert!(
            matches!(err, RemoteError::InlineCredentials { .. }),
            "{err}"
        );
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("https://[redacted]@github.com/acme/fleet.git"),
            "{text}"
        );
    }
    for url in [
        "git@github.com:acme/fleet.git",
        "ssh://github.com/acme/fleet.git",
    ] {
        let err = RepoCache::open(dir.path(), url, Credentials::None).expect_err("ssh");
        assert!(
            err.to_string().contains("ssh is not supported yet"),
            "{err}"
        );
    }
    let token = Credentials::Token(Secret::from("ghp_hunter2"));
    let err = RepoCache::open(dir.path(), "http://example.com/fleet.git", token)
        .expect_err("token over plain http");
    assert!(matches!(err, RemoteError::InsecureToken { .. }), "{err}");
}

/// Authorization headers seen by [`refuse_everyone`].
type Seen = Arc<Mutex<Vec<String>>>;

async fn refuse_everyone(State(seen): State<Seen>, headers: HeaderMap) -> impl IntoResponse {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let value = auth.to_str().unwrap_or_default().to_owned();
        seen.lock().expect("lock").push(value);
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"fleet\"")],
        "credentials required",
    )
}

#[tokio::test]
async fn a_refused_token_is_sent_as_x_access_token_and_never_appears_in_the_error() {
    let seen = Seen::default();
    let app = Router::new()
        .fallback(refuse_everyone)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let cache_dir = tempfile::tempdir().expect("tempdir");
    let url = format!("http://{addr}/acme/fleet.git");
    let token = "ghp_s3cr3t_t0ken";
    let cache = RepoCache::open(
        cache_dir.path(),
        &url,
        Credentials::Token(Secret::from(token)),
    )
    .expect("open");
    let err = tokio::task::spawn_blocking(move || cache.fetch("main"))
        .await
        .expect("join")
        .expect_err("refused");
    server.abort();

    let text = format!("{err} {err:?}");
    assert!(matches!(err, RemoteError::Fetch { .. }), "{text}");
    assert!(!text.contains(token), "{text}");
    let expected = reqwest::Client::new()
        .get("http://unused.invalid/")
        .basic_auth(TOKEN_USERNAME, Some(token))
        .build()
        .expect("request");
    let expected = expected.headers()[header::AUTHORIZATION]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(*seen.lock().expect("lock"), vec![expected]);
}

#[test]
fn redaction_removes_userinfo_only() {
    assert_eq!(
        redact("https://u:p@host:8443/a@b"),
        "https://[redacted]@host:8443/a@b"
    );
    assert_eq!(redact("https://host/a@b"), "https://host/a@b");
    assert_eq!(redact("/srv/fleet"), "/srv/fleet");
}
