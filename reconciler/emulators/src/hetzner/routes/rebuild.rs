//! `POST /v1/servers/{id}/actions/rebuild` (`{image, user_data?}` → 201 `{action,
//! root_password}`: powered off, disk wiped, the new user_data replaces the old, booted again)
//! and `POST /v1/servers/{id}/actions/change_protection` (`{delete?, rebuild?}` → 201
//! `{action}`, finished at once). A rebuild-protected server is refused with 423 `protected`.

use super::super::body::Fields;
use super::super::errors::ApiError;
use super::super::lifecycle;
use super::super::shared::Shared;
use super::super::state::Command;
use super::super::wire;
use super::servers::MAX_USER_DATA;
use super::{ApiResult, respond};
use http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::time::Instant;

/// `rebuild`: the image must exist for the server's architecture; `user_data` at most 32 KiB.
pub(super) fn rebuild(shared: &Arc<Shared>, id: u64, body: &[u8]) -> ApiResult {
    let mut f = Fields::parse(body)?;
    let wanted = f.id_or_name("image", true);
    let user_data = f.string("user_data", false);
    if user_data.as_ref().is_some_and(|u| u.len() > MAX_USER_DATA) {
        f.reject("user_data", "must be at most 32 KiB");
    }
    let now = Instant::now();
    let mut model = shared.model();
    let server = model
        .servers
        .get(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    let image = wanted.as_deref().and_then(|w| {
        shared
            .catalog
            .image(w, &server.server_type.architecture)
            .cloned()
    });
    if let (Some(w), None) = (&wanted, &image) {
        f.reject("image", format!("image '{w}' not found"));
    }
    f.finish()?;
    let image = image.ok_or_else(|| ApiError::invalid_field("image", "missing"))?;
    if server.protection.rebuild {
        return Err(ApiError::protected("rebuild"));
    }
    if model.is_locked(id) {
        return Err(ApiError::locked());
    }
    let (scheduled, events) =
        lifecycle::rebuild(&mut model, id, image, user_data, &shared.timing, now);
    let action = scheduled.main_action(&model, now);
    drop(model);
    shared.fire(events);
    lifecycle::run(shared, scheduled.steps);
    Ok(respond(
        StatusCode::CREATED,
        json!({ "action": action, "root_password": Value::Null }),
    ))
}

/// `change_protection`: sets whichever of `delete` and `rebuild` the body names.
pub(super) fn change_protection(shared: &Arc<Shared>, id: u64, body: &[u8]) -> ApiResult {
    let mut f = Fields::parse(body)?;
    let delete = f.boolean("delete", false);
    let rebuild = f.boolean("rebuild", false);
    f.finish()?;
    let now = Instant::now();
    let mut model = shared.model();
    if model.is_locked(id) && model.servers.contains_key(&id) {
        return Err(ApiError::locked());
    }
    let server = model
        .servers
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    if let Some(d) = delete {
        server.protection.delete = d;
    }
    if let Some(r) = rebuild {
        server.protection.rebuild = r;
    }
    let action = model.new_action(id, Command::ChangeProtection, now, now);
    model.apply(&super::super::state::Effect::Finish(action));
    let json = model.actions.get(&action).map(|a| wire::action(a, now));
    Ok(respond(StatusCode::CREATED, json!({ "action": json })))
}
