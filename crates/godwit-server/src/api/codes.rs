//! `GET /v1/codes` and `GET /v1/codes/{code}`: the catalog, as `godwit explain` shows it.

use axum::Json;
use axum::extract::Path;
use godwit_codes::Code;

use super::{ApiQuery, Listing, Page};
use crate::auth::Caller;
use crate::error::ApiError;

/// Every code of the catalog, a page at a time.
#[utoipa::path(get, path = "/v1/codes", params(Page), security(("bearer" = [])), responses(
    (status = 200, description = "A page of the catalog", body = serde_json::Value),
    (status = 400, description = "limit or offset out of range", body = crate::error::ErrorBody),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody)
))]
pub async fn list_codes(
    _caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Listing<&'static godwit_codes::CodeInfo>>, ApiError> {
    let (limit, offset) = page.bounds()?;
    let all = Code::all();
    let count = all.len() as i64;
    let items = all
        .skip(offset as usize)
        .take(limit as usize)
        .map(Code::info)
        .collect();
    Ok(Json(Listing { count, items }))
}

/// One code: what it means and what to do. Any spelling `godwit explain` accepts.
#[utoipa::path(get, path = "/v1/codes/{code}", params(("code" = String, Path, description = "652, AZSM2023, HTTP404 or a name")),
    security(("bearer" = [])), responses(
    (status = 200, description = "The catalog entry", body = serde_json::Value),
    (status = 401, description = "No or bad token", body = crate::error::ErrorBody),
    (status = 404, description = "No such code", body = crate::error::ErrorBody)
))]
pub async fn get_code(
    _caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<&'static godwit_codes::CodeInfo>, ApiError> {
    Code::lookup(&code)
        .map(|c| Json(c.info()))
        .map_err(|_| ApiError::not_found("code", &code))
}
