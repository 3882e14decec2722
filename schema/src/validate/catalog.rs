//! fleet.yaml's catalog and server defaults: what agents may use, and what they get when they
//! say nothing.

use super::{Defaults, Report};
use crate::diagnostic::Code;
use crate::model::Catalog;
use crate::names::{ImageName, LocationName, ServerTypeName, SshKeyName};
use crate::raw::{self, RawServer};
use crate::spanned::Spanned;
use crate::spanned::Text;

/// `spec.catalog`: every list non-empty, every entry a valid name.
pub(super) fn catalog(raw: &raw::RawCatalog, r: &mut Report<'_>) -> Catalog {
    let lists: [(&str, &Spanned<Vec<Text>>); 3] = [
        ("serverTypes", &raw.server_types),
        ("locations", &raw.locations),
        ("images", &raw.images),
    ];
    for (field, list) in lists {
        if list.value.is_empty() {
            r.push(
                list.span,
                &format!("spec.catalog.{field}"),
                Code::InvalidValue,
                format!("`spec.catalog.{field}` is empty, so no agent could be placed"),
                format!("list the {field} agents may use"),
            );
        }
    }
    Catalog {
        server_types: r.parse_all(
            "spec.catalog.serverTypes",
            &raw.server_types.value,
            ServerTypeName::parse,
        ),
        locations: r.parse_all(
            "spec.catalog.locations",
            &raw.locations.value,
            LocationName::parse,
        ),
        images: r.parse_all("spec.catalog.images", &raw.images.value, ImageName::parse),
    }
}

/// `value` when `allowed` holds it, else a [`Code::NotInCatalog`] problem naming the choices.
pub(super) fn in_catalog<T: AsRef<str>>(
    r: &mut Report<'_>,
    path: &str,
    text: &Text,
    value: Option<T>,
    allowed: &[T],
    what: &str,
) -> Option<T> {
    let value = value?;
    if allowed.iter().any(|a| a.as_ref() == value.as_ref()) {
        return Some(value);
    }
    let names: Vec<&str> = allowed.iter().map(AsRef::as_ref).collect();
    r.push(
        text.span,
        path,
        Code::NotInCatalog,
        format!("{what} `{}` is not in the fleet catalog", text.value),
        format!(
            "use one of [{}], or add it to `spec.catalog` in fleet.yaml",
            names.join(", ")
        ),
    );
    None
}

/// `spec.defaults.server`: each default a valid name from the catalog.
pub(super) fn defaults(raw: &RawServer, catalog: &Catalog, r: &mut Report<'_>) -> Defaults {
    let base = "spec.defaults.server";
    if let Some(project) = &raw.project {
        r.push(
            project.span,
            "spec.defaults.server.project",
            Code::UnknownField,
            "a project is pinned per agent, not fleet-wide".into(),
            "set `spec.server.project` in the agent's file, or leave placement to tether".into(),
        );
    }
    Defaults {
        server_type: raw.server_type.as_ref().and_then(|t| {
            let path = format!("{base}.type");
            let v = r.parse(&path, t, ServerTypeName::parse);
            in_catalog(r, &path, t, v, &catalog.server_types, "server type")
        }),
        location: raw.location.as_ref().and_then(|t| {
            let path = format!("{base}.location");
            let v = r.parse(&path, t, LocationName::parse);
            in_catalog(r, &path, t, v, &catalog.locations, "location")
        }),
        image: raw.image.as_ref().and_then(|t| {
            let path = format!("{base}.image");
            let v = r.parse(&path, t, ImageName::parse);
            in_catalog(r, &path, t, v, &catalog.images, "image")
        }),
        ssh_keys: raw
            .ssh_keys
            .as_ref()
            .map(|keys| r.parse_all(&format!("{base}.sshKeys"), keys, SshKeyName::parse)),
        public_net: crate::network::validate_public_net(
            raw.public_net.as_ref(),
            crate::network::PublicNet::default(),
            &format!("{base}.publicNet"),
            crate::diagnostic::Span::START,
            r,
        ),
    }
}
