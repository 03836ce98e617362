//! The agent connection as a real WebSocket client sees it: registration refused with each of
//! seed 000's codes, messages that cannot be used answered with their code while the
//! connection stays open, commands delivered, and reports acknowledged only once stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use godwit_server::protocol::{Counters, ToAgent, ToServer};
use godwit_server::{Role, Secret, ServeOptions, Store};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Server {
    url: String,
    secret: Secret,
    store: Store,
    _dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

async fn server() -> Server {
    server_with(None).await
}

async fn server_with(heartbeat_window: Option<Duration>) -> Server {
    server_with_windows(heartbeat_window, None).await
}

async fn server_with_windows(
    heartbeat_window: Option<Duration>,
    run_windows: Option<(Duration, Duration)>,
) -> Server {
    server_of(ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: None,
        state_dir: std::path::PathBuf::new(),
        heartbeat_window,
        release_key: None,
        min_agent_version: None,
        run_windows,
        tls: None,
    })
    .await
}

/// A control plane with `options`, in a state directory of its own.
async fn server_of(mut options: ServeOptions) -> Server {
    let dir = tempfile::tempdir().unwrap();
    options.state_dir = dir.path().to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let _ = godwit_server::serve(&options, std::future::pending(), move |addr| {
            let _ = tx.send(addr);
        })
        .await;
    });
    let addr = rx.await.unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("control-plane.db").display()
    );
    let store = Store::open(&url).await.unwrap();
    let secret = Secret::load(dir.path()).unwrap();
    Server {
        url: format!("127.0.0.1:{}", addr.port()),
        secret,
        store,
        _dir: dir,
        _task: task,
    }
}

impl Server {
    async fn token(&self, role: Role, agent: Option<&str>) -> String {
        godwit_server::auth::issue(
            &self.store,
            &self.secret,
            "t",
            role,
            agent,
            Duration::from_secs(600),
        )
        .await
        .unwrap()
        .0
    }

    /// How the connection's HTTP upgrade is refused: its status and the code of its answer.
    async fn refused(&self, token: &str) -> (u16, String) {
        let mut req = format!("ws://{}/v1/agent/connect", self.url)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                let body: Value = serde_json::from_slice(r.body().as_deref().unwrap()).unwrap();
                (
                    r.status().as_u16(),
                    body["error_code"].as_str().unwrap().to_string(),
                )
            }
            Err(e) => panic!("refused otherwise: {e}"),
            Ok(_) => panic!("the connection was accepted"),
        }
    }

    async fn open(&self, token: &str) -> Socket {
        let mut req = format!("ws://{}/v1/agent/connect", self.url)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        tokio_tungstenite::connect_async(req).await.unwrap().0
    }
}

async fn say(s: &mut Socket, v: Value) {
    s.send(Message::Text(v.to_string().into())).await.unwrap();
}

async fn hear(s: &mut Socket) -> ToAgent {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("an answer in time")
            .expect("the connection is open")
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

fn refused_with(m: &ToAgent) -> (String, bool) {
    match m {
        ToAgent::Refused {
            code,
            retry,
            remediation,
            ..
        } => {
            assert!(!remediation.is_empty());
            (code.clone(), *retry)
        }
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_refused_with_each_code() {
    let s = server().await;
    let agent = s.store.create_agent("a", "0.1.0").await.unwrap();
    let token = s.token(Role::Agent, Some(&agent.id)).await;
    let cases = [
        (json!({"op": "heartbeat"}), "868"),
        (json!({"op": "hello", "version": "0.1.0"}), "852"),
        (
            json!({"op": "hello", "agent_id": "someone-else", "version": "0.1.0"}),
            "855",
        ),
        (json!({"op": "hello", "agent_id": agent.id}), "863"),
        (
            json!({"op": "hello", "agent_id": agent.id, "version": "one"}),
            "865",
        ),
        (
            json!({"op": "hello", "agent_id": agent.id, "version": "99.0.0"}),
            "864",
        ),
    ];
    for (hello, code) in cases {
        let mut ws = s.open(&token).await;
        say(&mut ws, hello.clone()).await;
        assert_eq!(refused_with(&hear(&mut ws).await).0, code, "{hello}");
    }
    let mut ws = s.open(&token).await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(refused_with(&hear(&mut ws).await).0, "1131");

    // Connected once; a second connection of the same agent is refused, and may retry later.
    let hello = json!({"op": "hello", "agent_id": agent.id, "version": env!("CARGO_PKG_VERSION")});
    let mut first = s.open(&token).await;
    say(&mut first, hello.clone()).await;
    assert!(matches!(hear(&mut first).await, ToAgent::Welcome { .. }));
    let mut second = s.open(&token).await;
    say(&mut second, hello.clone()).await;
    assert_eq!(refused_with(&hear(&mut second).await), ("856".into(), true));
    drop(first);

    // Deactivated: refused for good, before the connection opens, with 862.
    s.store
        .set_agent_state(
            &agent.id,
            godwit_codes::Code::AGENT_STATE_DEACTIVATED,
            false,
        )
        .await
        .unwrap();
    assert_eq!(s.refused(&token).await, (403, "862".into()));
    drop(hello);

    // A revoked token, and the token of a deleted agent.
    let other = s.store.create_agent("b", "0.1.0").await.unwrap();
    let token = s.token(Role::Agent, Some(&other.id)).await;
    let jti = godwit_server::auth::Claims::read_unverified(&token)
        .unwrap()
        .jti;
    s.store.revoke_token(&jti, "test").await.unwrap();
    assert_eq!(s.refused(&token).await, (401, "707".into()));
    let token = s.token(Role::Agent, Some(&other.id)).await;
    s.store.delete_agent(&other.id).await.unwrap();
    assert_eq!(s.refused(&token).await, (403, "903".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_their_code_and_the_connection_stays() {
    let s = server().await;
    let agent = s.store.create_agent("a", "0.1.0").await.unwrap();
    let mut ws = s.open(&s.token(Role::Agent, Some(&agent.id)).await).await;
    say(
        &mut ws,
        json!({"op": "hello", "agent_id": agent.id, "version": "0.1.0"}),
    )
    .await;
    assert!(matches!(hear(&mut ws).await, ToAgent::Welcome { .. }));
    ws.send(Message::Text("garbage".into())).await.unwrap();
    assert!(matches!(hear(&mut ws).await, ToAgent::Error { code, .. } if code == "1131"));
    say(&mut ws, json!({"op": "dance"})).await;
    assert!(matches!(hear(&mut ws).await, ToAgent::Error { code, .. } if code == "1050"));
    say(&mut ws, json!({"op": "progress", "seq": "one"})).await;
    assert!(matches!(hear(&mut ws).await, ToAgent::Error { code, .. } if code == "1131"));
    say(
        &mut ws,
        json!({"op": "taken", "seq": 1, "run_id": "not-a-run"}),
    )
    .await;
    assert!(matches!(hear(&mut ws).await, ToAgent::Error { code, .. } if code == "1150"));
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert!(matches!(hear(&mut ws).await, ToAgent::Error { code, .. } if code == "1150"));
    // Still open: a report of a real run is stored and acknowledged.
    let p = s.store.create_project("p", "").await.unwrap();
    let e = s
        .store
        .create_endpoint("e", "local", "/data", None)
        .await
        .unwrap();
    let f = s
        .store
        .create_endpoint("f", "local", "/copy", None)
        .await
        .unwrap();
    let m = s
        .store
        .create_migration(
            &p.id,
            Some(&agent.id),
            (&e.id, "/"),
            (&f.id, "/"),
            &Default::default(),
        )
        .await
        .unwrap();
    let run = s
        .store
        .create_run(&m.id, godwit_spec::CommandKind::Scan, None)
        .await
        .unwrap();
    let report = ToServer::Result {
        seq: 7,
        run_id: run.id.clone(),
        state: godwit_codes::State::Succeeded,
        counters: Counters {
            files: 12,
            bytes: 3400,
            ..Counters::default()
        },
        error: None,
        report: Some(json!({"files": 12})),
    };
    say(&mut ws, serde_json::to_value(&report).unwrap()).await;
    assert_eq!(hear(&mut ws).await, ToAgent::Ack { seq: 7 });
    let stored = s.store.get_run(&run.id).await.unwrap();
    assert_eq!(
        (
            godwit_spec::command::state_text(stored.state),
            stored.status.code.as_str(),
            stored.files
        ),
        ("SUCCEEDED", "932", 12)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_commands_are_delivered_on_connect_and_taken() {
    let s = server().await;
    let agent = s.store.create_agent("a", "0.1.0").await.unwrap();
    let p = s.store.create_project("p", "").await.unwrap();
    let e = s
        .store
        .create_endpoint("e", "local", "/data", None)
        .await
        .unwrap();
    let f = s
        .store
        .create_endpoint("f", "s3", "s3://bucket/x", None)
        .await
        .unwrap();
    let m = s
        .store
        .create_migration(
            &p.id,
            Some(&agent.id),
            (&e.id, "/finance"),
            (&f.id, "/"),
            &Default::default(),
        )
        .await
        .unwrap();
    // Queued while the agent is away.
    let run = s
        .store
        .create_run(&m.id, godwit_spec::CommandKind::Scan, None)
        .await
        .unwrap();
    let mut ws = s.open(&s.token(Role::Agent, Some(&agent.id)).await).await;
    say(
        &mut ws,
        json!({"op": "hello", "agent_id": agent.id, "version": "0.1.0"}),
    )
    .await;
    assert!(matches!(hear(&mut ws).await, ToAgent::Welcome { .. }));
    match hear(&mut ws).await {
        ToAgent::Command(job) => {
            assert_eq!(job.run_id, run.id);
            assert_eq!(job.source, "/data/finance");
            assert_eq!(job.target, "s3://bucket/x");
        }
        other => panic!("{other:?}"),
    }
    say(&mut ws, json!({"op": "taken", "seq": 4, "run_id": run.id})).await;
    assert_eq!(hear(&mut ws).await, ToAgent::Ack { seq: 4 });
    for _ in 0..50 {
        if s.store.get_run(&run.id).await.unwrap().state == godwit_codes::State::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = s.store.get_run(&run.id).await.unwrap();
    assert_eq!(
        (
            godwit_spec::command::state_text(r.state),
            r.status.code.as_str()
        ),
        ("RUNNING", "930")
    );
    // Only agent tokens connect.
    let mut req = format!("ws://{}/v1/agent/connect", s.url)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", s.token(Role::Admin, None).await)
            .parse()
            .unwrap(),
    );
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_start_their_commands_when_due() {
    let s = server().await;
    let p = s.store.create_project("p", "").await.unwrap();
    let e = s
        .store
        .create_endpoint("e", "local", "/data", None)
        .await
        .unwrap();
    let f = s
        .store
        .create_endpoint("f", "local", "/copy", None)
        .await
        .unwrap();
    let m = s
        .store
        .create_migration(&p.id, None, (&e.id, "/"), (&f.id, "/"), &Default::default())
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let hourly = s
        .store
        .create_schedule(
            &m.id,
            godwit_spec::CommandKind::Scan,
            "hourly",
            3,
            now + 800,
        )
        .await
        .unwrap();
    // A second start at the same time finds the scan running: refused, kept as a FAILED run.
    s.store
        .create_schedule(&m.id, godwit_spec::CommandKind::Scan, "once", 1, now + 1500)
        .await
        .unwrap();
    let mut runs = Vec::new();
    for _ in 0..60 {
        runs = s.store.list_runs(&m.id, 10, 0).await.unwrap().1;
        if runs.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(runs.len(), 2, "{runs:?}");
    let queued = runs
        .iter()
        .find(|r| r.state == godwit_codes::State::Queued)
        .unwrap_or_else(|| panic!("the scan started: {runs:?}"));
    assert_eq!(queued.status.code, "937");
    let refused = runs
        .iter()
        .find(|r| r.state == godwit_codes::State::Failed)
        .unwrap_or_else(|| panic!("the refused start: {runs:?}"));
    assert_eq!(refused.error.as_ref().unwrap().code, "650");
    let left = s.store.list_schedules(&m.id).await.unwrap();
    let h = left.iter().find(|x| x.id == hourly.id).unwrap();
    assert_eq!(h.repeat, 2, "one start done, two left");
    assert!(
        h.start_ms >= now + 3_600_000,
        "the next start is an hour on"
    );
    let (count, _) = s.store.failed_runs(10, 0).await.unwrap();
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_dropped_so_the_agent_can_come_back() {
    let s = server_with(Some(Duration::from_secs(1))).await;
    let agent = s.store.create_agent("a", "0.1.0").await.unwrap();
    let token = s.token(Role::Agent, Some(&agent.id)).await;
    let hello = json!({"op": "hello", "agent_id": agent.id, "version": "0.1.0"});
    // Registered, then nothing: as a connection cut without a goodbye looks to the server.
    let mut stale = s.open(&token).await;
    say(&mut stale, hello.clone()).await;
    assert!(matches!(hear(&mut stale).await, ToAgent::Welcome { .. }));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut again = s.open(&token).await;
    say(&mut again, hello).await;
    assert!(
        matches!(hear(&mut again).await, ToAgent::Welcome { .. }),
        "not refused as already connected"
    );
    // The silent agent was also marked inactive meanwhile, and is active again now.
    assert_eq!(
        s.store.get_agent(&agent.id).await.unwrap().state.code,
        "901"
    );
    drop(stale);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_connection_is_refused_once_its_token_is_revoked_or_its_agent_deactivated() {
    let s = server_with(Some(Duration::from_secs(3))).await;
    for how in ["revoked", "deactivated"] {
        let agent = s.store.create_agent(how, "0.1.0").await.unwrap();
        let token = s.token(Role::Agent, Some(&agent.id)).await;
        let mut ws = s.open(&token).await;
        let hello = json!({"op": "hello", "agent_id": agent.id, "version": "0.1.0"});
        say(&mut ws, hello).await;
        assert!(matches!(hear(&mut ws).await, ToAgent::Welcome { .. }));
        let want = if how == "revoked" {
            let jti = godwit_server::auth::Claims::read_unverified(&token)
                .unwrap()
                .jti;
            s.store.revoke_token(&jti, "test").await.unwrap();
            "707"
        } else {
            s.store
                .set_agent_state(
                    &agent.id,
                    godwit_codes::Code::AGENT_STATE_DEACTIVATED,
                    false,
                )
                .await
                .unwrap();
            "862"
        };
        // Within a heartbeat (1 s here), the connection says why and closes.
        let refused = loop {
            let m = hear(&mut ws).await;
            if matches!(m, ToAgent::Refused { .. }) {
                break refused_with(&m);
            }
        };
        assert_eq!(refused, (want.to_string(), false), "{how}");
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("closed in time");
        assert!(
            matches!(next, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
            "{how}: closed, not {next:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_commands_an_agent_goes_quiet_on_or_that_do_nothing_fail_with_697_and_641() {
    // Reports awaited 2 s, activity 3 s; heartbeats (30 s) keep the agent connected.
    let s = server_with_windows(None, Some((Duration::from_secs(2), Duration::from_secs(3)))).await;
    let agent = s.store.create_agent("a", "0.1.0").await.unwrap();
    let p = s.store.create_project("p", "").await.unwrap();
    let e = s
        .store
        .create_endpoint("e", "local", "/data", None)
        .await
        .unwrap();
    let f = s
        .store
        .create_endpoint("f", "local", "/copy", None)
        .await
        .unwrap();
    let mut runs = Vec::new();
    for path in ["/quiet", "/stuck"] {
        let m = s
            .store
            .create_migration(
                &p.id,
                Some(&agent.id),
                (&e.id, path),
                (&f.id, path),
                &Default::default(),
            )
            .await
            .unwrap();
        let run = s
            .store
            .create_run(&m.id, godwit_spec::CommandKind::Scan, None)
            .await
            .unwrap();
        runs.push(run.id);
    }
    let mut ws = s.open(&s.token(Role::Agent, Some(&agent.id)).await).await;
    say(
        &mut ws,
        json!({"op": "hello", "agent_id": agent.id, "version": "0.1.0"}),
    )
    .await;
    assert!(matches!(hear(&mut ws).await, ToAgent::Welcome { .. }));
    for (seq, run) in runs.iter().enumerate() {
        say(&mut ws, json!({"op": "taken", "seq": seq, "run_id": run})).await;
    }
    // The first run is never reported on again; the second is, every 300 ms, doing nothing.
    let started = std::time::Instant::now();
    let mut stopped = std::collections::BTreeSet::new();
    let mut seq = 10u64;
    while stopped.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "stopped only {stopped:?}"
        );
        let progress = ToServer::Progress {
            seq,
            run_id: runs[1].clone(),
            counters: Counters {
                files: 3,
                activity: 42,
                ..Counters::default()
            },
        };
        seq += 1;
        say(&mut ws, serde_json::to_value(&progress).unwrap()).await;
        say(&mut ws, json!({"op": "heartbeat"})).await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout_at(deadline, ws.next()).await
        {
            if let Ok(ToAgent::Control { run_id, action }) = serde_json::from_str::<ToAgent>(&t) {
                assert_eq!(action, "stop");
                stopped.insert(run_id);
            }
        }
    }
    for (run, code, words) in [
        (&runs[0], "697", "stopped reporting"),
        (&runs[1], "641", "not responding"),
    ] {
        let r = s.store.get_run(run).await.unwrap();
        assert_eq!(godwit_spec::command::state_text(r.state), "FAILED", "{r:?}");
        let e = r.error.unwrap();
        assert_eq!(e.code, code);
        let message = godwit_codes::Code::lookup(code).unwrap().render(
            &e.params
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                .collect::<Vec<_>>(),
        );
        assert!(message.contains(words), "{message}");
    }
    // Stopped because they were given up; not before their windows.
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_older_than_the_minimum_version_are_refused_with_864() {
    let s = server_of(ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: None,
        state_dir: std::path::PathBuf::new(),
        heartbeat_window: None,
        release_key: None,
        min_agent_version: Some("0.1.5".into()),
        run_windows: None,
        tls: None,
    })
    .await;
    for (version, welcome) in [
        ("0.1.4", false),
        ("0.1.5-rc.1", false),
        ("0.1.5", true),
        ("0.3.0", true),
    ] {
        // An agent of its own for each: one connection per agent.
        let agent = s.store.create_agent(version, "0.1.0").await.unwrap();
        let token = s.token(Role::Agent, Some(&agent.id)).await;
        let mut ws = s.open(&token).await;
        say(
            &mut ws,
            json!({"op": "hello", "agent_id": agent.id, "version": version}),
        )
        .await;
        let m = hear(&mut ws).await;
        if welcome {
            assert!(matches!(m, ToAgent::Welcome { .. }), "{version}: {m:?}");
        } else {
            let (code, retry) = refused_with(&m);
            assert_eq!((code.as_str(), retry), ("864", false), "{version}: {m:?}");
            let ToAgent::Refused { message, .. } = m else {
                unreachable!()
            };
            assert!(message.contains("0.1.5 or newer"), "{message}");
        }
    }
}

/// One HTTP request to the control plane at `addr` (`host:port`): status and JSON body.
async fn http(addr: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_of_a_godwit_without_upgrades_or_retirement_is_not_asked_for_them_9150() {
    let (_, public) = godwit_spec::release::generate_key().unwrap();
    let s = server_of(ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: None,
        state_dir: std::path::PathBuf::new(),
        heartbeat_window: None,
        release_key: Some(public),
        min_agent_version: None,
        run_windows: None,
        tls: None,
    })
    .await;
    let admin = s.token(Role::Admin, None).await;
    let agent = s.store.create_agent("old", "0.1.0").await.unwrap();
    // Connected as an agent from before upgrades: its hello names no features.
    let mut ws = s.open(&s.token(Role::Agent, Some(&agent.id)).await).await;
    say(
        &mut ws,
        json!({"op": "hello", "agent_id": agent.id, "version": "0.1.0"}),
    )
    .await;
    assert!(matches!(hear(&mut ws).await, ToAgent::Welcome { .. }));
    let calls = [
        (
            format!("/v1/agents/{}/upgrade", agent.id),
            r#"{"version": "0.2.0"}"#,
        ),
        (format!("/v1/agents/{}/retire", agent.id), ""),
    ];
    for (path, body) in calls {
        let (status, v) = http(&s.url, "POST", &path, &admin, body).await;
        assert_eq!(
            (status, v["error_code"].as_str()),
            (409, Some("9150")),
            "{path}: {v}"
        );
        assert!(v["error_msg"].as_str().unwrap().contains("0.1.0"), "{v}");
    }
    assert!(s.store.get_agent(&agent.id).await.unwrap().retire.is_none());
    // The same agent saying what it can be asked: retirement is sent to it.
    drop(ws);
    // Until the control plane has seen the first connection go (856 meanwhile).
    let mut ws = loop {
        let mut ws = s.open(&s.token(Role::Agent, Some(&agent.id)).await).await;
        say(
            &mut ws,
            json!({"op": "hello", "agent_id": agent.id, "version": "0.1.0",
                   "features": ["upgrade", "retire", "teleport"]}),
        )
        .await;
        match hear(&mut ws).await {
            ToAgent::Welcome { .. } => break ws,
            m => assert_eq!(refused_with(&m).0, "856", "{m:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let a = s.store.get_agent(&agent.id).await.unwrap();
    assert_eq!(
        a.features,
        ["upgrade", "retire"],
        "unknown ones are dropped"
    );
    let (status, v) = http(
        &s.url,
        "POST",
        &format!("/v1/agents/{}/retire", agent.id),
        &admin,
        "",
    )
    .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(hear(&mut ws).await, ToAgent::Retire);
}
