//! octocrab against the emulator, for every endpoint tether uses and a few around them.

use super::*;

#[tokio::test]
async fn octocrab_reads_every_answer_of_the_emulator() {
    let w = started().await;
    let octo = octocrab(&w);
    let me = octo.current().user().await.expect("user");
    assert_eq!(
        (me.login.as_str(), me.r#type.as_str()),
        ("tether-bot", "User")
    );

    let issues = octo.issues("acme", "fleet");
    let created = issues.create_comment(1, "first").await.expect("create");
    for n in 0..4 {
        issues
            .create_comment(1, format!("more {n}"))
            .await
            .expect("create");
    }
    let page = issues
        .list_comments(1)
        .per_page(2u8)
        .send()
        .await
        .expect("list");
    assert_eq!(
        (page.items.len(), page.next.is_some(), page.last.is_some()),
        (2, true, true)
    );
    let all = octo.all_pages(page).await.expect("all pages");
    assert_eq!(all.len(), 5);
    let got = issues.get_comment(created.id).await.expect("get");
    assert_eq!(got.body.as_deref(), Some("first"));
    assert_eq!(got.user.login, "tether-bot");
    let updated = issues
        .update_comment(created.id, "edited")
        .await
        .expect("update");
    assert_eq!(updated.body.as_deref(), Some("edited"));
    issues
        .delete_comment(CommentId(all[4].id.0))
        .await
        .expect("delete");
    assert_eq!(w.emu.comments().len(), 4);

    let repos = octo.repos("acme", "fleet");
    for state in [StatusState::Pending, StatusState::Success] {
        let status = repos
            .create_status(w.head.clone(), state)
            .context("tether/prod".into())
            .description("planned".into())
            .target("https://ci.example.com/1".into())
            .send()
            .await
            .expect("status");
        assert_eq!(status.state, state);
    }
    let listed = repos
        .list_statuses(w.head.clone())
        .send()
        .await
        .expect("statuses");
    assert_eq!(listed.items[0].state, StatusState::Success, "newest first");
    let combined = repos
        .combined_status_for_ref(&Reference::Branch("feature".into()))
        .await
        .expect("combined");
    assert_eq!(
        (combined.state, combined.total_count, combined.sha),
        (StatusState::Success, 1, w.head.clone())
    );

    let pulls = octo.pulls("acme", "fleet");
    let pr = pulls.get(1).await.expect("pr");
    assert_eq!(
        (
            pr.head.ref_field.as_str(),
            pr.head.sha.as_str(),
            pr.base.ref_field.as_str()
        ),
        ("feature", w.head.as_str(), "main")
    );
    let files = pulls.list_files(1).await.expect("files");
    assert_eq!(files.items[0].filename, "a.yaml");
    assert_eq!(
        (
            files.items[0].additions,
            files.items[0].deletions,
            files.items[0].changes
        ),
        (1, 1, 2)
    );
    w.emu
        .push(REPO, "other", &[("b.yaml", "b\n")])
        .expect("push");
    let opened = pulls
        .create("Other", "other", "main")
        .body("why")
        .send()
        .await
        .expect("create pr");
    assert_eq!(opened.number, 2);
    let open = pulls
        .list()
        .head("acme:other")
        .base("main")
        .send()
        .await
        .expect("list prs");
    assert_eq!(open.items.iter().map(|p| p.number).collect::<Vec<_>>(), [2]);
    w.emu.shutdown().await;
}
