//! The resumable operations against the emulators, step by step: a type change Hetzner refuses
//! leaves the server on with its record, and a quarantine stopped after deauthorizing is undone
//! by a restore once the spec is back.

use super::*;
use crate::cloud::tailscale::{DeviceId, Tailnet};
use crate::plan::Action;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_change_hetzner_refuses_powers_the_server_back_on_and_keeps_the_record() {
    let w = World::start(StackOptions::default()).await;
    let normal = fleet(&[("big", "")]);
    w.converge(&normal).await;
    let server = w.server("big").expect("big");
    assert_eq!(server.server_type, "cpx21");
    // A resize to a smaller disk, as a planner without the catalog would have planned it.
    let small = fleet(&[("big", "  server: {type: cpx11}\n")]);
    let planned = w.plan(&small).await;
    assert!(
        planned
            .actions
            .iter()
            .any(|a| matches!(a, Action::Replace { .. })),
        "the planner itself replaces: {planned:?}"
    );
    let refused = Plan {
        actions: vec![Action::Resize {
            agent: "big".into(),
            server_id: ServerId(server.id),
            from: "cpx21".into(),
            to: "cpx11".into(),
        }],
        ..planned
    };
    let report = w.apply(&refused, &small).await;
    let resize = outcome(&report, "resize", "big");
    assert!(
        matches!(&resize.outcome, Outcome::Failed { reason, .. } if reason.contains("changing server") && reason.contains("invalid_server_type")),
        "{report}"
    );
    let after = w.server("big").expect("big");
    assert_eq!(after.status, ServerStatus::Running, "powered back on");
    assert_eq!(after.server_type, "cpx21");
    assert_eq!(
        after.labels.get(labels::OPERATION).map(String::as_str),
        Some("resize.changing-type"),
        "the record stays for the next pass"
    );
    // The next pass replaces it, and the new server carries no record.
    let next = w.plan(&small).await;
    assert!(
        next.actions
            .iter()
            .any(|a| matches!(a, Action::Replace { labels, .. } if !labels.contains_key(labels::OPERATION))),
        "{next:?}"
    );
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_stopped_after_deauthorizing_is_finished_by_a_restore_when_the_spec_is_back() {
    let w = World::start(StackOptions::default()).await;
    let both = fleet(&[("keep", ""), ("q1", "  quarantineGrace: 1h\n")]);
    w.converge(&both).await;
    let server = w.server("q1").expect("q1");
    let device = w
        .stack
        .tailscale
        .devices()
        .into_iter()
        .find(|d| d.hostname == "q1")
        .expect("q1's device");
    // What a quarantine killed after its second step leaves: recorded, off, deauthorized.
    let mut labels_now = server.labels.clone();
    labels_now.insert(labels::OPERATION.into(), "quarantine.deauthorizing".into());
    w.compute
        .update_server(ServerId(server.id), None, &labels_now)
        .await
        .expect("record");
    let off = w.compute.power_off(ServerId(server.id)).await.expect("off");
    w.compute.wait_for_actions(&[off.id]).await.expect("wait");
    w.tailnet
        .set_authorized(&DeviceId(device.id.clone()), false)
        .await
        .expect("deauthorize");

    let p = w.plan(&both).await;
    assert!(
        matches!(p.actions.as_slice(), [Action::Restore { agent, devices, .. }] if agent == "q1" && devices.len() == 1),
        "{p:?}"
    );
    let report = w.apply(&p, &both).await;
    assert!(report.succeeded(), "{report}");
    let back = w.server("q1").expect("q1");
    assert_eq!(back.status, ServerStatus::Running);
    assert!(!back.labels.contains_key(labels::OPERATION), "{back:?}");
    let again = w
        .stack
        .tailscale
        .devices()
        .into_iter()
        .find(|d| d.id == device.id)
        .expect("the same device");
    assert!(again.authorized && again.connected_to_control, "{again:?}");
    assert!(w.plan(&both).await.actions.is_empty());
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_stopped_after_the_power_off_is_finished_by_the_next_pass() {
    let w = World::start(StackOptions::default()).await;
    let before = fleet(&[("r", "  server: {type: cpx11}\n")]);
    w.converge(&before).await;
    let server = w.server("r").expect("r");
    // What a pass killed between the power-off and the type change leaves.
    let mut labels_now = server.labels.clone();
    labels_now.insert(labels::OPERATION.into(), "resize.changing-type".into());
    w.compute
        .update_server(ServerId(server.id), None, &labels_now)
        .await
        .expect("record");
    let off = w.compute.power_off(ServerId(server.id)).await.expect("off");
    w.compute.wait_for_actions(&[off.id]).await.expect("wait");

    let after = fleet(&[("r", "  server: {type: cpx21}\n")]);
    let p = w.plan(&after).await;
    assert!(
        matches!(p.actions.as_slice(), [Action::Resize { to, .. }] if to == "cpx21"),
        "the resize is planned again: {p:?}"
    );
    let report = w.apply(&p, &after).await;
    assert!(report.succeeded(), "{report}");
    let done = w.server("r").expect("r");
    assert_eq!(
        (done.status, done.server_type.as_str()),
        (ServerStatus::Running, "cpx21")
    );
    assert!(!done.labels.contains_key(labels::OPERATION), "{done:?}");
    assert!(w.plan(&after).await.actions.is_empty());
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_stopped_before_its_rename_is_finished_while_the_spec_stays_removed() {
    let w = World::start(StackOptions::default()).await;
    let grace = "  quarantineGrace: 1h\n";
    let both = fleet(&[("keep", ""), ("q1", grace)]);
    w.converge(&both).await;
    let server = w.server("q1").expect("q1");
    let mut labels_now = server.labels.clone();
    labels_now.insert(labels::OPERATION.into(), "quarantine.stopping".into());
    w.compute
        .update_server(ServerId(server.id), None, &labels_now)
        .await
        .expect("record");

    let one = fleet(&[("keep", "")]);
    let p = w.plan(&one).await;
    assert_eq!(p.summary.quarantine, 1, "{p:?}");
    let report = w.apply(&p, &one).await;
    assert!(report.succeeded(), "{report}");
    let held = w
        .server(&labels::quarantined_name("q1", server.id))
        .expect("renamed aside");
    assert_eq!(held.status, ServerStatus::Off);
    assert!(held.labels.contains_key(labels::QUARANTINED_AT));
    assert!(!held.labels.contains_key(labels::OPERATION), "{held:?}");
    assert!(
        w.stack
            .tailscale
            .devices()
            .iter()
            .filter(|d| d.hostname == "q1")
            .all(|d| !d.authorized)
    );
    w.stack.shutdown().await;
}
