//! Tailscale API v2 client (being built).
