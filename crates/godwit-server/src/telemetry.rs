//! Metrics, with the `metrics` facade and a Prometheus text page: the control plane's at
//! `/metrics`, an agent's at `--metrics-listen`. Every name is listed, with its labels, in
//! docs/operations.md; the Grafana dashboard in docs/grafana-dashboard.json is built on them.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Files whose copy-log record reached the control plane, by migration and status code.
pub const FILES: &str = "godwit_files_total";
/// Bytes of those files, by migration and status code.
pub const BYTES: &str = "godwit_file_bytes_total";
/// Job runs that ended, by command and final state.
pub const RUNS: &str = "godwit_runs_total";
/// How long job runs took from start to end, by command.
pub const RUN_SECONDS: &str = "godwit_run_duration_seconds";
/// Errors by code: failed files (by their copy-log code) and failed runs (by the run's code).
pub const ERRORS: &str = "godwit_errors_total";
/// Agents by state (active, inactive, deactivated), when the page is read.
pub const AGENTS: &str = "godwit_agents";
/// Commands waiting for their agent (QUEUED), when the page is read.
pub const QUEUED: &str = "godwit_commands_queued";
/// Commands running (RUNNING), when the page is read.
pub const RUNNING: &str = "godwit_commands_running";
/// The rate a running command last reported, by migration (0 once it ends).
pub const RATE: &str = "godwit_transfer_bytes_per_second";
/// HTTP requests served, by method, route and status.
pub const REQUESTS: &str = "godwit_http_requests_total";
/// How long requests took, by route.
pub const REQUEST_SECONDS: &str = "godwit_http_request_duration_seconds";
/// How long the store took for each statement, by kind (select, insert, update, delete...).
pub const QUERY_SECONDS: &str = "godwit_store_query_seconds";
/// Whether the store answers.
pub const STORE_READY: &str = "godwit_store_ready";
/// Agents connected to this control plane now.
pub const CONNECTED: &str = "godwit_agents_connected";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// This process's recorder, installed the first time it is asked for. In a process that
/// already has another recorder, the handle renders an empty page.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let fast = [
            0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let runs = [
            1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 43_200.0, 86_400.0, 259_200.0,
        ];
        let mut builder = PrometheusBuilder::new();
        for (name, buckets) in [
            (RUN_SECONDS, &runs[..]),
            (REQUEST_SECONDS, &fast[..]),
            (QUERY_SECONDS, &fast[..]),
        ] {
            // Only an empty list of buckets is refused; these are not empty.
            builder = match builder.set_buckets_for_metric(Matcher::Full(name.into()), buckets) {
                Ok(b) => b,
                Err(_) => PrometheusBuilder::new(),
            };
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_ok() {
            describe();
        }
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        FILES,
        "Files recorded in copy logs, by migration and status code."
    );
    describe_counter!(BYTES, metrics::Unit::Bytes, "Bytes of those files.");
    describe_counter!(RUNS, "Job runs that ended, by command and final state.");
    describe_histogram!(RUN_SECONDS, metrics::Unit::Seconds, "Job run durations.");
    describe_counter!(ERRORS, "Failed files and failed runs, by code.");
    describe_gauge!(AGENTS, "Registered agents by state.");
    describe_gauge!(QUEUED, "Commands waiting for their agent.");
    describe_gauge!(RUNNING, "Commands running.");
    describe_gauge!(RATE, "Transfer rate a running command last reported.");
    describe_counter!(REQUESTS, "HTTP requests served.");
    describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "HTTP request durations."
    );
    describe_histogram!(
        QUERY_SECONDS,
        metrics::Unit::Seconds,
        "Store statement durations."
    );
    describe_gauge!(STORE_READY, "Whether the store answers (1) or not (0).");
    describe_gauge!(CONNECTED, "Agents connected to this control plane.");
}

/// The page: what is counted, in Prometheus' text format.
pub fn render() -> String {
    let h = handle();
    h.run_upkeep();
    h.render()
}

/// Serves the page alone at `/metrics` on `listener`: an agent's `--metrics-listen`.
pub async fn serve_page(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4",
                )],
                render(),
            )
        }),
    );
    axum::serve(listener, app).await
}

/// Times the store's statements from the events sqlx gives for each (target `sqlx::query`,
/// field `elapsed_secs`). Its own filter asks for those events at debug, whatever the log
/// level; the log shows them only when its filter asks too.
#[derive(Debug, Default)]
pub struct QueryTimer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for QueryTimer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut v = QueryFields::default();
        event.record(&mut v);
        if let Some(secs) = v.secs {
            metrics::histogram!(QUERY_SECONDS, "statement" => v.kind).record(secs);
        }
    }
}

/// The filter [`QueryTimer`] runs under.
pub fn query_timer_filter() -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::DEBUG)
}

#[derive(Debug, Default)]
struct QueryFields {
    secs: Option<f64>,
    kind: &'static str,
}

impl tracing::field::Visit for QueryFields {
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.secs = Some(value);
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "summary" {
            self.kind = statement_kind(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.kind = statement_kind(&format!("{value:?}"));
        }
    }
}

/// The statement's first word, from a fixed set (a label must not grow with the SQL).
fn statement_kind(summary: &str) -> &'static str {
    let first = summary
        .trim_start_matches(|c: char| c == '"' || c.is_whitespace())
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match first.as_str() {
        "select" => "select",
        "insert" => "insert",
        "update" => "update",
        "delete" => "delete",
        "with" => "with",
        "begin" => "begin",
        "commit" => "commit",
        "rollback" => "rollback",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn statements_are_labelled_by_their_first_word_only() {
        assert_eq!(super::statement_kind("SELECT * FROM agents …"), "select");
        assert_eq!(super::statement_kind("\"insert into copylog"), "insert");
        assert_eq!(super::statement_kind("PRAGMA foreign_keys"), "other");
        assert_eq!(super::statement_kind(""), "other");
    }
}
