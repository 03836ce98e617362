//! A migration's page: its runs with their status codes, the files of a run by status code,
//! and that run's copy log, filtered by code and path, a page at a time, or downloaded whole
//! as CSV (streamed, so a log of millions of records costs no memory).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use godwit_codes::Code;
use maud::html;
use serde::Deserialize;

use super::{error_box, page, session, to_signin, tone, when, with_status};
use crate::AppState;
use crate::error::DomainError;

/// Records a page of the copy log shows.
const PAGE: i64 = 100;
/// Records read at a time for the CSV download.
const CSV_CHUNK: i64 = 1000;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogQuery {
    run: Option<String>,
    /// Why the last command was refused: its code and message (after a redirect).
    refused: Option<String>,
    code: Option<String>,
    path: Option<String>,
    offset: Option<i64>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    let Some(s) = session(&state, &headers).await else {
        return to_signin();
    };
    let store = &state.store;
    let m = match store.get_migration(&id).await {
        Ok(m) => m,
        Err(e) => return failed_page(&s, &e),
    };
    let runs = match store.list_runs(&id, 50, 0).await {
        Ok((_, runs)) => runs,
        Err(e) => return failed_page(&s, &e),
    };
    let chosen = match non_empty(&q.run) {
        Some(run) => runs.iter().find(|r| r.id == run),
        None => runs.first(),
    };
    let (code, path) = (non_empty(&q.code), non_empty(&q.path));
    let offset = q.offset.unwrap_or(0).clamp(0, i64::MAX / 2);
    let log = match chosen {
        Some(r) => Some(store.copylog(&r.id, code, path, PAGE, offset).await),
        None => None,
    };
    let counts: Vec<(String, u64)> = chosen
        .and_then(|r| r.counts.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let link = |run: &str, code: Option<&str>, path: Option<&str>, offset: i64| {
        let mut url = format!("/migrations/{id}?run={run}");
        if let Some(c) = code {
            url.push_str(&format!("&code={}", godwit_spec::location::query_value(c)));
        }
        if let Some(p) = path {
            url.push_str(&format!("&path={}", godwit_spec::location::query_value(p)));
        }
        if offset > 0 {
            url.push_str(&format!("&offset={offset}"));
        }
        url
    };
    let operator = matches!(s.role, crate::Role::Admin | crate::Role::Operator);
    let body = html! {
        @if let Some(e) = &q.refused { (error_box(e.split(' ').next().unwrap_or(""), e.split_once(' ').map_or("", |x| x.1))) }
        h1 { "Migration " span.code { (m.id) } }
        p {
            "From " span.code { (m.source_path) } " (endpoint " span.code { (m.source_endpoint) } ") to "
            span.code { (m.target_path) } " (endpoint " span.code { (m.target_endpoint) } ")"
            @if let Some(a) = &m.agent_id { ", run by agent " span.code { (a) } }
        }
        @if operator {
            h2 { "Commands" }
            div.commands {
                @for (command, label) in [("scan", "Start a scan"), ("copy", "Start a copy"), ("sync", "Start a true-up")] {
                    form method="post" action=(format!("/migrations/{id}/command")) {
                        input type="hidden" name="csrf" value=(s.csrf);
                        input type="hidden" name="command" value=(command);
                        input type="hidden" name="verb" value="start";
                        button type="submit" data-command=(command) { (label) }
                    }
                }
                @if let Some(r) = runs.first().filter(|r| !matches!(r.state, godwit_codes::State::Succeeded | godwit_codes::State::Failed | godwit_codes::State::Stopped)) {
                    @for action in ["stop", "pause", "resume"] {
                        form method="post" action=(format!("/migrations/{id}/command")) {
                            input type="hidden" name="csrf" value=(s.csrf);
                            input type="hidden" name="command" value=(r.command.as_str());
                            input type="hidden" name="verb" value=(action);
                            button type="submit" data-action=(action) { (capitalized(action)) " the " (r.command.as_str()) }
                        }
                    }
                }
            }
        }
        h2 { "Runs" }
        @if runs.is_empty() {
            p.muted { "No run yet." }
        } @else {
            table {
                thead { tr { th { "Run" } th { "Command" } th { "Status" } th { "Files" } th { "Bytes" } th { "Failed" } th { "Started" } th { "Ended" } } }
                tbody {
                    @for r in &runs {
                        tr data-run=(r.id) {
                            td { a.code href=(link(&r.id, None, None, 0)) { (r.id) } }
                            td { (r.command.as_str()) }
                            td class=(tone(&r.status.code)) {
                                a.code href=(format!("/codes/{}", r.status.code)) { (r.status.code) } " " (r.status.name)
                                @if let Some(e) = &r.error {
                                    " · " a.code href=(format!("/codes/{}", e.code)) { (e.code) } " " (e.name)
                                }
                            }
                            td { (r.files) } td { (r.bytes) } td { (r.files_failed) }
                            td { (when(r.started_ms)) } td { (when(r.ended_ms)) }
                        }
                    }
                }
            }
        }
        @if let Some(r) = chosen {
            h2 { "Files by status code, run " span.code { (r.id) } }
            @if counts.is_empty() {
                p.muted { "No file recorded yet." }
            } @else {
                table data-counts {
                    thead { tr { th { "Code" } th { "Name" } th { "Files" } } }
                    tbody {
                        @for (c, n) in &counts {
                            tr {
                                td class=(tone(c)) { a.code href=(link(&r.id, Some(c), None, 0)) { (c) } }
                                td.code { (Code::lookup(c).map(|k| k.name()).unwrap_or("")) }
                                td { (n) }
                            }
                        }
                    }
                }
            }
            h2 { "Copy log" }
            form method="get" action=(format!("/migrations/{id}")) role="search" {
                input type="hidden" name="run" value=(r.id);
                label for="code" { "Status code " }
                select id="code" name="code" {
                    option value="" { "any" }
                    @for (c, _) in &counts {
                        option value=(c) selected[code == Some(c.as_str())] { (c) }
                    }
                }
                " "
                label for="path" { "Path holds " }
                input type="text" id="path" name="path" value=(path.unwrap_or(""));
                " "
                button type="submit" { "Filter" }
                " "
                a href=(csv_link(&r.id, code, path)) download { "Download as CSV" }
            }
            @match &log {
                Some(Ok((total, records))) => {
                    p.muted data-total=(total) {
                        (total) " records"
                        @if *total > 0 { "; " (offset + 1) "-" (offset + records.len() as i64) " shown" }
                    }
                    table data-copylog {
                        thead { tr { th { "Path" } th { "Code" } th { "Message" } th { "Size" } } }
                        tbody {
                            @for rec in records {
                                tr {
                                    td.wrap.code { (rec.path) }
                                    td class=(tone(&rec.code)) { a.code href=(format!("/codes/{}", rec.code)) { (rec.code) } }
                                    td.wrap { (rec.message) }
                                    td { (rec.size) }
                                }
                            }
                        }
                    }
                    nav aria-label="Pages" {
                        @if offset > 0 {
                            a rel="prev" href=(link(&r.id, code, path, (offset - PAGE).max(0))) { "Previous" } " "
                        }
                        @if offset + PAGE < *total {
                            a rel="next" href=(link(&r.id, code, path, offset + PAGE)) { "Next" }
                        }
                    }
                }
                Some(Err(e)) => (error_box(e.code.id(), &e.message())),
                None => {}
            }
        }
    };
    page(&format!("Migration {id}"), Some(&s), body)
}

fn failed_page(s: &super::Session, e: &DomainError) -> Response {
    let status = crate::error::ApiError::from(e.clone()).status();
    with_status(
        status,
        page("Not found", Some(s), error_box(e.code.id(), &e.message())),
    )
}

fn csv_link(run: &str, code: Option<&str>, path: Option<&str>) -> String {
    let mut url = format!("/runs/{run}/copylog.csv");
    let mut sep = '?';
    if let Some(c) = code {
        url.push_str(&format!(
            "{sep}code={}",
            godwit_spec::location::query_value(c)
        ));
        sep = '&';
    }
    if let Some(p) = path {
        url.push_str(&format!(
            "{sep}path={}",
            godwit_spec::location::query_value(p)
        ));
    }
    url
}

/// `GET /runs/{id}/copylog.csv`: the run's copy log (filtered as the page is), as CSV.
pub(crate) async fn csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(run): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    if session(&state, &headers).await.is_none() {
        return to_signin();
    }
    if let Err(e) = state.store.get_run(&run).await {
        return crate::error::ApiError::from(e).into_response();
    }
    let code = non_empty(&q.code).map(str::to_string);
    let path = non_empty(&q.path).map(str::to_string);
    let filename = format!("copylog-{run}.csv");
    let start = (state, run, code, path, 0_i64, true);
    let stream = futures::stream::unfold(
        start,
        |(state, run, code, path, offset, first)| async move {
            let mut out = if first {
                String::from("path,code,status,message,size\n")
            } else {
                String::new()
            };
            let page = state
                .store
                .copylog(&run, code.as_deref(), path.as_deref(), CSV_CHUNK, offset)
                .await;
            let records = match page {
                Ok((_, records)) => records,
                Err(_) if !first => return None,
                Err(e) => {
                    out.push_str(&format!("# {}: {}\n", e.code.id(), e.message()));
                    Vec::new()
                }
            };
            if records.is_empty() && !first {
                return None;
            }
            for r in &records {
                let name = Code::lookup(&r.code).map(|c| c.name()).unwrap_or("");
                out.push_str(&format!(
                    "{},{},{},{},{}\n",
                    field(&r.path),
                    field(&r.code),
                    field(name),
                    field(&r.message),
                    r.size
                ));
            }
            let next = offset + records.len() as i64;
            let ended = (records.len() as i64) < CSV_CHUNK;
            // After a short page nothing more comes; one more empty round ends the stream.
            let state_next = (
                state,
                run,
                code,
                path,
                if ended { i64::MAX / 2 } else { next },
                false,
            );
            Some((Ok::<_, std::convert::Infallible>(out), state_next))
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A CSV field: quoted when it holds a comma, a quote or a line break; a leading `=`, `+`,
/// `-` or `@` is prefixed with `'` so that a spreadsheet does not run it as a formula.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn capitalized(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommandForm {
    csrf: String,
    command: String,
    /// start, stop, pause, resume (not `action`: a field of that name hides the form's own
    /// `action` from scripts).
    verb: String,
}

/// `POST /migrations/{id}/command`: start, stop, pause or resume a command, as the API's
/// `POST /v1/migrations/{id}/commands` does; back to the page, with the refusal's code and
/// words when the rules refuse it.
pub(crate) async fn command(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Form(form): axum::extract::Form<CommandForm>,
) -> Response {
    let Some(s) = session(&state, &headers).await else {
        return to_signin();
    };
    if !super::same_origin(&headers) || form.csrf != s.csrf {
        return super::refused_origin();
    }
    let req = crate::api::migrations::CommandRequest {
        command: form.command,
        action: form.verb,
        options: None,
    };
    let back = format!("/migrations/{}", godwit_spec::location::query_value(&id));
    match crate::api::migrations::carry_out(&state, &s.caller, &id, req).await {
        Ok(run) => axum::response::Redirect::to(&format!("{back}?run={}", run.id)).into_response(),
        Err(e) => {
            let why = format!("{} {}", e.code.id(), super::said(&e));
            axum::response::Redirect::to(&format!(
                "{back}?refused={}",
                godwit_spec::location::query_value(&why)
            ))
            .into_response()
        }
    }
}
