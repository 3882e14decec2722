//! `/v1/servers/{id}/actions…`: power actions and change_type (rebuild and change_protection
//! in [`super::rebuild`]) (201 with the action; 423 while
//! another action runs), and the server's action list and single actions.

use super::super::body::Fields;
use super::super::catalog::ServerType;
use super::super::errors::ApiError;
use super::super::lifecycle;
use super::super::shared::Shared;
use super::super::state::{Command, ServerRecord};
use super::super::wire;
use super::actions::filter_and_sort;
use super::{ApiResult, Listing, list_of, one, parse_id, respond};
use crate::hetzner::ServerStatus;
use axum::body::Bytes;
use axum::extract::{Path, State};
use http::StatusCode;
use serde_json::{Map, json};
use std::sync::Arc;
use tokio::time::Instant;

/// `GET /v1/servers/{id}/actions`.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    listing: Listing,
) -> ApiResult {
    let id = parse_id(&id, "server")?;
    let now = Instant::now();
    let model = shared.model();
    if !model.servers.contains_key(&id) {
        return Err(ApiError::not_found("server"));
    }
    let actions = filter_and_sort(
        model
            .actions
            .values()
            .filter(|a| a.server == Some(id))
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

/// `GET /v1/servers/{id}/actions/{action_id}`.
pub async fn get(
    State(shared): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult {
    let id = parse_id(&id, "server")?;
    let action = parse_id(&action, "action")?;
    let model = shared.model();
    let found = model
        .actions
        .get(&action)
        .filter(|a| a.server == Some(id))
        .ok_or_else(|| ApiError::not_found("action"))?;
    one("action", wire::action(found, Instant::now()))
}

/// Reads `{server_type, upgrade_disk}` and checks the change is possible for `server`.
fn read_change(
    shared: &Shared,
    server: &ServerRecord,
    body: &[u8],
) -> Result<(ServerType, u64), ApiError> {
    let mut f = Fields::parse(body)?;
    let wanted = f.id_or_name("server_type", true);
    let upgrade_disk = f.boolean("upgrade_disk", true);
    f.finish()?;
    let (Some(wanted), Some(upgrade_disk)) = (wanted, upgrade_disk) else {
        return Err(ApiError::invalid_field("body", "incomplete request"));
    };
    let new_type = shared.catalog.server_type(&wanted).ok_or_else(|| {
        ApiError::invalid_server_type(format!("server type '{wanted}' not found"))
    })?;
    let current = &server.server_type;
    if new_type.architecture != current.architecture
        || new_type.storage_type != current.storage_type
    {
        return Err(ApiError::invalid_server_type(
            "the new server type must have the same architecture and storage type",
        ));
    }
    if !new_type.available_in(&server.location.name) {
        return Err(ApiError::invalid_server_type(
            "the new server type is not available in the server's location",
        ));
    }
    if new_type.disk < server.primary_disk_size {
        return Err(ApiError::invalid_server_type(format!(
            "the disk of {} ({} GB) is smaller than the server's disk ({} GB)",
            new_type.name, new_type.disk, server.primary_disk_size
        )));
    }
    let disk = if upgrade_disk {
        new_type.disk
    } else {
        server.primary_disk_size
    };
    Ok((new_type.clone(), disk))
}

/// `POST /v1/servers/{id}/actions/{poweron|poweroff|shutdown|reboot|reset|change_type}`.
pub async fn post(
    State(shared): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let id = parse_id(&id, "server")?;
    match action.as_str() {
        "rebuild" => return super::rebuild::rebuild(&shared, id, &body),
        "change_protection" => return super::rebuild::change_protection(&shared, id, &body),
        _ => {}
    }
    let command = match action.as_str() {
        "poweron" => Command::StartServer,
        "poweroff" => Command::StopServer,
        "shutdown" => Command::ShutdownServer,
        "reboot" => Command::RebootServer,
        "reset" => Command::ResetServer,
        "change_type" => Command::ChangeServerType,
        _ => return Err(ApiError::not_found("action")),
    };
    let now = Instant::now();
    let mut model = shared.model();
    let server = model
        .servers
        .get(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    let change = (command == Command::ChangeServerType)
        .then(|| read_change(&shared, server, &body))
        .transpose()?;
    let status = server.status;
    if model.is_locked(id) {
        return Err(ApiError::locked());
    }
    let scheduled = match change {
        Some(_) if status != ServerStatus::Off => return Err(ApiError::server_not_stopped()),
        Some((new_type, disk)) => {
            lifecycle::change_type(&mut model, id, new_type, disk, &shared.timing, now)
        }
        None => lifecycle::power(&mut model, id, command, &shared.timing, now),
    };
    let action = scheduled.main_action(&model, now);
    drop(model);
    lifecycle::run(&shared, scheduled.steps);
    Ok(respond(StatusCode::CREATED, json!({ "action": action })))
}
