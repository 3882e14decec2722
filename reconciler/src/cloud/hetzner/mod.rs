//! Hetzner Cloud API v1 client (being built).

/// A Hetzner API failure.
#[derive(Debug, thiserror::Error)]
#[error("hetzner")]
pub struct Error;
