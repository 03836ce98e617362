//! Running godwit as a service: JSON logs with the ids of what they are about, the metrics
//! pages of the control plane and of an agent after a copy (read with Prometheus' own text
//! parser), configuration files for both roles, HTTPS between an agent and the control plane
//! with a test certificate, `godwit doctor` against real S3 servers, and the packaging.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::world::*;
use support::{godwit, run, text};

/// The samples of a Prometheus text page, parsed by the reference client's parser (a page it
/// refuses fails the test): (name, labels, value).
fn prom(page: &str) -> Vec<(String, serde_json::Map<String, Value>, f64)> {
    let mut child = Command::new(env("GODWIT_TEST_PYTHON"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/prom.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the page: {}\n{page}",
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s[0].as_str().unwrap().to_string(),
                s[1].as_object().unwrap().clone(),
                s[2].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The value of sample `name` whose labels include `labels`.
fn sample(
    samples: &[(String, serde_json::Map<String, Value>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

fn curl(url: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--fail"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// Every line of a log written with `--log-format json`, parsed (a line that is not JSON fails).
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {l}", path.display()))
        })
        .collect()
}

/// Whether `line`'s spans include one named `name` with every field of `fields`.
fn in_span(line: &Value, name: &str, fields: &[(&str, &str)]) -> bool {
    line["spans"].as_array().is_some_and(|spans| {
        spans
            .iter()
            .any(|s| s["name"] == name && fields.iter().all(|(k, v)| s[*k].as_str() == Some(*v)))
    })
}

#[test]
fn json_logs_and_metrics_of_a_copy_through_an_agent() {
    let mut w = World::with(None, vec![("GODWIT_LOG_FORMAT".into(), "json".into())]);
    w.agent_env
        .push(("GODWIT_METRICS_LISTEN".into(), "127.0.0.1:0".into()));
    w.start_agent_and_wait();
    let src = source(&w.root, 12, 3000);
    let m = w.migration(&src, json!({}));
    let scanned = w.scanned(&m);
    let scan = scanned["id"].as_str().unwrap().to_string();
    let copy = w.start(&m, "copy", "927");
    w.wait_end(&copy, "922");
    // The control plane: every line is JSON; each request is logged with its route, status,
    // duration and who asked; no token appears.
    let server_log = w.root.join("server.log");
    let lines = json_lines(&server_log);
    let started = lines
        .iter()
        .find(|l| {
            l["fields"]["message"] == "request"
                && l["fields"]["status"] == 202
                && in_span(l, "request", &[("route", "/v1/migrations/{id}/commands")])
        })
        .unwrap_or_else(|| panic!("no request line for the copy's start in {lines:#?}"));
    let request = &started["spans"][0];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["subject"], "cli", "{started}");
    assert!(
        started["fields"]["duration_ms"].as_f64().is_some(),
        "{started}"
    );
    let all = std::fs::read_to_string(&server_log).unwrap()
        + &std::fs::read_to_string(w.root.join("agent.log")).unwrap();
    assert!(!all.contains(&w.admin), "the admin token is in a log");
    assert!(!all.contains(&w.agent_token), "the agent token is in a log");
    // The agent: its command's lines carry the agent's id, the run's and the migration's, and
    // the engine's job span inside them the run folder's id.
    let agent_lines = json_lines(&w.root.join("agent.log"));
    let ended = agent_lines
        .iter()
        .find(|l| {
            l["fields"]["message"] == "command ended"
                && in_span(l, "agent", &[("agent_id", &w.agent_id)])
                && in_span(l, "command", &[("run_id", &copy), ("migration_id", &m)])
        })
        .unwrap_or_else(|| panic!("no 'command ended' line for {copy}: {agent_lines:#?}"));
    assert_eq!(ended["fields"]["state"], "SUCCEEDED", "{ended}");
    assert_eq!(ended["fields"]["files"], 12, "{ended}");
    assert!(
        agent_lines.iter().any(|l| {
            l["fields"]["message"] == "job ended"
                && in_span(l, "command", &[("run_id", &copy)])
                && l["spans"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["name"] == "job" && s["run"].as_str().is_some_and(|r| !r.is_empty()))
        }),
        "no engine job span with its run id inside the copy's command"
    );
    // The control plane's metrics: this migration's files and bytes by code, the runs, the
    // agents, the store's statements.
    let (ok, page) = curl(&format!("{}/metrics", w.url()), &[]);
    assert!(ok, "{page}");
    let s = prom(&page);
    let files = [("migration_id", m.as_str()), ("code", "AZSM0000")];
    assert_eq!(
        sample(&s, "godwit_files_total", &files),
        Some(12.0),
        "{page}"
    );
    assert_eq!(
        sample(&s, "godwit_file_bytes_total", &files),
        Some(36000.0),
        "{page}"
    );
    let copies = [("command", "copy"), ("state", "SUCCEEDED")];
    assert_eq!(sample(&s, "godwit_runs_total", &copies), Some(1.0));
    let scans = [("command", "scan"), ("state", "SUCCEEDED")];
    assert_eq!(sample(&s, "godwit_runs_total", &scans), Some(1.0));
    assert_eq!(
        sample(
            &s,
            "godwit_run_duration_seconds_count",
            &[("command", "copy")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&s, "godwit_agents", &[("state", "active")]),
        Some(1.0)
    );
    assert_eq!(sample(&s, "godwit_agents_connected", &[]), Some(1.0));
    assert_eq!(sample(&s, "godwit_commands_queued", &[]), Some(0.0));
    assert!(
        sample(
            &s,
            "godwit_store_query_seconds_count",
            &[("statement", "select")]
        )
        .is_some_and(|n| n > 0.0),
        "{page}"
    );
    let starts = [
        ("method", "POST"),
        ("route", "/v1/migrations/{id}/commands"),
        ("status", "202"),
    ];
    assert_eq!(sample(&s, "godwit_http_requests_total", &starts), Some(2.0));
    assert!(
        !page.contains(&scan),
        "a run id as a label would grow without end"
    );
    // The agent's own page (--metrics-listen), at the address it logged.
    let addr = agent_lines
        .iter()
        .find_map(|l| {
            l["fields"]["message"]
                .as_str()
                .filter(|m| m.starts_with("metrics at"))
                .and(l["fields"]["addr"].as_str())
        })
        .expect("the agent says where its metrics are");
    let (ok, page) = curl(&format!("http://{addr}/metrics"), &[]);
    assert!(ok, "{page}");
    let s = prom(&page);
    assert_eq!(
        sample(&s, "godwit_transfer_files_total", &[]),
        Some(12.0),
        "{page}"
    );
    assert_eq!(
        sample(&s, "godwit_transfer_bytes_total", &[]),
        Some(36000.0)
    );
    assert_eq!(
        sample(&s, "godwit_agent_commands_total", &[("state", "SUCCEEDED")]),
        Some(2.0)
    );
    assert_eq!(sample(&s, "godwit_agent_connected", &[]), Some(1.0));
    assert_eq!(sample(&s, "godwit_agent_commands_running", &[]), Some(0.0));
    // Every name on both pages is in docs/operations.md.
    let documented = std::fs::read_to_string(docs().join("operations.md")).unwrap();
    let (_, cp_page) = curl(&format!("{}/metrics", w.url()), &[]);
    for (name, _, _) in prom(&cp_page).iter().chain(s.iter()) {
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            documented.contains(&format!("`{family}`")),
            "{family} is not in docs/operations.md"
        );
    }
}

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn the_grafana_dashboard_uses_only_documented_metrics() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(docs().join("grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let documented = std::fs::read_to_string(docs().join("operations.md")).unwrap();
    let mut used = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !word.starts_with("godwit_") {
                    continue;
                }
                let family = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|suffix| word.strip_suffix(suffix))
                    .unwrap_or(word);
                assert!(
                    documented.contains(&format!("`{family}`")),
                    "the dashboard's {family} is not in docs/operations.md"
                );
                used += 1;
            }
        }
    }
    assert!(used > 15, "the dashboard reads {used} metrics");
}

/// A port free now on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process whose stderr goes to `log`, killed when dropped.
struct Service {
    proc: Proc,
    log: PathBuf,
}

impl Service {
    fn start(mut c: Command, log: &Path) -> Service {
        let file = std::fs::File::create(log).unwrap();
        c.stderr(file).stdout(Stdio::null());
        Service {
            proc: Proc(c.spawn().unwrap()),
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `what`; the log.
    fn wait_log(&mut self, what: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(what) {
                return log;
            }
            if let Ok(Some(status)) = self.proc.0.try_wait() {
                panic!("it stopped ({status}) before saying {what}:\n{log}");
            }
            assert!(start.elapsed() < limit, "no {what} in:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An admin token for the control plane keeping its state in `cp`.
fn admin_token(cp: &Path) -> String {
    let out = run(godwit()
        .args(["token", "create", "--role", "admin", "--state-dir"])
        .arg(cp)
        .env_remove("GODWIT_DATABASE_URL"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// Registers an agent; its id and token.
fn register(url: &str, admin: &str, ca: Option<&Path>) -> (String, String) {
    let (s, a) = api_call(
        url,
        admin,
        "POST",
        "/v1/agents",
        Some(json!({"name": format!("svc-{}", rand_suffix()), "version": "0.1.0"})),
        ca,
    );
    assert_eq!(s, 201, "{a}");
    (
        a["agent"]["id"]
            .as_str()
            .or(a["id"].as_str())
            .unwrap()
            .to_string(),
        a["token"].as_str().unwrap().to_string(),
    )
}

fn wait_active(url: &str, admin: &str, agent: &str, ca: Option<&Path>) {
    let start = Instant::now();
    loop {
        let (_, a) = api_call(url, admin, "GET", &format!("/v1/agents/{agent}"), None, ca);
        if a["state"]["code"] == "901" {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the agent never became active: {a}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn configuration_files_start_both_roles_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = free_port();
    let cp = root.join("cp");
    let config = root.join("godwit.toml");
    std::fs::write(
        &config,
        format!(
            "[serve]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"{}\"\nheartbeat_window_secs = 3\n\n\
             [log]\nformat = \"json\"\n",
            cp.display()
        ),
    )
    .unwrap();
    let check = run(godwit().args(["config", "check"]).arg(&config));
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains("[serve], [log]"),
        "{}",
        text(&check.stdout)
    );
    // The control plane from the file alone: its address, its state, its log format.
    let mut c = godwit();
    c.args(["serve", "--config"]).arg(&config);
    let mut server = Service::start(c, &root.join("serve.log"));
    let log = server.wait_log("listening on", Duration::from_secs(30));
    let first = log.lines().next().unwrap();
    let line: Value = serde_json::from_str(first).unwrap_or_else(|_| panic!("not JSON: {first}"));
    assert_eq!(
        line["fields"]["addr"],
        format!("127.0.0.1:{port}"),
        "{line}"
    );
    let url = format!("http://127.0.0.1:{port}");
    // `godwit token` finds the same store through the same file.
    let out = run(godwit()
        .args(["token", "create", "--role", "admin", "--config"])
        .arg(&config)
        .env_remove("GODWIT_DATABASE_URL"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let admin = text(&out.stdout).trim().to_string();
    let (agent_id, token) = register(&url, &admin, None);
    // The agent from the same file: its [agent] table names the server, a token file and
    // its state directory.
    let token_file = root.join("agent.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let mut text_file = std::fs::read_to_string(&config).unwrap();
    text_file.push_str(&format!(
        "\n[agent]\nserver = \"{url}\"\ntoken_file = \"{}\"\nstate_dir = \"{}\"\nname = \"from-a-file\"\n",
        token_file.display(),
        root.join("agent-state").display()
    ));
    std::fs::write(&config, text_file).unwrap();
    let check = run(godwit().args(["config", "check"]).arg(&config));
    assert!(
        text(&check.stdout).contains("[serve], [agent], [log]"),
        "{}",
        text(&check.stdout)
    );
    let mut c = godwit();
    c.args(["agent", "--config"])
        .arg(&config)
        .env_remove("GODWIT_AGENT_TOKEN")
        .env_remove("GODWIT_SERVER");
    let _agent = Service::start(c, &root.join("agent.log"));
    wait_active(&url, &admin, &agent_id, None);
    // Flags, then the environment, override the file.
    let other = free_port();
    let mut c = godwit();
    c.args(["serve", "--config"])
        .arg(&config)
        .args([
            "--listen",
            &format!("127.0.0.1:{other}"),
            "--log-format",
            "text",
            "--state-dir",
        ])
        .arg(root.join("cp2"));
    let mut flagged = Service::start(c, &root.join("serve2.log"));
    let log = flagged.wait_log("listening on", Duration::from_secs(30));
    assert!(
        log.contains(&format!("listening on http://127.0.0.1:{other}")),
        "{log}"
    );
    assert!(
        !log.trim_start().starts_with('{'),
        "--log-format text did not win: {log}"
    );
    let third = free_port();
    let mut c = godwit();
    c.args(["serve", "--config"])
        .arg(&config)
        .args(["--state-dir"])
        .arg(root.join("cp3"))
        .env("GODWIT_LISTEN", format!("127.0.0.1:{third}"));
    let mut by_env = Service::start(c, &root.join("serve3.log"));
    let log = by_env.wait_log("listening on", Duration::from_secs(30));
    assert!(log.contains(&format!("127.0.0.1:{third}")), "{log}");
    drop(server);
    // A key godwit does not know: the line is named, and nothing starts.
    let bad = root.join("bad.toml");
    std::fs::write(
        &bad,
        "[serve]\nlisten = \"127.0.0.1:0\"\nheartbeat_window = 30\n",
    )
    .unwrap();
    for args in [
        vec!["config", "check"],
        vec!["serve", "--config"],
        vec!["agent", "--config"],
    ] {
        let out = run(godwit().args(&args).arg(&bad));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("error[724]"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("heartbeat_window"), "{err}");
    }
    // A value of the right type that cannot work.
    std::fs::write(&bad, "[serve.limits]\njob_max_files = 0\n").unwrap();
    let out = run(godwit().args(["config", "check"]).arg(&bad));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("serve.limits.job_max_files"),
        "{}",
        text(&out.stderr)
    );
}

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate, key) PEM files; the
/// certificate is its own CA.
fn test_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[test]
fn https_between_an_agent_and_the_control_plane() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (cert, key) = test_certificate(root);
    let cp = root.join("cp");
    let mut c = godwit();
    c.args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--state-dir")
        .arg(&cp);
    let mut server = Service::start(c, &root.join("serve.log"));
    let log = server.wait_log("listening on", Duration::from_secs(30));
    let url = log.lines().find_map(listening_url).unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    // Verified with the CA; refused without it, and over plain HTTP.
    let (ok, out) = curl(
        &format!("{url}/healthz"),
        &["--cacert", cert.to_str().unwrap()],
    );
    assert!(ok && out.contains("ok"), "{out}");
    let (ok, out) = curl(&format!("{url}/healthz"), &[]);
    assert!(!ok, "a certificate no CA vouches for was accepted: {out}");
    let (ok, _) = curl(
        &format!("{}/healthz", url.replace("https://", "http://")),
        &[],
    );
    assert!(!ok, "plain HTTP answered on the HTTPS port");
    let admin = admin_token(&cp);
    let (agent_id, token) = register(&url, &admin, Some(&cert));
    // An agent that does not know the CA refuses the control plane, and says why.
    let agent_cmd = |ca: Option<&Path>| {
        let mut c = godwit();
        c.args(["agent", "--server", &url, "--state-dir"])
            .arg(root.join("agent-state"))
            .env("GODWIT_AGENT_TOKEN", &token);
        if let Some(ca) = ca {
            c.arg("--ca-file").arg(ca);
        }
        c
    };
    let mut untrusting = Service::start(agent_cmd(None), &root.join("agent-no-ca.log"));
    let log = untrusting.wait_log("connection failed", Duration::from_secs(30));
    assert!(log.to_lowercase().contains("certificate"), "{log}");
    drop(untrusting);
    // With the CA file it registers and becomes active.
    let _agent = Service::start(agent_cmd(Some(&cert)), &root.join("agent.log"));
    wait_active(&url, &admin, &agent_id, Some(&cert));
    // doctor checks the same from the agent's host: reached and the token accepted with the
    // CA; not reached without it (AZSM1054).
    let doctor_plane = |token: &str, ca: Option<&Path>| {
        let mut c = godwit();
        c.args(["doctor", "--json", "--server", &url, "--state-dir"])
            .arg(root.join("doctor-state"))
            .env("GODWIT_AGENT_TOKEN", token);
        if let Some(ca) = ca {
            c.arg("--ca-file").arg(ca);
        }
        let out = run(&mut c);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let checks = v["checks"].as_array().unwrap().clone();
        (out.status.code(), check(&checks, "control-plane").clone())
    };
    let (status, plane) = doctor_plane(&token, Some(&cert));
    assert_eq!(
        (status, &plane["ok"]),
        (Some(0), &Value::Bool(true)),
        "{plane}"
    );
    let (status, plane) = doctor_plane(&token, None);
    assert_eq!(
        (status, &plane["code"]),
        (Some(1), &json!("AZSM1054")),
        "{plane}"
    );
    // A token the control plane does not take: its own code.
    let (status, plane) = doctor_plane(&admin, Some(&cert));
    assert_eq!(
        (status, &plane["code"]),
        (Some(1), &json!("HTTP403")),
        "{plane}"
    );
    drop(server);
    // Plain HTTP only on loopback unless asked for.
    let out = run(godwit()
        .args(["serve", "--listen", "0.0.0.0:0", "--state-dir"])
        .arg(root.join("cp-open")));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--allow-plain-http"),
        "{}",
        text(&out.stderr)
    );
    let out = run(godwit()
        .args(["agent", "--server", "http://192.0.2.10:8080", "--state-dir"])
        .arg(root.join("agent-open"))
        .env("GODWIT_AGENT_TOKEN", &token));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--allow-plain-http"),
        "{}",
        text(&out.stderr)
    );
}

/// `godwit doctor --json LOCATION` with `env`: its checks by name.
fn doctor(location: &str, env: &[(&str, &str)], state: &Path) -> (i32, Vec<Value>) {
    let mut c = godwit();
    c.args(["doctor", "--json", location, "--state-dir"])
        .arg(state)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("AWS_REGION", "us-east-1");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = run(&mut c);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}{}", text(&out.stdout), text(&out.stderr)));
    (
        out.status.code().unwrap(),
        v["checks"].as_array().unwrap().clone(),
    )
}

fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:#?}"))
}

#[test]
fn doctor_finds_a_missing_bucket_bad_credentials_and_a_full_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let moto = env("GODWIT_TEST_S3_ENDPOINT");
    let good = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL", moto.as_str()),
    ];
    // A bucket that is there: reached, a probe written and removed, the clocks agree.
    let bucket = format!("doctor-{}", rand_suffix());
    store_py(&["mkbucket", &bucket]);
    let (status, checks) = doctor(&format!("s3://{bucket}/share"), &good, &state);
    assert_eq!(status, 0, "{checks:#?}");
    for name in ["reachable", "write", "clock", "state-dir"] {
        assert_eq!(check(&checks, name)["ok"], true, "{checks:#?}");
    }
    let listed = store_py(&["keys", "s3", &bucket, ""]);
    assert!(
        !listed.contains(".godwit-doctor"),
        "the probe was left: {listed}"
    );
    // This host's clock 20 minutes behind the store's (libfaketime): AZSM1053.
    let skewed = Command::new("faketime")
        .args(["-f", "-20m"])
        .arg(env!("CARGO_BIN_EXE_godwit"))
        .args([
            "doctor",
            "--json",
            &format!("s3://{bucket}/share"),
            "--state-dir",
        ])
        .arg(&state)
        .envs(good)
        .env("AWS_REGION", "us-east-1")
        .output();
    match skewed {
        Ok(out) => {
            assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let clock = check(v["checks"].as_array().unwrap(), "clock").clone();
            assert_eq!(clock["code"], "AZSM1053", "{v}");
            assert!(
                clock["message"].as_str().unwrap().contains("ahead of"),
                "{clock}"
            );
        }
        Err(e) => eprintln!(
            "skipped the clock skew: faketime cannot run ({e}); scripts/servers.sh installs it"
        ),
    }
    // A bucket that is not: AZSM1022.
    let (status, checks) = doctor("s3://no-such-bucket-for-doctor/x", &good, &state);
    assert_eq!(status, 1);
    assert_eq!(
        check(&checks, "reachable")["code"],
        "AZSM1022",
        "{checks:#?}"
    );
    // No credentials at all: AZSM1025 before anything is sent.
    let (status, checks) = doctor(
        &format!("s3://{bucket}/share"),
        &[("AWS_ENDPOINT_URL", moto.as_str())],
        &state,
    );
    assert_eq!(status, 1);
    let creds = check(&checks, "credentials");
    assert_eq!(creds["code"], "AZSM1025", "{checks:#?}");
    assert!(
        creds["message"]
            .as_str()
            .unwrap()
            .contains("AWS_ACCESS_KEY_ID")
    );
    // Credentials a server that checks them refuses (moto accepts any; the strict s3s server
    // checks signatures): an unknown key, and a known key with the wrong secret.
    let strict = env("GODWIT_TEST_S3S_ENDPOINT");
    for (key, secret) in [("nobody", "test"), ("test", "wrong-secret")] {
        let env = [
            ("AWS_ACCESS_KEY_ID", key),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_ENDPOINT_URL", strict.as_str()),
        ];
        let (status, checks) = doctor("s3://any-bucket/x", &env, &state);
        assert_eq!(status, 1);
        assert_eq!(
            check(&checks, "reachable")["code"],
            "AZSM1025",
            "{key}: {checks:#?}"
        );
    }
    // Azure Blob (Azurite): a container that is not there, and a key that is wrong.
    let key =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    let blob = env("GODWIT_TEST_AZURE_ENDPOINT");
    let azure = |account_key: &str| {
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={account_key};BlobEndpoint={blob};"
        )
    };
    let good_azure = azure(key);
    let (status, checks) = doctor(
        "az://no-such-container-for-doctor/x",
        &[("AZURE_STORAGE_CONNECTION_STRING", &good_azure)],
        &state,
    );
    assert_eq!(status, 1);
    assert_eq!(
        check(&checks, "reachable")["code"],
        "AZSM1022",
        "{checks:#?}"
    );
    let wrong_azure = azure("d3JvbmcgYWNjb3VudCBrZXkgZm9yIGRvY3Rvcg==");
    let (status, checks) = doctor(
        "az://no-such-container-for-doctor/x",
        &[("AZURE_STORAGE_CONNECTION_STRING", &wrong_azure)],
        &state,
    );
    assert_eq!(status, 1);
    assert_eq!(
        check(&checks, "reachable")["code"],
        "AZSM1025",
        "{checks:#?}"
    );
    // Nothing listening: AZSM1040 with the reason.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL", closed.as_str()),
        ("GODWIT_REQUEST_TIMEOUT", "5"),
    ];
    let (status, checks) = doctor("s3://any-bucket/x", &env, &state);
    assert_eq!(status, 1);
    let reach = check(&checks, "reachable");
    assert_eq!(reach["code"], "AZSM1040", "{checks:#?}");
    assert!(
        reach["message"].as_str().unwrap().contains("refused"),
        "{reach}"
    );
    // A local folder that cannot be written (a file is in the way): 722.
    std::fs::write(dir.path().join("a-file"), b"x").unwrap();
    let (status, checks) = doctor(
        dir.path().join("a-file/below").to_str().unwrap(),
        &[],
        &state,
    );
    assert_eq!(status, 1, "{checks:#?}");
    assert!(
        checks
            .iter()
            .any(|c| c["code"] == "AZSM1022" || c["code"] == "722"),
        "{checks:#?}"
    );
    // A state directory with less room than a run's records need: 6080.
    if support::is_root() {
        let small = dir.path().join("small");
        let _disk = support::SmallDisk::of_size(&small, "16m");
        let (status, checks) = doctor(dir.path().to_str().unwrap(), &[], &small);
        assert_eq!(status, 1);
        assert_eq!(check(&checks, "state-dir")["code"], "6080", "{checks:#?}");
    } else {
        eprintln!("skipped the full state directory: mounting a small tmpfs needs root");
    }
}

#[test]
fn the_service_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "skipped: systemd-analyze is not installed (Debian's systemd package; scripts/servers.sh installs it)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd");
    let mut paths = Vec::new();
    for name in ["godwit-serve.service", "godwit-agent.service"] {
        // verify checks that ExecStart's binary exists: this build's stands in for the
        // installed one.
        let unit = std::fs::read_to_string(units.join(name)).unwrap();
        let exe = env!("CARGO_BIN_EXE_godwit");
        let unit = unit
            .replace("/usr/local/bin/godwit", exe)
            .replace("/opt/godwit/bin/godwit", exe);
        for key in [
            "NoNewPrivileges=yes",
            "ProtectSystem=",
            "User=godwit",
            "Restart=on-failure",
            "StateDirectory=",
        ] {
            assert!(unit.contains(key), "{name} has no {key}");
        }
        let path = dir.path().join(name);
        std::fs::write(&path, unit).unwrap();
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .unwrap();
    // verify exits 0 on an unknown key and only warns: the warnings fail the test too.
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The example configuration the units read is one godwit takes.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/godwit.toml");
    let text_of = std::fs::read_to_string(&example).unwrap();
    // Its TLS files and token file are the installed host's; made here so that it checks.
    let mut local = text_of.clone();
    for file in [
        "/etc/godwit/tls/fullchain.pem",
        "/etc/godwit/tls/key.pem",
        "/etc/godwit/agent.token",
    ] {
        let stand_in = dir.path().join(file.rsplit('/').next().unwrap());
        std::fs::write(&stand_in, "x").unwrap();
        local = local.replace(file, stand_in.to_str().unwrap());
    }
    let copy = dir.path().join("godwit.toml");
    std::fs::write(&copy, local).unwrap();
    let out = run(godwit().args(["config", "check"]).arg(&copy));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn the_container_recipe_builds_where_a_container_tool_is_available() {
    let recipe =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/container/Containerfile");
    let body = std::fs::read_to_string(&recipe).unwrap();
    for stage in ["AS serve", "AS agent", "USER godwit", "--uid 10001"] {
        assert!(body.contains(stage), "the recipe has no {stage}");
    }
    let tool = ["docker", "podman"].into_iter().find(|t| {
        Command::new(t)
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(tool) = tool else {
        eprintln!(
            "skipped the image build: no container tool with a running engine (docker info, podman info)"
        );
        return;
    };
    // Base images come from a registry this machine may not reach: only those already here.
    for base in [
        "docker.io/library/rust:1-slim-bookworm",
        "docker.io/library/debian:bookworm-slim",
    ] {
        let there = Command::new(tool)
            .args(["image", "inspect", base])
            .output()
            .is_ok_and(|o| o.status.success());
        if !there {
            eprintln!(
                "skipped the image build: {tool} does not hold {base} and cannot fetch it here"
            );
            return;
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for target in ["serve", "agent"] {
        let out = Command::new(tool)
            .args(["build", "-f"])
            .arg(&recipe)
            .args(["--target", target, "-t", &format!("godwit-{target}:test")])
            .arg(&root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} build --target {target}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn log_lines_go_above_the_progress_bar_not_through_it() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux's script (a terminal for the command) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), 12, 200_000);
    // A terminal, a bar for about two seconds, and a log line for every file meanwhile.
    let command = format!(
        "{} copy {} {} --state-dir {} --bwlimit 1M -vvv",
        env!("CARGO_BIN_EXE_godwit"),
        src.display(),
        dir.path().join("dst").display(),
        dir.path().join("state").display()
    );
    let out = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    let shown = text(&out.stdout);
    // What the terminal was given, cut where the cursor goes back to the line's start.
    let pieces: Vec<&str> = shown.split(['\n', '\r']).collect();
    // A log line, after whatever escape sequence cleared the line before it.
    let is_log = |p: &str| {
        ["Z TRACE", "Z DEBUG", "Z  INFO", "Z  WARN", "Z ERROR"]
            .iter()
            .any(|level| p.contains(level))
    };
    let bars: Vec<usize> = (0..pieces.len())
        .filter(|i| pieces[*i].contains(" files, "))
        .collect();
    let (first, last) = (bars[0], *bars.last().unwrap());
    let during = (first..last).filter(|i| is_log(pieces[*i])).count();
    assert!(
        during > 5,
        "only {during} log lines while the bar was drawn:\n{shown}"
    );
    let mixed: Vec<&&str> = pieces
        .iter()
        .filter(|p| p.contains(" files, ") && is_log(p))
        .collect();
    assert!(
        mixed.is_empty(),
        "log lines written through the bar: {mixed:#?}"
    );
}

#[test]
fn json_lines_by_default_when_stderr_is_the_journal() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    // systemd names the stream it gave a service as DEVICE:INODE in JOURNAL_STREAM; a file
    // stands in for the journal's socket here.
    let journal = dir.path().join("journal");
    std::fs::File::create(&journal).unwrap();
    let meta = std::fs::metadata(&journal).unwrap();
    let mut c = godwit();
    c.args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path().join("cp"))
        .env_remove("GODWIT_LOG_FORMAT")
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    c.stderr(file).stdout(Stdio::null());
    let mut served = Service {
        proc: Proc(c.spawn().unwrap()),
        log: journal.clone(),
    };
    let log = served.wait_log("listening on", Duration::from_secs(30));
    let first: Value = serde_json::from_str(log.lines().next().unwrap())
        .unwrap_or_else(|_| panic!("not a JSON line under the journal: {log}"));
    assert_eq!(first["level"], "INFO", "{first}");
    drop(served);
    // Inherited by a process whose stderr is elsewhere: text, for the person reading it.
    let other = dir.path().join("elsewhere");
    let mut c = godwit();
    c.args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path().join("cp2"))
        .env_remove("GODWIT_LOG_FORMAT")
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    let mut elsewhere = Service::start(c, &other);
    let log = elsewhere.wait_log("listening on", Duration::from_secs(30));
    assert!(!log.trim_start().starts_with('{'), "{log}");
}
