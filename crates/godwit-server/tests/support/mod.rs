//! What the control plane's tests share: a store of its own on SQLite or PostgreSQL, and tokens
//! the control plane issued.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use godwit_server::{Role, Secret, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::Connection;
use tower::ServiceExt;

pub const SECRET: &[u8] = b"a test secret that is long enough for HS256 signing";

pub fn pg_admin_url() -> String {
    std::env::var("GODWIT_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "GODWIT_TEST_POSTGRES_URL is not set: run `bash scripts/test.sh`, which starts \
             PostgreSQL when it is not running and sets it"
        )
    })
}

/// A database of its own on the PostgreSQL server. Databases that earlier runs left behind
/// (named with their creation time) are dropped once they are ten minutes old.
pub async fn fresh_pg_url() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    sqlx::any::install_default_drivers();
    let admin = pg_admin_url();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut c = sqlx::AnyConnection::connect(&admin).await.unwrap();
    let old: Vec<String> = sqlx::query_scalar::<_, String>(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'godwit_test_%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for name in old {
        let born: u64 = name
            .split('_')
            .nth(2)
            .and_then(|t| t.parse().ok())
            .unwrap_or(u64::MAX);
        if born.saturating_add(600) < now {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut c)
                .await;
        }
    }
    let name = format!(
        "godwit_test_{now}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

/// A store of its own on `backend` ("sqlite" or "postgres"): the store, its URL, and the folder
/// that holds a SQLite one.
pub async fn store(backend: &str) -> (Store, String, Option<tempfile::TempDir>) {
    let (url, dir) = match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("cp.db").display());
            (url, Some(dir))
        }
        _ => (fresh_pg_url().await, None),
    };
    (Store::open(&url).await.unwrap(), url, dir)
}

/// A token the control plane at `store` issued (and so accepts).
pub async fn issue(
    store: &Store,
    sub: &str,
    role: Role,
    agent: Option<&str>,
    ttl: Duration,
) -> String {
    let secret = Secret::from_bytes(SECRET);
    godwit_server::auth::issue(store, &secret, sub, role, agent, ttl)
        .await
        .unwrap()
        .0
}

/// A request to the API: `method path`, with a bearer token and a JSON body when given.
pub fn request(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// What `app` answers `req`: status, body (JSON, else its text as a string) and headers.
pub async fn answer(app: &Router, req: Request<Body>) -> (StatusCode, Value, HeaderMap) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body, headers)
}

/// A project, two local endpoints (/data and /copy) and a migration of one to the other, of
/// no agent, in `store`.
pub async fn a_migration(store: &Store) -> godwit_server::records::Migration {
    let p = store.create_project("p", "").await.unwrap();
    let e = store
        .create_endpoint("e", "local", "/data", None)
        .await
        .unwrap();
    let f = store
        .create_endpoint("f", "local", "/copy", None)
        .await
        .unwrap();
    store
        .create_migration(&p.id, None, (&e.id, "/"), (&f.id, "/"), &Default::default())
        .await
        .unwrap()
}
