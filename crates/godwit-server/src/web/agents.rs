//! The agents' page: each agent with its state, version and heartbeat; for an admin, forms to
//! register one (its token shown once, with the command that starts it), to deactivate one
//! and to delete one. The rules are the API's own (api/agents.rs), called with the session's
//! role.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Csrf, Session, error_box, page, said, session, to_signin, tone, when, with_status};
use crate::AppState;
use crate::error::ApiError;

pub(crate) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(s) = session(&state, &headers).await else {
        return to_signin();
    };
    page("Agents", Some(&s), agents_body(&state, &s, None).await)
}

/// The page's body; `above`: what an action just did or why it was refused.
async fn agents_body(state: &AppState, s: &Session, above: Option<Markup>) -> Markup {
    let admin = s.role == crate::Role::Admin;
    let agents = state.store.list_agents(200, 0).await;
    html! {
        h1 { "Agents" }
        @if let Some(m) = above { (m) }
        @match &agents {
            Err(e) => (error_box(e.code.id(), &e.message())),
            Ok((n, list)) => {
                p.muted { (n) " registered" }
                table {
                    thead { tr {
                        th { "Name" } th { "Id" } th { "State" } th { "Version" } th { "Platform" } th { "Last heartbeat" }
                        @if admin { th { "Actions" } }
                    } }
                    tbody {
                        @for a in list {
                            tr data-agent=(a.id) {
                                td { (a.name) }
                                td.code { (a.id) }
                                td class=(tone(&a.state.code)) {
                                    a.code href=(format!("/codes/{}", a.state.code)) { (a.state.code) } " " (a.state.name)
                                }
                                td { (a.version) }
                                td { (a.platform.as_deref().unwrap_or("")) }
                                td { (when(a.last_seen_ms)) }
                                @if admin {
                                    td {
                                        @if a.state.code != "902" {
                                            form method="post" action=(format!("/agents/{}/deactivate", a.id)) {
                                                input type="hidden" name="csrf" value=(s.csrf);
                                                button type="submit" { "Deactivate" }
                                            }
                                        }
                                        form method="post" action=(format!("/agents/{}/delete", a.id)) {
                                            input type="hidden" name="csrf" value=(s.csrf);
                                            button type="submit" { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if admin {
            h2 { "Register an agent" }
            form.stack method="post" action="/agents" {
                input type="hidden" name="csrf" value=(s.csrf);
                label for="name" { "Name (the host it runs on, say)" }
                input type="text" id="name" name="name" required maxlength="200";
                div { button type="submit" { "Register" } }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewAgent {
    csrf: String,
    name: String,
}

/// Registers an agent; the page shows its token once, with the command that starts it.
pub(crate) async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewAgent>,
) -> Response {
    let s = match super::form_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    match crate::api::agents::register(&state, &s.caller, &form.name, None).await {
        Ok(r) => {
            let server = origin(&headers);
            let shown = html! {
                div.notice role="status" data-registered=(r.agent.id) {
                    p { "Agent " strong { (r.agent.name) } " is registered. Its token is shown this once: keep it where the agent runs." }
                    label for="agent-token" { "Token" }
                    textarea id="agent-token" readonly rows="4" { (r.token) }
                    p { "Start it next to the data with:" }
                    pre.code data-command { "GODWIT_AGENT_TOKEN=" (r.token) " godwit agent --server " (server) }
                }
            };
            let body = agents_body(&state, &s, Some(shown)).await;
            with_status(StatusCode::CREATED, page("Agents", Some(&s), body))
        }
        Err(e) => failed(&state, &s, &e).await,
    }
}

/// The URL the browser reached this control plane at.
fn origin(headers: &HeaderMap) -> String {
    headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| *o != "null")
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| format!("http://{h}"))
        })
        .unwrap_or_default()
}

pub(crate) async fn deactivate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Csrf>,
) -> Response {
    act(state, headers, form, |state, s| async move {
        crate::api::agents::deactivate(&state, &s.caller, &id)
            .await
            .map(|_| ())
    })
    .await
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Csrf>,
) -> Response {
    act(state, headers, form, |state, s| async move {
        crate::api::agents::delete(&state, &s.caller, &id).await
    })
    .await
}

/// An action on an agent: checked as a form, done as the API does it; back to the list, or
/// the list with the refusal's code and words.
async fn act<F, Fut>(state: AppState, headers: HeaderMap, form: Csrf, action: F) -> Response
where
    F: FnOnce(AppState, std::sync::Arc<Session>) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let s = match super::form_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let s = std::sync::Arc::new(s);
    match action(state.clone(), s.clone()).await {
        Ok(()) => Redirect::to("/agents").into_response(),
        Err(e) => failed(&state, &s, &e).await,
    }
}

async fn failed(state: &AppState, s: &Session, e: &ApiError) -> Response {
    let body = agents_body(state, s, Some(error_box(e.code.id(), &said(e)))).await;
    super::refused(e, page("Agents", Some(s), body))
}
