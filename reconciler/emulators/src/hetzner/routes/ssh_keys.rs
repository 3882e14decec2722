//! `/v1/ssh_keys`: list, create (201), get, update, delete (204). Names and fingerprints (MD5
//! of the key blob, colon hex) are unique in the project.

use super::super::body::Fields;
use super::super::errors::ApiError;
use super::super::pagination::{SortValue, sort_by, sort_keys};
use super::super::selector::Selector;
use super::super::shared::Shared;
use super::super::state::{Model, SshKey};
use super::super::wire;
use super::{ApiResult, Listing, list_of, one, parse_id, respond};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use md5::{Digest, Md5};
use serde_json::{Map, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

const KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
];

/// The MD5 fingerprint of an OpenSSH public key line, e.g. `49:54:9a:…`.
///
/// # Errors
/// The line is not `type base64 [comment]` with a known type and a matching blob.
pub fn fingerprint(public_key: &str) -> Result<String, String> {
    let mut parts = public_key.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return Err("must be 'type base64-key [comment]'".to_owned());
    };
    if !KEY_TYPES.contains(&kind) {
        return Err(format!("unsupported key type '{kind}'"));
    }
    let bytes = STANDARD
        .decode(blob)
        .map_err(|_| "the key is not valid base64".to_owned())?;
    let mut expected = u32::try_from(kind.len())
        .unwrap_or(0)
        .to_be_bytes()
        .to_vec();
    expected.extend_from_slice(kind.as_bytes());
    if !bytes.starts_with(&expected) {
        return Err("the key blob does not match its type".to_owned());
    }
    let digest = Md5::digest(&bytes);
    Ok(digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// Adds a key after checking it and its uniqueness.
///
/// # Errors
/// `invalid_input` for a malformed key or labels, `uniqueness_error` for a taken name or key.
pub fn add_key(
    model: &mut Model,
    name: String,
    public_key: String,
    labels: BTreeMap<String, String>,
) -> Result<u64, ApiError> {
    let fingerprint =
        fingerprint(&public_key).map_err(|e| ApiError::invalid_field("public_key", e))?;
    if model.ssh_keys.values().any(|k| k.name == name) {
        return Err(ApiError::uniqueness(
            "SSH key with the same name already exists",
            json!({"fields": [{"name": "name"}]}),
        ));
    }
    if model
        .ssh_keys
        .values()
        .any(|k| k.fingerprint == fingerprint)
    {
        return Err(ApiError::uniqueness(
            "SSH key with the same fingerprint already exists",
            json!({"fields": [{"name": "public_key"}]}),
        ));
    }
    let id = model.key_id();
    model.ssh_keys.insert(
        id,
        SshKey {
            id,
            name,
            fingerprint,
            public_key: public_key.trim().to_owned(),
            labels,
            created: OffsetDateTime::now_utc(),
        },
    );
    Ok(id)
}

/// `GET /v1/ssh_keys` (filters `name`, `fingerprint`, `label_selector`; sort `id`, `name`).
pub async fn list(State(shared): State<Arc<Shared>>, listing: Listing) -> ApiResult {
    let p = &listing.params;
    let selector = p
        .one("label_selector")
        .map(Selector::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("label_selector", e))?
        .unwrap_or_default();
    let keys = sort_keys(p, &["id", "name"])?;
    let (name, print) = (p.one("name"), p.one("fingerprint"));
    let model = shared.model();
    let mut found: Vec<&SshKey> = model
        .ssh_keys
        .values()
        .filter(|k| name.is_none_or(|n| k.name == n))
        .filter(|k| print.is_none_or(|f| k.fingerprint == f))
        .filter(|k| selector.matches(&k.labels))
        .collect();
    sort_by(&mut found, &keys, |k, field| match field {
        "name" => SortValue::Text(k.name.clone()),
        _ => SortValue::Number(i128::from(k.id)),
    });
    list_of(
        &listing,
        "ssh_keys",
        found,
        |k| wire::ssh_key(k),
        Map::new(),
    )
}

/// `POST /v1/ssh_keys`: 201.
pub async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let mut f = Fields::parse(&body)?;
    let name = f.string("name", true);
    let public_key = f.string("public_key", true);
    let labels = f.labels("labels").unwrap_or_default();
    f.finish()?;
    let (Some(name), Some(public_key)) = (name, public_key) else {
        return Err(ApiError::invalid_field("body", "incomplete request"));
    };
    let mut model = shared.model();
    let id = add_key(&mut model, name, public_key, labels)?;
    let key = model
        .ssh_keys
        .get(&id)
        .ok_or_else(|| ApiError::not_found("ssh key"))?;
    Ok(respond(
        StatusCode::CREATED,
        json!({"ssh_key": wire::ssh_key(key)}),
    ))
}

/// `GET /v1/ssh_keys/{id}`.
pub async fn get(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "ssh key")?;
    let model = shared.model();
    let key = model
        .ssh_keys
        .get(&id)
        .ok_or_else(|| ApiError::not_found("ssh key"))?;
    one("ssh_key", wire::ssh_key(key))
}

/// `PUT /v1/ssh_keys/{id}`: `name` and/or `labels` (labels replace the whole set).
pub async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let id = parse_id(&id, "ssh key")?;
    let mut model = shared.model();
    if !model.ssh_keys.contains_key(&id) {
        return Err(ApiError::not_found("ssh key"));
    }
    let mut f = Fields::parse(&body)?;
    let name = f.string("name", false);
    let labels = f.labels("labels");
    f.finish()?;
    if let Some(name) = &name
        && model
            .ssh_keys
            .values()
            .any(|k| &k.name == name && k.id != id)
    {
        return Err(ApiError::uniqueness(
            "SSH key with the same name already exists",
            json!({"fields": [{"name": "name"}]}),
        ));
    }
    let key = model
        .ssh_keys
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("ssh key"))?;
    if let Some(name) = name {
        key.name = name;
    }
    if let Some(labels) = labels {
        key.labels = labels;
    }
    one("ssh_key", wire::ssh_key(key))
}

/// `DELETE /v1/ssh_keys/{id}`: 204 with an empty body.
pub async fn delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "ssh key")?;
    shared
        .model()
        .ssh_keys
        .remove(&id)
        .ok_or_else(|| ApiError::not_found("ssh key"))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINfcn3vIynvFYbAIJLbbgioi47ppWs15Mn5QVG1VmBt8 ops-2026";

    #[test]
    fn fingerprints_match_ssh_keygen() {
        assert_eq!(
            fingerprint(KEY).as_deref(),
            Ok("49:54:9a:06:eb:c7:81:34:ce:4c:a0:a7:dd:68:7d:a9")
        );
    }

    #[test]
    fn malformed_keys_have_no_fingerprint() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-dss AAAA",
            "ssh-ed25519 not-base64!",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAINfcn3vIynvFYbAIJLbbgioi47ppWs15Mn5QVG1VmBt8",
        ] {
            assert!(fingerprint(bad).is_err(), "{bad}");
        }
    }
}
