//! The web dashboard, served by `godwit serve` at `/` beside the API under `/v1`: pages
//! rendered on the server (maud) from the same store and rules as the API, one small
//! stylesheet and one small script, both in the binary. Nothing is loaded from elsewhere.
//!
//! Sign-in: a token pasted once, kept in an HttpOnly, SameSite=Strict cookie and checked on
//! every page as the API checks it (signature, expiry, revocation); agent tokens are refused.
//! Every form that changes something carries a CSRF token (an HMAC of the session's token id
//! under the control plane's secret) and must come from this origin.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use godwit_codes::Code;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;

mod agents;
mod create;
mod live;
mod migration;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");
/// The session cookie's name.
const COOKIE: &str = "godwit_session";

/// Each asset's name carries a digest of its content, so it can be cached for good.
static CSS_PATH: LazyLock<String> = LazyLock::new(|| format!("/assets/app-{}.css", digest(CSS)));
static JS_PATH: LazyLock<String> = LazyLock::new(|| format!("/assets/app-{}.js", digest(JS)));

fn digest(text: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(text.as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// What pages may do: their own styles, script and live updates; no frames, no other origin.
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                        connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                        base-uri 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/codes", get(codes))
        .route("/codes/{code}", get(code_page))
        .route("/assets/{name}", get(asset))
        .route("/ui/live", get(live::runs))
        .route("/agents", get(agents::list).post(agents::register))
        .route("/agents/{id}/deactivate", post(agents::deactivate))
        .route("/agents/{id}/delete", post(agents::delete))
        .route(
            "/endpoints",
            get(create::endpoints).post(create::add_endpoint),
        )
        .route("/projects", post(create::add_project))
        .route(
            "/migrations/new",
            get(create::new_migration).post(create::create_migration),
        )
        .route("/migrations/{id}", get(migration::show))
        .route("/migrations/{id}/command", post(migration::command))
        .route("/runs/{id}/copylog.csv", get(migration::csv))
}

/// A signed-in person: the token's claims, and the CSRF token of the session.
#[derive(Debug)]
pub(crate) struct Session {
    pub subject: String,
    pub role: crate::Role,
    pub csrf: String,
    /// What the session may do, checked as the API checks a token's role.
    pub caller: crate::auth::Caller,
}

/// The session of a request, if its cookie holds a token the API would take from a person.
pub(crate) async fn session(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let token = cookie(headers, COOKIE)?;
    let claims = state.secret.verify(&token).ok()?;
    crate::auth::still_valid(state, &claims).await.ok()?;
    if claims.role == crate::Role::Agent {
        return None;
    }
    Some(Session {
        subject: claims.sub.clone(),
        role: claims.role,
        csrf: state.secret.csrf(&claims.jti),
        caller: crate::auth::Caller::of_session(claims),
    })
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// A page: the layout around `body`, with the page's own security policy.
fn page(title: &str, session: Option<&Session>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · godwit" }
                link rel="stylesheet" href=(CSS_PATH.as_str());
                script src=(JS_PATH.as_str()) defer {}
            }
            body {
                header {
                    span.brand { "godwit" }
                    @if let Some(s) = session {
                        nav {
                            a href="/" { "Overview" }
                            a href="/agents" { "Agents" }
                            a href="/endpoints" { "Endpoints" }
                            a href="/migrations/new" { "New migration" }
                            a href="/codes" { "Codes" }
                        }
                        form method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            span.muted { (s.subject) " (" (s.role.as_str()) ") " }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::CACHE_CONTROL, "no-store"),
            // With no-referrer a browser sends `Origin: null` with the page's forms, and the
            // origin check below could not tell them from another site's.
            (header::REFERRER_POLICY, "same-origin"),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn to_signin() -> Response {
    Redirect::to("/signin").into_response()
}

/// An error as the API says it: its code (linked to its explanation) and message.
fn error_box(code: &str, message: &str) -> Markup {
    html! {
        div.error role="alert" {
            a.code href=(format!("/codes/{code}")) { (code) } " " (message)
        }
    }
}

/// The kind of a code, for its colour: errors red, successes green, states plain.
fn tone(code: &str) -> &'static str {
    match Code::lookup(code).map(|c| c.info().kind) {
        Ok(godwit_codes::Kind::Error) => "state-bad",
        Ok(godwit_codes::Kind::Success) => "state-ok",
        _ => "",
    }
}

/// An id shortened for a narrow column: its first eight characters (the whole one is the
/// link's title).
fn short(id: &str) -> String {
    match id.char_indices().nth(8) {
        Some((at, _)) => format!("{}…", &id[..at]),
        None => id.to_string(),
    }
}

fn when(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
        )
        .to_string(),
        None => "never".into(),
    }
}

/// Migrations the overview lists a page.
const MIGRATIONS_PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct OverviewQuery {
    /// Where the list of migrations starts (oldest first, as the API lists them).
    offset: Option<i64>,
}

async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<OverviewQuery>,
) -> Response {
    let Some(s) = session(&state, &headers).await else {
        return to_signin();
    };
    let store = &state.store;
    let offset = q.offset.unwrap_or(0).clamp(0, i64::MAX / 2);
    let agents = store.list_agents(100, 0).await;
    let migrations = store.list_migrations(None, MIGRATIONS_PAGE, offset).await;
    let runs = store
        .all_active_runs(crate::store::now_ms() - live::JUST_ENDED_MS, 50)
        .await;
    // Each migration's last run, in one query.
    let mut last = Vec::new();
    let mut last_failed = None;
    if let Ok((_, ms)) = &migrations {
        let ids: Vec<String> = ms.iter().map(|m| m.id.clone()).collect();
        let mut runs = match store.last_runs(&ids).await {
            Ok(runs) => runs,
            Err(e) => {
                last_failed = Some(e);
                Default::default()
            }
        };
        last = ids.iter().map(|id| runs.remove(id)).collect();
    }
    let body = html! {
        h1 { "Overview" }
        h2 { "Agents" }
        @match &agents {
            Err(e) => (error_box(e.code.id(), &e.message())),
            Ok((n, list)) => {
                p.muted { (n) " registered" }
                table {
                    thead { tr { th { "Name" } th { "State" } th { "Version" } th { "Last heartbeat" } } }
                    tbody {
                        @for a in list {
                            tr data-agent=(a.id) {
                                td { (a.name) }
                                td class=(tone(&a.state.code)) {
                                    a.code href=(format!("/codes/{}", a.state.code)) { (a.state.code) } " " (a.state.name)
                                }
                                td { (a.version) }
                                td { (when(a.last_seen_ms)) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Job runs going on" }
        p.muted { "And those that ended in the last minute. A copy's progress is against what its migration's last scan found to migrate (or what the copy has found, if more); other commands' against what they have found so far." }
        @match &runs {
            Err(e) => (error_box(e.code.id(), &e.message())),
            Ok(list) => {
                table data-live {
                    thead { tr { th { "Migration" } th { "Command" } th { "Status" } th { "Files" } th { "Bytes" } th { "Rate" } th { "Progress" } th { "Time left" } } }
                    tbody {
                        @if list.is_empty() {
                            tr { td.muted colspan="8" { "No job run is going on." } }
                        }
                        @for r in list {
                            @let row = live::Row::of(r);
                            tr data-run=(r.id) {
                                td { a.code href=(format!("/migrations/{}", row.migration)) title=(row.migration) { (short(&row.migration)) } }
                                td { (row.command) } td { (row.status) }
                                td { (row.files) } td { (row.bytes) } td { (row.rate) }
                                td {
                                    @if row.found > 0 {
                                        progress max=(row.found) value=(row.done) aria-label=(format!("{} done", row.percent)) {}
                                        " " (row.percent)
                                    }
                                }
                                td { (row.left) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Migrations" }
        p { a href="/migrations/new" { "New migration" } }
        @if let Some(e) = &last_failed { (error_box(e.code.id(), &e.message())) }
        @match &migrations {
            Err(e) => (error_box(e.code.id(), &e.message())),
            Ok((n, list)) => {
                p.muted data-migrations=(n) {
                    (n) " in all, oldest first"
                    @if !list.is_empty() { "; " (offset + 1) "-" (offset + list.len() as i64) " shown" }
                }
                table {
                    thead { tr { th { "Migration" } th { "Source" } th { "Target" } th { "Last run" } } }
                    tbody {
                        @for (m, run) in list.iter().zip(&last) {
                            tr data-migration=(m.id) {
                                td { a.code href=(format!("/migrations/{}", m.id)) { (m.id) } }
                                td { (m.source_path) }
                                td { (m.target_path) }
                                td {
                                    @match run {
                                        Some(r) => {
                                            span class=(tone(&r.status.code)) {
                                                a.code href=(format!("/codes/{}", r.status.code)) { (r.status.code) }
                                                " " (r.status.name)
                                            }
                                        }
                                        None => span.muted { "none yet" },
                                    }
                                }
                            }
                        }
                    }
                }
                nav aria-label="Pages of migrations" {
                    @if offset > 0 {
                        a rel="prev" href=(format!("/?offset={}", (offset - MIGRATIONS_PAGE).max(0))) { "Previous" } " "
                    }
                    @if offset + MIGRATIONS_PAGE < *n {
                        a rel="next" href=(format!("/?offset={}", offset + MIGRATIONS_PAGE)) { "Next" }
                    }
                }
            }
        }
    };
    page("Overview", Some(&s), body)
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignIn {
    token: String,
}

async fn signin_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if session(&state, &headers).await.is_some() {
        return Redirect::to("/").into_response();
    }
    page("Sign in", None, signin_form(None))
}

fn signin_form(error: Option<(&str, &str)>) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some((code, message)) = error { (error_box(code, message)) }
        form.stack method="post" action="/signin" {
            label for="token" { "Token (" code { "godwit token create --role operator" } " makes one)" }
            textarea id="token" name="token" rows="4" required autocomplete="off" spellcheck="false" {}
            div { button type="submit" { "Sign in" } }
        }
    }
}

/// Takes the token as the API would; keeps it in the session cookie.
async fn signin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    if !same_origin(&headers) {
        return refused_origin();
    }
    let token = form.token.trim();
    let checked = match state.secret.verify(token) {
        Ok(claims) => crate::auth::still_valid(&state, &claims)
            .await
            .map(|()| claims),
        Err(e) => Err(e),
    };
    let claims = match checked {
        Ok(c) if c.role != crate::Role::Agent => c,
        Ok(_) => {
            let e = ApiError::new(Code::HTTP_FORBIDDEN, &[]);
            return with_status(
                StatusCode::FORBIDDEN,
                page(
                    "Sign in",
                    None,
                    signin_form(Some((
                        e.code.id(),
                        "An agent's token cannot sign in to the dashboard; use a person's (admin, operator, viewer).",
                    ))),
                ),
            );
        }
        Err(e) => {
            return with_status(
                StatusCode::UNAUTHORIZED,
                page("Sign in", None, signin_form(Some((e.code.id(), &said(&e))))),
            );
        }
    };
    let secure = if headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v == "https")
    {
        "; Secure"
    } else {
        ""
    };
    let ttl = claims
        .exp
        .saturating_sub(u64::try_from(crate::store::now_ms() / 1000).unwrap_or(0));
    let cookie =
        format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}");
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// An API error's message, as the API's answer gives it.
fn said(e: &ApiError) -> String {
    e.message.clone().unwrap_or_else(|| {
        let params: Vec<(&str, &str)> = e
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        e.code.render(&params)
    })
}

/// A page answering a request the API's rules refused: the refusal's status, and its code
/// kept for the audit log.
fn refused(e: &ApiError, r: Response) -> Response {
    let mut r = with_status(e.status(), r);
    r.extensions_mut().insert(crate::error::Outcome(e.code));
    r
}

fn with_status(status: StatusCode, mut r: Response) -> Response {
    *r.status_mut() = status;
    r
}

#[derive(Debug, Deserialize)]
pub(crate) struct Csrf {
    csrf: String,
}

async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Csrf>,
) -> Response {
    if let Err(answer) = form_session(&state, &headers, &form.csrf).await {
        return answer;
    }
    let mut r = to_signin();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("godwit_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// The session a form was sent in, once the form is checked: signed in, from a page of this
/// origin, with the session's CSRF token; else the answer to send instead (the sign-in page,
/// or the refusal).
pub(crate) async fn form_session(
    state: &AppState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Session, Response> {
    let Some(s) = session(state, headers).await else {
        return Err(to_signin());
    };
    if !same_origin(headers) || csrf != s.csrf {
        return Err(refused_origin());
    }
    Ok(s)
}

/// A form posted from another site, or without the session's CSRF token.
fn refused_origin() -> Response {
    let e = ApiError::new(Code::HTTP_FORBIDDEN, &[]);
    with_status(
        StatusCode::FORBIDDEN,
        page(
            "Refused",
            None,
            error_box(
                e.code.id(),
                "This form did not come from this dashboard (a missing or wrong CSRF token, or another origin); reload the page and try again.",
            ),
        ),
    )
}

/// A POST must come from a page of this origin: its Origin header (or, without one, its
/// Referer) names the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok());
    from.is_some_and(|f| {
        let rest = f.split_once("://").map_or("", |(_, r)| r);
        rest.split('/').next() == Some(host)
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct Search {
    q: Option<String>,
}

async fn codes(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Response {
    let Some(s) = session(&state, &headers).await else {
        return to_signin();
    };
    let q = search.q.unwrap_or_default();
    let folded = q.trim().to_ascii_lowercase();
    let found: Vec<Code> = Code::all()
        .filter(|c| {
            folded.is_empty()
                || c.id().to_ascii_lowercase().contains(&folded)
                || c.name().to_ascii_lowercase().contains(&folded)
        })
        .take(200)
        .collect();
    let body = html! {
        h1 { "Codes" }
        form method="get" action="/codes" role="search" {
            label for="q" { "Number or name" }
            input type="search" id="q" name="q" value=(q) autofocus;
            button type="submit" { "Search" }
        }
        p.muted { (found.len()) " shown" @if found.len() == 200 { " (the first 200)" } }
        table {
            thead { tr { th { "Code" } th { "Name" } th { "Message" } } }
            tbody {
                @for c in &found {
                    tr {
                        td { a.code href=(format!("/codes/{}", c.id())) { (c.id()) } }
                        td.code { (c.name()) }
                        td.wrap { (c.info().message) }
                    }
                }
            }
        }
    };
    page("Codes", Some(&s), body)
}

async fn code_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let Some(s) = session(&state, &headers).await else {
        return to_signin();
    };
    let Ok(c) = Code::lookup(&code) else {
        let e = ApiError::new(Code::HTTP_NOT_FOUND, &[]);
        return with_status(
            StatusCode::NOT_FOUND,
            page(
                "No such code",
                Some(&s),
                error_box(
                    e.code.id(),
                    &format!("No code {code} in the catalog; search for it by number or name."),
                ),
            ),
        );
    };
    let i = c.info();
    let body = html! {
        h1 { span.code { (i.id) } " " (i.name) }
        p { (i.message) }
        h2 { "What it means" }
        p { (i.description) }
        h2 { "What to do" }
        p { (i.remediation) }
        p.muted {
            "Kind: " (format!("{:?}", i.kind).to_lowercase())
            @if let Some(h) = i.http_status { " · HTTP " (h) }
            @if i.retryable { " · running it again may work" }
        }
    };
    page(i.name, Some(&s), body)
}

async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = if format!("/assets/{name}") == *CSS_PATH {
        (CSS, "text/css; charset=utf-8")
    } else if format!("/assets/{name}") == *JS_PATH {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return ApiError::new(Code::HTTP_NOT_FOUND, &[]).into_response();
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            // The name changes with the content: cached for a year, never asked again.
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
