//! Whether Hetzner can change a server's type in place (`change_type`): only to a type with the
//! same storage type and architecture and a disk at least as big as the server's. A type change
//! it would refuse is not planned as a resize ([`super::agent`] plans a replacement, or a
//! [`Note::ResizeBlocked`](super::Note::ResizeBlocked) under `protect`).
//!
//! Hetzner's other preconditions of the resize steps are kept by the executor or by
//! [`super::offer::check`]: the server is powered off first (`server_not_stopped`), and the new
//! type must be offered, not deprecated, in the server's location (`invalid_server_type`).

use super::offer::Offer;
use crate::compute::Server;

/// Why `server` cannot change to type `to` in place, or `None` when it can, as far as the
/// catalog tells. What the catalog does not know (a type it does not list, a disk size nobody
/// reported) does not block: the offer check refuses unknown types before anything is applied,
/// and the executor powers a server back on after any refusal.
pub(super) fn refusal(server: &Server, to: &str, offer: &Offer) -> Option<String> {
    let target = offer.server_types.get(to)?;
    let current = offer.server_types.get(&server.server_type);
    let differs = |have: Option<&str>, want: &str| {
        have.is_some_and(|have| !have.is_empty() && !want.is_empty() && have != want)
    };
    let from = &server.server_type;
    if differs(
        current.map(|c| c.storage_type.as_str()),
        &target.storage_type,
    ) {
        return Some(format!(
            "{to} has {} storage and {from} {}; Hetzner changes a type only within the same storage type",
            target.storage_type,
            current.map_or("", |c| c.storage_type.as_str())
        ));
    }
    if differs(
        current.map(|c| c.architecture.as_str()),
        &target.architecture,
    ) {
        return Some(format!(
            "{to} is {} and {from} {}; Hetzner changes a type only within the same architecture",
            target.architecture,
            current.map_or("", |c| c.architecture.as_str())
        ));
    }
    let disk = server.disk_gb.or(current.and_then(|c| c.disk_gb))?;
    let new_disk = target.disk_gb?;
    (new_disk < disk).then(|| {
        format!(
            "the disk of {to} ({new_disk} GB) is smaller than the server's ({disk} GB); Hetzner cannot shrink a disk"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::{ServerId, ServerStatus};
    use crate::plan::offer::OfferedType;

    fn offered(disk: u64, storage: &str, arch: &str) -> OfferedType {
        OfferedType {
            disk_gb: Some(disk),
            storage_type: storage.to_owned(),
            architecture: arch.to_owned(),
            ..OfferedType::default()
        }
    }

    fn catalog() -> Offer {
        let mut offer = Offer::default();
        for (name, disk, storage, arch) in [
            ("cpx21", 80, "local", "x86"),
            ("cpx31", 160, "local", "x86"),
            ("cpx41", 240, "local", "x86"),
            ("cax31", 160, "local", "arm"),
            ("ccx23", 160, "network", "x86"),
        ] {
            offer
                .server_types
                .insert(name.to_owned(), offered(disk, storage, arch));
        }
        offer
    }

    fn server(kind: &str, disk: Option<u64>) -> Server {
        Server {
            id: ServerId(7),
            name: "acme".to_owned(),
            status: ServerStatus::Running,
            server_type: kind.to_owned(),
            location: "fsn1".to_owned(),
            image: None,
            labels: Default::default(),
            ipv4: None,
            ipv6: None,
            created: "2026-11-23T10:00:00Z".to_owned(),
            delete_protected: false,
            rebuild_protected: false,
            disk_gb: disk,
            project: None,
        }
    }

    #[test]
    fn a_type_with_a_smaller_disk_than_the_server_is_refused_with_both_sizes() {
        let why = refusal(&server("cpx31", Some(160)), "cpx21", &catalog());
        assert_eq!(
            why.as_deref(),
            Some(
                "the disk of cpx21 (80 GB) is smaller than the server's (160 GB); Hetzner cannot shrink a disk"
            )
        );
    }

    #[test]
    fn the_servers_own_disk_counts_not_its_types() {
        // Upgraded once with `upgrade_disk`: the server's disk outgrew its type's.
        let upgraded = server("cpx31", Some(240));
        assert!(refusal(&upgraded, "cpx31", &catalog()).is_some());
        assert!(refusal(&upgraded, "cpx41", &catalog()).is_none());
        // Resized down earlier without upgrading the disk: a small type fits again.
        let kept = server("cpx31", Some(80));
        assert!(refusal(&kept, "cpx21", &catalog()).is_none());
    }

    #[test]
    fn without_a_reported_disk_the_current_types_disk_counts() {
        assert!(refusal(&server("cpx31", None), "cpx21", &catalog()).is_some());
        assert!(refusal(&server("cpx21", None), "cpx31", &catalog()).is_none());
    }

    #[test]
    fn another_architecture_or_storage_type_is_refused() {
        let arm = refusal(&server("cpx31", Some(160)), "cax31", &catalog());
        assert!(arm.is_some_and(|w| w.contains("same architecture")));
        let network = refusal(&server("cpx31", Some(160)), "ccx23", &catalog());
        assert!(network.is_some_and(|w| w.contains("same storage type")));
    }

    #[test]
    fn what_the_catalog_does_not_know_does_not_block() {
        assert!(refusal(&server("cpx31", Some(160)), "cpx99", &catalog()).is_none());
        assert!(refusal(&server("cpx31", Some(160)), "cpx21", &Offer::default()).is_none());
    }
}
