//! The REST API against a real store: every test runs on SQLite and on PostgreSQL (the server
//! at GODWIT_TEST_POSTGRES_URL, which scripts/test.sh starts when it is not running; each test
//! gets a database of its own).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use godwit_server::{Role, Secret, Store};
use serde_json::{Value, json};
use sqlx::Connection;

mod support;
use support::{SECRET, issue};

struct Api {
    app: Router,
    store: Store,
    operator: String,
    viewer: String,
    admin: String,
    _dir: Option<tempfile::TempDir>,
    backend: &'static str,
    /// The store's database, for a test that breaks it behind the control plane's back.
    url: String,
}

async fn api(backend: &'static str) -> Api {
    let (store, url, dir) = support::store(backend).await;
    let secret = Secret::from_bytes(SECRET);
    let day = Duration::from_secs(86400);
    Api {
        operator: issue(&store, "op", Role::Operator, None, day).await,
        viewer: issue(&store, "view", Role::Viewer, None, day).await,
        admin: issue(&store, "adm", Role::Admin, None, day).await,
        app: godwit_server::app(store.clone(), secret),
        store,
        _dir: dir,
        backend,
        url,
    }
}

impl Api {
    async fn raw(&self, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
        support::answer(&self.app, req).await
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (s, v, _) = self
            .raw(support::request(method, path, token, body.as_ref()))
            .await;
        (s, v)
    }

    async fn send_bytes(&self, path: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("authorization", format!("Bearer {}", self.operator))
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .unwrap();
        let (s, v, _) = self.raw(req).await;
        (s, v)
    }
}

/// Every non-2xx body has the seed's fields and a catalog code whose HTTP status is the answer's.
fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error_code"], want_code, "{body}");
    for field in ["error_name", "error_msg"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} in {body}"
        );
    }
    // Seed 003's shapes: the parameters as a list of strings in the message's order, and
    // details as a list of {error_code, error_msg}; the names for scripts beside them.
    assert!(body["error_param"].is_array(), "{body}");
    assert!(body["error_params"].is_object(), "{body}");
    assert_eq!(
        body["details"][0]["error_code"], body["error_code"],
        "{body}"
    );
    assert!(
        body["details"][0]["error_msg"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    let code = godwit_codes::Code::lookup(want_code).unwrap();
    assert_eq!(code.info().http_status, Some(want_status), "{want_code}");
}

macro_rules! on_both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = $body;
                f(api("sqlite").await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let f = $body;
                f(api("postgres").await).await;
            }
        }
    };
}

on_both_stores!(
    projects_are_created_listed_changed_and_deleted,
    |a: Api| async move {
        let (s, p) = a
            .call(
                "POST",
                "/v1/projects",
                Some(&a.operator),
                Some(json!({"name": "finance", "description": "the finance share"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{}: {p}", a.backend);
        let id = p["id"].as_str().unwrap().to_string();

        let (s, e) = a
            .call(
                "POST",
                "/v1/projects",
                Some(&a.operator),
                Some(json!({"name": "finance"})),
            )
            .await;
        assert_error(s, &e, 409, "642");
        assert_eq!(e["error_params"]["name"], "finance");
        assert_eq!(e["error_param"], json!(["finance"]), "{e}");

        for i in 0..3 {
            let (s, _) = a
                .call(
                    "POST",
                    "/v1/projects",
                    Some(&a.admin),
                    Some(json!({"name": format!("p{i}")})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let (s, l) = a
            .call(
                "GET",
                "/v1/projects?limit=2&offset=1",
                Some(&a.viewer),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(l["count"], 4);
        assert_eq!(l["items"].as_array().unwrap().len(), 2);
        assert_eq!(l["items"][0]["name"], "p0");

        let (s, p) = a
            .call(
                "PATCH",
                &format!("/v1/projects/{id}"),
                Some(&a.operator),
                Some(json!({"description": "moved"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["description"], "moved");
        assert_eq!(p["name"], "finance");
        let (s, e) = a
            .call(
                "PATCH",
                &format!("/v1/projects/{id}"),
                Some(&a.operator),
                Some(json!({"name": "p1"})),
            )
            .await;
        assert_error(s, &e, 409, "642");

        let (s, _) = a
            .call(
                "DELETE",
                &format!("/v1/projects/{id}"),
                Some(&a.operator),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, e) = a
            .call("GET", &format!("/v1/projects/{id}"), Some(&a.viewer), None)
            .await;
        assert_error(s, &e, 404, "800");
        let (s, e) = a
            .call(
                "DELETE",
                &format!("/v1/projects/{id}"),
                Some(&a.operator),
                None,
            )
            .await;
        assert_error(s, &e, 404, "800");
    }
);

on_both_stores!(
    endpoints_are_validated_with_422_and_the_reason,
    |a: Api| async move {
        let cases = [
            (json!({"name": "a", "kind": "tape", "uri": "/data"}), "kind"),
            (
                json!({"name": "a", "kind": "s3", "uri": "/data"}),
                "does not match",
            ),
            (
                json!({"name": "a", "kind": "local", "uri": "relative/path"}),
                "absolute",
            ),
            (json!({"name": "a", "kind": "s3", "uri": "s3://"}), "uri"),
            (json!({"name": "", "kind": "local", "uri": "/data"}), "name"),
            (
                json!({"name": "a", "kind": "local", "uri": "/data", "credential_ref": ""}),
                "credential_ref",
            ),
        ];
        for (body, reason) in cases {
            let (s, e) = a
                .call(
                    "POST",
                    "/v1/endpoints",
                    Some(&a.operator),
                    Some(body.clone()),
                )
                .await;
            assert_error(s, &e, 422, "605");
            assert!(
                e["error_msg"].as_str().unwrap().contains(reason),
                "{body}: {e}"
            );
        }
        // A credential in the URI is refused with 646, and never echoed back.
        for (kind, uri) in [
            ("sftp", "sftp://bob:PASSWORD-MARKER@files.example.com/data"),
            ("s3", "s3://AKIA:PASSWORD-MARKER@bucket/data"),
            (
                "azure-blob",
                "az://container/data?sig=PASSWORD-MARKER&se=2030-01-01",
            ),
        ] {
            let body = json!({"name": "leaky", "kind": kind, "uri": uri});
            let (s, e) = a
                .call("POST", "/v1/endpoints", Some(&a.operator), Some(body))
                .await;
            assert_error(s, &e, 422, "646");
            assert!(!e.to_string().contains("PASSWORD-MARKER"), "{e}");
        }
        let (_, all) = a
            .call("GET", "/v1/endpoints?limit=100", Some(&a.operator), None)
            .await;
        assert!(!all.to_string().contains("PASSWORD-MARKER"), "{all}");
        let (s, src) = a
            .call(
                "POST",
                "/v1/endpoints",
                Some(&a.operator),
                Some(json!({"name": "nas", "kind": "local", "uri": "/mnt/nas"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{src}");
        let (s, dst) = a
        .call(
            "POST",
            "/v1/endpoints",
            Some(&a.operator),
            Some(json!({"name": "bucket", "kind": "s3", "uri": "s3://archive/nas", "credential_ref": "aws-prod"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{dst}");
        assert_eq!(dst["credential_ref"], "aws-prod");
        let (s, e) = a
            .call(
                "POST",
                "/v1/endpoints",
                Some(&a.operator),
                Some(json!({"name": "nas", "kind": "local", "uri": "/mnt/other"})),
            )
            .await;
        assert_error(s, &e, 409, "HTTP409");
        let id = dst["id"].as_str().unwrap();
        let (s, got) = a
            .call("GET", &format!("/v1/endpoints/{id}"), Some(&a.viewer), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(got["uri"], "s3://archive/nas");
        let (s, l) = a.call("GET", "/v1/endpoints", Some(&a.viewer), None).await;
        assert_eq!((s, l["count"].clone()), (StatusCode::OK, json!(2)));
        let (s, _) = a
            .call(
                "DELETE",
                &format!("/v1/endpoints/{id}"),
                Some(&a.operator),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
);

on_both_stores!(
    every_bad_request_gets_a_coded_4xx_never_a_500,
    |a: Api| async move {
        // Malformed JSON, wrong types, unknown fields, invalid UTF-8, a huge body.
        let (s, e) = a.send_bytes("/v1/projects", b"{\"name\":".to_vec()).await;
        assert_error(s, &e, 400, "600");
        let (s, e) = a
            .send_bytes("/v1/projects", b"{\"name\": 7}".to_vec())
            .await;
        assert_error(s, &e, 422, "605");
        let (s, e) = a
            .send_bytes(
                "/v1/projects",
                b"{\"name\": \"x\", \"owner\": \"me\"}".to_vec(),
            )
            .await;
        assert_error(s, &e, 422, "605");
        assert!(e["error_msg"].as_str().unwrap().contains("owner"), "{e}");
        let (s, e) = a
            .send_bytes("/v1/projects", b"{\"name\": \"\xff\xfe\"}".to_vec())
            .await;
        assert_error(s, &e, 400, "600");
        // A NUL inside a JSON string is valid JSON; PostgreSQL cannot store it: refused first.
        let (s, e) = a
            .send_bytes(
                "/v1/projects",
                br#"{"name": "x", "description": "a\u0000b"}"#.to_vec(),
            )
            .await;
        assert_error(s, &e, 422, "605");
        let mut huge = b"{\"name\": \"".to_vec();
        huge.extend(std::iter::repeat_n(b'x', 200_000));
        huge.extend(b"\"}");
        let (s, e) = a.send_bytes("/v1/projects", huge).await;
        assert_error(s, &e, 413, "HTTP413");
        // No content type.
        let req = Request::builder()
            .method("POST")
            .uri("/v1/projects")
            .header("authorization", format!("Bearer {}", a.operator))
            .body(Body::from("{\"name\":\"x\"}"))
            .unwrap();
        let (s, e, _) = a.raw(req).await;
        assert_error(s, &e, 400, "600");
        // Paging out of range, and paging that is not a number.
        for q in [
            "limit=101",
            "limit=-1",
            "offset=65536",
            "limit=ten",
            "page=2",
        ] {
            let (s, e) = a
                .call("GET", &format!("/v1/projects?{q}"), Some(&a.viewer), None)
                .await;
            assert_error(s, &e, 400, "HTTP400");
        }
        // Routes and methods that do not exist, and an id that does not.
        let (s, e) = a
            .call("GET", "/v1/nothing-here", Some(&a.viewer), None)
            .await;
        assert_error(s, &e, 404, "HTTP404");
        let (s, e) = a.call("PUT", "/v1/projects", Some(&a.operator), None).await;
        assert_error(s, &e, 405, "HTTP405");
        let (s, e) = a
            .call(
                "GET",
                "/v1/projects/%E2%9C%93%00weird",
                Some(&a.viewer),
                None,
            )
            .await;
        assert!(s.is_client_error(), "{s}: {e}");
        assert!(e["error_code"].is_string(), "{e}");
    }
);

on_both_stores!(tokens_and_roles, |a: Api| async move {
    let (s, e) = a.call("GET", "/v1/projects", None, None).await;
    assert_error(s, &e, 401, "622");
    let (s, e) = a.call("GET", "/v1/projects", Some("not-a-jwt"), None).await;
    assert_error(s, &e, 401, "704");
    let claims = godwit_server::auth::claims("x", Role::Admin, None, Duration::from_secs(60));
    let forged = Secret::from_bytes(b"another secret, another control plane, same length")
        .sign(&claims)
        .unwrap();
    let (s, e) = a.call("GET", "/v1/projects", Some(&forged), None).await;
    assert_error(s, &e, 401, "705");
    // Signed with the right secret, but never recorded: refused.
    let unrecorded = Secret::from_bytes(SECRET).sign(&claims).unwrap();
    let (s, e) = a.call("GET", "/v1/projects", Some(&unrecorded), None).await;
    assert_error(s, &e, 401, "707");
    let expired = issue(&a.store, "x", Role::Admin, None, Duration::from_secs(0)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Five seconds of leeway for clocks: issued with no lifetime, it is refused after that.
    let mut validation_waited = false;
    for _ in 0..8 {
        let (s, e) = a.call("GET", "/v1/projects", Some(&expired), None).await;
        if s == StatusCode::UNAUTHORIZED {
            assert_error(s, &e, 401, "706");
            validation_waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(validation_waited, "an expired token is refused");
    // X-Auth-Token works as well as Authorization.
    let req = Request::builder()
        .uri("/v1/projects")
        .header("x-auth-token", &a.viewer)
        .body(Body::empty())
        .unwrap();
    let (s, _, _) = a.raw(req).await;
    assert_eq!(s, StatusCode::OK);
    // A viewer reads, but cannot change anything.
    let (s, e) = a
        .call(
            "POST",
            "/v1/projects",
            Some(&a.viewer),
            Some(json!({"name": "v"})),
        )
        .await;
    assert_error(s, &e, 403, "HTTP403");
    let registered = a.store.create_agent("agent-1", "0.1.0").await.unwrap();
    let agent = issue(
        &a.store,
        "agent",
        Role::Agent,
        Some(&registered.id),
        Duration::from_secs(60),
    )
    .await;
    let (s, e) = a
        .call(
            "POST",
            "/v1/projects",
            Some(&agent),
            Some(json!({"name": "v"})),
        )
        .await;
    assert_error(s, &e, 403, "HTTP403");
});

on_both_stores!(
    health_metrics_codes_and_the_openapi_document,
    |a: Api| async move {
        let (s, _) = a.call("GET", "/healthz", None, None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = a.call("GET", "/readyz", None, None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, c) = a.call("GET", "/v1/codes/9080", Some(&a.viewer), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(c["name"], "FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR");
        let (s, c) = a
            .call("GET", "/v1/codes/azsm2023", Some(&a.viewer), None)
            .await;
        assert_eq!((s, c["code"].clone()), (StatusCode::OK, json!("AZSM2023")));
        let (s, e) = a
            .call("GET", "/v1/codes/12345678", Some(&a.viewer), None)
            .await;
        assert_error(s, &e, 404, "800");
        let (s, l) = a
            .call(
                "GET",
                "/v1/codes?limit=100&offset=400",
                Some(&a.viewer),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let total = godwit_codes::Code::all().len();
        assert_eq!(l["count"], total);
        assert_eq!(l["items"].as_array().unwrap().len(), total - 400);

        let (s, m) = a.call("GET", "/metrics", None, None).await;
        assert_eq!(s, StatusCode::OK);
        let m = m.as_str().unwrap();
        assert!(
        m.contains("godwit_http_requests_total{method=\"GET\",route=\"/v1/codes/{code}\",status=\"404\"} 1"),
        "{m}"
    );
        assert!(m.contains("godwit_store_ready 1"), "{m}");

        let (s, doc) = a.call("GET", "/openapi.json", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/v1/codes",
            "/v1/codes/{code}",
            "/v1/projects",
            "/v1/projects/{id}",
            "/v1/endpoints",
            "/v1/endpoints/{id}",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is documented");
        }
    }
);

/// Two endpoints, a project, an agent; returns (project, source endpoint, target endpoint,
/// agent id, agent token).
async fn fixture(a: &Api) -> (String, String, String, String, String) {
    let post = |path: &'static str, body: Value, token: String| async move {
        let (s, v) = a.call("POST", path, Some(&token), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{path}: {v}");
        v
    };
    let p = post(
        "/v1/projects",
        json!({"name": "finance"}),
        a.operator.clone(),
    )
    .await;
    let src = post(
        "/v1/endpoints",
        json!({"name": "nas", "kind": "local", "uri": "/mnt/nas"}),
        a.operator.clone(),
    )
    .await;
    let dst = post(
        "/v1/endpoints",
        json!({"name": "bucket", "kind": "s3", "uri": "s3://archive/x"}),
        a.operator.clone(),
    )
    .await;
    let agent = post(
        "/v1/agents",
        json!({"name": "agent-1", "version": "0.1.0"}),
        a.admin.clone(),
    )
    .await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    (
        id(&p),
        id(&src),
        id(&dst),
        agent["agent"]["id"].as_str().unwrap().to_string(),
        agent["token"].as_str().unwrap().to_string(),
    )
}

fn migration_body(project: &str, src: &str, dst: &str, agent: Option<&str>, path: &str) -> Value {
    json!({
        "projectId": project,
        "agentId": agent,
        "source": {"endpointId": src, "path": path},
        "target": {"endpointId": dst, "path": "/"},
        "options": {"syncDeletes": true, "sanitize": "on-the-fly", "filters": {"exclude": ["*.tmp"]}}
    })
}

on_both_stores!(
    agents_and_migrations_with_their_rules,
    |a: Api| async move {
        let (project, src, dst, agent, agent_token) = fixture(&a).await;
        let (s, e) = a
            .call(
                "POST",
                "/v1/agents",
                Some(&a.admin),
                Some(json!({"name": "agent-1"})),
            )
            .await;
        assert_error(s, &e, 409, "626");
        let (s, e) = a
            .call(
                "POST",
                "/v1/agents",
                Some(&a.admin),
                Some(json!({"name": "x", "version": "one"})),
            )
            .await;
        assert_error(s, &e, 422, "624");
        let (s, e) = a
            .call(
                "POST",
                "/v1/agents",
                Some(&a.operator),
                Some(json!({"name": "y"})),
            )
            .await;
        assert_error(s, &e, 403, "HTTP403");

        let (s, m) = a
            .call(
                "POST",
                "/v1/migrations",
                Some(&a.operator),
                Some(migration_body(
                    &project,
                    &src,
                    &dst,
                    Some(&agent),
                    "/finance",
                )),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{m}");
        assert_eq!(m["options"]["syncDeletes"], true);
        let mid = m["id"].as_str().unwrap().to_string();
        let (s, e) = a
            .call(
                "POST",
                "/v1/migrations",
                Some(&a.operator),
                Some(migration_body(
                    &project,
                    &src,
                    &dst,
                    Some(&agent),
                    "/finance",
                )),
            )
            .await;
        assert_error(s, &e, 409, "505");
        // Invalid filters are refused with their own codes and the parser's reason.
        let mut bad = migration_body(&project, &src, &dst, None, "/other");
        bad["options"]["filters"]["exclude"] = json!(["a[b"]);
        let (s, e) = a
            .call("POST", "/v1/migrations", Some(&a.operator), Some(bad))
            .await;
        assert_error(s, &e, 422, "635");
        assert!(e["error_msg"].as_str().unwrap().contains("a[b"), "{e}");
        let mut bad = migration_body(&project, &src, &dst, None, "/other");
        bad["options"]["filters"]["excludeRegex"] = json!(["(x"]);
        let (s, e) = a
            .call("POST", "/v1/migrations", Some(&a.operator), Some(bad))
            .await;
        assert_error(s, &e, 422, "636");
        let (s, e) = a
            .call(
                "POST",
                "/v1/migrations",
                Some(&a.operator),
                Some(migration_body(
                    &project,
                    &src,
                    "no-such-endpoint",
                    None,
                    "/other",
                )),
            )
            .await;
        assert_error(s, &e, 422, "605");
        let (s, e) = a
            .call(
                "POST",
                "/v1/migrations",
                Some(&a.operator),
                Some(migration_body(&project, &src, &dst, None, "../etc")),
            )
            .await;
        assert_error(s, &e, 422, "605");

        // An agent token sees its own migrations and nobody else's.
        let (s, other) = a
            .call(
                "POST",
                "/v1/migrations",
                Some(&a.operator),
                Some(migration_body(&project, &src, &dst, None, "/hr")),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, l) = a
            .call("GET", "/v1/migrations", Some(&agent_token), None)
            .await;
        assert_eq!((s, l["count"].clone()), (StatusCode::OK, json!(1)), "{l}");
        let (s, e) = a
            .call(
                "GET",
                &format!("/v1/migrations/{}", other["id"].as_str().unwrap()),
                Some(&agent_token),
                None,
            )
            .await;
        assert_error(s, &e, 403, "HTTP403");
        let (s, _) = a
            .call(
                "GET",
                &format!("/v1/migrations/{mid}"),
                Some(&agent_token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);

        // Endpoints, projects and agents in use cannot go.
        let (s, e) = a
            .call(
                "DELETE",
                &format!("/v1/endpoints/{src}"),
                Some(&a.operator),
                None,
            )
            .await;
        assert_error(s, &e, 409, "HTTP409");
        let (s, e) = a
            .call(
                "DELETE",
                &format!("/v1/projects/{project}"),
                Some(&a.operator),
                None,
            )
            .await;
        assert_error(s, &e, 409, "699");
        let (s, e) = a
            .call(
                "DELETE",
                &format!("/v1/agents/{agent}"),
                Some(&a.admin),
                None,
            )
            .await;
        assert_error(s, &e, 409, "625");
        let (s, d) = a
            .call(
                "POST",
                &format!("/v1/agents/{agent}/deactivate"),
                Some(&a.admin),
                None,
            )
            .await;
        assert_eq!(
            (s, d["state"]["code"].clone()),
            (StatusCode::OK, json!("902")),
            "{d}"
        );
    }
);

on_both_stores!(commands_follow_the_state_rules, |a: Api| async move {
    let (project, src, dst, agent, agent_token) = fixture(&a).await;
    let (_, m) = a
        .call(
            "POST",
            "/v1/migrations",
            Some(&a.operator),
            Some(migration_body(
                &project,
                &src,
                &dst,
                Some(&agent),
                "/finance",
            )),
        )
        .await;
    let mid = m["id"].as_str().unwrap().to_string();
    let cmd = |command: &'static str, action: &'static str, token: String| {
        let path = format!("/v1/migrations/{mid}/commands");
        let a = &a;
        async move {
            a.call(
                "POST",
                &path,
                Some(&token),
                Some(json!({"command": command, "action": action})),
            )
            .await
        }
    };
    // The agent has never connected: inactive.
    let (s, e) = cmd("scan", "start", a.operator.clone()).await;
    assert_error(s, &e, 409, "686");
    a.store
        .set_agent_state(&agent, godwit_codes::Code::AGENT_STATE_ACTIVE, true)
        .await
        .unwrap();
    let (s, e) = cmd("scan", "start", a.viewer.clone()).await;
    assert_error(s, &e, 403, "HTTP403");
    let (s, e) = cmd("copy", "start", a.operator.clone()).await;
    assert_error(s, &e, 409, "655");
    let (s, e) = cmd("scan", "jump", a.operator.clone()).await;
    assert_error(s, &e, 422, "605");
    let (s, e) = cmd("teleport", "start", a.operator.clone()).await;
    assert_error(s, &e, 422, "605");

    let (s, run) = cmd("scan", "start", a.operator.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["state"], "QUEUED");
    assert_eq!(run["status"]["code"], "937");
    assert_eq!(run["status"]["name"], "SCAN : QUEUED");
    let run_id = run["id"].as_str().unwrap().to_string();
    let (s, e) = cmd("scan", "start", a.operator.clone()).await;
    assert_error(s, &e, 409, "650");
    let (s, e) = cmd("copy", "start", a.operator.clone()).await;
    assert_error(s, &e, 409, "668");
    // The report is not there until the run ends.
    let (s, e) = a
        .call(
            "GET",
            &format!("/v1/runs/{run_id}/report"),
            Some(&a.viewer),
            None,
        )
        .await;
    assert_error(s, &e, 404, "645");

    // The agent takes it and it runs; stop winds it down; a second stop is refused.
    a.store
        .set_run_state(&run_id, godwit_codes::State::Running, None, None)
        .await
        .unwrap();
    // An agent token starts and stops nothing: an operator does.
    let (s, e) = cmd("scan", "pause", agent_token.clone()).await;
    assert_error(s, &e, 403, "HTTP403");
    let (s, r) = cmd("scan", "pause", a.operator.clone()).await;
    assert_eq!(
        (s, r["status"]["code"].clone()),
        (StatusCode::ACCEPTED, json!("935")),
        "{r}"
    );
    let (s, r) = cmd("scan", "resume", a.operator.clone()).await;
    assert_eq!(
        (s, r["state"].clone()),
        (StatusCode::ACCEPTED, json!("QUEUED")),
        "{r}"
    );
    a.store
        .set_run_state(&run_id, godwit_codes::State::Running, None, None)
        .await
        .unwrap();
    let (s, r) = cmd("scan", "stop", a.operator.clone()).await;
    assert_eq!(
        (s, r["status"]["code"].clone()),
        (StatusCode::ACCEPTED, json!("933")),
        "{r}"
    );
    let (s, e) = cmd("scan", "stop", a.operator.clone()).await;
    assert_error(s, &e, 409, "663");
    let (s, e) = cmd("scan", "start", a.operator.clone()).await;
    assert_error(s, &e, 409, "663");
    // It ends; a new scan succeeds with what it found.
    a.store
        .set_run_state(&run_id, godwit_codes::State::Stopped, None, None)
        .await
        .unwrap();
    let (s, e) = cmd("scan", "stop", a.operator.clone()).await;
    assert_error(s, &e, 409, "656");
    let (_, run) = cmd("scan", "start", a.operator.clone()).await;
    let scan_id = run["id"].as_str().unwrap().to_string();
    a.store
        .set_run_state(
            &scan_id,
            godwit_codes::State::Succeeded,
            None,
            Some((1000, 5_000_000, 0)),
        )
        .await
        .unwrap();
    let (s, rep) = a
        .call(
            "GET",
            &format!("/v1/runs/{scan_id}/report"),
            Some(&a.viewer),
            None,
        )
        .await;
    assert_eq!(
        (s, rep["run"]["files"].clone()),
        (StatusCode::OK, json!(1000)),
        "{rep}"
    );

    // Now a copy may start; a true-up waits for it.
    let (s, copy) = cmd("copy", "start", a.operator.clone()).await;
    assert_eq!(
        (s, copy["status"]["code"].clone()),
        (StatusCode::ACCEPTED, json!("927")),
        "{copy}"
    );
    let (s, e) = cmd("sync", "start", a.operator.clone()).await;
    assert_error(s, &e, 409, "670");
    let (s, e) = a
        .call(
            "DELETE",
            &format!("/v1/migrations/{mid}"),
            Some(&a.operator),
            None,
        )
        .await;
    assert_error(s, &e, 409, "670");
    let (s, e) = a
        .call(
            "PATCH",
            &format!("/v1/projects/{project}"),
            Some(&a.operator),
            Some(json!({"description": "x"})),
        )
        .await;
    assert_error(s, &e, 409, "730");
    // A queued copy stopped is stopped at once.
    let (s, r) = cmd("copy", "stop", a.operator.clone()).await;
    assert_eq!(
        (s, r["status"]["code"].clone()),
        (StatusCode::ACCEPTED, json!("924")),
        "{r}"
    );

    // The copy fails; it is listed in /v1/errors with its code and parameters.
    let (_, copy) = cmd("copy", "start", a.operator.clone()).await;
    let copy_id = copy["id"].as_str().unwrap().to_string();
    let params = json!({"path": "s3://archive/x", "reason": "no such bucket"});
    a.store
        .set_run_state(
            &copy_id,
            godwit_codes::State::Failed,
            Some((godwit_codes::Code::AZSM1022, &params)),
            None,
        )
        .await
        .unwrap();
    // A true-up paused for review carries its reason's code, but is not an error.
    let paused = a
        .store
        .create_run(&mid, godwit_spec::CommandKind::Sync, None)
        .await
        .unwrap();
    let why = json!({"count": "9", "limit": "5"});
    a.store
        .set_run_state(
            &paused.id,
            godwit_codes::State::Paused,
            Some((
                godwit_codes::Code::FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR,
                &why,
            )),
            None,
        )
        .await
        .unwrap();
    let (s, errs) = a
        .call("GET", "/v1/errors?limit=10", Some(&a.viewer), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{errs}");
    assert_eq!(errs["count"], 1);
    let entry = &errs["migration_errors"][0];
    let inner: Value = serde_json::from_str(entry["error_json"].as_str().unwrap()).unwrap();
    assert_eq!(inner["error_code"], "AZSM1022");
    assert_eq!(inner["error_params"]["reason"], "no such bucket");
    assert_eq!(
        inner["error_param"],
        json!(["s3://archive/x", "no such bucket"]),
        "in the message's order: {inner}"
    );
    assert_eq!(entry["job_run_id"], copy_id.as_str());
    let (s, e) = a
        .call("GET", "/v1/errors?limit=101", Some(&a.viewer), None)
        .await;
    assert_error(s, &e, 400, "HTTP400");
    let (s, runs) = a
        .call(
            "GET",
            &format!("/v1/migrations/{mid}/runs"),
            Some(&a.viewer),
            None,
        )
        .await;
    assert_eq!(
        (s, runs["count"].clone()),
        (StatusCode::OK, json!(5)),
        "{runs}"
    );
    // The review ends (stopped), so that other commands may start.
    a.store
        .set_run_state(&paused.id, godwit_codes::State::Stopped, None, None)
        .await
        .unwrap();
    let (s, log) = a
        .call(
            "GET",
            &format!("/v1/runs/{copy_id}/copylog?status=AZSM2062&limit=10"),
            Some(&a.viewer),
            None,
        )
        .await;
    assert_eq!(
        (s, log["count"].clone()),
        (StatusCode::OK, json!(0)),
        "{log}"
    );
    let (s, e) = a
        .call(
            "GET",
            &format!("/v1/runs/{copy_id}/copylog?status=NOPE"),
            Some(&a.viewer),
            None,
        )
        .await;
    assert_error(s, &e, 400, "HTTP400");

    // Permissions: one run at a time (654); a simulation meanwhile is told to stop it first
    // (672); a queued one stops at once.
    // (An agent of this version says it runs them when it connects.)
    a.store
        .agent_seen(
            &agent,
            Some(&godwit_server::store::Registration {
                version: "0.1.0",
                commands: godwit_spec::CommandKind::RUNNABLE,
                platform: None,
                features: &[],
            }),
        )
        .await
        .unwrap();
    let (s, perms) = cmd("permissions", "start", a.operator.clone()).await;
    assert_eq!(
        (s, perms["status"]["code"].clone()),
        (StatusCode::ACCEPTED, json!("967")),
        "{perms}"
    );
    let (s, e) = cmd("permissions", "start", a.operator.clone()).await;
    assert_error(s, &e, 409, "654");
    let (s, e) = cmd("simulate-permissions", "start", a.operator.clone()).await;
    assert_error(s, &e, 409, "672");
    let (s, r) = cmd("permissions", "stop", a.operator.clone()).await;
    assert_eq!(
        (s, r["status"]["code"].clone()),
        (StatusCode::ACCEPTED, json!("964")),
        "{r}"
    );
});

on_both_stores!(limits_and_schedules, |a: Api| async move {
    let (project, src, dst, agent, _) = fixture(&a).await;
    a.store
        .set_agent_state(&agent, godwit_codes::Code::AGENT_STATE_ACTIVE, true)
        .await
        .unwrap();
    let (_, m) = a
        .call(
            "POST",
            "/v1/migrations",
            Some(&a.operator),
            Some(migration_body(&project, &src, &dst, Some(&agent), "/big")),
        )
        .await;
    let mid = m["id"].as_str().unwrap().to_string();
    // A scan that found more than one job takes: 629, then 640.
    let scan = a
        .store
        .create_run(&mid, godwit_spec::CommandKind::Scan, None)
        .await
        .unwrap();
    a.store
        .set_run_state(
            &scan.id,
            godwit_codes::State::Succeeded,
            None,
            Some((60_000_000, 10, 0)),
        )
        .await
        .unwrap();
    let path = format!("/v1/migrations/{mid}/commands");
    let (s, e) = a
        .call(
            "POST",
            &path,
            Some(&a.operator),
            Some(json!({"command": "copy", "action": "start"})),
        )
        .await;
    assert_error(s, &e, 422, "629");
    let scan = a
        .store
        .create_run(&mid, godwit_spec::CommandKind::Scan, None)
        .await
        .unwrap();
    a.store
        .set_run_state(
            &scan.id,
            godwit_codes::State::Succeeded,
            None,
            Some((10, 1 << 52, 0)),
        )
        .await
        .unwrap();
    let (s, e) = a
        .call(
            "POST",
            &path,
            Some(&a.operator),
            Some(json!({"command": "copy", "action": "start"})),
        )
        .await;
    assert_error(s, &e, 422, "640");

    // Schedules.
    let sched = format!("/v1/migrations/{mid}/schedules");
    let future = "2099-01-01T02:00:00Z";
    let cases = [
        (
            json!({"command": "sync", "frequency": "daily", "repeat": 21, "start": future}),
            422,
            "513",
        ),
        (
            json!({"command": "sync", "frequency": "fortnightly", "repeat": 2, "start": future}),
            422,
            "514",
        ),
        (
            json!({"command": "sync", "frequency": "daily", "repeat": 2, "start": "2001-01-01T00:00:00Z"}),
            422,
            "515",
        ),
        (
            json!({"command": "sync", "frequency": "daily", "repeat": 2, "start": "tomorrow"}),
            422,
            "605",
        ),
    ];
    for (body, status, code) in cases {
        let (s, e) = a.call("POST", &sched, Some(&a.operator), Some(body)).await;
        assert_error(s, &e, status, code);
    }
    let (s, created) = a
        .call(
            "POST",
            &sched,
            Some(&a.operator),
            Some(json!({"command": "sync", "frequency": "daily", "repeat": 5, "start": future})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let (s, list) = a.call("GET", &sched, Some(&a.viewer), None).await;
    assert_eq!((s, list.as_array().unwrap().len()), (StatusCode::OK, 1));
    sqlx_set_scheduling_off(&a, &agent).await;
    let (s, e) = a
        .call(
            "POST",
            &sched,
            Some(&a.operator),
            Some(json!({"command": "sync", "frequency": "daily", "repeat": 5, "start": future})),
        )
        .await;
    assert_error(s, &e, 409, "516");
});

/// Turns scheduling off for an agent, straight in the store (no API does it yet).
async fn sqlx_set_scheduling_off(a: &Api, agent: &str) {
    a.store.set_agent_scheduling(agent, false).await.unwrap();
}

/// An application with small limits: 2 requests a second with a burst of 3, one active
/// migration at a time.
async fn tight(backend: &'static str) -> Api {
    let mut a = api(backend).await;
    let mut settings = godwit_server::Settings::defaults();
    settings.limiter = godwit_server::limit::Limiter::new(2.0, 3.0);
    settings.limits = godwit_server::Limits {
        max_active_migrations: 1,
        job_max_files: 1000,
        job_max_bytes: 1 << 30,
    };
    a.app = godwit_server::app_with(a.store.clone(), Secret::from_bytes(SECRET), settings);
    a
}

macro_rules! on_both_tight {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = $body;
                f(tight("sqlite").await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let f = $body;
                f(tight("postgres").await).await;
            }
        }
    };
}

on_both_tight!(
    rate_limits_answer_429_with_retry_after,
    |a: Api| async move {
        let mut limited = None;
        for _ in 0..6 {
            let req = Request::builder()
                .uri("/v1/projects")
                .header("authorization", format!("Bearer {}", a.viewer))
                .body(Body::empty())
                .unwrap();
            let (s, body, headers) = a.raw(req).await;
            if s == StatusCode::TOO_MANY_REQUESTS {
                limited = Some((body, headers));
                break;
            }
        }
        let (body, headers) = limited.expect("a burst of 3 then 429");
        assert_error(StatusCode::TOO_MANY_REQUESTS, &body, 429, "HTTP429");
        assert!(headers.get("retry-after").is_some(), "{headers:?}");
        // Another token has its own allowance.
        let (s, _) = a.call("GET", "/v1/projects", Some(&a.operator), None).await;
        assert_eq!(s, StatusCode::OK);
    }
);

on_both_tight!(the_active_migrations_limit_is_628, |a: Api| async move {
    let (project, src, dst, _, _) = fixture(&a).await;
    let mut ids = Vec::new();
    for path in ["/one", "/two"] {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (s, m) = a
            .call(
                "POST",
                "/v1/migrations",
                Some(&a.operator),
                Some(migration_body(&project, &src, &dst, None, path)),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{m}");
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (s, r) = a
        .call(
            "POST",
            &format!("/v1/migrations/{}/commands", ids[0]),
            Some(&a.operator),
            Some(json!({"command": "scan", "action": "start"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (s, e) = a
        .call(
            "POST",
            &format!("/v1/migrations/{}/commands", ids[1]),
            Some(&a.operator),
            Some(json!({"command": "scan", "action": "start"})),
        )
        .await;
    assert_error(s, &e, 409, "628");
});

on_both_stores!(
    a_store_that_fails_is_503_with_its_code,
    |a: Api| async move {
        // A table lost behind the control plane's back: each operation says which failed.
        let mut c = sqlx::AnyConnection::connect(&a.url).await.unwrap();
        let drop = if a.backend == "sqlite" {
            "DROP TABLE projects"
        } else {
            "DROP TABLE projects CASCADE"
        };
        sqlx::query(drop).execute(&mut c).await.unwrap();
        let (s, e) = a.call("GET", "/v1/projects", Some(&a.viewer), None).await;
        assert_error(s, &e, 503, "803");
        let (s, e) = a
            .call(
                "POST",
                "/v1/projects",
                Some(&a.operator),
                Some(json!({"name": "late"})),
            )
            .await;
        assert_error(s, &e, 503, "821");
        // The whole store gone: the token's record cannot be read (801), whatever is asked.
        a.store.close().await;
        let (s, e) = a.call("GET", "/v1/projects", Some(&a.viewer), None).await;
        assert_error(s, &e, 503, "801");
        let (s, e) = a
            .call(
                "POST",
                "/v1/projects",
                Some(&a.operator),
                Some(json!({"name": "late"})),
            )
            .await;
        assert_error(s, &e, 503, "801");
        let (s, e) = a.call("GET", "/readyz", None, None).await;
        assert_error(s, &e, 503, "HTTP503");
    }
);

on_both_stores!(
    regression_a_command_no_agent_runs_is_refused_not_accepted,
    |a: Api| async move {
        let (project, src, dst, agent, _) = fixture(&a).await;
        let body = migration_body(&project, &src, &dst, Some(&agent), "/");
        let (s, m) = a
            .call("POST", "/v1/migrations", Some(&a.operator), Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{m}");
        let mid = m["id"].as_str().unwrap().to_string();
        let a = &a;
        let start = |command: &'static str| {
            let path = format!("/v1/migrations/{mid}/commands");
            async move {
                a.call(
                    "POST",
                    &path,
                    Some(&a.operator),
                    Some(json!({"command": command, "action": "start"})),
                )
                .await
            }
        };
        // Until it connects, an agent is taken to run what every agent runs.
        let (s, ag) = a
            .call("GET", &format!("/v1/agents/{agent}"), Some(&a.viewer), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{ag}");
        assert_eq!(
            ag["commands"],
            json!(["scan", "copy", "sync", "empty-folders"]),
            "{ag}"
        );
        // An agent that said it runs only scans is not sent a copy, a sanitize or a
        // permissions run: 9150.
        a.store
            .agent_seen(
                &agent,
                Some(&godwit_server::store::Registration {
                    version: "0.1.0",
                    commands: &[godwit_spec::CommandKind::Scan],
                    platform: None,
                    features: &[],
                }),
            )
            .await
            .unwrap();
        let (s, ag) = a
            .call("GET", &format!("/v1/agents/{agent}"), Some(&a.viewer), None)
            .await;
        assert_eq!((s, &ag["commands"]), (StatusCode::OK, &json!(["scan"])));
        for command in ["copy", "sanitize", "permissions"] {
            let (s, e) = start(command).await;
            assert_error(s, &e, 409, "9150");
            assert_eq!(e["error_params"]["agent_id"], agent.as_str(), "{e}");
            assert!(e["error_msg"].as_str().unwrap().contains(command), "{e}");
        }
        let (s, e) = a
            .call(
                "POST",
                &format!("/v1/migrations/{mid}/schedules"),
                Some(&a.operator),
                Some(json!({"command": "copy", "frequency": "daily", "repeat": 2,
                    "start": "2999-01-01T00:00:00Z"})),
            )
            .await;
        assert_error(s, &e, 409, "9150");
        let (s, runs) = a
            .call(
                "GET",
                &format!("/v1/migrations/{mid}/runs"),
                Some(&a.viewer),
                None,
            )
            .await;
        assert_eq!((s, &runs["count"]), (StatusCode::OK, &json!(0)), "{runs}");
        // What it runs is accepted.
        let (s, run) = start("scan").await;
        assert_eq!(s, StatusCode::ACCEPTED, "{run}");
    }
);

on_both_stores!(paging_takes_its_edge_values, |a: Api| async move {
    for i in 0..60 {
        let (s, p) = a
            .call(
                "POST",
                "/v1/projects",
                Some(&a.operator),
                Some(json!({"name": format!("p{i:02}")})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
    }
    // (query, items expected); the count is always all of them.
    for (q, items) in [
        ("", 50),
        ("?limit=0", 0),
        ("?limit=100", 60),
        ("?offset=0", 50),
        ("?offset=55", 5),
        ("?offset=65535", 0),
        ("?limit=100&offset=65535", 0),
        ("?limit=1&offset=59", 1),
    ] {
        let (s, page) = a
            .call("GET", &format!("/v1/projects{q}"), Some(&a.viewer), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{q}: {page}");
        assert_eq!(page["count"], 60, "{q}: {page}");
        assert_eq!(
            page["items"].as_array().unwrap().len(),
            items,
            "{q}: {page}"
        );
    }
});

on_both_stores!(
    migrations_inherit_their_projects_settings,
    |a: Api| async move {
        let (_, src, dst, agent, _) = fixture(&a).await;
        let post = |path: &'static str, body: Value| {
            let a = &a;
            async move { a.call("POST", path, Some(&a.operator), Some(body)).await }
        };
        // Settings a project may not hold, or rules that do not compile, are refused.
        let (s, e) = post(
            "/v1/projects",
            json!({"name": "bad", "settings": {"transfers": 4}}),
        )
        .await;
        assert_error(s, &e, 422, "605");
        let (s, e) = post(
            "/v1/projects",
            json!({"name": "bad", "settings": {"filters": {"excludeRegex": ["("]}}}),
        )
        .await;
        assert_error(s, &e, 422, "644");

        let (s, p) = post(
            "/v1/projects",
            json!({"name": "nas-2026", "settings": {
                "targetProfile": "windows",
                "filters": {"exclude": ["*.tmp"]},
                "sanitize": "on-the-fly",
                "maxDelete": "2%",
            }}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        assert_eq!(p["settings"]["targetProfile"], "windows", "{p}");
        let project = p["id"].as_str().unwrap().to_string();
        let body = |path: &str, options: Value| {
            json!({
                "projectId": project, "agentId": agent,
                "source": {"endpointId": src, "path": path},
                "target": {"endpointId": dst, "path": path},
                "options": options,
            })
        };
        // One takes everything from the project; another gives its own filters.
        let (s, plain) = post("/v1/migrations", body("/a", json!({"syncDeletes": true}))).await;
        assert_eq!(s, StatusCode::CREATED, "{plain}");
        assert_eq!(plain["options"]["targetProfile"], "windows", "{plain}");
        assert_eq!(plain["options"]["sanitize"], "on-the-fly", "{plain}");
        assert_eq!(
            plain["options"]["filters"]["exclude"],
            json!(["*.tmp"]),
            "{plain}"
        );
        assert_eq!(plain["options"]["syncDeletes"], true, "{plain}");
        let (s, own) = post(
            "/v1/migrations",
            body("/b", json!({"filters": {"exclude": ["*.bak"]}})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{own}");
        assert_eq!(
            own["options"]["filters"]["exclude"],
            json!(["*.bak"]),
            "{own}"
        );
        assert_eq!(own["options"]["targetProfile"], "windows", "{own}");

        // A later change of the project reaches the migrations that do not give their own.
        let patch = |settings: Value| {
            let a = &a;
            let path = format!("/v1/projects/{project}");
            async move {
                a.call(
                    "PATCH",
                    &path,
                    Some(&a.operator),
                    Some(json!({"settings": settings})),
                )
                .await
            }
        };
        let (s, changed) = patch(json!({
            "targetProfile": "windows",
            "filters": {"exclude": ["*.tmp", "~$*"]},
            "sanitize": "on-the-fly",
            "bwlimit": "10M",
        }))
        .await;
        assert_eq!(s, StatusCode::OK, "{changed}");
        let get = |id: &Value| {
            let a = &a;
            let path = format!("/v1/migrations/{}", id["id"].as_str().unwrap());
            async move { a.call("GET", &path, Some(&a.viewer), None).await.1 }
        };
        let now = get(&plain).await;
        assert_eq!(
            now["options"]["filters"]["exclude"],
            json!(["*.tmp", "~$*"]),
            "{now}"
        );
        assert!(now["options"]["bwlimit"].is_string(), "{now}");
        let now = get(&own).await;
        assert_eq!(
            now["options"]["filters"]["exclude"],
            json!(["*.bak"]),
            "{now}"
        );
        // On-the-fly sanitizing, once chosen, stays (727).
        let (s, e) = patch(json!({"sanitize": "off"})).await;
        assert_error(s, &e, 409, "727");
        let (s, e) = patch(json!({"maxDelete": "lots"})).await;
        assert_error(s, &e, 422, "605");
        // While one of its migrations runs, the project's settings cannot change (730).
        let mid = plain["id"].as_str().unwrap();
        a.store
            .set_agent_state(&agent, godwit_codes::Code::AGENT_STATE_ACTIVE, true)
            .await
            .unwrap();
        let (s, run) = a
            .call(
                "POST",
                &format!("/v1/migrations/{mid}/commands"),
                Some(&a.operator),
                Some(json!({"command": "scan", "action": "start"})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{run}");
        let (s, e) = patch(json!({"sanitize": "on-the-fly"})).await;
        assert_error(s, &e, 409, "730");
    }
);

on_both_stores!(two_starts_at_once_make_one_run, |a: Api| async move {
    let (project, src, dst, agent, _) = fixture(&a).await;
    a.store
        .set_agent_state(&agent, godwit_codes::Code::AGENT_STATE_ACTIVE, true)
        .await
        .unwrap();
    let (_, m) = a
        .call(
            "POST",
            "/v1/migrations",
            Some(&a.operator),
            Some(migration_body(&project, &src, &dst, Some(&agent), "/race")),
        )
        .await;
    let path = format!("/v1/migrations/{}/commands", m["id"].as_str().unwrap());
    let start = || {
        a.call(
            "POST",
            &path,
            Some(&a.operator),
            Some(json!({"command": "scan", "action": "start"})),
        )
    };
    // The check of what runs and the insert of the new run are one statement: however the
    // requests interleave, one starts and the others are refused with the state rule's code.
    let (r1, r2, r3, r4) = tokio::join!(start(), start(), start(), start());
    let mut accepted = 0;
    for (s, body) in [r1, r2, r3, r4] {
        if s == StatusCode::ACCEPTED {
            accepted += 1;
        } else {
            assert_error(s, &body, 409, "650");
        }
    }
    assert_eq!(accepted, 1);
    let (_, runs) = a
        .call(
            "GET",
            &format!("/v1/migrations/{}/runs", m["id"].as_str().unwrap()),
            Some(&a.viewer),
            None,
        )
        .await;
    assert_eq!(runs["count"], 1, "{runs}");
});

on_both_stores!(
    a_configuration_file_makes_and_changes_an_agents_migrations,
    |a: Api| async move {
        let (project, src, dst, agent, _) = fixture(&a).await;
        let path = format!("/v1/agents/{agent}/config");
        let send = |body: Value| {
            let (a, path) = (&a, path.clone());
            async move { a.send_bytes(&path, body.to_string().into_bytes()).await }
        };
        let side = |e: &str, p: &str| json!({"endpointId": e, "path": p});
        // Two new migrations in one file, each with its options; the file may name its agent.
        let (s, v) = send(json!({"agentId": agent, "migrations": [
            {"projectId": project, "source": side(&src, "/finance"), "target": side(&dst, "/finance"),
             "options": {"filters": {"exclude": ["*.tmp"]}, "bwlimit": "10M"}},
            {"projectId": project, "source": side(&src, "/hr"), "target": side(&dst, "/hr")},
        ]}))
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(
            (v["created"].clone(), v["updated"].clone()),
            (json!(2), json!(0)),
            "{v}"
        );
        let first = v["migrations"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(v["migrations"][0]["agent_id"], agent.as_str(), "{v}");
        assert_eq!(
            v["migrations"][0]["options"]["filters"]["exclude"][0], "*.tmp",
            "{v}"
        );
        // Changed by its id.
        let (s, v) =
            send(json!({"migrations": [{"id": first, "options": {"syncDeletes": true}}]})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["updated"], 1, "{v}");
        let (_, m) = a
            .call(
                "GET",
                &format!("/v1/migrations/{first}"),
                Some(&a.viewer),
                None,
            )
            .await;
        assert_eq!(m["options"]["syncDeletes"], true, "{m}");
        // Made again: a duplicate, and nothing of the file written.
        let (s, v) = send(json!({"migrations": [
            {"projectId": project, "source": side(&src, "/finance"), "target": side(&dst, "/finance"),
             "options": {"filters": {"exclude": ["*.tmp"]}}},
        ]}))
        .await;
        assert_error(s, &v, 409, "505");

        // Each way a file is wrong.
        let (s, v) = a.send_bytes(&path, Vec::new()).await;
        assert_error(s, &v, 400, "500");
        let (s, v) = a.send_bytes(&path, b"migrations: []".to_vec()).await;
        assert_error(s, &v, 400, "501");
        let (s, v) = send(json!({"agentId": "someone-else", "migrations": [{"id": first}]})).await;
        assert_error(s, &v, 422, "502");
        assert_eq!(v["error_params"]["agent_id"], "someone-else", "{v}");
        let (s, v) =
            send(json!({"migrations": [{"id": first, "options": {"transfers": -1}}]})).await;
        assert_error(s, &v, 422, "503");
        assert!(
            v["error_msg"]
                .as_str()
                .unwrap()
                .contains("migrations[0].options.transfers"),
            "{v}"
        );
        let (s, v) = send(json!({"migrations": [{"projectId": project}]})).await;
        assert_error(s, &v, 422, "504");
        let (s, v) = send(json!({"migrations": [{"id": "no-such-migration"}]})).await;
        assert_error(s, &v, 404, "506");
        let (s, v) = send(json!({"migrations": []})).await;
        assert_error(s, &v, 422, "508");
        let (s, v) = send(json!({"migrations": [
            {"id": first, "options": {"filters": {"exclude": ["[unclosed"]}}}]}))
        .await;
        assert_error(s, &v, 422, "510");
        assert_eq!(v["error_params"]["migration_id"], first.as_str(), "{v}");
        // A migration that sanitizes on the fly keeps doing so.
        let (s, v) =
            send(json!({"migrations": [{"id": first, "options": {"sanitize": "on-the-fly"}}]}))
                .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) =
            send(json!({"migrations": [{"id": first, "options": {"sanitize": "off"}}]})).await;
        assert_error(s, &v, 409, "518");
        // The file is checked whole before anything is written: a good entry before a bad one
        // changes nothing.
        let (s, v) = send(json!({"migrations": [
            {"id": first, "options": {"checksum": true}},
            {"id": "no-such-migration"},
        ]}))
        .await;
        assert_error(s, &v, 404, "506");
        let (_, m) = a
            .call(
                "GET",
                &format!("/v1/migrations/{first}"),
                Some(&a.viewer),
                None,
            )
            .await;
        assert_eq!(m["options"]["checksum"], false, "{m}");
        // The store refuses to save a migration (a trigger behind the control plane's back):
        // 509, retryable, nothing half-written.
        let mut c = sqlx::AnyConnection::connect(&a.url).await.unwrap();
        let refuse: &[&str] = if a.backend == "sqlite" {
            &["CREATE TRIGGER no_updates BEFORE UPDATE ON migrations \
               BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"]
        } else {
            &[
                "CREATE FUNCTION no_updates() RETURNS trigger AS $$ BEGIN \
                 RAISE EXCEPTION 'the disk is full'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER no_updates BEFORE UPDATE ON migrations \
                 FOR EACH ROW EXECUTE FUNCTION no_updates()",
            ]
        };
        for q in refuse {
            sqlx::query(q).execute(&mut c).await.unwrap();
        }
        let (s, v) =
            send(json!({"migrations": [{"id": first, "options": {"checksum": true}}]})).await;
        assert_error(s, &v, 503, "509");
        assert!(
            v["error_msg"]
                .as_str()
                .unwrap()
                .contains("the disk is full"),
            "{v}"
        );
        sqlx::query("DROP TRIGGER no_updates ON migrations")
            .execute(&mut c)
            .await
            .or(sqlx::query("DROP TRIGGER no_updates").execute(&mut c).await)
            .unwrap();
        // A viewer may not.
        let (s, v) = a
            .call(
                "POST",
                &path,
                Some(&a.viewer),
                Some(json!({"migrations": [{"id": first}]})),
            )
            .await;
        assert_error(s, &v, 403, "HTTP403");
    }
);

on_both_stores!(
    a_simulated_scan_stored_by_an_older_godwit_is_not_read_as_a_proposal,
    |a: Api| async move {
        let (project, src, _, agent, _) = fixture(&a).await;
        let rec = format!("/v1/projects/{project}/recommendation");
        let (s, v) = a.call("GET", &rec, Some(&a.viewer), None).await;
        assert_error(s, &v, 404, "723");
        // What an earlier version left in the store: a finished scan whose report has no
        // format of this version's.
        let mut c = sqlx::AnyConnection::connect(&a.url).await.unwrap();
        let request = json!({"source": "/mnt/nas", "sourceEndpoint": src, "sourcePath": "/",
            "options": {"filters": {}}});
        sqlx::query(
            "INSERT INTO project_runs (id, project_id, agent_id, command, request, state, \
             status_code, files, bytes, report, format, deadline_ms, created_ms, ended_ms, \
             updated_ms) VALUES ('old-scan', $1, $2, 'simulate-scan', $3, 'SUCCEEDED', '143', \
             10, 100, $4, 0, 1, 1, 2, 2)",
        )
        .bind(&project)
        .bind(&agent)
        .bind(request.to_string())
        .bind(json!({"plan": {"jobs": [{"include": ["**"], "files": 10}]}}).to_string())
        .execute(&mut c)
        .await
        .unwrap();
        let (s, v) = a.call("GET", &rec, Some(&a.viewer), None).await;
        assert_error(s, &v, 409, "729");
        let (s, v) = a
            .call(
                "POST",
                &format!("{rec}/apply"),
                Some(&a.operator),
                Some(json!({"target": {"endpointId": src, "path": "/copy"}})),
            )
            .await;
        assert_error(s, &v, 409, "729");
        // Its run is listed with the project's runs, its report readable.
        let (s, v) = a
            .call(
                "GET",
                &format!("/v1/projects/{project}/runs"),
                Some(&a.viewer),
                None,
            )
            .await;
        assert_eq!((s, v["count"].clone()), (StatusCode::OK, json!(1)), "{v}");
        let (s, v) = a
            .call(
                "GET",
                &format!("/v1/projects/{project}/runs/old-scan/report"),
                Some(&a.viewer),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["report"]["plan"]["jobs"][0]["files"], 10, "{v}");
    }
);

on_both_stores!(a_projects_run_is_stopped_on_request, |a: Api| async move {
    let (project, src, dst, agent, _) = fixture(&a).await;
    let far = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
        + 3_600_000;
    let stop = |run: &str| format!("/v1/projects/{project}/runs/{run}/stop");
    // A simulated scan: FAILED with AZSM1045 (it has no stopped status); again, the same.
    let scan = a
        .store
        .create_project_run(
            &project,
            Some(&agent),
            godwit_spec::CommandKind::SimulateScan,
            &json!({"source": "/mnt/nas", "options": {}}),
            far,
        )
        .await
        .unwrap()
        .unwrap();
    let (s, v) = a
        .call("POST", &stop(&scan.id), Some(&a.operator), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"]["code"].as_str(), v["error"]["code"].as_str()),
        (Some("142"), Some("AZSM1045")),
        "{v}"
    );
    let (s, again) = a
        .call("POST", &stop(&scan.id), Some(&a.operator), None)
        .await;
    assert_eq!(
        (s, again["ended_ms"].clone()),
        (StatusCode::OK, v["ended_ms"].clone()),
        "{again}"
    );
    // A validation: STOPPED (165), and its migration's run with it.
    let m = a
        .store
        .create_migration(
            &project,
            Some(&agent),
            (&src, "/a"),
            (&dst, "/a"),
            &Default::default(),
        )
        .await
        .unwrap();
    let child = a
        .store
        .create_run(&m.id, godwit_spec::CommandKind::Validate, None)
        .await
        .unwrap();
    assert_eq!(
        child.status.code, "160",
        "a queued validation shows its RUNNING status"
    );
    let run = a
        .store
        .create_project_run(
            &project,
            None,
            godwit_spec::CommandKind::Validate,
            &json!({}),
            far,
        )
        .await
        .unwrap()
        .unwrap();
    a.store
        .set_project_run_request(
            &run.id,
            &json!({"migrations": [m.id], "runs": {m.id.clone(): child.id}}),
        )
        .await
        .unwrap();
    a.store
        .set_project_run(&run.id, godwit_codes::State::Running, None, None, None)
        .await
        .unwrap();
    let (s, v) = a
        .call("POST", &stop(&run.id), Some(&a.operator), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["state"].as_str(), v["status"]["code"].as_str()),
        (Some("STOPPED"), Some("165")),
        "{v}"
    );
    let child = a.store.get_run(&child.id).await.unwrap();
    assert_eq!(godwit_spec::command::state_text(child.state), "STOPPED");
    // Not another project's run, and not for a viewer.
    let (s, v) = a
        .call(
            "POST",
            &format!("/v1/projects/other/runs/{}/stop", run.id),
            Some(&a.operator),
            None,
        )
        .await;
    assert_error(s, &v, 404, "800");
    let (s, v) = a.call("POST", &stop(&run.id), Some(&a.viewer), None).await;
    assert_error(s, &v, 403, "HTTP403");
});
