//! The role matrix: every route of the OpenAPI document, called with each role's token, each
//! answer compared with the table in docs/control-plane.md ("Tokens, roles and the audit log"),
//! which this test reads; then every route again with the tokens the control plane must refuse
//! (a deactivated agent's, a deleted agent's, an expired, a revoked, a foreign-signed and an
//! unrecorded one). Runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use godwit_server::{Role, Secret, Store};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use utoipa::OpenApi;

mod support;
use support::{SECRET, issue};

const ROLES: [&str; 4] = ["admin", "operator", "viewer", "agent"];

/// The table of docs/control-plane.md: route -> the cell of each role.
fn documented_table() -> BTreeMap<String, [String; 4]> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/control-plane.md"
    ))
    .unwrap();
    let start = doc
        .find("| route | admin | operator | viewer | agent |")
        .expect("the role table in docs/control-plane.md");
    let mut table = BTreeMap::new();
    for line in doc[start..].lines().skip(2) {
        if !line.starts_with("| `") {
            break;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().trim_matches('`').to_string())
            .collect();
        assert_eq!(cells.len(), 5, "{line}");
        for c in &cells[1..] {
            assert!(["yes", "no", "own"].contains(&c.as_str()), "{line}");
        }
        let cells4 = [
            cells[1].clone(),
            cells[2].clone(),
            cells[3].clone(),
            cells[4].clone(),
        ];
        assert!(
            table.insert(cells[0].clone(), cells4).is_none(),
            "{} twice",
            cells[0]
        );
    }
    table
}

/// The operations of the OpenAPI document: "METHOD /path" -> (needs a token, the statuses it
/// documents).
fn operations() -> BTreeMap<String, (bool, BTreeSet<u16>)> {
    let doc = serde_json::to_value(godwit_server::api::ApiDoc::openapi()).unwrap();
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let secured = op.get("security").is_some_and(|s| {
                s.as_array()
                    .is_some_and(|a| a.iter().any(|r| r.get("bearer").is_some()))
            });
            let statuses = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            ops.insert(
                format!("{} {path}", method.to_uppercase()),
                (secured, statuses),
            );
        }
    }
    ops
}

struct World {
    app: Router,
    store: Store,
    tokens: BTreeMap<&'static str, String>,
    /// Tokens the control plane must refuse, with the status and code it answers them.
    refused: Vec<(&'static str, String, u16, &'static str)>,
    project: String,
    own_endpoint: String,
    other_endpoint: String,
    agent_a: String,
    agent_b: String,
    own_migration: String,
    other_migration: String,
    run: String,
    /// Work units leased to agent A and to agent B.
    units: (String, String),
    n: AtomicU32,
    _dir: Option<tempfile::TempDir>,
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

impl World {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let req = support::request(method, path, token, body);
        let (status, v, _) = support::answer(&self.app, req).await;
        (status.as_u16(), v)
    }

    /// An admin's POST that must succeed; its answer.
    async fn made(&self, path: &str, body: Value) -> Value {
        let (s, v) = self
            .call("POST", path, Some(&self.tokens["admin"]), Some(&body))
            .await;
        assert!(s == 201 || s == 202, "{path}: {s} {v}");
        v
    }

    fn unique(&self, what: &str) -> String {
        format!("{what}-{}", self.n.fetch_add(1, Ordering::Relaxed))
    }

    async fn fresh_project(&self) -> String {
        id(&self
            .made("/v1/projects", json!({"name": self.unique("p")}))
            .await)
    }

    async fn fresh_endpoint(&self) -> String {
        let name = self.unique("e");
        id(&self
            .made(
                "/v1/endpoints",
                json!({"name": name, "kind": "local", "uri": format!("/data/{name}")}),
            )
            .await)
    }

    async fn fresh_agent(&self) -> String {
        self.made("/v1/agents", json!({"name": self.unique("agent")}))
            .await["agent"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn migration_body(&self, agent: &str, source: &str, target: &str) -> Value {
        json!({
            "projectId": self.project,
            "agentId": agent,
            "source": {"endpointId": source, "path": format!("/{}", self.unique("m"))},
            "target": {"endpointId": target, "path": "/"},
            "options": {}
        })
    }

    async fn fresh_migration(&self) -> String {
        let dst = self.fresh_endpoint().await;
        let body = self.migration_body(&self.agent_a, &self.own_endpoint, &dst);
        id(&self.made("/v1/migrations", body).await)
    }

    /// The path and body to call `route` with as `role`; `foreign`: the other agent's resource.
    async fn request(&self, route: &str, foreign: bool) -> (String, Option<Value>) {
        let (method, template) = route.split_once(' ').unwrap();
        let pick = |own: &str, other: &str| {
            if foreign {
                other.to_string()
            } else {
                own.to_string()
            }
        };
        let id = match (method, template) {
            (_, "/v1/codes/{code}") => "9080".to_string(),
            ("GET", "/v1/projects/{id}") => self.project.clone(),
            (_, t) if t.starts_with("/v1/projects/{id}/") => self.project.clone(),
            (_, "/v1/projects/{id}") => self.fresh_project().await,
            ("GET", "/v1/endpoints/{id}") => pick(&self.own_endpoint, &self.other_endpoint),
            (_, "/v1/endpoints/{id}") => self.fresh_endpoint().await,
            ("GET", "/v1/agents/{id}") => pick(&self.agent_a, &self.agent_b),
            (
                _,
                "/v1/agents/{id}/config" | "/v1/agents/{id}/upgrade" | "/v1/agents/{id}/browse",
            ) => self.agent_a.clone(),
            (_, "/v1/agents/{id}/upgrades") => pick(&self.agent_a, &self.agent_b),
            (_, t) if t.starts_with("/v1/releases/{id}") => "no-such-release".to_string(),
            (_, "/v1/upgrades/{id}") => "no-such-upgrade".to_string(),
            (_, "/v1/agents/{id}" | "/v1/agents/{id}/deactivate" | "/v1/agents/{id}/retire") => {
                self.fresh_agent().await
            }
            ("GET", "/v1/migrations/{id}") => pick(&self.own_migration, &self.other_migration),
            ("GET" | "POST", "/v1/migrations/{id}/runs" | "/v1/migrations/{id}/schedules") => {
                self.own_migration.clone()
            }
            (
                _,
                "/v1/migrations/{id}" | "/v1/migrations/{id}/commands" | "/v1/migrations/{id}/pool",
            ) => self.fresh_migration().await,
            (_, t) if t.starts_with("/v1/runs/{id}") => self.run.clone(),
            (_, "/v1/units/{id}/index") => pick(&self.units.0, &self.units.1),
            (_, "/v1/tokens/{id}/revoke") => {
                let (_, record) = godwit_server::auth::issue(
                    &self.store,
                    &Secret::from_bytes(SECRET),
                    "someone",
                    Role::Viewer,
                    None,
                    Duration::from_secs(600),
                )
                .await
                .unwrap();
                record.id
            }
            _ => String::new(),
        };
        let path = template
            .replace("{id}", &id)
            .replace("{code}", &id)
            .replace("{run_id}", "no-such-run");
        let body = match (method, template) {
            ("POST", "/v1/projects") => Some(json!({"name": self.unique("p")})),
            ("PATCH", "/v1/projects/{id}") => Some(json!({"description": "changed"})),
            ("POST", "/v1/endpoints") => {
                let name = self.unique("e");
                Some(json!({"name": name, "kind": "local", "uri": format!("/data/{name}")}))
            }
            ("POST", "/v1/agents") => Some(json!({"name": self.unique("agent")})),
            ("POST", "/v1/migrations") => {
                let dst = self.fresh_endpoint().await;
                Some(self.migration_body(&self.agent_a, &self.own_endpoint, &dst))
            }
            ("POST", "/v1/migrations/{id}/commands") => {
                Some(json!({"command": "scan", "action": "start"}))
            }
            ("POST", "/v1/migrations/{id}/schedules") => {
                let start = std::time::SystemTime::now() + Duration::from_secs(86400);
                Some(json!({
                    "command": "scan", "frequency": "once", "repeat": 1,
                    "start": humantime::format_rfc3339_seconds(start).to_string()
                }))
            }
            // A migration of one agent: the operator's answer is 422, the viewer's 403.
            ("PUT", "/v1/migrations/{id}/pool") => {
                Some(json!({"agentIds": [self.agent_a, self.agent_b]}))
            }
            ("POST", "/v1/tokens") => Some(json!({"role": "viewer", "subject": "someone"})),
            ("POST", "/v1/projects/{id}/simulate-scan") => Some(json!({
                "agentId": self.agent_a,
                "source": {"endpointId": self.own_endpoint, "path": "/"}
            })),
            ("POST", "/v1/projects/{id}/recommendation/apply") => Some(json!({
                "target": {"endpointId": self.other_endpoint, "path": "/"}
            })),
            ("POST", "/v1/projects/{id}/validate") => Some(json!({})),
            ("POST", "/v1/agents/{id}/upgrade") => Some(json!({"version": "9.9.9"})),
            // Not connected here: the operator's answer is 695, the viewer's 403.
            ("POST", "/v1/agents/{id}/browse") => {
                Some(json!({"endpointId": self.own_endpoint, "path": "/"}))
            }
            ("POST", "/v1/upgrades") => {
                Some(json!({"agentIds": [self.agent_a], "version": "9.9.9"}))
            }
            ("POST", "/v1/agents/{id}/config") => Some(json!({
                "migrations": [{"id": self.own_migration, "options": {"checksum": true}}]
            })),
            _ => None,
        };
        (path, body)
    }
}

async fn world(backend: &str) -> World {
    let (store, _url, dir) = support::store(backend).await;
    let mut settings = godwit_server::Settings::defaults();
    // Hundreds of requests from one test, many of them with refused tokens.
    settings.limiter = godwit_server::limit::Limiter::new(1e6, 1e6);
    settings.auth_failures = godwit_server::limit::Limiter::failures(1e9);
    let app = godwit_server::app_with(store.clone(), Secret::from_bytes(SECRET), settings);
    let day = Duration::from_secs(86400);
    let mut tokens = BTreeMap::new();
    for (name, role) in [
        ("admin", Role::Admin),
        ("operator", Role::Operator),
        ("viewer", Role::Viewer),
    ] {
        tokens.insert(name, issue(&store, name, role, None, day).await);
    }
    let mut w = World {
        app,
        store: store.clone(),
        tokens,
        refused: Vec::new(),
        project: String::new(),
        own_endpoint: String::new(),
        other_endpoint: String::new(),
        agent_a: String::new(),
        agent_b: String::new(),
        own_migration: String::new(),
        other_migration: String::new(),
        run: String::new(),
        units: (String::new(), String::new()),
        n: AtomicU32::new(0),
        _dir: dir,
    };
    w.project = w.fresh_project().await;
    let a = w
        .made("/v1/agents", json!({"name": "agent-a", "version": "0.1.0"}))
        .await;
    w.agent_a = a["agent"]["id"].as_str().unwrap().to_string();
    w.tokens
        .insert("agent", a["token"].as_str().unwrap().to_string());
    // Agent A is connected (as far as the store knows), so its migrations take commands.
    store.agent_seen(&w.agent_a, None).await.unwrap();
    // Agent A has an upgrade on record (ended: it would hold back commands otherwise).
    let release = godwit_server::records::Release {
        id: "r1".into(),
        version: "0.2.0".into(),
        platform: "linux-x86_64".into(),
        sha256: "0".repeat(64),
        size: 1,
        signature: String::new(),
        created_ms: 0,
    };
    let up = store
        .create_upgrade(&godwit_server::store::UpgradeRequest {
            agent_id: &w.agent_a,
            release: &release,
            from_version: "0.1.0",
            drain: false,
            allow_downgrade: false,
            time_limit_ms: 1000,
            start_ms: None,
        })
        .await
        .unwrap();
    store
        .end_upgrade(&up.id, godwit_codes::Code::AGENT_UPGRADE_TIMEOUT, None)
        .await
        .unwrap();
    w.agent_b = w.fresh_agent().await;
    w.own_endpoint = w.fresh_endpoint().await;
    let own_target = w.fresh_endpoint().await;
    w.other_endpoint = w.fresh_endpoint().await;
    let other_target = w.fresh_endpoint().await;
    let body = w.migration_body(&w.agent_a, &w.own_endpoint, &own_target);
    w.own_migration = id(&w.made("/v1/migrations", body).await);
    let body = w.migration_body(&w.agent_b, &w.other_endpoint, &other_target);
    w.other_migration = id(&w.made("/v1/migrations", body).await);
    w.run = id(&w
        .made(
            &format!("/v1/migrations/{}/commands", w.own_migration),
            json!({"command": "scan", "action": "start"}),
        )
        .await);

    // A unit of work leased to each agent (as a pool's would be).
    let unit = |n: i64| godwit_server::store::NewUnit {
        kind: "copy",
        include: vec![format!("d{n}/**")],
        files: 1,
        bytes: 1,
    };
    store
        .add_units(&w.run, 1, &[unit(1), unit(2)])
        .await
        .unwrap();
    let far = i64::MAX / 2;
    let (ua, _) = store
        .lease_unit(&w.run, &w.agent_a, far)
        .await
        .unwrap()
        .unwrap();
    let (ub, _) = store
        .lease_unit(&w.run, &w.agent_b, far)
        .await
        .unwrap()
        .unwrap();
    w.units = (ua.id, ub.id);

    // The tokens to refuse.
    let deactivated = w.fresh_agent().await;
    let t = issue(&store, "d", Role::Agent, Some(&deactivated), day).await;
    let (s, v) = w
        .call(
            "POST",
            &format!("/v1/agents/{deactivated}/deactivate"),
            Some(&w.tokens["admin"]),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    w.refused.push(("a deactivated agent's", t, 403, "862"));
    let deleted = w.fresh_agent().await;
    let t = issue(&store, "e", Role::Agent, Some(&deleted), day).await;
    let (s, v) = w
        .call(
            "DELETE",
            &format!("/v1/agents/{deleted}"),
            Some(&w.tokens["admin"]),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    w.refused.push(("a deleted agent's", t, 403, "903"));
    let mut c = godwit_server::auth::claims("old", Role::Admin, None, Duration::from_secs(60));
    c.iat -= 7200;
    c.exp = c.iat + 60;
    w.refused.push((
        "an expired",
        Secret::from_bytes(SECRET).sign(&c).unwrap(),
        401,
        "706",
    ));
    let t = issue(&store, "gone", Role::Admin, None, day).await;
    let jti = godwit_server::auth::Claims::read_unverified(&t)
        .unwrap()
        .jti;
    let (s, v) = w
        .call(
            "POST",
            &format!("/v1/tokens/{jti}/revoke"),
            Some(&w.tokens["admin"]),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["revoked_ms"].is_i64(), "{v}");
    w.refused.push(("a revoked", t, 401, "707"));
    let c = godwit_server::auth::claims("x", Role::Admin, None, day);
    w.refused.push((
        "a foreign-signed",
        Secret::from_bytes(b"the secret of another control plane, long enough")
            .sign(&c)
            .unwrap(),
        401,
        "705",
    ));
    w.refused.push((
        "an unrecorded",
        Secret::from_bytes(SECRET).sign(&c).unwrap(),
        401,
        "707",
    ));
    w
}

async fn matrix(backend: &str) {
    let w = world(backend).await;
    let table = documented_table();
    let ops = operations();

    // The table and the document name the same routes (the agents' WebSocket is not in the
    // document); the routes the table leaves out need no token.
    let secured: BTreeSet<&String> = ops.iter().filter(|(_, o)| o.0).map(|(r, _)| r).collect();
    let mut tabled: BTreeSet<&String> = table.keys().collect();
    assert!(tabled.remove(&"GET /v1/agent/connect".to_string()));
    assert_eq!(
        secured, tabled,
        "docs/control-plane.md's role table and /openapi.json differ"
    );
    for (route, (secured, _)) in &ops {
        if !secured {
            let path = route.split_once(' ').unwrap().1;
            let (s, _) = w.call("GET", path, None, None).await;
            assert_eq!(s, 200, "{route} without a token");
        }
    }

    let mut checked = 0;
    for (route, cells) in &table {
        let method = route.split_once(' ').unwrap().0;
        let documented = ops.get(route).map(|o| &o.1);
        for (role, cell) in ROLES.iter().zip(cells) {
            let (path, body) = w.request(route, false).await;
            let (s, v) = w
                .call(method, &path, Some(&w.tokens[role]), body.as_ref())
                .await;
            let seen = format!("{role} {method} {path}: {s} {v}");
            if let Some(statuses) = documented {
                assert!(statuses.contains(&s), "undocumented status: {seen}");
            }
            assert!(s < 500, "{seen}");
            match cell.as_str() {
                "no" => {
                    assert_eq!(
                        (s, v["error_code"].as_str()),
                        (403, Some("HTTP403")),
                        "{seen}"
                    );
                }
                _ => assert!(s != 401 && s != 403, "refused: {seen}"),
            }
            if cell == "own" {
                assert_eq!(*role, "agent", "{route}: only an agent's cell is own");
                let (foreign, body) = w.request(route, true).await;
                if foreign != path {
                    let (s, v) = w
                        .call(method, &foreign, Some(&w.tokens[role]), body.as_ref())
                        .await;
                    assert_eq!(
                        (s, v["error_code"].as_str()),
                        (403, Some("HTTP403")),
                        "another agent's: {role} {method} {foreign}: {v}"
                    );
                }
                // A list holds only the agent's own.
                if let Some(items) = v["items"].as_array() {
                    let (_, mine) = w
                        .store
                        .list_migrations(Some(&w.agent_a), 100, 0)
                        .await
                        .unwrap();
                    let own_endpoints: Vec<String> = mine
                        .iter()
                        .flat_map(|m| [m.source_endpoint.clone(), m.target_endpoint.clone()])
                        .collect();
                    assert!(!items.is_empty(), "{seen}");
                    for item in items {
                        let mine = item["agent_id"] == json!(w.agent_a)
                            || own_endpoints.contains(&id(item));
                        assert!(mine, "another agent's in the list: {seen}");
                    }
                    assert_eq!(v["count"], json!(items.len()), "{seen}");
                }
            }
            checked += 1;
        }
        // The tokens to refuse, on every route.
        let (path, body) = w.request(route, false).await;
        for (what, token, status, code) in &w.refused {
            let (s, v) = w.call(method, &path, Some(token), body.as_ref()).await;
            assert_eq!(
                (s, v["error_code"].as_str()),
                (*status, Some(*code)),
                "{what} token: {method} {path}: {v}"
            );
            if let Some(statuses) = documented {
                assert!(statuses.contains(status), "{route} documents no {status}");
            }
        }
    }
    assert_eq!(checked, table.len() * ROLES.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_the_table_says_sqlite() {
    matrix("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_the_table_says_postgres() {
    matrix("postgres").await;
}

/// The audit log says who did what, refusals included, and only an admin reads it.
async fn audit(backend: &str) {
    let w = world(backend).await;
    let m = w.fresh_migration().await;
    let start = json!({"command": "scan", "action": "start"});
    let path = format!("/v1/migrations/{m}/commands");
    let (s, _) = w
        .call("POST", &path, Some(&w.tokens["viewer"]), Some(&start))
        .await;
    assert_eq!(s, 403);
    let (s, run) = w
        .call("POST", &path, Some(&w.tokens["operator"]), Some(&start))
        .await;
    assert_eq!(s, 202, "{run}");
    let (s, _) = w
        .call("POST", &path, Some(&w.tokens["operator"]), Some(&start))
        .await;
    assert_eq!(s, 409, "a second start is refused by the state rules");
    let (s, _) = w
        .call(
            "GET",
            &format!("/v1/runs/{}/copylog", id(&run)),
            Some(&w.tokens["viewer"]),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, made) = w
        .call(
            "POST",
            "/v1/tokens",
            Some(&w.tokens["admin"]),
            Some(&json!({"role": "operator", "subject": "bob", "ttl": "1h"})),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    let jti = made["record"]["id"].as_str().unwrap();
    let (s, _) = w
        .call(
            "POST",
            &format!("/v1/tokens/{jti}/revoke"),
            Some(&w.tokens["admin"]),
            None,
        )
        .await;
    assert_eq!(s, 200);
    // The token list has it, revoked, and never a token's text.
    let (s, list) = w
        .call("GET", "/v1/tokens", Some(&w.tokens["admin"]), None)
        .await;
    assert_eq!(s, 200);
    let text = list.to_string();
    assert!(!text.contains(made["token"].as_str().unwrap()));
    assert!(!text.contains("eyJ"), "no token text in the list: {text}");
    let bob = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == jti)
        .unwrap();
    assert_eq!(bob["subject"], "bob");
    assert_eq!(bob["revoked_by"], "admin");

    let (s, e) = w
        .call("GET", "/v1/audit", Some(&w.tokens["operator"]), None)
        .await;
    assert_eq!((s, e["error_code"].as_str()), (403, Some("HTTP403")));
    let (s, e) = w
        .call("DELETE", "/v1/audit", Some(&w.tokens["admin"]), None)
        .await;
    assert_eq!(s, 405, "{e}");
    let (s, log) = w
        .call("GET", "/v1/audit?limit=100", Some(&w.tokens["admin"]), None)
        .await;
    assert_eq!(s, 200, "{log}");
    let lines: Vec<(String, String, String, String)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let t = |k: &str| l[k].as_str().unwrap().to_string();
            assert!(l["at_ms"].as_i64().unwrap() > 0);
            (t("subject"), t("action"), t("target"), t("outcome"))
        })
        .collect();
    let has = |subject: &str, action: &str, target: &str, outcome: &str| {
        assert!(
            lines.contains(&(subject.into(), action.into(), target.into(), outcome.into())),
            "no {subject} {action} {target} {outcome} in {lines:#?}"
        );
    };
    has("viewer", "command.start scan", &path, "HTTP403");
    has("operator", "command.start scan", &path, "HTTP202");
    has("operator", "command.start scan", &path, "650");
    has(
        "viewer",
        "copylog.download",
        &format!("/v1/runs/{}/copylog", id(&run)),
        "13",
    );
    has("admin", "token.create", "/v1/tokens", "HTTP201");
    has(
        "admin",
        "token.revoke",
        &format!("/v1/tokens/{jti}/revoke"),
        "HTTP200",
    );
    has("admin", "agent.register", "/v1/agents", "HTTP201");
    has("admin", "migration.create", "/v1/migrations", "HTTP201");
    for (action, outcome) in [("agent.deactivate", "HTTP200"), ("agent.delete", "HTTP204")] {
        assert!(
            lines
                .iter()
                .any(|l| l.0 == "admin" && l.1 == action && l.3 == outcome),
            "no {action} in {lines:#?}"
        );
    }
    // Newest first; reading is not written down.
    assert_eq!(lines[0].1, "token.revoke");
    assert!(!lines.iter().any(|l| l.1.contains("list")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_says_who_did_what_sqlite() {
    audit("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_says_who_did_what_postgres() {
    audit("postgres").await;
}

/// Every answer carries the security headers; an address sending bad tokens is held off with
/// 429 (even with a good token then), and another address is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_and_failed_sign_ins_held_off() {
    let (store, _url, _dir) = support::store("sqlite").await;
    let mut settings = godwit_server::Settings::defaults();
    settings.auth_failures = godwit_server::limit::Limiter::failures(3.0);
    let app = godwit_server::app_with(store.clone(), Secret::from_bytes(SECRET), settings);
    let good = issue(&store, "v", Role::Viewer, None, Duration::from_secs(600)).await;
    let call = |token: String, from: [u8; 4]| {
        let app = app.clone();
        async move {
            let mut req = Request::builder()
                .uri("/v1/projects")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    from, 40000,
                ))));
            app.oneshot(req).await.unwrap()
        }
    };
    let res = call(good.clone(), [10, 0, 0, 1]).await;
    assert_eq!(res.status(), StatusCode::OK);
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(res.headers()[name], value, "{name}");
    }
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    for _ in 0..3 {
        let res = call("not-a-token".into(), [10, 0, 0, 2]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = call(good.clone(), [10, 0, 0, 2]).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error_code"], "HTTP429");
    assert_eq!(
        call(good, [10, 0, 0, 1]).await.status(),
        StatusCode::OK,
        "another address is not held off"
    );
    let res = call("".into(), [10, 0, 0, 3]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
}
