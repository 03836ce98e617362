//! The API's error model: every answer that is not 2xx carries a catalog code, and its HTTP
//! status is the one the catalog gives that code.
//!
//! The body is `{"error_code","error_name","error_msg","error_param","details"}`: the code as
//! people write it, its symbolic name, the message with its parameters filled in, the
//! parameters themselves, and what else helps (the remediation, a field name).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use godwit_codes::Code;
use serde::Serialize;

/// A failure in the control plane's domain, its store and its rules: a catalog code and its
/// parameters (800-822 for the store's own failures, a resource's codes for duplicates, the
/// state rules' 650-698). It knows nothing of HTTP: the API answers it with the status the
/// catalog gives the code, here in one place (`From<DomainError> for ApiError`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.message())]
pub struct DomainError {
    pub code: Code,
    pub params: Vec<(String, String)>,
    /// More words for the person reading it, when the code's remediation is not enough.
    pub details: Option<String>,
}

impl DomainError {
    pub fn new(code: Code, params: &[(&str, &str)]) -> Self {
        DomainError {
            code,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            details: None,
        }
    }

    /// Nothing of `kind` with `id` (800).
    pub fn not_found(kind: &str, id: &str) -> Self {
        DomainError::new(
            Code::DB_ERR_GET_DOC_NOT_FOUND,
            &[("kind", kind), ("id", id)],
        )
    }

    /// 605 (422): a request whose content is not acceptable, and why.
    pub fn invalid(reason: &str) -> Self {
        DomainError::new(Code::ERR_JSON_MARSHAL_UNMARSHAL, &[("reason", reason)])
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    pub fn is_not_found(&self) -> bool {
        self.code == Code::DB_ERR_GET_DOC_NOT_FOUND
    }

    /// The code's message with the parameters filled in.
    pub fn message(&self) -> String {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.code.render(&params)
    }
}

/// An API failure: a catalog code and the parameters of its message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    pub params: Vec<(String, String)>,
    /// Extra words for the person reading it; the code's remediation when None.
    pub details: Option<String>,
    /// Seconds until a retry may work (429).
    pub retry_after: Option<u64>,
    /// The message when it was rendered already (an engine error).
    pub message: Option<String>,
    /// The HTTP status, for a code the catalog gives none (an agent's job error an API
    /// request ran into).
    pub status: Option<StatusCode>,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The catalog code: `642`, `HTTP404`.
    pub error_code: String,
    /// The code's symbolic name.
    pub error_name: String,
    /// The message, with its parameters filled in.
    pub error_msg: String,
    /// The message's parameters, in the order the message names them (seed 003's shape).
    pub error_param: Vec<String>,
    /// The same parameters by name, for scripts.
    #[schema(value_type = Object)]
    pub error_params: serde_json::Map<String, serde_json::Value>,
    /// What to do about it: one entry with the code and the advice (seed 003's shape).
    pub details: Vec<ErrorDetail>,
}

/// One entry of an error's `details`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub error_code: String,
    pub error_msg: String,
}

/// `params` in the order their placeholders appear in `template` (`{name}`), the others after.
pub(crate) fn in_message_order(template: &str, params: &[(String, String)]) -> Vec<String> {
    let mut order: Vec<usize> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        if let Some(i) = params.iter().position(|(k, _)| k == name)
            && !order.contains(&i)
        {
            order.push(i);
        }
        rest = &after[close + 1..];
    }
    for i in 0..params.len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    order.into_iter().map(|i| params[i].1.clone()).collect()
}

impl ApiError {
    pub fn new(code: Code, params: &[(&str, &str)]) -> Self {
        DomainError::new(code, params).into()
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// The HTTP status the catalog gives the code (500 for a code without one: a bug).
    pub fn status(&self) -> StatusCode {
        if let Some(status) = self.status {
            return status;
        }
        self.code
            .info()
            .http_status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn body(&self) -> ErrorBody {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        ErrorBody {
            error_code: self.code.id().to_string(),
            error_name: self.code.name().to_string(),
            error_msg: self
                .message
                .clone()
                .unwrap_or_else(|| self.code.render(&params)),
            error_param: in_message_order(self.code.info().message, &self.params),
            error_params: self
                .params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
            details: vec![ErrorDetail {
                error_code: self.code.id().to_string(),
                error_msg: self
                    .details
                    .clone()
                    .unwrap_or_else(|| self.code.info().remediation.to_string()),
            }],
        }
    }

    /// 404 for a route or resource that does not exist.
    pub fn not_found(kind: &str, id: &str) -> Self {
        ApiError::new(
            Code::DB_ERR_GET_DOC_NOT_FOUND,
            &[("kind", kind), ("id", id)],
        )
    }

    /// 422 for a request whose JSON is well formed but whose content is not acceptable.
    pub fn invalid(reason: impl Into<String>) -> Self {
        ApiError::new(
            Code::ERR_JSON_MARSHAL_UNMARSHAL,
            &[("reason", &reason.into())],
        )
    }
}

/// The code an error answer carries, kept with the response for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Outcome(pub Code);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        // For the audit log, which records the code an answer carried.
        response.extensions_mut().insert(Outcome(self.code));
        if let Some(secs) = self.retry_after
            && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError {
            code: e.code,
            params: e.params,
            details: e.details,
            retry_after: None,
            message: None,
            status: None,
        }
    }
}

impl From<godwit_spec::JobError> for ApiError {
    fn from(e: godwit_spec::JobError) -> Self {
        let mut a = ApiError::new(e.code, &[]);
        a.message = Some(e.message);
        a
    }
}
