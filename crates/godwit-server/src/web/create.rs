//! Making things from the dashboard: endpoints (`/endpoints`), projects, and migrations
//! (`/migrations/new`) with a folder picker that asks the migration's agent for the folders
//! of its source, a level at a time (the API's `POST /v1/agents/{id}/browse`). Each is made
//! by the API's own function, with the session as the caller.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Session, error_box, page, said, session, to_signin};
use crate::AppState;
use crate::error::ApiError;
use godwit_spec::location::query_value;

/// The kinds of endpoint, as the API names them, with words for each.
const KINDS: &[(&str, &str)] = &[
    ("local", "A folder on the agent's host (/mnt/share)"),
    ("s3", "S3 or S3-compatible (s3://bucket/prefix)"),
    ("azure-blob", "Azure Blob (az://container/prefix)"),
    ("sftp", "SFTP (sftp://user@host:22/path)"),
];

fn operator(s: &Session) -> bool {
    matches!(s.role, crate::Role::Admin | crate::Role::Operator)
}

/// `GET /endpoints`: the endpoints, and (for an operator) a form that adds one.
pub(crate) async fn endpoints(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(s) = session(&state, &headers).await else {
        return to_signin();
    };
    page(
        "Endpoints",
        Some(&s),
        endpoints_body(&state, &s, None, None).await,
    )
}

async fn endpoints_body(
    state: &AppState,
    s: &Session,
    above: Option<Markup>,
    form: Option<&NewEndpoint>,
) -> Markup {
    let list = state.store.list_endpoints(None, 100, 0).await;
    html! {
        h1 { "Endpoints" }
        p.muted { "Where migrations read and write: a folder on an agent's host, a bucket, a container, an SFTP server. Credentials stay on the agents." }
        @if let Some(m) = above { (m) }
        @match &list {
            Err(e) => (error_box(e.code.id(), &e.message())),
            Ok((n, items)) => {
                p.muted { (n) " in all" }
                table {
                    thead { tr { th { "Name" } th { "Kind" } th { "URI" } th { "Id" } } }
                    tbody {
                        @for e in items {
                            tr data-endpoint=(e.id) {
                                td { (e.name) } td { (e.kind) } td.code.wrap { (e.uri) } td.code { (e.id) }
                            }
                        }
                    }
                }
            }
        }
        @if operator(s) {
            h2 { "Add an endpoint" }
            form.stack method="post" action="/endpoints" {
                input type="hidden" name="csrf" value=(s.csrf);
                label for="endpoint-name" { "Name" }
                input type="text" id="endpoint-name" name="name" required maxlength="200" value=(form.map_or("", |f| f.name.as_str()));
                label for="endpoint-kind" { "Kind" }
                select id="endpoint-kind" name="kind" {
                    @for (kind, words) in KINDS {
                        option value=(kind) selected[form.is_some_and(|f| f.kind == *kind)] { (words) }
                    }
                }
                label for="endpoint-uri" { "URI" }
                input type="text" id="endpoint-uri" name="uri" required maxlength="4096" value=(form.map_or("", |f| f.uri.as_str()));
                div { button type="submit" { "Add the endpoint" } }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewEndpoint {
    csrf: String,
    name: String,
    kind: String,
    uri: String,
}

/// `POST /endpoints`: adds an endpoint as the API does; back to the list, or the form again
/// with the refusal's code and words.
pub(crate) async fn add_endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewEndpoint>,
) -> Response {
    let s = match super::form_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let req = crate::api::endpoints::NewEndpoint {
        name: form.name.clone(),
        kind: form.kind.clone(),
        uri: form.uri.clone(),
        credential_ref: None,
    };
    match crate::api::endpoints::create(&state, &s.caller, req).await {
        Ok(_) => Redirect::to("/endpoints").into_response(),
        Err(e) => {
            let body = endpoints_body(&state, &s, Some(refusal(&e)), Some(&form)).await;
            super::refused(&e, page("Endpoints", Some(&s), body))
        }
    }
}

fn refusal(e: &ApiError) -> Markup {
    error_box(e.code.id(), &said(e))
}

/// What the new-migration page was asked: the choices so far.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    source: String,
    /// The source folder, under the source endpoint.
    #[serde(default)]
    path: String,
    /// Whether to list the folders under `path`.
    #[serde(default)]
    browse: Option<String>,
    #[serde(default)]
    project: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    target_path: String,
}

impl Choice {
    fn path(&self) -> &str {
        if self.path.trim().is_empty() {
            "/"
        } else {
            self.path.trim()
        }
    }

    /// This page with the same choices but the source folder `path`, listed.
    fn browsing(&self, path: &str) -> String {
        format!(
            "/migrations/new?agent={}&source={}&path={}&browse=1&project={}&target={}&target_path={}",
            query_value(&self.agent),
            query_value(&self.source),
            query_value(path),
            query_value(&self.project),
            query_value(&self.target),
            query_value(&self.target_path)
        )
    }
}

/// `GET /migrations/new`: choose the agent, the source and its folder (browsing it through
/// the agent), the project, and the target.
pub(crate) async fn new_migration(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(choice): Query<Choice>,
) -> Response {
    let Some(s) = session(&state, &headers).await else {
        return to_signin();
    };
    let (status, body) = new_migration_body(&state, &s, &choice, None).await;
    super::with_status(status, page("New migration", Some(&s), body))
}

async fn new_migration_body(
    state: &AppState,
    s: &Session,
    choice: &Choice,
    above: Option<Markup>,
) -> (StatusCode, Markup) {
    let agents = state
        .store
        .list_agents(200, 0)
        .await
        .map(|(_, a)| a)
        .unwrap_or_default();
    let endpoints = state
        .store
        .list_endpoints(None, 100, 0)
        .await
        .map(|(_, e)| e)
        .unwrap_or_default();
    let projects = state
        .store
        .list_projects(100, 0)
        .await
        .map(|(_, p)| p)
        .unwrap_or_default();
    let mut status = StatusCode::OK;
    // The folders under the chosen one, from the agent, when asked for.
    let listing =
        if choice.browse.is_some() && !choice.agent.is_empty() && !choice.source.is_empty() {
            let req = crate::api::agents::BrowseRequest {
                endpoint_id: choice.source.clone(),
                path: choice.path().to_string(),
            };
            let found = crate::api::agents::browse(state, &s.caller, &choice.agent, req).await;
            if let Err(e) = &found {
                status = e.status();
            }
            Some(found)
        } else {
            None
        };
    let parent = choice
        .path()
        .trim_end_matches('/')
        .rsplit_once('/')
        .map(|(p, _)| if p.is_empty() { "/" } else { p });
    let body = html! {
        h1 { "New migration" }
        @if let Some(m) = above { (m) }
        @if endpoints.is_empty() {
            p { "There is no endpoint yet: " a href="/endpoints" { "add the source and the target first" } "." }
        }
        h2 { "1. The source" }
        form.stack method="get" action="/migrations/new" role="search" {
            input type="hidden" name="project" value=(choice.project);
            input type="hidden" name="target" value=(choice.target);
            input type="hidden" name="target_path" value=(choice.target_path);
            input type="hidden" name="browse" value="1";
            label for="agent" { "The agent that runs it (next to the source)" }
            select id="agent" name="agent" required {
                @for a in &agents {
                    option value=(a.id) selected[a.id == choice.agent] { (a.name) " (" (a.state.code) " " (a.state.name) ")" }
                }
            }
            label for="source" { "Source endpoint" }
            select id="source" name="source" required {
                @for e in &endpoints {
                    option value=(e.id) selected[e.id == choice.source] { (e.name) " · " (e.uri) }
                }
            }
            label for="path" { "Folder under it" }
            input type="text" id="path" name="path" value=(choice.path()) maxlength="4096";
            div { button type="submit" data-browse { "Show its folders" } }
        }
        @match &listing {
            Some(Ok(found)) => {
                section data-folders=(found.folders.len()) {
                    h3 { "Folders in " span.code { (found.path) } }
                    p.muted {
                        "As agent " span.code { (found.agent_id) } " sees it ("
                        a.code href=(format!("/codes/{}", found.status.code)) { (found.status.code) } "). "
                        "Choose one to go into it; the folder shown above is the one the migration copies."
                        @if found.unnamed > 0 { " " (found.unnamed) " folders have names that are not UTF-8 and cannot be chosen." }
                    }
                    ul.paths {
                        @if let Some(up) = parent {
                            li { a href=(choice.browsing(up)) rel="up" { ".. (up)" } }
                        }
                        @for f in &found.folders {
                            li { a.code href=(choice.browsing(&f.path)) data-folder=(f.name) { (f.name) "/" } }
                        }
                        @if found.folders.is_empty() { li.muted { "No folder under this one." } }
                    }
                }
            }
            Some(Err(e)) => {
                (refusal(e))
                @if e.code == godwit_codes::Code::ERR_FALLBACK_FOLDER_PICKER {
                    p.muted { "Type the folder's path above instead." }
                }
            }
            None => {}
        }
        h2 { "2. The project and the target" }
        @if operator(s) {
            form.stack method="post" action="/migrations/new" {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="agent" value=(choice.agent);
                input type="hidden" name="source" value=(choice.source);
                input type="hidden" name="path" value=(choice.path());
                p { "Copies " span.code { (choice.path()) } " of the source endpoint chosen above." }
                label for="project" { "Project (its settings are the migration's defaults)" }
                select id="project" name="project" required {
                    @for p in &projects {
                        option value=(p.id) selected[p.id == choice.project] { (p.name) }
                    }
                }
                label for="target" { "Target endpoint" }
                select id="target" name="target" required {
                    @for e in &endpoints {
                        option value=(e.id) selected[e.id == choice.target] { (e.name) " · " (e.uri) }
                    }
                }
                label for="target_path" { "Folder under it" }
                input type="text" id="target_path" name="target_path" maxlength="4096"
                    value=(if choice.target_path.is_empty() { "/" } else { choice.target_path.as_str() });
                div { button type="submit" data-create { "Create the migration" } }
            }
            h3 { "A new project" }
            form.stack method="post" action="/projects" {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="agent" value=(choice.agent);
                input type="hidden" name="source" value=(choice.source);
                input type="hidden" name="path" value=(choice.path());
                input type="hidden" name="target" value=(choice.target);
                input type="hidden" name="target_path" value=(choice.target_path);
                label for="project-name" { "Name" }
                input type="text" id="project-name" name="name" required maxlength="200";
                div { button type="submit" data-new-project { "Add the project" } }
            }
        } @else {
            p.muted { "A viewer sees; an operator or admin creates migrations." }
        }
    };
    (status, body)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    csrf: String,
    #[serde(flatten)]
    choice: Choice,
}

/// `POST /migrations/new`: creates the migration as the API does; to its page, or back to the
/// form with the refusal's code and words.
pub(crate) async fn create_migration(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Response {
    let s = match super::form_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let c = &form.choice;
    let req = crate::api::migrations::NewMigration {
        project_id: c.project.clone(),
        agent_id: Some(c.agent.clone()).filter(|a| !a.is_empty()),
        // (The page makes migrations of one agent; pools are made with the API.)
        pool: None,
        source: crate::api::migrations::Side {
            endpoint_id: c.source.clone(),
            path: c.path().to_string(),
        },
        target: crate::api::migrations::Side {
            endpoint_id: c.target.clone(),
            path: if c.target_path.trim().is_empty() {
                "/".into()
            } else {
                c.target_path.trim().to_string()
            },
        },
        options: None,
    };
    match crate::api::migrations::create(&state, &s.caller, req).await {
        Ok(m) => Redirect::to(&format!("/migrations/{}", query_value(&m.id))).into_response(),
        Err(e) => {
            let (_, body) = new_migration_body(&state, &s, c, Some(refusal(&e))).await;
            super::refused(&e, page("New migration", Some(&s), body))
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewProject {
    csrf: String,
    name: String,
    /// The choices made so far on the page, kept.
    #[serde(flatten)]
    choice: Choice,
}

/// `POST /projects`: adds a project as the API does, then back to the new migration with it
/// chosen.
pub(crate) async fn add_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewProject>,
) -> Response {
    let s = match super::form_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let req = crate::api::projects::NewProject {
        name: form.name,
        description: String::new(),
        settings: Default::default(),
    };
    let mut choice = form.choice;
    match crate::api::projects::create(&state, &s.caller, req).await {
        Ok(p) => {
            choice.project = p.id;
            let mut to = choice.browsing(choice.path());
            if choice.agent.is_empty() || choice.source.is_empty() {
                to = to.replace("&browse=1", "");
            }
            Redirect::to(&to).into_response()
        }
        Err(e) => {
            let (_, body) = new_migration_body(&state, &s, &choice, Some(refusal(&e))).await;
            super::refused(&e, page("New migration", Some(&s), body))
        }
    }
}
