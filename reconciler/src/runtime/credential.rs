//! The on-VM agent's credential: 32 random bytes, base64url, minted when tether creates the
//! server and written only into its cloud-init. tether keeps only [`hash`], as the server's
//! `tether/agent-key` label; [`verify`] compares in constant time.

use crate::secret::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// Hex characters of the kept hash: 240 bits, within a Hetzner label value (≤ 63 characters,
/// starting and ending with a letter or digit).
pub const HASH_LEN: usize = 60;

/// A fresh credential (43 base64url characters).
pub fn mint() -> Secret<String> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(URL_SAFE_NO_PAD.encode(bytes))
}

/// What tether keeps of `credential`: the first [`HASH_LEN`] hex characters of its SHA-256.
pub fn hash(credential: &Secret<String>) -> String {
    Sha256::digest(credential.expose().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..HASH_LEN]
        .to_owned()
}

/// Whether `credential` hashes to `expected`, compared in constant time (for equal lengths).
pub fn verify(credential: &Secret<String>, expected: &str) -> bool {
    let actual = hash(credential);
    actual.len() == expected.len()
        && actual
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_fresh_and_only_their_hash_is_kept() {
        let (a, b) = (mint(), mint());
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a.expose(), b.expose());
        let kept = hash(&a);
        assert_eq!(kept.len(), HASH_LEN);
        assert!(!kept.contains(a.expose().as_str()));
        assert!(verify(&a, &kept));
        assert!(!verify(&b, &kept));
        assert!(!verify(&a, &kept[..59]));
    }
}
