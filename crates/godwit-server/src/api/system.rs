//! `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use godwit_codes::Code;
use utoipa::OpenApi;

use crate::AppState;
use crate::error::ApiError;

/// Requests served, by route and status, for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

/// Counts every request by its route pattern (not its path: ids would make the set grow).
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    tracing::debug!(method = %method, route = %route, status, "request");
    *state
        .metrics
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry((method, route, status))
        .or_default() += 1;
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
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-resource-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
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

/// Counters in Prometheus' text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::from(
        "# HELP godwit_http_requests_total HTTP requests served, by method, route and status.\n\
         # TYPE godwit_http_requests_total counter\n",
    );
    for ((method, route, status), n) in state
        .metrics
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        out.push_str(&format!(
            "godwit_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP godwit_store_ready Whether the store answers (1) or not (0).\n\
         # TYPE godwit_store_ready gauge\ngodwit_store_ready {}\n",
        u8::from(state.store.ready().await)
    ));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}

/// The OpenAPI 3 document of this API.
pub async fn openapi() -> Response {
    axum::Json(super::ApiDoc::openapi()).into_response()
}
