//! The plan comment: created once, edited after, never duplicated, others' left alone.

use super::*;

#[tokio::test]
async fn the_first_upsert_creates_the_comment_and_later_ones_edit_it() {
    let w = started().await;
    let gh = client(&w, TOKEN);
    let first = gh
        .upsert_plan_comment(w.pr, &plan("one"))
        .await
        .expect("create");
    let second = gh
        .upsert_plan_comment(w.pr, &plan("two"))
        .await
        .expect("edit");
    assert_eq!(first, second);
    let comments = w.emu.comments();
    assert_eq!(comments.len(), 1);
    assert_eq!(
        (comments[0].author.as_str(), comments[0].body.as_str()),
        ("tether-bot", plan("two").as_str())
    );
    let requests = w.emu.requests();
    let edits = requests.count("PATCH", "/repos/acme/fleet/issues/comments/{id}");
    assert_eq!(edits, 1, "an edit is a PATCH, as GitHub documents");
    assert_eq!(
        requests.count("POST", "/repos/acme/fleet/issues/comments/{id}"),
        0
    );
    gh.upsert_plan_comment(w.pr, &plan("two"))
        .await
        .expect("unchanged");
    let requests = w.emu.requests();
    let writes = requests.count("POST", "/repos/acme/fleet/issues")
        + requests.count("PATCH", "/repos/acme/fleet/issues");
    assert_eq!(writes, 2, "an unchanged body is not sent again");
    w.emu.shutdown().await;
}

#[tokio::test]
async fn other_people_s_comments_are_left_alone_even_with_the_marker() {
    let w = started().await;
    let lgtm = w
        .emu
        .comment_as(REPO, w.pr.0, "alice", "LGTM")
        .expect("comment");
    let quoted = w
        .emu
        .comment_as(REPO, w.pr.0, "mallory", &plan("fake"))
        .expect("comment");
    for n in 0..105 {
        w.emu
            .comment_as(REPO, w.pr.0, "bob", &format!("note {n}"))
            .expect("comment");
    }
    let ours = w
        .emu
        .comment_as(REPO, w.pr.0, "tether-bot", &plan("old"))
        .expect("comment");
    let gh = client(&w, TOKEN);
    let id = gh
        .upsert_plan_comment(w.pr, &plan("new"))
        .await
        .expect("upsert");
    assert_eq!(id, CommentId(ours), "found on the second page");
    let comments = w.emu.comments();
    assert_eq!(comments.len(), 108);
    let body = |id| comments.iter().find(|c| c.id == id).map(|c| c.body.clone());
    assert_eq!(body(lgtm).as_deref(), Some("LGTM"));
    assert_eq!(body(quoted), Some(plan("fake")));
    assert_eq!(body(ours), Some(plan("new")));
    w.emu.shutdown().await;
}

#[tokio::test]
async fn an_actions_token_recognises_its_comment_by_the_bot_account() {
    let w = world(emu::Config::default().integration(BOT_TOKEN)).await;
    w.emu
        .comment_as(REPO, w.pr.0, "mallory", &plan("fake"))
        .expect("comment");
    let gh = client(&w, BOT_TOKEN);
    let first = gh
        .upsert_plan_comment(w.pr, "no marker yet")
        .await
        .expect("create");
    let second = gh
        .upsert_plan_comment(w.pr, &plan("two"))
        .await
        .expect("edit");
    assert_eq!(first, second);
    let ours: Vec<_> = w
        .emu
        .comments()
        .into_iter()
        .filter(|c| c.author == emu::ACTIONS_BOT)
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].body, plan("two"));
    w.emu.shutdown().await;
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_edited_not_duplicated() {
    let w = started().await;
    w.emu.faults().set(vec![FaultRule {
        method: Some("POST".into()),
        path_prefix: format!("/repos/{REPO}/issues/{}/comments", w.pr.0),
        lost_response_rate: 1.0,
        ..FaultRule::everywhere()
    }]);
    let gh = recovering_client(&w);
    gh.upsert_plan_comment(w.pr, &plan("once"))
        .await
        .expect("upsert");
    assert!(lost_one(&w), "the fault fired");
    let comments = w.emu.comments();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].body, plan("once"));
    w.emu.shutdown().await;
}

#[tokio::test]
async fn an_over_long_comment_is_a_typed_terminal_error() {
    let w = started().await;
    let gh = client(&w, TOKEN);
    let err = gh
        .upsert_plan_comment(w.pr, &plan(&"x".repeat(70_000)))
        .await
        .expect_err("422");
    let Error::Api(api) = &err else {
        panic!("not an API error: {err}")
    };
    assert_eq!(
        (api.status, api.scope.target.clone()),
        (422, Target::Pr(w.pr.0))
    );
    assert_eq!(api.message, "Validation Failed");
    assert!(
        api.errors[0].contains("body is too long (maximum is 65536 characters)"),
        "{err}"
    );
    assert_eq!(err.retry(), Retry::Terminal);
    assert_eq!(
        w.emu.requests().count("POST", "/repos/acme/fleet/issues"),
        1
    );
    w.emu.shutdown().await;
}
