//! Raw HTTP: authentication, rate limits, pagination, 4xx shapes, observation routes.

use super::*;

#[tokio::test]
async fn requests_need_a_user_agent_and_valid_credentials() {
    let w = started().await;
    let bare = reqwest::Client::new();
    let (status, _, body) = w.send(bare.get(w.url("/user")).bearer_auth(TOKEN)).await;
    assert_eq!(status, 403);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("User-Agent"))
    );
    let (status, headers, body) = w
        .send(
            w.http
                .get(w.url("/user"))
                .header("authorization", "token nope"),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"message": "Bad credentials", "documentation_url": wire::DOCS, "status": "401"})
    );
    assert_eq!(headers["x-ratelimit-limit"], "60");
    let (status, _, body) = w.send(w.http.get(w.url("/user"))).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Requires authentication"))
    );
    let (status, headers, _) = w.send(w.http.get(w.url("/user")).bearer_auth(TOKEN)).await;
    assert_eq!(status, 200);
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
    ] {
        assert!(headers.contains_key(name), "{name}");
    }
    assert_eq!(
        (
            &headers["x-ratelimit-limit"],
            &headers["x-ratelimit-remaining"]
        ),
        (&"5000".parse().expect("v"), &"4999".parse().expect("v"))
    );
    let (status, _, body) = w
        .send(
            w.http
                .get(w.url("/repos/acme/fleet/nothing"))
                .bearer_auth(TOKEN),
        )
        .await;
    assert_eq!((status, body["message"].as_str()), (404, Some("Not Found")));
    w.emu.shutdown().await;
}

#[tokio::test]
async fn an_exhausted_limit_answers_403_or_429_with_zero_remaining() {
    for wanted in [403, 429] {
        let config = Config {
            rate_limit: 2,
            rate_limit_status: wanted,
            ..Config::default().user(TOKEN, "tether-bot")
        };
        let w = world(config).await;
        for _ in 0..2 {
            let (status, _, _) = w.send(w.http.get(w.url("/user")).bearer_auth(TOKEN)).await;
            assert_eq!(status, 200);
        }
        let (status, headers, body) = w.send(w.http.get(w.url("/user")).bearer_auth(TOKEN)).await;
        assert_eq!(status, wanted);
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("API rate limit exceeded for user ID"))
        );
        w.emu.shutdown().await;
    }
}

#[tokio::test]
async fn lists_paginate_with_link_headers() {
    let w = started().await;
    for n in 0..65 {
        w.emu
            .comment_as(REPO, 1, "bob", &format!("c{n}"))
            .expect("comment");
    }
    let path = "/repos/acme/fleet/issues/1/comments";
    let (_, headers, body) = w.send(w.http.get(w.url(path)).bearer_auth(TOKEN)).await;
    assert_eq!(body.as_array().map(Vec::len), Some(30));
    let link = headers["link"].to_str().expect("link");
    let base = w.url(path);
    assert_eq!(
        link,
        format!("<{base}?page=2>; rel=\"next\", <{base}?page=3>; rel=\"last\"")
    );
    let (_, _, body) = w
        .send(w.http.get(format!("{base}?page=3")).bearer_auth(TOKEN))
        .await;
    assert_eq!(body.as_array().map(Vec::len), Some(5));
    let (_, headers, body) = w
        .send(
            w.http
                .get(format!("{base}?per_page=100"))
                .bearer_auth(TOKEN),
        )
        .await;
    assert_eq!(
        (body.as_array().map(Vec::len), headers.contains_key("link")),
        (Some(65), false)
    );
    w.emu.shutdown().await;
}

#[tokio::test]
async fn over_long_texts_and_bad_statuses_get_github_s_422() {
    let w = started().await;
    let (status, _, body) = w
        .post(
            "/repos/acme/fleet/issues/1/comments",
            json!({"body": "x".repeat(65_537)}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "Validation Failed");
    assert_eq!(
        body["errors"],
        json!([{"resource": "IssueComment", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)"}])
    );
    let (status, _, _) = w
        .post(
            "/repos/acme/fleet/issues/1/comments",
            json!({"body": "é".repeat(65_536)}),
        )
        .await;
    assert_eq!(status, 201, "the limit counts characters");
    let statuses = format!("/repos/acme/fleet/statuses/{}", w.head);
    let (status, _, body) = w
        .post(
            &statuses,
            json!({"state": "success", "description": "d".repeat(141)}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"],
        json!([{"resource": "Status", "code": "custom", "field": "description", "message": "description is too long (maximum is 140 characters)"}])
    );
    let (status, _, _) = w.post(&statuses, json!({"state": "done"})).await;
    assert_eq!(status, 422);
    let (status, _, body) = w
        .post(
            "/repos/acme/fleet/statuses/0000000000000000000000000000000000000000",
            json!({"state": "success"}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            422,
            Some("No commit found for SHA: 0000000000000000000000000000000000000000")
        )
    );
    let (status, _, body) = w
        .send(
            w.http
                .post(w.url("/repos/acme/fleet/issues/1/comments"))
                .bearer_auth(TOKEN)
                .body("{"),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Problems parsing JSON"))
    );
    w.emu.shutdown().await;
}

#[tokio::test]
async fn observation_routes_need_no_credentials() {
    let w = started().await;
    w.emu.comment_as(REPO, 1, "bob", "hello").expect("comment");
    let (status, _, body) = w
        .send(reqwest::Client::new().get(w.url("/_emulator/comments")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["body"], "hello");
    assert_eq!(body[0]["author"], "bob");
    let (_, _, pulls) = w
        .send(reqwest::Client::new().get(w.url("/_emulator/pulls")))
        .await;
    assert_eq!(pulls[0]["head"], "feature");
    w.emu.shutdown().await;
}

#[tokio::test]
async fn comments_are_edited_with_patch_or_post_and_deleted_once() {
    let w = started().await;
    let (_, _, created) = w
        .post(
            "/repos/acme/fleet/issues/1/comments",
            json!({"body": "one"}),
        )
        .await;
    let path = format!("/repos/acme/fleet/issues/comments/{}", created["id"]);
    let patch = w.http.patch(w.url(&path)).bearer_auth(TOKEN);
    let (status, _, body) = w.send(patch.json(&json!({"body": "two"}))).await;
    assert_eq!((status, body["body"].as_str()), (200, Some("two")));
    let (status, _, body) = w.post(&path, json!({"body": "three"})).await;
    assert_eq!((status, body["body"].as_str()), (200, Some("three")));
    let (status, _, body) = w.post(&path, json!({"text": "four"})).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["message"],
        "Invalid request.\n\n\"body\" wasn't supplied."
    );
    let delete = || w.http.delete(w.url(&path)).bearer_auth(TOKEN);
    assert_eq!(w.send(delete()).await.0, 204);
    assert_eq!(w.send(delete()).await.0, 404);
    assert!(w.emu.comments().is_empty());
    w.emu.shutdown().await;
}

#[tokio::test]
async fn a_branch_pushed_at_a_given_sha_moves_the_pull_request_head_there() {
    let w = started().await;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    w.emu
        .push_commit(REPO, "feature", sha, &[("a.yaml", "c\n")])
        .expect("push at sha");
    let pr = octocrab(&w)
        .pulls("acme", "fleet")
        .get(1)
        .await
        .expect("pr");
    assert_eq!(pr.head.sha, sha);
    let (status, _, _) = w
        .post(
            &format!("/repos/acme/fleet/statuses/{sha}"),
            json!({"state": "pending"}),
        )
        .await;
    assert_eq!(status, 201, "the repository knows the commit");
    for bad in ["0123456789ABCDEF0123456789abcdef01234567", "abc"] {
        let refused = w
            .emu
            .push_commit(REPO, "feature", bad, &[])
            .expect_err("not a sha");
        assert_eq!(refused.status, 422, "{bad}");
    }
    w.emu.shutdown().await;
}

#[tokio::test]
async fn a_linked_repository_shows_what_git_pushed() {
    let w = started().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let git = git2::Repository::init_bare(dir.path()).expect("bare repository");
    let sig = git2::Signature::now("Alice", "alice@example.com").expect("signature");
    let commit = |branch: &str, files: &[(&str, &str)], parent: Option<git2::Oid>| {
        let mut tree = git.treebuilder(None).expect("tree builder");
        for (name, content) in files {
            let blob = git.blob(content.as_bytes()).expect("blob");
            tree.insert(name, blob, 0o100_644).expect("insert");
        }
        let tree = git
            .find_tree(tree.write().expect("tree"))
            .expect("find tree");
        let parents: Vec<git2::Commit<'_>> = parent
            .map(|p| git.find_commit(p).expect("parent"))
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        git.commit(
            Some(&format!("refs/heads/{branch}")),
            &sig,
            &sig,
            "c",
            &tree,
            &parents,
        )
        .expect("commit")
    };
    let base = commit("main", &[("fleet.yaml", "a\n")], None);
    w.emu.link_git(REPO, dir.path()).expect("link");
    let head = commit(
        "agent-b",
        &[("fleet.yaml", "a\n"), ("b.yaml", "b\n")],
        Some(base),
    );
    let number = w
        .emu
        .open_pull_request(REPO, &NewPull::new("Add b", "agent-b", "main"), "alice")
        .expect("the branch pushed with git exists");
    let pr = octocrab(&w)
        .pulls("acme", "fleet")
        .get(number)
        .await
        .expect("pr");
    assert_eq!(pr.head.sha, head.to_string());
    let (status, _, files) = w
        .send(
            w.http
                .get(w.url(&format!("/repos/acme/fleet/pulls/{number}/files")))
                .bearer_auth(TOKEN),
        )
        .await;
    assert_eq!(
        (status, files[0]["filename"].as_str()),
        (200, Some("b.yaml"))
    );
    let (status, _, _) = w
        .post(
            &format!("/repos/acme/fleet/statuses/{base}"),
            json!({"state": "success"}),
        )
        .await;
    assert_eq!(status, 201, "an older commit of a linked branch is known");
    commit(
        "agent-b",
        &[("fleet.yaml", "a\n"), ("b.yaml", "b\n"), ("c.yaml", "c\n")],
        Some(head),
    );
    let (_, _, files) = w
        .send(
            w.http
                .get(w.url(&format!("/repos/acme/fleet/pulls/{number}/files")))
                .bearer_auth(TOKEN),
        )
        .await;
    let names: Vec<&str> = files
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["filename"].as_str())
        .collect();
    assert_eq!(names, ["b.yaml", "c.yaml"], "a moved tip is read again");
    w.emu.shutdown().await;
}
