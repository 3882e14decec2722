//! Whether an agent's cloud-init fits Hetzner's `user_data` limit, decided without rendering it
//! when an upper bound of its size already fits: validating 10,000 specs then renders none.
//!
//! The bound counts every byte a value can become: at most 10 in a YAML scalar (`\UXXXXXXXX`),
//! at most 3 in the env file (U+FFFD for a 1-byte character), and base64's 4 per 3 (plus 4)
//! on top for file contents. It covers the on-VM agent's files and commands with the longest
//! URLs and credential tether budgets for. The property test in `props.rs` checks it against the
//! rendering.

use super::{MAX_AGENT_URL_LEN, MAX_AUTH_KEY_LEN, MAX_USER_DATA_BYTES, worst_case_size};
use crate::model::{Agent, FleetSettings};

/// Everything [`render`] writes that does not come from a value, with room to spare.
const FIXED: usize = 2048;

/// Everything the on-VM agent adds ([`super::agent`]) that does not come from a value: its
/// unit, paths, variable names and commands, with room to spare.
const AGENT_FIXED: usize = 2048;

/// An upper bound of the length of [`render_with_agent`](super::render_with_agent) for a key of
/// `key_len` bytes, with or without the agent's bootstrap (URLs and credential at most
/// [`MAX_AGENT_URL_LEN`] and [`MAX_AUTH_KEY_LEN`] bytes).
pub fn size_bound(agent: &Agent, fleet: &FleetSettings, key_len: usize) -> usize {
    let name = agent.name.as_str().len();
    let tags: usize = agent.tags.iter().map(|t| t.as_str().len() + 1).sum();
    let env: usize = super::env_vars(agent, fleet)
        .iter()
        .map(|(k, v)| k.len() + 3 * v.len() + 4)
        .sum();
    let b64 = |n: usize| 4 * n.div_ceil(3) + 4;
    // The agent's config file holds its API URL and name; its credential is a file of its own;
    // the binary's URL is a command argument.
    let agent_config = b64(3 * (MAX_AGENT_URL_LEN + name) + 128);
    let agent_part = AGENT_FIXED + agent_config + b64(MAX_AUTH_KEY_LEN) + 10 * MAX_AGENT_URL_LEN;
    // The name twice (hostname, `--hostname=`), the tags once (`--advertise-tags=`).
    FIXED + 10 * (2 * name + tags) + b64(key_len) + b64(env) + agent_part
}

/// The size of the rendered document with the longest auth key tether budgets for, when it is
/// more than Hetzner accepts; `None` when it fits.
pub fn oversize(agent: &Agent, fleet: &FleetSettings) -> Option<usize> {
    if size_bound(agent, fleet, MAX_AUTH_KEY_LEN) <= MAX_USER_DATA_BYTES {
        return None;
    }
    let size = worst_case_size(agent, fleet);
    (size > MAX_USER_DATA_BYTES).then_some(size)
}
