//! The overview's live part: the job runs going on, as server-sent events every two seconds,
//! drawn by assets/app.js. Each event is what the API's job runs say, in the page's words.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::AppState;
use crate::records::JobRun;

/// A job run as the overview's table shows it.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    pub id: String,
    pub migration: String,
    pub command: String,
    pub status: String,
    pub files: String,
    pub bytes: String,
    pub rate: String,
    /// Bytes done and to do (a copy: at least its migration's last scan's bytes to migrate;
    /// else what the run has found so far): the progress bar (none before anything is known).
    pub done: i64,
    pub found: i64,
    /// "42%" of that, or empty.
    pub percent: String,
    /// About how long is left of that at the run's rate, "ended", or empty.
    pub left: String,
}

impl Row {
    pub fn of(r: &JobRun) -> Row {
        // A run that succeeded did all it found: its bar is full.
        let found = if r.state == godwit_codes::State::Succeeded {
            r.bytes_found.max(r.bytes).max(0)
        } else {
            r.bytes_found.max(0)
        };
        Row {
            id: r.id.clone(),
            migration: r.migration_id.clone(),
            command: r.command.as_str().to_string(),
            status: format!("{} {}", r.status.code, r.status.name),
            files: r.files.to_string(),
            bytes: bytes(r.bytes.max(0) as f64),
            rate: format!("{}/s", bytes(r.bytes_per_second.max(0.0))),
            done: r.bytes.max(0),
            found,
            percent: if found > 0 {
                format!("{}%", (r.bytes.max(0) * 100 / found).min(100))
            } else {
                String::new()
            },
            left: if !crate::records::is_active(r.state) {
                "ended".into()
            } else if r.bytes_per_second > 0.0 && r.bytes_found > r.bytes {
                format!(
                    "about {}",
                    seconds((r.bytes_found - r.bytes) as f64 / r.bytes_per_second)
                )
            } else {
                String::new()
            },
        }
    }
}

/// `s` seconds as people say them: 45 s, 12 min, 3.5 h, 2.0 days.
pub(crate) fn seconds(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86_400.0)
    }
}

pub(crate) fn bytes(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// How long a run that ended stays on the overview, with how it ended.
pub(crate) const JUST_ENDED_MS: i64 = 60_000;

/// `GET /ui/live`: the running job runs now and every two seconds, while the session lasts.
pub(crate) async fn runs(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if super::session(&state, &headers).await.is_none() {
        return super::to_signin();
    }
    let stream = futures::stream::unfold(
        (state, headers, true),
        |(state, headers, first)| async move {
            if !first {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            // A session revoked or expired meanwhile ends the stream.
            super::session(&state, &headers).await?;
            let rows: Vec<Row> = state
                .store
                .all_active_runs(crate::store::now_ms() - JUST_ENDED_MS, 50)
                .await
                .map(|runs| runs.iter().map(Row::of).collect())
                .unwrap_or_default();
            let data = serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into());
            let event: Result<Event, Infallible> = Ok(Event::default().event("runs").data(data));
            Some((event, (state, headers, false)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
