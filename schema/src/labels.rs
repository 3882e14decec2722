//! tether's own label keys on Hetzner servers: the proof that tether owns a server and which
//! agent it belongs to. User labels may not use the `tether/` prefix.

/// The prefix of every label tether sets itself.
pub const TETHER_PREFIX: &str = "tether/";
/// `tether/fleet=<fleet name>`: the server belongs to this fleet. A server without it is never
/// touched destructively.
pub const FLEET: &str = "tether/fleet";
/// `tether/agent=<agent name>`: the agent the server was created for.
pub const AGENT: &str = "tether/agent";
/// `tether/subscription=<subscription id>`: the billing subscription the server serves.
pub const SUBSCRIPTION: &str = "tether/subscription";
