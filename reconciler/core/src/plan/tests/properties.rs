//! Property tests of the planner over random fleets and inventories: applying a plan converges
//! (except where a plan says by design it will not), and a converged fleet plans nothing.

use super::super::*;
use crate::compute::{ServerId, ServerStatus};
use proptest::prelude::*;
use std::collections::BTreeSet;
use tether_schema::{Content, Fleet, SourceFile, load_fleet};

const TYPES: [&str; 3] = ["cpx11", "cpx21", "cpx31"];
const LOCATIONS: [&str; 2] = ["fsn1", "nbg1"];

#[derive(Debug, Clone)]
struct GenAgent {
    server_type: usize,
    location: usize,
    version: u8,
    power_on: bool,
    protect: bool,
    plan_label: u8,
}

fn gen_agent() -> impl Strategy<Value = GenAgent> {
    (
        0..3usize,
        0..2usize,
        0..3u8,
        any::<bool>(),
        prop::bool::weighted(0.2),
        0..2u8,
    )
        .prop_map(
            |(server_type, location, version, power_on, protect, plan_label)| GenAgent {
                server_type,
                location,
                version,
                power_on,
                protect,
                plan_label,
            },
        )
}

fn fleet_of(agents: &[(usize, GenAgent)], prune: bool) -> Fleet {
    let mut files = vec![SourceFile {
        path: "fleet.yaml".into(),
        content: Content::Bytes(
            format!(
                "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: prop}}\nspec:\n  defaults: {{server: {{image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{prune: {prune}, maxDeletionsPerRun: 1000, maxDeletionPercent: 100}}\n  catalog: {{serverTypes: [cpx11, cpx21, cpx31], locations: [fsn1, nbg1], images: [ubuntu-24.04]}}\n"
            )
            .into_bytes(),
        ),
    }];
    for (i, a) in agents {
        files.push(SourceFile {
            path: format!("agents/a{i}.yaml"),
            content: Content::Bytes(
                format!(
                    "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: a{i}, labels: {{plan: p{}}}}}\nspec:\n  subscription: sub_{i}\n  server: {{type: {}, location: {}}}\n  runtime: {{version: \"1.{}\"}}\n  power: {}\n  protect: {}\n",
                    a.plan_label,
                    TYPES[a.server_type],
                    LOCATIONS[a.location],
                    a.version,
                    if a.power_on { "on" } else { "off" },
                    a.protect
                )
                .into_bytes(),
            ),
        });
    }
    load_fleet(&files).expect("generated fleet is valid")
}

/// Applies `plan` to a model of the inventory, the way the executor would.
fn simulate(plan: &Plan, fleet: &Fleet, observed: &Observed) -> Observed {
    let mut servers = observed.servers.clone();
    let mut devices = observed.devices.clone();
    let mut next_id = servers.iter().map(|s| s.id.0).max().unwrap_or(0) + 1000;
    let build = |agent: &str, id: u64| {
        let a = fleet
            .agents
            .iter()
            .find(|(n, _)| n.as_str() == agent)
            .map(|(_, a)| a)
            .expect("desired agent");
        Server {
            id: ServerId(id),
            name: agent.to_owned(),
            status: if a.power == tether_schema::Power::On {
                ServerStatus::Running
            } else {
                ServerStatus::Off
            },
            server_type: a.server.server_type.to_string(),
            location: a.server.location.to_string(),
            image: Some(a.server.image.to_string()),
            labels: tether_schema::labels::server_labels(a, &fleet.settings),
            ipv4: None,
            ipv6: None,
            created: "2026-11-24T00:00:00Z".into(),
            delete_protected: false,
            rebuild_protected: false,
            disk_gb: None,
            project: None,
        }
    };
    for action in &plan.actions {
        match action {
            Action::Create { agent, .. } => {
                next_id += 1;
                servers.push(build(agent, next_id));
            }
            Action::Replace {
                agent,
                server_id,
                old_devices,
                ..
            } => {
                servers.retain(|s| s.id != *server_id);
                devices.retain(|d| !old_devices.contains(&d.id));
                next_id += 1;
                servers.push(build(agent, next_id));
            }
            Action::Resize { server_id, to, .. } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| s.server_type.clone_from(to)),
            Action::Relabel { server_id, to, .. } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| s.labels.clone_from(to)),
            Action::PowerOn { server_id, .. } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| s.status = ServerStatus::Running),
            Action::PowerOff { server_id, .. } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| s.status = ServerStatus::Off),
            Action::Delete {
                server_id,
                devices: gone,
                ..
            } => {
                servers.retain(|s| s.id != *server_id);
                devices.retain(|d| !gone.contains(&d.id));
            }
            Action::DeleteDevice { device_id, .. } => devices.retain(|d| d.id != *device_id),
            Action::Quarantine {
                agent, server_id, ..
            } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| {
                    s.status = ServerStatus::Off;
                    s.name = tether_schema::labels::quarantined_name(agent, server_id.0);
                    s.labels.insert(
                        tether_schema::labels::QUARANTINED_AT.to_owned(),
                        "1795000000".to_owned(),
                    );
                }),
            Action::Restore {
                agent, server_id, ..
            } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| {
                    s.status = ServerStatus::Running;
                    s.name.clone_from(agent);
                    s.labels.remove(tether_schema::labels::QUARANTINED_AT);
                }),
            // Planned only with the pass's time, which these properties do not give.
            Action::Heal { .. } => {}
            Action::UpdateRuntime {
                agent, server_id, ..
            } => {
                let spec = fleet
                    .agents
                    .get(agent.as_str())
                    .expect("updated agent is desired");
                servers
                    .iter_mut()
                    .filter(|s| s.id == *server_id)
                    .for_each(|s| {
                        s.labels.insert(
                            tether_schema::labels::RUNTIME.to_owned(),
                            tether_schema::labels::runtime_hash(spec),
                        );
                    });
            }
        }
    }
    Observed {
        servers,
        devices,
        prices: observed.prices.clone(),
        offer: observed.offer.clone(),
    }
}

#[derive(Debug, Clone)]
enum Drift {
    Missing,
    Converged,
    OtherType,
    OtherLocation,
    OldSpec,
    OtherLabel,
    PowerFlipped,
}

fn drift() -> impl Strategy<Value = Drift> {
    prop_oneof![
        Just(Drift::Missing),
        Just(Drift::Converged),
        Just(Drift::OtherType),
        Just(Drift::OtherLocation),
        Just(Drift::OldSpec),
        Just(Drift::OtherLabel),
        Just(Drift::PowerFlipped)
    ]
}

#[derive(Debug, Clone)]
struct World {
    desired: Vec<(usize, GenAgent)>,
    drifts: Vec<Drift>,
    orphans: Vec<(usize, bool)>,
    strangers: usize,
    prune: bool,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(gen_agent(), 0..12),
        prop::collection::vec(drift(), 12),
        prop::collection::vec((100..110usize, any::<bool>()), 0..4),
        0..4usize,
        any::<bool>(),
    )
        .prop_map(|(agents, drifts, orphans, strangers, prune)| World {
            desired: agents.into_iter().enumerate().collect(),
            drifts,
            orphans,
            strangers,
            prune,
        })
}

fn observed_of(world: &World, fleet: &Fleet) -> Observed {
    let mut servers = Vec::new();
    for ((i, _), drift) in world.desired.iter().zip(&world.drifts) {
        let name = format!("a{i}");
        let agent = fleet
            .agents
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, a)| a)
            .expect("agent");
        let mut s = Server {
            id: ServerId(*i as u64 + 1),
            name: name.clone(),
            status: if agent.power == tether_schema::Power::On {
                ServerStatus::Running
            } else {
                ServerStatus::Off
            },
            server_type: agent.server.server_type.to_string(),
            location: agent.server.location.to_string(),
            image: Some(agent.server.image.to_string()),
            labels: tether_schema::labels::server_labels(agent, &fleet.settings),
            ipv4: None,
            ipv6: None,
            created: "2026-11-23T00:00:00Z".into(),
            delete_protected: false,
            rebuild_protected: false,
            disk_gb: None,
            project: None,
        };
        match drift {
            Drift::Missing => continue,
            Drift::Converged => {}
            Drift::OtherType => s.server_type = "cpx11x".into(),
            Drift::OtherLocation => s.location = "hel1".into(),
            Drift::OldSpec => {
                s.labels
                    .insert(tether_schema::labels::SPEC.into(), "0000".into());
            }
            Drift::OtherLabel => {
                s.labels.insert("plan".into(), "legacy".into());
            }
            Drift::PowerFlipped => {
                s.status = if s.status == ServerStatus::Running {
                    ServerStatus::Off
                } else {
                    ServerStatus::Running
                }
            }
        }
        servers.push(s);
    }
    for (i, protect) in &world.orphans {
        let mut labels: BTreeMap<String, String> = [
            (tether_schema::labels::FLEET.to_owned(), "prop".to_owned()),
            (tether_schema::labels::AGENT.to_owned(), format!("a{i}")),
        ]
        .into();
        if *protect {
            labels.insert(tether_schema::labels::PROTECT.into(), "true".into());
        }
        servers.push(Server {
            id: ServerId(*i as u64 + 500),
            name: format!("a{i}"),
            status: ServerStatus::Running,
            server_type: "cpx21".into(),
            location: "fsn1".into(),
            image: None,
            labels,
            ipv4: None,
            ipv6: None,
            created: String::new(),
            delete_protected: false,
            rebuild_protected: false,
            disk_gb: None,
            project: None,
        });
    }
    for j in 0..world.strangers {
        servers.push(Server {
            id: ServerId(9000 + j as u64),
            name: format!("a{j}"),
            status: ServerStatus::Running,
            server_type: "cpx21".into(),
            location: "fsn1".into(),
            image: None,
            labels: BTreeMap::new(),
            ipv4: None,
            ipv6: None,
            created: String::new(),
            delete_protected: false,
            rebuild_protected: false,
            disk_gb: None,
            project: None,
        });
    }
    servers.sort_by_key(|s| s.id);
    servers.dedup_by_key(|s| s.id);
    Observed {
        servers,
        ..Observed::default()
    }
}

fn converged(fleet: &Fleet, observed: &Observed, exempt: &BTreeSet<String>) -> Result<(), String> {
    for (name, agent) in &fleet.agents {
        if exempt.contains(name.as_str()) {
            continue;
        }
        let s = observed
            .servers
            .iter()
            .find(|s| {
                s.name == name.as_str()
                    && s.labels
                        .get(tether_schema::labels::FLEET)
                        .is_some_and(|f| f == "prop")
            })
            .ok_or(format!("{name}: no server"))?;
        let want_status = if agent.power == tether_schema::Power::On {
            ServerStatus::Running
        } else {
            ServerStatus::Off
        };
        if s.server_type != agent.server.server_type.as_str()
            || s.location != agent.server.location.as_str()
            || s.status != want_status
            || s.labels != tether_schema::labels::server_labels(agent, &fleet.settings)
        {
            return Err(format!("{name}: not converged: {s:?}"));
        }
    }
    Ok(())
}

/// Agents a plan says it will not converge, by design: protected ones that need a new server,
/// and those whose name another fleet's server holds.
fn exempt(plan: &Plan) -> BTreeSet<String> {
    plan.notes
        .iter()
        .filter_map(|n| match n {
            Note::ReplaceBlocked { agent, .. }
            | Note::ResizeBlocked { agent, .. }
            | Note::NameHeld { agent, .. }
            | Note::NameTaken { agent, .. } => Some(agent.clone()),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn applying_a_plan_reaches_the_desired_state_and_then_plans_nothing(w in world()) {
        let fleet = fleet_of(&w.desired, w.prune);
        let observed = observed_of(&w, &fleet);
        let ctx = Context { allow_shrink: true, ..Context::default() };
        let first = plan(&fleet, &observed, &ctx);
        prop_assume!(first.accepted());
        let exempt = exempt(&first);
        // Budgets defer disruptions to later runs: converge within a bounded number of runs.
        let mut now = observed;
        let mut p = first;
        for _ in 0..20 {
            if p.is_empty() {
                break;
            }
            prop_assert!(p.accepted(), "a later run is refused: {:?}", p.refusal);
            now = simulate(&p, &fleet, &now);
            p = plan(&fleet, &now, &ctx);
        }
        prop_assert!(converged(&fleet, &now, &exempt).is_ok(), "{:?}", converged(&fleet, &now, &exempt));
        prop_assert!(p.is_empty(), "still not converged after 20 runs: {:?}", p.actions);
    }

    #[test]
    fn no_plan_destroys_a_server_without_the_fleet_label(w in world()) {
        let fleet = fleet_of(&w.desired, w.prune);
        let observed = observed_of(&w, &fleet);
        let p = plan(&fleet, &observed, &Context::default());
        let unlabelled: Vec<ServerId> = observed.servers.iter().filter(|s| s.labels.get(tether_schema::labels::FLEET).is_none_or(|f| f != "prop")).map(|s| s.id).collect();
        for a in &p.actions {
            if let Action::Delete { server_id, .. } | Action::Replace { server_id, .. } | Action::Resize { server_id, .. } | Action::PowerOff { server_id, .. } = a {
                prop_assert!(!unlabelled.contains(server_id), "{a:?}");
            }
        }
    }

    #[test]
    fn no_accepted_plan_exceeds_the_deletion_budget(w in world(), max in 0u32..4, pct in 0u32..60, previous in prop::option::of(0usize..20)) {
        let mut fleet = fleet_of(&w.desired, true);
        fleet.settings.policy.max_deletions_per_run = max;
        fleet.settings.policy.max_deletion_percent = pct;
        let observed = observed_of(&w, &fleet);
        let p = plan(&fleet, &observed, &Context { previous_agents: previous, ..Context::default() });
        let managed = observed.servers.iter().filter(|s| s.labels.get(tether_schema::labels::FLEET).is_some_and(|f| f == "prop")).count();
        if p.accepted() {
            let deletions = p.actions.iter().filter(|a| a.deletes_server()).count();
            prop_assert!(deletions <= safety::deletion_budget(&fleet, managed));
            prop_assert!(deletions as u32 <= max);
        }
    }
}
