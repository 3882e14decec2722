//! What tether's long-running processes share, below the commands and servers that run them
//! (`tether run`, `tether apply`, `tether billing serve`): [`shutdown`] (SIGTERM/SIGINT as a
//! signal checked between actions, and a grace that applies only after it), [`metrics`] (the
//! Prometheus text exposition both servers serve) and [`parse_duration`] (durations as config
//! files and flags write them).

pub mod metrics;
pub mod shutdown;

use std::time::Duration;

/// Parses a duration as `humantime` reads it: `500ms`, `90s`, `5m`, `1h`, `1h 30m`, `1.5h`,
/// `2d`.
///
/// # Errors
/// The text is not a duration; the message quotes it and says why.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration: {e}"))
}
