//! `/v1/firewalls`: list (name, label selector, sort, pages), create with rules and
//! `apply_to`, get, update (name, labels), delete (refused while applied: `resource_in_use`),
//! and the actions `set_rules`, `apply_to_resources` and `remove_from_resources`.

use super::super::body::Fields;
use super::super::errors::ApiError;
use super::super::firewall::{self, FirewallRecord, MAX_NAME, Target, parse_rules};
use super::super::lifecycle::{self, Step};
use super::super::pagination::{SortValue, sort_by, sort_keys};
use super::super::selector::Selector;
use super::super::shared::Shared;
use super::super::state::{Command, Effect, Model};
use super::super::wire;
use super::actions::filter_and_sort;
use super::{ApiResult, Listing, list_of, one, parse_id, respond};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::time::Instant;

/// `GET /v1/firewalls`.
pub async fn list(State(shared): State<Arc<Shared>>, listing: Listing) -> ApiResult {
    let p = &listing.params;
    let selector = p
        .one("label_selector")
        .map(Selector::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("label_selector", e))?
        .unwrap_or_default();
    let keys = sort_keys(p, &["id", "name", "created"])?;
    let name = p.one("name");
    let mut model = shared.model();
    sync(&shared, &mut model);
    let mut firewalls: Vec<&FirewallRecord> = model
        .firewalls
        .values()
        .filter(|f| name.is_none_or(|n| f.name == n))
        .filter(|f| selector.matches(&f.labels))
        .collect();
    sort_by(&mut firewalls, &keys, |f, field| match field {
        "name" => SortValue::Text(f.name.clone()),
        "created" => SortValue::Number(f.created.unix_timestamp_nanos()),
        _ => SortValue::Number(i128::from(f.id)),
    });
    list_of(
        &listing,
        "firewalls",
        firewalls,
        |f| wire::firewall(f, &model.servers),
        Map::new(),
    )
}

/// `GET /v1/firewalls/{id}`.
pub async fn get(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "firewall")?;
    let mut model = shared.model();
    sync(&shared, &mut model);
    let firewall = model
        .firewalls
        .get(&id)
        .ok_or_else(|| ApiError::not_found("firewall"))?;
    one("firewall", wire::firewall(firewall, &model.servers))
}

/// `POST /v1/firewalls`: 201 with the firewall and one `apply_firewall` action per target.
pub async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let now = Instant::now();
    let mut model = shared.model();
    let mut f = Fields::parse(&body)?;
    let name = f.string("name", true);
    if name
        .as_ref()
        .is_some_and(|n| n.is_empty() || n.chars().count() > MAX_NAME)
    {
        f.reject("name", format!("must be 1 to {MAX_NAME} characters"));
    }
    let labels = f.labels("labels").unwrap_or_default();
    let value: Value = serde_json::from_slice(&body).unwrap_or_default();
    let rules = read_rules(&mut f, &value);
    let targets = read_targets(&mut f, &value, "apply_to", false);
    f.finish()?;
    let name = name.unwrap_or_default();
    if model.firewalls.values().any(|fw| fw.name == name) {
        return Err(ApiError::uniqueness(
            "firewall name is already used",
            json!({"fields": [{"name": "name"}]}),
        ));
    }
    let mut seen = Vec::new();
    for target in &targets {
        if seen.contains(&target) {
            return Err(ApiError::firewall_already_applied());
        }
        check_target(&model, target)?;
        seen.push(target);
    }
    let id = model.firewall_id();
    model.firewalls.insert(
        id,
        FirewallRecord {
            id,
            name,
            labels,
            created: OffsetDateTime::now_utc(),
            rules,
            targets: targets.clone(),
            covered: BTreeMap::new(),
        },
    );
    sync(&shared, &mut model);
    let actions = start_actions(
        &shared,
        &mut model,
        id,
        &targets,
        Command::ApplyFirewall,
        now,
    );
    let firewall = model
        .firewalls
        .get(&id)
        .map(|fw| wire::firewall(fw, &model.servers));
    Ok(respond(
        StatusCode::CREATED,
        json!({"firewall": firewall, "actions": actions}),
    ))
}

/// `PUT /v1/firewalls/{id}`: `name` and/or `labels` (labels replace the whole set).
pub async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let id = parse_id(&id, "firewall")?;
    let mut model = shared.model();
    if !model.firewalls.contains_key(&id) {
        return Err(ApiError::not_found("firewall"));
    }
    let mut f = Fields::parse(&body)?;
    let name = f.string("name", false);
    if name
        .as_ref()
        .is_some_and(|n| n.is_empty() || n.chars().count() > MAX_NAME)
    {
        f.reject("name", format!("must be 1 to {MAX_NAME} characters"));
    }
    let labels = f.labels("labels");
    f.finish()?;
    if let Some(name) = &name
        && model
            .firewalls
            .values()
            .any(|fw| &fw.name == name && fw.id != id)
    {
        return Err(ApiError::uniqueness(
            "firewall name is already used",
            json!({"fields": [{"name": "name"}]}),
        ));
    }
    if let Some(fw) = model.firewalls.get_mut(&id) {
        if let Some(name) = name {
            fw.name = name;
        }
        if let Some(labels) = labels {
            fw.labels = labels;
        }
    }
    sync(&shared, &mut model);
    let firewall = model
        .firewalls
        .get(&id)
        .map(|fw| wire::firewall(fw, &model.servers));
    one("firewall", firewall.unwrap_or(Value::Null))
}

/// `DELETE /v1/firewalls/{id}`: 204, or `resource_in_use` while it is applied to anything.
pub async fn delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "firewall")?;
    let mut model = shared.model();
    let firewall = model
        .firewalls
        .get(&id)
        .ok_or_else(|| ApiError::not_found("firewall"))?;
    if !firewall.targets.is_empty() {
        return Err(ApiError::resource_in_use());
    }
    model.firewalls.remove(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/firewalls/{id}/actions`.
pub async fn actions(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    listing: Listing,
) -> ApiResult {
    let id = parse_id(&id, "firewall")?;
    let now = Instant::now();
    let model = shared.model();
    if !model.firewalls.contains_key(&id) {
        return Err(ApiError::not_found("firewall"));
    }
    let actions = filter_and_sort(
        model
            .actions
            .values()
            .filter(|a| a.firewall == Some(id))
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

/// `POST /v1/firewalls/{id}/actions/{action}`: `set_rules`, `apply_to_resources`,
/// `remove_from_resources`; 201 with `{actions: [...]}`.
pub async fn post(
    State(shared): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let id = parse_id(&id, "firewall")?;
    let now = Instant::now();
    let mut model = shared.model();
    if !model.firewalls.contains_key(&id) {
        return Err(ApiError::not_found("firewall"));
    }
    let mut f = Fields::parse(&body)?;
    let value: Value = serde_json::from_slice(&body).unwrap_or_default();
    let actions = match action.as_str() {
        "set_rules" => {
            if value.get("rules").is_none() {
                f.reject("rules", "is required");
            }
            let rules = read_rules(&mut f, &value);
            f.finish()?;
            set_rules(&shared, &mut model, id, rules, now)
        }
        "apply_to_resources" => {
            let targets = read_targets(&mut f, &value, "apply_to", true);
            f.finish()?;
            apply(&shared, &mut model, id, targets, now)?
        }
        "remove_from_resources" => {
            let targets = read_targets(&mut f, &value, "remove_from", true);
            f.finish()?;
            remove(&shared, &mut model, id, &targets, now)?
        }
        _ => return Err(ApiError::not_found("action")),
    };
    Ok(respond(StatusCode::CREATED, json!({"actions": actions})))
}

/// Replaces the rules: one `set_firewall_rules`, then `apply_firewall` for each covered
/// server, whose cover is `pending` again until the new rules are in place.
fn set_rules(
    shared: &Arc<Shared>,
    model: &mut Model,
    id: u64,
    rules: Vec<firewall::Rule>,
    now: Instant,
) -> Vec<Value> {
    let done = now + shared.timing.latencies.firewall;
    let mut covered = Vec::new();
    if let Some(fw) = model.firewalls.get_mut(&id) {
        fw.rules = rules;
        for at in fw.covered.values_mut() {
            *at = (*at).max(done);
        }
        covered = fw.covered.keys().copied().collect();
    }
    let mut ids = vec![model.new_firewall_action(id, None, Command::SetFirewallRules, now, done)];
    for server in covered {
        ids.push(model.new_firewall_action(id, Some(server), Command::ApplyFirewall, now, done));
    }
    finish_later(shared, model, ids, done, now)
}

/// Adds targets after checking each (`firewall_already_applied`, `firewall_resource_not_found`,
/// `private_net_only_server`); nothing changes when one is refused.
fn apply(
    shared: &Arc<Shared>,
    model: &mut Model,
    id: u64,
    targets: Vec<Target>,
    now: Instant,
) -> Result<Vec<Value>, ApiError> {
    let existing = model
        .firewalls
        .get(&id)
        .map(|fw| fw.targets.clone())
        .unwrap_or_default();
    for (i, target) in targets.iter().enumerate() {
        if existing.contains(target) || targets[..i].contains(target) {
            return Err(ApiError::firewall_already_applied());
        }
        check_target(model, target)?;
    }
    if let Some(fw) = model.firewalls.get_mut(&id) {
        fw.targets.extend(targets.iter().cloned());
    }
    sync(shared, model);
    Ok(start_actions(
        shared,
        model,
        id,
        &targets,
        Command::ApplyFirewall,
        now,
    ))
}

/// Removes targets; a server covered through a selector cannot be removed by id
/// (`firewall_managed_by_label_selector`), an unknown target is `firewall_resource_not_found`.
fn remove(
    shared: &Arc<Shared>,
    model: &mut Model,
    id: u64,
    targets: &[Target],
    now: Instant,
) -> Result<Vec<Value>, ApiError> {
    let Some(fw) = model.firewalls.get(&id) else {
        return Err(ApiError::not_found("firewall"));
    };
    for target in targets {
        if fw.targets.contains(target) {
            continue;
        }
        return Err(match target {
            Target::Server(server) if fw.covered.contains_key(server) => {
                ApiError::firewall_managed_by_label_selector(*server)
            }
            Target::Server(server) => {
                ApiError::firewall_resource_not_found(&format!("server {server}"))
            }
            Target::Selector(text) => {
                ApiError::firewall_resource_not_found(&format!("label selector '{text}'"))
            }
        });
    }
    if let Some(fw) = model.firewalls.get_mut(&id) {
        fw.targets.retain(|t| !targets.contains(t));
    }
    sync(shared, model);
    Ok(start_actions(
        shared,
        model,
        id,
        targets,
        Command::RemoveFirewall,
        now,
    ))
}

/// A server target must exist and have a public interface.
fn check_target(model: &Model, target: &Target) -> Result<(), ApiError> {
    let Target::Server(id) = target else {
        return Ok(());
    };
    let server = model
        .servers
        .get(id)
        .ok_or_else(|| ApiError::firewall_resource_not_found(&format!("server {id}")))?;
    if server.has_public_net() {
        Ok(())
    } else {
        Err(ApiError::private_net_only_server(*id))
    }
}

/// One action per target, finishing after the firewall latency.
fn start_actions(
    shared: &Arc<Shared>,
    model: &mut Model,
    id: u64,
    targets: &[Target],
    command: Command,
    now: Instant,
) -> Vec<Value> {
    let done = now + shared.timing.latencies.firewall;
    let ids = targets
        .iter()
        .map(|t| {
            let server = match t {
                Target::Server(s) => Some(*s),
                Target::Selector(_) => None,
            };
            model.new_firewall_action(id, server, command, now, done)
        })
        .collect();
    finish_later(shared, model, ids, done, now)
}

/// Schedules the actions' success at `done` and renders them as of `now`.
fn finish_later(
    shared: &Arc<Shared>,
    model: &Model,
    ids: Vec<u64>,
    done: Instant,
    now: Instant,
) -> Vec<Value> {
    let rendered = ids
        .iter()
        .filter_map(|a| model.actions.get(a))
        .map(|a| wire::action(a, now))
        .collect();
    lifecycle::run(
        shared,
        vec![Step {
            at: done,
            effects: ids.into_iter().map(Effect::Finish).collect(),
        }],
    );
    rendered
}

/// Brings every firewall's covered servers up to date.
pub(super) fn sync(shared: &Shared, model: &mut Model) {
    model.sync_firewalls(Instant::now(), shared.timing.latencies.firewall);
}

fn read_rules(f: &mut Fields, body: &Value) -> Vec<firewall::Rule> {
    match body.get("rules").filter(|v| !v.is_null()) {
        None => Vec::new(),
        Some(value) => parse_rules(value).unwrap_or_else(|problems| {
            for p in problems {
                f.reject("rules", p);
            }
            Vec::new()
        }),
    }
}

fn read_targets(f: &mut Fields, body: &Value, key: &str, required: bool) -> Vec<Target> {
    let Some(items) = body.get(key).filter(|v| !v.is_null()) else {
        if required {
            f.reject(key, "is required");
        }
        return Vec::new();
    };
    let Some(items) = items.as_array() else {
        f.reject(key, "must be an array");
        return Vec::new();
    };
    let mut targets = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match Target::parse(item) {
            Ok(t) => targets.push(t),
            Err(problem) => f.reject(key, format!("entry {i}: {problem}")),
        }
    }
    targets
}
