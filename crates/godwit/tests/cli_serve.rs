//! `godwit serve` as an operator runs it: the real process, a token from `godwit token create`,
//! and curl. With no flags it keeps its store in SQLite in the state directory; with
//! `--database` in PostgreSQL. SIGTERM stops it gracefully.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use support::{godwit, run, text};

struct Server {
    child: Child,
    url: String,
    /// What `godwit token` needs to record its tokens where this server reads them.
    store_args: Vec<std::ffi::OsString>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(state: &Path, database: Option<&str>) -> Server {
    let mut cmd = godwit();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state)
        .env_remove("GODWIT_JWT_SECRET")
        .env_remove("GODWIT_DATABASE_URL")
        .stderr(Stdio::piped());
    if let Some(db) = database {
        cmd.args(["--database", db]);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The address line (on PostgreSQL, the line saying this replica took the sweeps may come
    // first).
    let url = loop {
        let line = lines.next().expect("the control plane stopped").unwrap();
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            break url.to_string();
        }
    };
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    let mut store_args = vec!["--state-dir".into(), state.as_os_str().to_owned()];
    if let Some(db) = database {
        store_args.extend(["--database".into(), db.into()]);
    }
    Server {
        child,
        url,
        store_args,
    }
}

/// `godwit token ARGS` on the server's state directory and store.
fn token_cli(server: &Server, args: &[&str]) -> std::process::Output {
    run(godwit()
        .arg("token")
        .args(args)
        .args(&server.store_args)
        .env_remove("GODWIT_JWT_SECRET")
        .env_remove("GODWIT_DATABASE_URL"))
}

fn token(server: &Server, role: &str) -> String {
    let out = token_cli(server, &["create", "--role", role, "--subject", role]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// curl METHOD URL with a token and a JSON body; returns (status, body).
fn curl(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, url]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = c.output().unwrap();
    let all = text(&out.stdout);
    let (body, status) = all.rsplit_once('\n').unwrap();
    let value = serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.into()));
    (status.trim().parse().unwrap(), value)
}

fn operator_walkthrough(server: &Server) {
    let op = token(server, "operator");
    let viewer = token(server, "viewer");
    let u = &server.url;
    assert_eq!(curl("GET", &format!("{u}/readyz"), None, None).0, 200);

    let (s, src) = curl(
        "POST",
        &format!("{u}/v1/endpoints"),
        Some(&op),
        Some(r#"{"name":"nas","kind":"local","uri":"/mnt/nas/finance"}"#),
    );
    assert_eq!(s, 201, "{src}");
    let (s, dst) = curl(
        "POST",
        &format!("{u}/v1/endpoints"),
        Some(&op),
        Some(
            r#"{"name":"archive","kind":"s3","uri":"s3://archive/finance","credential_ref":"aws"}"#,
        ),
    );
    assert_eq!(s, 201, "{dst}");
    let (s, p) = curl(
        "POST",
        &format!("{u}/v1/projects"),
        Some(&op),
        Some(r#"{"name":"finance move"}"#),
    );
    assert_eq!(s, 201, "{p}");
    let body = format!(
        r#"{{"projectId":"{}","source":{{"endpointId":"{}","path":"/"}},"target":{{"endpointId":"{}","path":"/"}},"options":{{"syncDeletes":true}}}}"#,
        p["id"].as_str().unwrap(),
        src["id"].as_str().unwrap(),
        dst["id"].as_str().unwrap()
    );
    let (s, m) = curl(
        "POST",
        &format!("{u}/v1/migrations"),
        Some(&op),
        Some(&body),
    );
    assert_eq!(s, 201, "{m}");
    let mid = m["id"].as_str().unwrap();
    let (s, run) = curl(
        "POST",
        &format!("{u}/v1/migrations/{mid}/commands"),
        Some(&op),
        Some(r#"{"command":"scan","action":"start"}"#),
    );
    assert_eq!(s, 202, "{run}");
    assert_eq!(run["status"]["name"], "SCAN : QUEUED");
    let (s, runs) = curl(
        "GET",
        &format!("{u}/v1/migrations/{mid}/runs"),
        Some(&viewer),
        None,
    );
    assert_eq!(
        (s, runs["items"][0]["id"].clone()),
        (200, run["id"].clone()),
        "{runs}"
    );
    let (s, e) = curl(
        "POST",
        &format!("{u}/v1/migrations/{mid}/commands"),
        Some(&viewer),
        Some(r#"{"command":"scan","action":"stop"}"#),
    );
    assert_eq!((s, e["error_code"].as_str()), (403, Some("HTTP403")), "{e}");
    let (s, list) = curl("GET", &format!("{u}/v1/projects"), Some(&viewer), None);
    assert_eq!((s, list["count"].as_i64()), (200, Some(1)), "{list}");
    let (s, e) = curl(
        "POST",
        &format!("{u}/v1/projects"),
        Some(&viewer),
        Some(r#"{"name":"nope"}"#),
    );
    assert_eq!((s, e["error_code"].as_str()), (403, Some("HTTP403")), "{e}");
    let (s, e) = curl("GET", &format!("{u}/v1/projects"), None, None);
    assert_eq!((s, e["error_code"].as_str()), (401, Some("622")), "{e}");

    // The tokens are listed without their text; one revoked is refused from then on, and the
    // audit log says who revoked it.
    let out = token_cli(server, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    assert!(!list.contains(&viewer) && !list.contains("eyJ"), "{list}");
    let tokens: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id_of = |subject: &str| {
        tokens["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["subject"] == subject)
            .unwrap_or_else(|| panic!("no {subject} in {tokens}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let viewer_id = id_of("viewer");
    let out = token_cli(server, &["revoke", &viewer_id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (s, e) = curl("GET", &format!("{u}/v1/projects"), Some(&viewer), None);
    assert_eq!((s, e["error_code"].as_str()), (401, Some("707")), "{e}");
    let out = token_cli(server, &["list"]);
    let table = text(&out.stdout);
    let row = table.lines().find(|l| l.starts_with(&viewer_id)).unwrap();
    assert!(row.contains("revoked"), "{table}");
    let out = token_cli(server, &["revoke", "no-such-token"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("800"), "{}", text(&out.stderr));
    let admin = token(server, "admin");
    let (s, log) = curl("GET", &format!("{u}/v1/audit"), Some(&admin), None);
    assert_eq!(s, 200, "{log}");
    let revoked = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["action"] == "token.revoke")
        .unwrap_or_else(|| panic!("no token.revoke in {log}"));
    assert_eq!(revoked["target"], viewer_id.as_str());
    assert!(
        revoked["subject"].as_str().unwrap().starts_with("cli:"),
        "{revoked}"
    );
}

fn stop_gracefully(mut server: Server) {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
}

#[test]
fn serve_with_no_flags_uses_sqlite_in_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = serve(&state, None);
    operator_walkthrough(&server);
    stop_gracefully(server);
    assert!(state.join("control-plane.db").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(state.join("jwt-secret"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the generated secret is private");
    // The state directory and the database (with its journal files) are this user's only,
    // whatever the umask.
    let mode_of = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode_of(&state), 0o700);
    for e in std::fs::read_dir(&state).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("control-plane.db") {
            assert_eq!(mode_of(&e.path()), 0o600, "{name}");
        }
    }

    // Restarted on the same state: the data and the tokens are still good.
    let server = serve(&state, None);
    let (s, list) = curl(
        "GET",
        &format!("{}/v1/projects", server.url),
        Some(&token(&server, "viewer")),
        None,
    );
    assert_eq!((s, list["count"].as_i64()), (200, Some(1)), "{list}");
}

#[test]
fn serve_on_postgresql() {
    let admin = std::env::var("GODWIT_TEST_POSTGRES_URL")
        .expect("GODWIT_TEST_POSTGRES_URL: run `bash scripts/test.sh`");
    let name = format!(
        "godwit_test_{}_{}_cli",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        std::process::id()
    );
    let (base, _) = admin.rsplit_once('/').unwrap();
    let out = Command::new("psql")
        .args([&admin, "-qc", &format!("CREATE DATABASE {name}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = serve(&state, Some(&format!("{base}/{name}")));
    operator_walkthrough(&server);
    stop_gracefully(server);
    assert!(
        !state.join("control-plane.db").exists(),
        "no SQLite file with --database"
    );
}

#[test]
fn a_database_that_cannot_be_reached_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(godwit()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            "postgres://nobody:secret@127.0.0.1:9/x",
            "--state-dir",
        ])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(
        !err.contains("secret"),
        "the password is not printed: {err}"
    );
}

#[test]
fn regression_unusable_durations_in_the_environment_are_usage_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("GODWIT_HEARTBEAT_WINDOW", "1e30"),
        ("GODWIT_HEARTBEAT_WINDOW", "inf"),
        ("GODWIT_RATE_LIMIT", "-1"),
        ("GODWIT_JOB_MAX_FILES", "many"),
    ] {
        let out = run(godwit()
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir.path())
            .env(name, value));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}={value}: {err}");
        assert!(
            err.contains("error[724]") && err.contains(&format!("{name}={value}")),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // A copy to a remote store reads its timeouts the same way.
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    for (name, value) in [
        ("GODWIT_REQUEST_TIMEOUT", "inf"),
        ("GODWIT_IO_TIMEOUT", "0"),
    ] {
        let out = run(godwit()
            .arg("copy")
            .arg(&src)
            .arg("memory://x")
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env(name, value));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}={value}: {err}");
        assert!(
            err.contains("error[724]") && err.contains(&format!("{name}={value}")),
            "{err}"
        );
    }
}
