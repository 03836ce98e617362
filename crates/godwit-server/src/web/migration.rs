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
/// Runs a page of the migration's runs shows.
const RUNS_PAGE: i64 = 50;
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
    /// Where the review's list of deletions is shown from.
    review_offset: Option<i64>,
    /// Where the list of runs starts (newest first).
    runs_offset: Option<i64>,
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
    let runs_offset = q.runs_offset.unwrap_or(0).clamp(0, i64::MAX / 2);
    let (run_count, runs) = match store.list_runs(&id, RUNS_PAGE, runs_offset).await {
        Ok(found) => found,
        Err(e) => return failed_page(&s, &e),
    };
    // The run asked for, on this page of runs or not (a link to an older one); else the newest.
    let asked = match non_empty(&q.run) {
        Some(run) if !runs.iter().any(|r| r.id == run) => store
            .get_run(run)
            .await
            .ok()
            .filter(|r| r.migration_id == id),
        _ => None,
    };
    let chosen = match non_empty(&q.run) {
        Some(run) => runs.iter().find(|r| r.id == run).or(asked.as_ref()),
        None if runs_offset == 0 => runs.first(),
        None => None,
    };
    // What goes on now (the newest run, whatever page of runs is shown).
    let active = store.active_runs(&id).await.unwrap_or_default();
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
    // A true-up waiting for a person: what it would delete and could not read.
    let paused = active
        .iter()
        .find(|r| crate::api::migrations::awaits_review(r));
    let review_offset = q.review_offset.unwrap_or(0).clamp(0, i64::MAX / 2);
    let review = match paused {
        Some(r) => Some((
            r,
            crate::api::migrations::review_of(&state, r, "deletes", PAGE, review_offset).await,
            crate::api::migrations::review_of(&state, r, "unreadable", PAGE, 0).await,
        )),
        None => None,
    };
    let samples = match chosen {
        Some(r) => {
            let mut samples = store.samples(&r.id).await.unwrap_or_default();
            // From the run's start, when nothing was done yet.
            if let (Some(start), Some(first)) = (r.started_ms, samples.first())
                && start < first.at_ms
            {
                let origin = crate::store::Sample {
                    at_ms: start,
                    files: 0,
                    bytes: 0,
                    bytes_per_second: 0.0,
                };
                samples.insert(0, origin);
            }
            samples
        }
        None => Vec::new(),
    };
    let scan_report = match chosen.filter(|r| r.command == godwit_spec::CommandKind::Scan) {
        Some(r) => store
            .run_report(&r.id)
            .await
            .ok()
            .flatten()
            .and_then(|mut v| v.get_mut("scan").map(serde_json::Value::take)),
        None => None,
    };
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
                @if let Some(r) = active.last() {
                    // A true-up paused for review goes on by its confirmation, below.
                    @for action in ["stop", "pause", "resume"].into_iter().filter(|a| *a != "resume" || paused.is_none()) {
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
        @if let Some((r, deletes, unreadable)) = &review {
            (review_section(&id, r, deletes, unreadable, review_offset, operator.then_some(s.csrf.as_str())))
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
                            td { (r.files) } td title=(format!("{} bytes", r.bytes)) { (super::live::bytes(r.bytes.max(0) as f64)) } td { (r.files_failed) }
                            td { (when(r.started_ms)) } td { (when(r.ended_ms)) }
                        }
                    }
                }
            }
            nav aria-label="Pages of runs" {
                p.muted data-runs=(run_count) {
                    (run_count) " runs, newest first; " (runs_offset + 1) "-" (runs_offset + runs.len() as i64) " shown "
                    @if runs_offset > 0 {
                        a rel="prev" href=(format!("/migrations/{id}?runs_offset={}", (runs_offset - RUNS_PAGE).max(0))) { "Newer" } " "
                    }
                    @if runs_offset + RUNS_PAGE < run_count {
                        a rel="next" href=(format!("/migrations/{id}?runs_offset={}", runs_offset + RUNS_PAGE)) { "Older" }
                    }
                }
            }
        }
        @if let Some(r) = chosen {
            @if samples.len() >= 2 {
                h2 { "Throughput, run " span.code { (r.id) } }
                (throughput_chart(&samples))
            }
            @if let Some(scan) = &scan_report {
                (scan_section(scan))
            }
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

/// What a true-up paused for review would delete and could not read, and (for an operator,
/// `csrf` given) the button that carries out exactly the list shown.
fn review_section(
    id: &str,
    run: &crate::records::JobRun,
    deletes: &Result<crate::api::migrations::Review, crate::error::ApiError>,
    unreadable: &Result<crate::api::migrations::Review, crate::error::ApiError>,
    offset: i64,
    csrf: Option<&str>,
) -> maud::Markup {
    let why = run.error.as_ref();
    html! {
        section.review data-review=(run.id) {
            h2 { "Review before deleting" }
            @if let Some(e) = why {
                p class=(tone(&e.code)) {
                    a.code href=(format!("/codes/{}", e.code)) { (e.code) } " " (e.name)
                    @if let Some(m) = e.params.get("message").and_then(|m| m.as_str()) { ": " (m) }
                }
            }
            p {
                "The true-up " span.code { (run.id) } " found files at the target that are gone from "
                "the source and paused before deleting any. Nothing is deleted until it is confirmed; "
                "a file that comes back at the source before then is kept."
            }
            @match deletes {
                Err(e) => (error_box(e.code.id(), &super::said(e))),
                Ok(d) => {
                    @let complete = d.attempt.is_some() && d.expected == Some(d.count);
                    h3 { "Files it would delete" }
                    p.muted data-deletes=(d.count) {
                        (d.count) " files"
                        @if d.count > 0 { "; " (offset + 1) "-" (offset + d.items.len() as i64) " shown" }
                        @if !complete {
                            @if let Some(n) = d.expected { ", of " (n) ": the list is still arriving" }
                            @else { ": the agent has not sent its list yet" }
                        }
                    }
                    @if !d.items.is_empty() {
                        ul.paths data-deletes-list { @for p in &d.items { li.code { (p) } } }
                    }
                    nav aria-label="Pages of the list" {
                        @if offset > 0 {
                            a rel="prev" href=(format!("/migrations/{id}?review_offset={}", (offset - PAGE).max(0))) { "Previous" } " "
                        }
                        @if offset + PAGE < d.count {
                            a rel="next" href=(format!("/migrations/{id}?review_offset={}", offset + PAGE)) { "Next" }
                        }
                    }
                    @match unreadable {
                        Ok(u) if u.count > 0 => {
                            h3 { "Source folders it could not read" }
                            p.muted data-unreadable=(u.count) {
                                (u.count) " folders; what is under them is not taken for deleted"
                            }
                            ul.paths { @for p in &u.items { li.code { (p) } } }
                        }
                        Ok(_) => {}
                        Err(e) => (error_box(e.code.id(), &super::said(e))),
                    }
                    @if let (Some(csrf), Some(digest), true) = (csrf, &d.digest, complete) {
                        form method="post" action=(format!("/migrations/{id}/command")) {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="command" value="sync";
                            input type="hidden" name="verb" value="resume";
                            input type="hidden" name="reviewed" value=(digest);
                            button type="submit" data-confirm {
                                "Delete these " (d.count) " files at the target"
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The rate over a run, between each two samples of its progress, as an SVG chart.
fn throughput_chart(samples: &[crate::store::Sample]) -> maud::Markup {
    let (w, h, left, bottom) = (720.0_f64, 180.0_f64, 70.0_f64, 22.0_f64);
    let start = samples[0].at_ms;
    let span = (samples[samples.len() - 1].at_ms - start).max(1) as f64;
    // Each interval between two samples at its own rate: a step.
    let rates: Vec<(f64, f64, f64)> = samples
        .windows(2)
        .map(|p| {
            let secs = ((p[1].at_ms - p[0].at_ms).max(1) as f64) / 1000.0;
            let rate = ((p[1].bytes - p[0].bytes).max(0) as f64) / secs;
            (
                (p[0].at_ms - start) as f64,
                (p[1].at_ms - start) as f64,
                rate,
            )
        })
        .collect();
    let top = rates.iter().map(|r| r.2).fold(0.0, f64::max).max(1.0);
    let x = |t: f64| left + t / span * (w - left - 8.0);
    let y = |r: f64| 8.0 + (1.0 - r / top) * (h - bottom - 8.0);
    let points = rates
        .iter()
        .map(|(t0, t1, r)| format!("{:.1},{:.1} {:.1},{:.1}", x(*t0), y(*r), x(*t1), y(*r)))
        .collect::<Vec<_>>()
        .join(" ");
    let area = format!(
        "{:.1},{:.1} {points} {:.1},{:.1}",
        x(0.0),
        y(0.0),
        x(span),
        y(0.0)
    );
    let avg = (samples[samples.len() - 1].bytes - samples[0].bytes).max(0) as f64 / (span / 1000.0);
    let label = format!(
        "Throughput over {}: at most {}/s, {}/s on average",
        duration(span),
        super::live::bytes(top),
        super::live::bytes(avg)
    );
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(label) data-points=(rates.len()) {
                title { (label) }
                line x1=(left) y1=(y(0.0)) x2=(w - 8.0) y2=(y(0.0)) stroke="#d9dee3" {}
                line x1=(left) y1="8" x2=(left) y2=(y(0.0)) stroke="#d9dee3" {}
                text x=(left - 6.0) y="16" text-anchor="end" font-size="11" fill="#5b6670" { (super::live::bytes(top)) "/s" }
                text x=(left - 6.0) y=(y(0.0)) text-anchor="end" font-size="11" fill="#5b6670" { "0" }
                text x=(left) y=(h - 6.0) font-size="11" fill="#5b6670" { "0 s" }
                text x=(w - 8.0) y=(h - 6.0) text-anchor="end" font-size="11" fill="#5b6670" { (duration(span)) }
                polygon points=(area) fill="#1f6feb" fill-opacity="0.15" {}
                polyline points=(points) fill="none" stroke="#1f6feb" stroke-width="2" {}
            }
            figcaption.muted { (label) }
        }
    }
}

/// `ms` milliseconds as people say them.
fn duration(ms: f64) -> String {
    super::live::seconds(ms / 1000.0)
}

/// What a scan found: its totals, the sizes of the files (a bar a size class), and the files
/// that cannot be copied as they are, by code, with example paths.
fn scan_section(scan: &serde_json::Value) -> maud::Markup {
    let n = |k: &str| scan[k].as_u64().unwrap_or(0);
    let classes: Vec<(String, u64, u64)> = scan["size_histogram"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["up_to"].as_str().unwrap_or("").to_string(),
                        c["files"].as_u64().unwrap_or(0),
                        c["bytes"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let most = classes.iter().map(|c| c.1).max().unwrap_or(0).max(1);
    let problems: Vec<(&String, &serde_json::Value)> = scan["problems"]
        .as_object()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    html! {
        section data-scan-report {
            h2 { "Scan report" }
            p {
                (n("files")) " files in " (n("folders")) " folders, " (super::live::bytes(n("bytes") as f64)) "; "
                (n("files_to_migrate")) " files (" (super::live::bytes(n("bytes_to_migrate") as f64)) ") to migrate"
                @if n("excluded") > 0 { ", " (n("excluded")) " excluded" }
                "."
            }
            h3 { "Files by size" }
            table data-histogram {
                thead { tr { th { "Up to" } th { "Files" } th { "Bytes" } th { span.sr-only { "Share" } } } }
                tbody {
                    @for (up_to, files, bytes) in &classes {
                        tr {
                            td { (up_to) } td { (files) } td { (super::live::bytes(*bytes as f64)) }
                            td { meter min="0" max=(most) value=(files) aria-label=(format!("{files} files")) {} }
                        }
                    }
                }
            }
            h3 { "What cannot be copied as it is" }
            @if problems.is_empty() {
                p.muted data-problems="0" { "Nothing: every file the scan saw can be copied." }
            } @else {
                table data-problems=(problems.len()) {
                    thead { tr { th { "Code" } th { "Files" } th { "For example" } } }
                    tbody {
                        @for (code, p) in &problems {
                            tr {
                                td class=(tone(code)) {
                                    a.code href=(format!("/codes/{code}")) { (code) } " "
                                    span.code { (p["name"].as_str().unwrap_or("")) }
                                }
                                td { (p["count"].as_u64().unwrap_or(0)) }
                                td.wrap {
                                    @for e in p["examples"].as_array().into_iter().flatten().take(5) {
                                        span.code { (e.as_str().unwrap_or("")) } br;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
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
    /// The digest of the reviewed list, when the button confirms a paused true-up's.
    #[serde(default)]
    reviewed: Option<String>,
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
    let s = match super::form_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let req = crate::api::migrations::CommandRequest {
        command: form.command,
        action: form.verb,
        options: None,
        reviewed: form.reviewed,
    };
    let back = format!("/migrations/{}", godwit_spec::location::query_value(&id));
    match crate::api::migrations::carry_out(&state, &s.caller, &id, req).await {
        Ok(run) => axum::response::Redirect::to(&format!("{back}?run={}", run.id)).into_response(),
        Err(e) => {
            let why = format!("{} {}", e.code.id(), super::said(&e));
            let mut r = axum::response::Redirect::to(&format!(
                "{back}?refused={}",
                godwit_spec::location::query_value(&why)
            ))
            .into_response();
            // The audit log keeps the refusal's code, not the redirect's.
            r.extensions_mut().insert(crate::error::Outcome(e.code));
            r
        }
    }
}
