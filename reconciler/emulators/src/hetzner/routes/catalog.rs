//! The read-only catalog: `/v1/server_types`, `/v1/locations`, `/v1/datacenters`,
//! `/v1/images`, each listable (with `name` and the endpoint's filters) and gettable by id.

use super::super::catalog::{Image, Location};
use super::super::errors::ApiError;
use super::super::pagination::{SortValue, sort_by, sort_keys};
use super::super::selector::Selector;
use super::super::shared::Shared;
use super::{ApiResult, Listing, list_of, one, parse_id};
use axum::extract::{Path, State};
use serde_json::{Map, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn by_name_sorted<'a, T>(
    items: &'a [T],
    listing: &Listing,
    id: impl Fn(&T) -> u64,
    name: impl Fn(&T) -> &str,
) -> Result<Vec<&'a T>, ApiError> {
    let keys = sort_keys(&listing.params, &["id", "name"])?;
    let wanted = listing.params.one("name");
    let mut found: Vec<&T> = items
        .iter()
        .filter(|t| wanted.is_none_or(|w| name(t) == w))
        .collect();
    sort_by(&mut found, &keys, |t, field| match field {
        "name" => SortValue::Text(name(t).to_owned()),
        _ => SortValue::Number(i128::from(id(t))),
    });
    Ok(found)
}

/// `GET /v1/server_types`.
pub async fn server_types(State(shared): State<Arc<Shared>>, listing: Listing) -> ApiResult {
    let c = &shared.catalog;
    let wanted = listing.params.one("name");
    let types: Vec<_> = c
        .server_types
        .iter()
        .filter(|t| wanted.is_none_or(|w| t.name == w))
        .collect();
    list_of(
        &listing,
        "server_types",
        types,
        |t| c.server_type_json(t),
        Map::new(),
    )
}

/// `GET /v1/server_types/{id}`.
pub async fn server_type(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "server type")?;
    let c = &shared.catalog;
    let t = c
        .server_types
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found("server type"))?;
    one("server_type", c.server_type_json(t))
}

/// `GET /v1/locations`.
pub async fn locations(State(shared): State<Arc<Shared>>, listing: Listing) -> ApiResult {
    let c = &shared.catalog;
    let found = by_name_sorted(&c.locations, &listing, |l| l.id, |l| &l.name)?;
    list_of(
        &listing,
        "locations",
        found,
        |l| c.location_json(l),
        Map::new(),
    )
}

/// `GET /v1/locations/{id}`.
pub async fn location(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "location")?;
    let c = &shared.catalog;
    let l = c
        .locations
        .iter()
        .find(|l| l.id == id)
        .ok_or_else(|| ApiError::not_found("location"))?;
    one("location", c.location_json(l))
}

/// `GET /v1/datacenters` (with `recommendation`: the first datacenter).
pub async fn datacenters(State(shared): State<Arc<Shared>>, listing: Listing) -> ApiResult {
    let c = &shared.catalog;
    let found: Vec<&Location> = by_name_sorted(
        &c.locations,
        &listing,
        |l| l.datacenter_id,
        |l| &l.datacenter,
    )?;
    let mut extra = Map::new();
    let recommendation = c.locations.first().map(|l| l.datacenter_id);
    extra.insert("recommendation".into(), json!(recommendation));
    list_of(
        &listing,
        "datacenters",
        found,
        |l| c.datacenter_json(l),
        extra,
    )
}

/// `GET /v1/datacenters/{id}`.
pub async fn datacenter(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "datacenter")?;
    let c = &shared.catalog;
    let l = c
        .locations
        .iter()
        .find(|l| l.datacenter_id == id)
        .ok_or_else(|| ApiError::not_found("datacenter"))?;
    one("datacenter", c.datacenter_json(l))
}

/// `GET /v1/images` (filters `name`, `type`, `status`, `architecture`, `label_selector`,
/// `bound_to`, `include_deprecated`; every image here is an available system image).
pub async fn images(State(shared): State<Arc<Shared>>, listing: Listing) -> ApiResult {
    let c = &shared.catalog;
    let p = &listing.params;
    let types = p.enum_values("type", &["system", "app", "snapshot", "backup"])?;
    let statuses = p.enum_values("status", &["available", "creating", "unavailable"])?;
    let architectures = p.enum_values("architecture", &["x86", "arm"])?;
    let selector = p
        .one("label_selector")
        .map(Selector::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("label_selector", e))?
        .unwrap_or_default();
    let keys = sort_keys(p, &["id", "name", "created"])?;
    let wanted = p.one("name");
    let bound = !p.all("bound_to").is_empty();
    let no_labels = BTreeMap::new();
    let mut found: Vec<&Image> = c
        .images
        .iter()
        .filter(|i| wanted.is_none_or(|w| i.name == w))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "system"))
        .filter(|_| statuses.is_empty() || statuses.iter().any(|s| s == "available"))
        .filter(|i| architectures.is_empty() || architectures.contains(&i.architecture))
        .filter(|_| selector.matches(&no_labels) && !bound)
        .collect();
    sort_by(&mut found, &keys, |i, field| match field {
        "name" => SortValue::Text(i.name.clone()),
        "created" => SortValue::Text(i.created.clone()),
        _ => SortValue::Number(i128::from(i.id)),
    });
    list_of(&listing, "images", found, |i| c.image_json(i), Map::new())
}

/// `GET /v1/images/{id}`.
pub async fn image(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "image")?;
    let c = &shared.catalog;
    let i = c
        .images
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::not_found("image"))?;
    one("image", c.image_json(i))
}
