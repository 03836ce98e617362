//! `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use godwit_codes::Code;
use utoipa::OpenApi;

use tracing::Instrument as _;

use crate::error::ApiError;
use crate::{AppState, telemetry};

/// Each request: a span (method, route, and the token's subject once it is read) that the
/// handler's own events fall in, one log line when it is answered (status and duration), and
/// its count and duration in the metrics. The route is its pattern, not its path: ids would
/// make the set of labels grow. Never a header: a token or a credential is not logged.
pub async fn observe_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        subject = tracing::field::Empty
    );
    let started = std::time::Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    let ms = took.as_secs_f64() * 1000.0;
    // Probes and scrapes come every few seconds: at debug, not to drown the log.
    if matches!(route.as_str(), "/healthz" | "/readyz" | "/metrics") {
        span.in_scope(|| tracing::debug!(status, duration_ms = ms, "request"));
    } else {
        span.in_scope(|| tracing::info!(status, duration_ms = ms, "request"));
    }
    metrics::counter!(telemetry::REQUESTS, "method" => method, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(telemetry::REQUEST_SECONDS, "route" => route).record(took.as_secs_f64());
    response
}

/// The headers a service a browser may reach sends with every answer: no guessing of content
/// types, never inside a frame, nothing loaded by what it serves (it serves JSON and text), no
/// referrer, and no caching of answers that hold a company's data.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    // The dashboard's pages and assets set their own (web/mod.rs); the API's answers get these.
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, header::HeaderValue::from_static(value));
        }
    }
    response
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The store answers: the control plane can serve requests.
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "Ready", body = String),
    (status = 503, description = "The store does not answer", body = crate::error::ErrorBody)
))]
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    if state.store.ready().await {
        Ok("ready\n")
    } else {
        Err(ApiError::new(Code::HTTP_SERVICE_UNAVAILABLE, &[])
            .details("The store does not answer."))
    }
}

/// Counters, gauges and histograms in Prometheus' text format (names: docs/operations.md).
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let ready = state.store.ready().await;
    metrics::gauge!(telemetry::STORE_READY).set(f64::from(u8::from(ready)));
    if let Ok((agents, queued, running)) = state.store.gauges().await {
        for (code, name) in [(901, "active"), (900, "inactive"), (902, "deactivated")] {
            let n = agents
                .iter()
                .find(|(s, _)| *s == code)
                .map_or(0, |(_, n)| *n);
            metrics::gauge!(telemetry::AGENTS, "state" => name).set(n as f64);
        }
        metrics::gauge!(telemetry::QUEUED).set(queued as f64);
        metrics::gauge!(telemetry::RUNNING).set(running as f64);
    }
    metrics::gauge!(telemetry::CONNECTED).set(state.hub.here().len() as f64);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        telemetry::render(),
    )
        .into_response()
}

/// The OpenAPI 3 document of this API.
pub async fn openapi() -> Response {
    axum::Json(super::ApiDoc::openapi()).into_response()
}
