//! The agent against a control plane of the test's own, over a real WebSocket on loopback: what
//! it says when it connects, and a command it cannot read as sent fails its run with the code
//! that says why (1030 for an option it does not know, 1050 for a command it does not have),
//! instead of running with a part of it ignored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// An agent token as the control plane issues it; the agent reads it without the signature.
fn token(agent_id: &str) -> String {
    let claims = json!({"sub": "t", "role": "agent", "agent_id": agent_id,
        "iat": 1, "exp": 4_000_000_000u64, "jti": "j"});
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2lnbmF0dXJl")
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// The agent's next text message, as JSON.
async fn next(ws: &mut Socket) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message in time");
        match m {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => {}
            other => panic!("the connection closed: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_agent_cannot_read_fails_its_run_with_its_code() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut options = godwit_agent::AgentOptions::new(
        &format!("http://{addr}"),
        &token("agent-1"),
        state.path().to_path_buf(),
    );
    options.name = Some("test".into());
    let agent = tokio::spawn(godwit_agent::run(options, async {
        let _ = stopped.await;
    }));
    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let hello = next(&mut ws).await;
    assert_eq!(hello["op"], "hello", "{hello}");
    assert_eq!(hello["agent_id"], "agent-1");
    let commands: Vec<&str> = hello["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        commands.contains(&"sanitize") && commands.contains(&"copy"),
        "{hello}"
    );
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(
        json!({"op": "welcome", "agent_id": "agent-1", "heartbeat_secs": 30}),
    ))
    .await
    .unwrap();
    let job = |run: &str, command: &str, options: Value| {
        json!({"op": "command", "run_id": run, "migration_id": "m", "command": command,
            "source": "/nonexistent/src", "target": "/nonexistent/dst", "options": options})
    };
    ws.send(send(job("r-option", "copy", json!({"syncDelete": true}))))
        .await
        .unwrap();
    ws.send(send(job("r-command", "dance", json!({}))))
        .await
        .unwrap();
    let mut results = std::collections::BTreeMap::new();
    while results.len() < 2 {
        let m = next(&mut ws).await;
        if let Some(seq) = m["seq"].as_u64() {
            ws.send(send(json!({"op": "ack", "seq": seq})))
                .await
                .unwrap();
        }
        if m["op"] == "result" {
            results.insert(m["run_id"].as_str().unwrap().to_string(), m);
        }
    }
    let option = &results["r-option"];
    assert_eq!(option["state"], "FAILED", "{option}");
    assert_eq!(option["error"]["code"], "1030", "{option}");
    assert!(
        option["error"]["message"]
            .as_str()
            .unwrap()
            .contains("syncDelete"),
        "the option is named: {option}"
    );
    let command = &results["r-command"];
    assert_eq!(
        (command["state"].as_str(), command["error"]["code"].as_str()),
        (Some("FAILED"), Some("1050")),
        "{command}"
    );
    // Nothing was run: no run folder was made for either.
    assert!(!state.path().join("migrations").exists());
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), agent).await;
}
