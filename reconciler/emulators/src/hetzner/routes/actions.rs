//! `/v1/actions?id=…` (ids required, as since 2025-01-30) and `/v1/actions/{id}`, plus the
//! filtering and sorting every action list shares.

use super::super::errors::ApiError;
use super::super::pagination::{SortValue, sort_by, sort_keys};
use super::super::query::Params;
use super::super::shared::Shared;
use super::super::state::{ActionRecord, ActionState};
use super::super::wire;
use super::{ApiResult, Listing, list_of, one, parse_id};
use axum::extract::{Path, State};
use serde_json::Map;
use std::sync::Arc;
use tokio::time::Instant;

const SORT_FIELDS: [&str; 5] = ["id", "command", "status", "started", "finished"];

fn status_name(a: &ActionRecord) -> &'static str {
    match a.state {
        ActionState::Running => "running",
        ActionState::Success => "success",
        ActionState::Error(..) => "error",
    }
}

/// Applies the `status` filter and the `sort` keys of `params` to `actions`.
///
/// # Errors
/// `invalid_input` for an unknown status or sort field.
pub fn filter_and_sort<'a>(
    actions: Vec<&'a ActionRecord>,
    params: &Params,
) -> Result<Vec<&'a ActionRecord>, ApiError> {
    let statuses = params.enum_values("status", &["running", "success", "error"])?;
    let keys = sort_keys(params, &SORT_FIELDS)?;
    let mut actions: Vec<&ActionRecord> = actions
        .into_iter()
        .filter(|a| statuses.is_empty() || statuses.iter().any(|s| s == status_name(a)))
        .collect();
    sort_by(&mut actions, &keys, |a, field| match field {
        "command" => SortValue::Text(a.command.as_str().to_owned()),
        "status" => SortValue::Text(status_name(a).to_owned()),
        "started" => SortValue::Number(a.started.unix_timestamp_nanos()),
        "finished" => a.finished.map_or(SortValue::Null, |f| {
            SortValue::Number(f.unix_timestamp_nanos())
        }),
        _ => SortValue::Number(i128::from(a.id)),
    });
    Ok(actions)
}

/// `GET /v1/actions?id=…&id=…`: unknown ids are simply absent.
pub async fn list(State(shared): State<Arc<Shared>>, listing: Listing) -> ApiResult {
    let raw = listing.params.all("id");
    if raw.is_empty() {
        return Err(ApiError::invalid_field("id", "is required"));
    }
    let ids = raw
        .iter()
        .map(|r| r.parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::invalid_field("id", "must be integers"))?;
    let now = Instant::now();
    let model = shared.model();
    let actions = filter_and_sort(
        model
            .actions
            .values()
            .filter(|a| ids.contains(&a.id))
            .collect(),
        &listing.params,
    )?;
    list_of(
        &listing,
        "actions",
        actions,
        |a| wire::action(a, now),
        Map::new(),
    )
}

/// `GET /v1/actions/{id}`.
pub async fn get(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "action")?;
    let model = shared.model();
    let action = model
        .actions
        .get(&id)
        .ok_or_else(|| ApiError::not_found("action"))?;
    one("action", wire::action(action, Instant::now()))
}
