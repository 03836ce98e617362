//! The audit log: every request that changes something, and every download of a report or a
//! copy log, through the API or the dashboard's forms and links, is written to the store with who asked (the token's subject and role), what, of
//! what, when, and the code of the outcome, refusals included. `GET /v1/audit` reads it (admin
//! only); nothing changes or deletes it. Requests whose token is missing or bad have no one to
//! write down: the limit on failed sign-ins counts them instead.

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use godwit_codes::Code;

use super::{ApiQuery, Listing, Page};
use crate::AppState;
use crate::auth::{AuditSlot, Caller};
use crate::error::{ApiError, Outcome};
use crate::store::AuditEntry;

/// The action a request is, by its method and route; None: not audited (reading).
fn action_of(method: &Method, route: &str) -> Option<&'static str> {
    Some(match (method.as_str(), route) {
        ("GET", "/v1/runs/{id}/report") => "report.download",
        ("GET", "/v1/runs/{id}/copylog" | "/runs/{id}/copylog.csv") => "copylog.download",
        ("GET" | "HEAD" | "OPTIONS", _) => return None,
        ("POST", "/v1/projects") => "project.create",
        ("PATCH", "/v1/projects/{id}") => "project.update",
        ("DELETE", "/v1/projects/{id}") => "project.delete",
        ("POST", "/v1/endpoints") => "endpoint.create",
        ("DELETE", "/v1/endpoints/{id}") => "endpoint.delete",
        ("POST", "/v1/agents") => "agent.register",
        ("POST", "/v1/agents/{id}/deactivate") => "agent.deactivate",
        ("DELETE", "/v1/agents/{id}") => "agent.delete",
        ("POST", "/v1/migrations") => "migration.create",
        ("DELETE", "/v1/migrations/{id}") => "migration.delete",
        ("POST", "/v1/migrations/{id}/commands") => "command",
        ("POST", "/v1/migrations/{id}/schedules") => "schedule.create",
        ("POST", "/v1/tokens") => "token.create",
        ("POST", "/v1/tokens/{id}/revoke") => "token.revoke",
        // The dashboard's forms: the same actions as the API's.
        ("POST", "/signin") => return None,
        ("POST", "/signout") => "session.signout",
        ("POST", "/agents") => "agent.register",
        ("POST", "/agents/{id}/deactivate") => "agent.deactivate",
        ("POST", "/agents/{id}/delete") => "agent.delete",
        ("POST", "/endpoints") => "endpoint.create",
        ("POST", "/projects") => "project.create",
        ("POST", "/migrations/new") => "migration.create",
        ("POST", "/migrations/{id}/command") => "command",
        _ => "request",
    })
}

/// The code of an answer for the log: the error's code, 13 for a report or copy log that was
/// sent, else the success's HTTP code.
fn outcome_of(action: &str, response: &Response) -> String {
    if let Some(Outcome(code)) = response.extensions().get::<Outcome>() {
        return code.id().to_string();
    }
    let status = response.status();
    if status.is_success() && action.ends_with(".download") {
        return Code::DOWNLOAD_MIG_JOB_REPORT.id().to_string();
    }
    format!("HTTP{}", status.as_u16())
}

/// The layer that writes the log: gives the request a note the token check and the handler
/// fill in, and writes it out with the answer.
pub async fn record(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let Some(action) = route.as_deref().and_then(|r| action_of(req.method(), r)) else {
        return next.run(req).await;
    };
    let target = req.uri().path().to_string();
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let response = crate::auth::REQUEST_AUDIT
        .scope(slot.clone(), next.run(req))
        .await;
    let note = slot.take();
    let Some((subject, role)) = note.subject else {
        return response;
    };
    let action = note.action.unwrap_or_else(|| action.to_string());
    let outcome = outcome_of(&action, &response);
    if let Err(e) = state
        .store
        .audit(
            &subject,
            role.as_str(),
            &action,
            &target,
            &outcome,
            response.status().as_u16(),
        )
        .await
    {
        // The request is done; losing its line is said where the operator looks.
        tracing::error!(
            action = %action,
            path = %target,
            subject = %subject,
            "the audit log could not record a request: {}",
            e.message()
        );
    }
    response
}

/// The audit log, newest first (admin only).
#[utoipa::path(get, path = "/v1/audit", params(Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of the audit log, newest first", body = Listing<AuditEntry>),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 403, description = "Only an admin reads the audit log", body = crate::error::ErrorBody),
    (status = 429, description = "Too many requests", body = crate::error::ErrorBody),
    (status = 503, description = "The store failed", body = crate::error::ErrorBody)
))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<AuditEntry>>, ApiError> {
    caller.require_admin()?;
    let (limit, offset) = page.bounds()?;
    let (count, items) = state.store.list_audit(limit, offset).await?;
    Ok(Json(Listing { count, items }))
}
