//! Agent releases through the API, on SQLite and PostgreSQL: a signed binary is kept and handed
//! back byte for byte (whole, and resumed with Range); an unsigned, tampered, relabelled or
//! oversized one is refused with its code and leaves nothing behind; upgrade requests are
//! refused with the code of what stands in the way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use godwit_server::{Role, Secret, Store};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

mod support;
use support::{SECRET, issue};

struct World {
    app: Router,
    store: Store,
    admin: String,
    operator: String,
    secret_key: String,
    dir: tempfile::TempDir,
    _db: Option<tempfile::TempDir>,
}

async fn world(backend: &str, key: bool, min_agent: Option<&str>) -> World {
    let (store, _url, db) = support::store(backend).await;
    let (secret_key, public) = godwit_spec::release::generate_key().unwrap();
    let mut settings = godwit_server::Settings::defaults();
    if key {
        settings.release_key = Some(godwit_spec::release::public_key(&public).unwrap());
    }
    settings.min_agent_version = min_agent.map(str::to_string);
    let day = Duration::from_secs(86400);
    World {
        app: godwit_server::app_with(store.clone(), Secret::from_bytes(SECRET), settings),
        admin: issue(&store, "adm", Role::Admin, None, day).await,
        operator: issue(&store, "op", Role::Operator, None, day).await,
        store,
        secret_key,
        dir: tempfile::tempdir().unwrap(),
        _db: db,
    }
}

/// Bytes that are not all alike, `n` of them.
fn binary(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_be_bytes()[1] ^ seed)
        .collect()
}

fn query(m: &godwit_spec::release::Manifest) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "version={}&platform={}&sha256={}&size={}&signature={}",
        enc(&m.version),
        enc(&m.platform),
        m.sha256,
        m.size,
        enc(&m.signature)
    )
}

impl World {
    fn sign(&self, bytes: &[u8], version: &str) -> godwit_spec::release::Manifest {
        let path = self.dir.path().join(format!("godwit-{version}"));
        std::fs::write(&path, bytes).unwrap();
        godwit_spec::release::sign(&self.secret_key, &path, version, "linux-x86_64").unwrap()
    }

    async fn raw(&self, req: Request<Body>) -> (u16, Vec<u8>, axum::http::HeaderMap) {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, bytes, headers)
    }

    async fn upload(&self, token: &str, q: &str, body: Vec<u8>) -> (u16, Value) {
        let req = Request::post(format!("/v1/releases?{q}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(body))
            .unwrap();
        let (s, b, _) = self.raw(req).await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = support::request(method, path, Some(&self.admin), body.as_ref());
        let (s, v, _) = support::answer(&self.app, req).await;
        (s.as_u16(), v)
    }

    async fn listed(&self) -> i64 {
        self.call("GET", "/v1/releases", None).await.1["count"]
            .as_i64()
            .unwrap()
    }
}

async fn releases_are_kept_only_when_they_verify(backend: &str) {
    let w = world(backend, true, None).await;
    // Two and a half pieces of the store's size: the pieces join up again.
    let bytes = binary(godwit_server::store::CHUNK * 5 / 2, 7);
    let m = w.sign(&bytes, "0.2.0");

    // Not an admin: 403 before anything is read.
    let (s, v) = w.upload(&w.operator, &query(&m), bytes.clone()).await;
    assert_eq!((s, v["error_code"].as_str()), (403, Some("HTTP403")), "{v}");

    // A body that is not what was signed: one byte changed, one byte more, one byte less.
    let mut tampered = bytes.clone();
    tampered[12345] ^= 1;
    for (body, words) in [
        (tampered, "SHA-256"),
        ([bytes.clone(), vec![0]].concat(), "longer"),
        (bytes[..bytes.len() - 1].to_vec(), "bytes"),
    ] {
        let (s, v) = w.upload(&w.admin, &query(&m), body).await;
        assert_eq!(
            (s, v["error_code"].as_str()),
            (422, Some("AZSM1050")),
            "{v}"
        );
        assert!(v["error_msg"].as_str().unwrap().contains(words), "{v}");
    }
    // Relabelled: the signature was made for 0.2.0, not 9.0.0; another key's signature.
    let relabelled = godwit_spec::release::Manifest {
        version: "9.0.0".into(),
        ..m.clone()
    };
    let (s, v) = w.upload(&w.admin, &query(&relabelled), bytes.clone()).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (422, Some("AZSM1050")),
        "{v}"
    );
    assert!(
        v["error_msg"].as_str().unwrap().contains("signature"),
        "{v}"
    );
    let (other, _) = godwit_spec::release::generate_key().unwrap();
    let path = w.dir.path().join("other");
    std::fs::write(&path, &bytes).unwrap();
    let foreign = godwit_spec::release::sign(&other, &path, "0.2.0", "linux-x86_64").unwrap();
    let (s, v) = w.upload(&w.admin, &query(&foreign), bytes.clone()).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (422, Some("AZSM1050")),
        "{v}"
    );
    // Larger than a release may be.
    let huge = godwit_spec::release::Manifest {
        size: (1 << 30) + 1,
        ..m.clone()
    };
    let (s, v) = w.upload(&w.admin, &query(&huge), Vec::new()).await;
    assert_eq!((s, v["error_code"].as_str()), (413, Some("HTTP413")), "{v}");
    // Not a version.
    let (s, v) = w
        .upload(&w.admin, &query(&m).replace("0.2.0", "latest"), Vec::new())
        .await;
    assert_eq!((s, v["error_code"].as_str()), (422, Some("624")), "{v}");
    // Nothing of the refused uploads was kept.
    assert_eq!(w.listed().await, 0);

    let (s, r) = w.upload(&w.admin, &query(&m), bytes.clone()).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["sha256"], m.sha256.as_str());
    assert_eq!(w.listed().await, 1);
    let id = r["id"].as_str().unwrap().to_string();
    let (s, v) = w.upload(&w.admin, &query(&m), bytes.clone()).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("AZSM1052")),
        "{v}"
    );

    // Downloaded whole, and resumed from a byte inside the second piece.
    let get = |range: Option<String>| {
        let mut b = Request::get(format!("/v1/releases/{id}/binary"))
            .header("authorization", format!("Bearer {}", w.operator));
        if let Some(r) = range {
            b = b.header("range", r);
        }
        b.body(Body::empty()).unwrap()
    };
    let (s, whole, h) = w.raw(get(None)).await;
    assert_eq!(s, 200);
    assert_eq!(h["content-length"], bytes.len().to_string().as_str());
    assert!(whole == bytes, "the download differs from the upload");
    let from = godwit_server::store::CHUNK + 4321;
    let (s, rest, h) = w.raw(get(Some(format!("bytes={from}-")))).await;
    assert_eq!(s, 206);
    assert_eq!(
        h["content-range"],
        format!("bytes {from}-{}/{}", bytes.len() - 1, bytes.len()).as_str()
    );
    assert!(rest == bytes[from..], "the resumed download differs");
    let (s, _, _) = w.raw(get(Some(format!("bytes={}-", bytes.len())))).await;
    assert_eq!(s, 400);

    // Deleted: gone from the list and the download.
    let (s, _) = w.call("DELETE", &format!("/v1/releases/{id}"), None).await;
    assert_eq!(s, 204);
    let (s, _, _) = w.raw(get(None)).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn releases_are_kept_only_when_they_verify_on_sqlite() {
    releases_are_kept_only_when_they_verify("sqlite").await;
}

#[tokio::test]
async fn releases_are_kept_only_when_they_verify_on_postgresql() {
    releases_are_kept_only_when_they_verify("postgres").await;
}

async fn upgrade_requests_are_refused_with_what_stands_in_the_way(backend: &str) {
    // Without a release key, nothing is taken.
    let w = world(backend, false, None).await;
    let m = w.sign(b"#!/bin/sh\n", "0.2.0");
    let (s, v) = w
        .upload(&w.admin, &query(&m), b"#!/bin/sh\n".to_vec())
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("AZSM1051")),
        "{v}"
    );

    let w = world(backend, true, Some("0.1.5")).await;
    let (_, a) = w
        .call(
            "POST",
            "/v1/agents",
            Some(json!({"name": "a", "version": "0.1.7"})),
        )
        .await;
    let agent = a["agent"]["id"].as_str().unwrap().to_string();
    let up = |version: &str| {
        (
            format!("/v1/agents/{agent}/upgrade"),
            json!({"version": version}),
        )
    };
    let cases = [
        ("0.1.7", 409, "1011"),
        // Below the control plane's minimum.
        ("0.1.4", 422, "1010"),
        // No release of it.
        ("0.2.0", 404, "800"),
    ];
    for (version, status, code) in cases {
        let (path, body) = up(version);
        let body = if version == "0.1.4" {
            json!({"version": version, "allowDowngrade": true})
        } else {
            body
        };
        let (s, v) = w.call("POST", &path, Some(body)).await;
        assert_eq!(
            (s, v["error_code"].as_str()),
            (status, Some(code)),
            "{version}: {v}"
        );
    }
    // Older without allowDowngrade: 605 naming the field.
    let (path, body) = up("0.1.6");
    let (s, v) = w.call("POST", &path, Some(body)).await;
    assert_eq!((s, v["error_code"].as_str()), (422, Some("605")), "{v}");
    assert!(
        v["error_msg"].as_str().unwrap().contains("allowDowngrade"),
        "{v}"
    );
    // A release exists, but the agent is not connected: 693, and no upgrade is recorded.
    let bytes = b"#!/bin/sh\nexit 0\n".to_vec();
    let m = w.sign(&bytes, "0.2.0");
    let (s, v) = w.upload(&w.admin, &query(&m), bytes).await;
    assert_eq!(s, 201, "{v}");
    let (path, body) = up("0.2.0");
    let (s, v) = w.call("POST", &path, Some(body)).await;
    assert_eq!((s, v["error_code"].as_str()), (409, Some("693")), "{v}");
    let (s, v) = w
        .call("GET", &format!("/v1/agents/{agent}/upgrades"), None)
        .await;
    assert_eq!((s, v["count"].as_i64()), (200, Some(0)), "{v}");
    assert!(w.store.active_upgrade(&agent).await.unwrap().is_none());

    // Scheduled, it needs no connection now; until it has run, the agent's migrations take no
    // command (681); cancelled, they do again.
    let (_, src) = w
        .call(
            "POST",
            "/v1/endpoints",
            Some(json!({"name": "s", "kind": "local", "uri": "/data/s"})),
        )
        .await;
    let (_, dst) = w
        .call(
            "POST",
            "/v1/endpoints",
            Some(json!({"name": "d", "kind": "local", "uri": "/data/d"})),
        )
        .await;
    let (_, p) = w
        .call("POST", "/v1/projects", Some(json!({"name": "p"})))
        .await;
    let (s, mig) = w
        .call(
            "POST",
            "/v1/migrations",
            Some(json!({"projectId": p["id"], "agentId": agent,
                "source": {"endpointId": src["id"], "path": "/"},
                "target": {"endpointId": dst["id"], "path": "/"}})),
        )
        .await;
    assert_eq!(s, 201, "{mig}");
    // Active, as far as the store knows: its migrations take commands.
    w.store.agent_seen(&agent, None).await.unwrap();
    let scan = || async {
        w.call(
            "POST",
            &format!("/v1/migrations/{}/commands", mig["id"].as_str().unwrap()),
            Some(json!({"command": "scan", "action": "start"})),
        )
        .await
    };
    let at = |secs: u64| {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(secs))
            .to_string()
    };
    let (s, past) = w
        .call(
            "POST",
            &path,
            Some(json!({"version": "0.2.0", "startAt": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(
        (s, past["error_code"].as_str()),
        (422, Some("605")),
        "{past}"
    );
    let (s, up) = w
        .call(
            "POST",
            &path,
            Some(json!({"version": "0.2.0", "startAt": at(86400)})),
        )
        .await;
    assert_eq!((s, up["state"].as_str()), (202, Some("QUEUED")), "{up}");
    assert!(up["start_ms"].as_i64().is_some(), "{up}");
    let (s, v) = scan().await;
    assert_eq!((s, v["error_code"].as_str()), (409, Some("681")), "{v}");
    let (s, v) = w
        .call("POST", &path, Some(json!({"version": "0.2.0"})))
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("681")),
        "a second upgrade: {v}"
    );
    let (s, _) = w
        .call(
            "DELETE",
            &format!("/v1/upgrades/{}", up["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = scan().await;
    assert_eq!(s, 202, "{v}");

    // A fleet: checked whole first; one agent on the version already refuses all of it.
    let (_, b) = w
        .call(
            "POST",
            "/v1/agents",
            Some(json!({"name": "b", "version": "0.2.0"})),
        )
        .await;
    let other = b["agent"]["id"].as_str().unwrap().to_string();
    let fleet = |start: Option<String>| json!({"agentIds": [agent, other], "version": "0.2.0", "startAt": start, "drain": true});
    let (s, v) = w
        .call("POST", "/v1/upgrades", Some(fleet(Some(at(3600)))))
        .await;
    assert_eq!((s, v["error_code"].as_str()), (409, Some("1011")), "{v}");
    assert!(
        v["details"][0]["error_msg"]
            .as_str()
            .unwrap()
            .contains(&other),
        "{v}"
    );
    assert!(w.store.active_upgrade(&agent).await.unwrap().is_none());
    let (_, c) = w
        .call(
            "POST",
            "/v1/agents",
            Some(json!({"name": "c", "version": "0.1.9"})),
        )
        .await;
    let third = c["agent"]["id"].as_str().unwrap().to_string();
    let (s, v) = w
        .call(
            "POST",
            "/v1/upgrades",
            Some(json!({"agentIds": [agent, third], "version": "0.2.0", "startAt": at(3600)})),
        )
        .await;
    assert_eq!((s, v["count"].as_i64()), (202, Some(2)), "{v}");
}

#[tokio::test]
async fn upgrade_requests_are_refused_with_what_stands_in_the_way_on_sqlite() {
    upgrade_requests_are_refused_with_what_stands_in_the_way("sqlite").await;
}

#[tokio::test]
async fn upgrade_requests_are_refused_with_what_stands_in_the_way_on_postgresql() {
    upgrade_requests_are_refused_with_what_stands_in_the_way("postgres").await;
}
