//! Lifecycle events for the product: what happened to each agent (provisioning, ready with its
//! addresses, updated, unhealthy, recovered, failed, quarantined, restored, deleted), as
//! CloudEvents 1.0 JSON, derived from the status branch so the status branch is the outbox.
//! These are for the app that sells the agents; notifications for operators are
//! `crate::daemon::notify` (decision 019). Start at [`derive::Deriver`]; [`signature`] signs a
//! delivery and verifies one (what a receiver runs). Delivery is `crate::daemon::events`;
//! the design is `docs/decisions/047-lifecycle-events-from-the-status-branch.md`.

pub mod derive;
pub mod signature;

use serde::Serialize;
use serde_json::{Value, json};

/// The CloudEvents `type` of each lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    /// The agent is in the spec and its server is being created or started.
    Provisioning,
    /// The agent's server runs and its device is online, for the first time.
    Ready,
    /// A Ready agent's server type, server or runtime version changed.
    Updated,
    /// The agent's server runs but its device is not online, or an update failed.
    Unhealthy,
    /// The agent is Ready again after being unhealthy or failed.
    Recovered,
    /// The last action on the agent failed (`reason` says why).
    Failed,
    /// The agent's spec is gone and its server waits in quarantine, powered off.
    Quarantined,
    /// A quarantined agent's spec came back and its server is kept.
    Restored,
    /// The agent's status is gone: its server was deleted, or it never had one.
    Deleted,
}

impl Kind {
    /// The CloudEvents `type`, e.g. `agent.ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Provisioning => "agent.provisioning",
            Kind::Ready => "agent.ready",
            Kind::Updated => "agent.updated",
            Kind::Unhealthy => "agent.unhealthy",
            Kind::Recovered => "agent.recovered",
            Kind::Failed => "agent.failed",
            Kind::Quarantined => "agent.quarantined",
            Kind::Restored => "agent.restored",
            Kind::Deleted => "agent.deleted",
        }
    }
}

/// What an event says about the agent's machine, as its status document recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentData {
    /// The Hetzner server id.
    pub server_id: Option<u64>,
    /// The server type.
    pub server_type: Option<String>,
    /// The Hetzner location.
    pub location: Option<String>,
    /// The public IPv4 address.
    pub ipv4: Option<String>,
    /// The public IPv6 address or network.
    pub ipv6: Option<String>,
    /// The Tailscale device id.
    pub device_id: Option<String>,
    /// The device's tailnet addresses.
    pub tailnet_ips: Vec<String>,
    /// The machine's hostname (the agent's name, which names its server and device).
    pub hostname: Option<String>,
    /// The runtime version the on-VM agent last reported running.
    pub runtime_version: Option<String>,
}

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    /// Stable per transition: the receiver's idempotency key ([`derive::event_id`]).
    pub id: String,
    /// Its type.
    pub kind: Kind,
    /// The agent (the CloudEvents `subject`).
    pub agent: String,
    /// The fleet, from `status/fleet.yaml`.
    pub fleet: String,
    /// 1 for the agent's first event, then one more for each.
    pub sequence: u64,
    /// The status commit's time, UNIX seconds.
    pub time: i64,
    /// The status commit that recorded the transition.
    pub status_commit: String,
    /// The phase recorded (`None` once the document is gone).
    pub phase: Option<String>,
    /// Why, for `agent.failed` and `agent.unhealthy`, when recorded.
    pub reason: Option<String>,
    /// The machine.
    pub data: AgentData,
}

impl LifecycleEvent {
    /// The event in CloudEvents 1.0 structured JSON (`docs/schema/event.schema.json`).
    pub fn to_cloudevent(&self) -> Value {
        let mut data = serde_json::to_value(&self.data).unwrap_or_else(|_| json!({}));
        if let Some(map) = data.as_object_mut() {
            map.insert("agent".into(), json!(self.agent));
            map.insert("fleet".into(), json!(self.fleet));
            map.insert("phase".into(), json!(self.phase));
            map.insert("statusCommit".into(), json!(self.status_commit));
            if let Some(reason) = &self.reason {
                map.insert("reason".into(), json!(scrubbed(reason)));
            }
        }
        json!({
            "specversion": "1.0",
            "id": self.id,
            "source": format!("/tether/fleets/{}", self.fleet),
            "type": self.kind.as_str(),
            "subject": self.agent,
            "time": rfc3339(self.time),
            "datacontenttype": "application/json",
            "sequence": self.sequence,
            "data": data,
        })
    }

    /// The body POSTed: the CloudEvent's JSON bytes.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_cloudevent()).unwrap_or_default()
    }
}

/// `reason` unless it looks like it holds a secret: an event leaves tether's hands, so its
/// reason is checked like a GitHub comment.
fn scrubbed(reason: &str) -> String {
    match crate::forge::guard::find_secret(reason, "") {
        Some(_) => {
            "(withheld: the reason looked like it held a secret; see the status branch)".into()
        }
        None => reason.to_owned(),
    }
}

/// `seconds` since the epoch in RFC 3339.
pub fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/events/ready.example.json` is what tether sends for this event; CI validates that
    /// file against `docs/schema/event.schema.json`, so the schema is checked against the code.
    #[test]
    fn the_documented_ready_event_is_what_tether_sends() {
        let event = LifecycleEvent {
            id: "evt_5b0c8c5e1f7a4c0e9d7e2b1a3c4d5e6f".into(),
            kind: Kind::Ready,
            agent: "sub-1oabcacmeprod".into(),
            fleet: "aura-prod".into(),
            sequence: 2,
            time: 1_796_675_475,
            status_commit: "3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a098".into(),
            phase: Some("Ready".into()),
            reason: None,
            data: AgentData {
                server_id: Some(4711),
                server_type: Some("cpx21".into()),
                location: Some("fsn1".into()),
                ipv4: Some("203.0.113.7".into()),
                ipv6: Some("2001:db8:1::/64".into()),
                device_id: Some("nd7XyZ1CNTRL".into()),
                tailnet_ips: vec!["100.64.0.7".into(), "fd7a:115c:a1e0::7".into()],
                hostname: Some("sub-1oabcacmeprod".into()),
                runtime_version: Some("1.4.2".into()),
            },
        };
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/events/ready.example.json");
        let documented = std::fs::read_to_string(path).expect("the example");
        let sent = serde_json::to_string_pretty(&event.to_cloudevent()).expect("json");
        assert_eq!(documented.trim_end(), sent);
    }
}
