//! End to end: a real `godwit serve` and a real `godwit agent` as processes, a local source and
//! the S3 test server as target, driven over the API with curl. Scan, copy, a change and a
//! true-up; an agent killed mid-copy; the control plane gone for some seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{godwit, run, text, write};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run `bash scripts/test.sh`"))
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
    cp_state: PathBuf,
    port: u16,
    server: Option<Proc>,
    agent: Option<Proc>,
    admin: String,
    agent_id: String,
    agent_token: String,
    bucket: String,
}

fn s3_env(c: &mut Command) {
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", env("GODWIT_TEST_S3_ENDPOINT"));
}

fn store_py(args: &[&str]) -> String {
    let out = Command::new(env("GODWIT_TEST_PYTHON"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/store.py"
        ))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let bucket = format!("e2e-{}-{}", std::process::id(), rand_suffix());
        store_py(&["mkbucket", &bucket]);
        let mut w = World {
            cp_state: root.join("cp"),
            root,
            _dir: dir,
            port: 0,
            server: None,
            agent: None,
            admin: String::new(),
            agent_id: String::new(),
            agent_token: String::new(),
            bucket,
        };
        w.start_server();
        let out = run(godwit()
            .args(["token", "create", "--role", "admin", "--state-dir"])
            .arg(&w.cp_state));
        w.admin = text(&out.stdout).trim().to_string();
        let (s, a) = w.api(
            "POST",
            "/v1/agents",
            Some(json!({"name": "agent-e2e", "version": "0.1.0"})),
        );
        assert_eq!(s, 201, "{a}");
        w.agent_id = a["agent"]["id"].as_str().unwrap().to_string();
        w.agent_token = a["token"].as_str().unwrap().to_string();
        w
    }

    fn start_server(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port);
        let mut child = godwit()
            .args(["serve", "--listen", &listen, "--state-dir"])
            .arg(&self.cp_state)
            .env("GODWIT_HEARTBEAT_WINDOW", "3")
            .env_remove("GODWIT_JWT_SECRET")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("{first}"));
        self.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        std::thread::spawn(move || for _ in lines {});
        self.server = Some(Proc(child));
    }

    fn start_agent(&mut self) {
        let mut c = godwit();
        c.args(["agent", "--server", &self.url(), "--state-dir"])
            .arg(self.root.join("agent-state"))
            .env("GODWIT_AGENT_TOKEN", &self.agent_token)
            .stderr(Stdio::null());
        s3_env(&mut c);
        self.agent = Some(Proc(c.spawn().unwrap()));
    }

    /// Starts the agent and waits until the control plane says it is active (901).
    fn start_agent_and_wait(&mut self) {
        self.start_agent();
        self.wait_for("the agent to be active", Duration::from_secs(20), || {
            (self.agent_state() == "901").then_some(Value::Null)
        });
    }

    /// Scans the migration (937, then 932), as copies and true-ups need.
    fn scanned(&self, migration: &str) -> Value {
        let scan = self.start(migration, "scan", "937");
        self.wait_end(&scan, "932")
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut c = Command::new("curl");
        c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method])
            .arg(format!("{}{path}", self.url()))
            .args(["-H", &format!("Authorization: Bearer {}", self.admin)]);
        if let Some(b) = body {
            c.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &b.to_string(),
            ]);
        }
        let out = c.output().unwrap();
        let all = text(&out.stdout);
        let (body, status) = all.rsplit_once('\n').unwrap_or(("", "0"));
        (
            status.trim().parse().unwrap_or(0),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<Value>,
    ) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = check() {
                return v;
            }
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn agent_state(&self) -> String {
        self.api("GET", &format!("/v1/agents/{}", self.agent_id), None)
            .1["state"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Endpoints, a project and a migration of `src` to the bucket; returns the migration id.
    fn migration(&self, src: &Path, options: Value) -> String {
        let (_, s) = self.api(
            "POST",
            "/v1/endpoints",
            Some(json!({"name": "src", "kind": "local", "uri": src.to_str().unwrap()})),
        );
        let (_, d) = self.api(
            "POST",
            "/v1/endpoints",
            Some(
                json!({"name": "dst", "kind": "s3", "uri": format!("s3://{}/share", self.bucket)}),
            ),
        );
        let (_, p) = self.api("POST", "/v1/projects", Some(json!({"name": "e2e"})));
        let (st, m) = self.api(
            "POST",
            "/v1/migrations",
            Some(json!({
                "projectId": p["id"], "agentId": self.agent_id,
                "source": {"endpointId": s["id"], "path": "/"},
                "target": {"endpointId": d["id"], "path": "/"},
                "options": options,
            })),
        );
        assert_eq!(st, 201, "{m}");
        m["id"].as_str().unwrap().to_string()
    }

    /// Starts `command`; checks the 202 and its QUEUED status; returns the run id.
    fn start(&self, migration: &str, command: &str, queued: &str) -> String {
        let (s, r) = self.api(
            "POST",
            &format!("/v1/migrations/{migration}/commands"),
            Some(json!({"command": command, "action": "start"})),
        );
        assert_eq!(s, 202, "{r}");
        assert_eq!(r["status"]["code"], queued, "{r}");
        r["id"].as_str().unwrap().to_string()
    }

    fn run_state(&self, run_id: &str) -> Value {
        self.api("GET", &format!("/v1/runs/{run_id}"), None).1
    }

    fn wait_end(&self, run_id: &str, code: &str) -> Value {
        self.wait_for(
            &format!("run {run_id} to end with {code}"),
            Duration::from_secs(90),
            || {
                let r = self.run_state(run_id);
                match r["state"].as_str() {
                    Some("SUCCEEDED" | "FAILED" | "STOPPED" | "PAUSED") => {
                        assert_eq!(r["status"]["code"], code, "{r}");
                        Some(r)
                    }
                    _ => None,
                }
            },
        )
    }

    /// The bucket's objects under the migration, downloaded.
    fn target_tree(&self) -> PathBuf {
        let fetched = self.root.join(format!("fetched-{}", rand_suffix()));
        store_py(&[
            "download",
            "s3",
            &self.bucket,
            "share",
            fetched.to_str().unwrap(),
        ]);
        fetched
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

fn source(root: &Path, files: usize, size: usize) -> PathBuf {
    let src = root.join("src");
    for i in 0..files {
        let data: Vec<u8> = (0..size).map(|j| ((i * 31 + j) % 251) as u8).collect();
        write(&src.join(format!("d{}/f{i}.bin", i % 3)), &data);
    }
    src
}

#[test]
fn scan_copy_change_and_true_up_through_the_control_plane() {
    let mut w = World::new();
    w.start_agent_and_wait();
    let src = source(&w.root, 30, 2000);
    let m = w.migration(&src, json!({"syncDeletes": true, "maxDelete": "50%"}));

    let scan = w.start(&m, "scan", "937");
    let r = w.wait_end(&scan, "932");
    assert_eq!(r["files"], 30, "{r}");

    let copy = w.start(&m, "copy", "927");
    let r = w.wait_end(&copy, "922");
    assert_eq!(r["files"], 30, "{r}");
    support::assert_same_tree(&src, &w.target_tree());
    let (s, log) = w.api(
        "GET",
        &format!("/v1/runs/{copy}/copylog?status=AZSM0000&limit=100"),
        None,
    );
    assert_eq!((s, log["count"].clone()), (200, json!(30)), "{log}");
    let (s, rep) = w.api("GET", &format!("/v1/runs/{copy}/report"), None);
    assert_eq!(s, 200, "{rep}");
    assert_eq!(rep["report"]["counts"]["AZSM0000"], 30, "{rep}");
    assert_eq!(rep["run"]["counts"]["AZSM0000"], 30, "{rep}");
    assert!(rep["report"]["seconds"].as_f64().unwrap() > 0.0, "{rep}");

    // People keep working: one file changes, one goes, one arrives.
    write(&src.join("d0/f0.bin"), b"changed after the copy");
    std::fs::remove_file(src.join("d1/f1.bin")).unwrap();
    write(&src.join("d2/new.txt"), b"new after the copy");
    let sync = w.start(&m, "sync", "957");
    let r = w.wait_end(&sync, "952");
    assert!(r["error"].is_null(), "{r}");
    support::assert_same_tree(&src, &w.target_tree());
    let (_, log) = w.api(
        "GET",
        &format!("/v1/runs/{sync}/copylog?status=AZSM2043"),
        None,
    );
    assert_eq!(log["count"], 1, "the deleted file's record: {log}");

    // An empty folder appears at the object store as a marker.
    std::fs::create_dir_all(src.join("empty/inside")).unwrap();
    let empty = w.start(&m, "empty-folders", "127");
    w.wait_end(&empty, "122");
    let keys: Vec<String> =
        serde_json::from_str(&store_py(&["keys", "s3", &w.bucket, "share"])).unwrap();
    assert!(keys.contains(&"empty/inside/".to_string()), "{keys:?}");
}

#[test]
fn an_agent_killed_mid_copy_resumes_and_nothing_is_lost() {
    let mut w = World::new();
    w.start_agent_and_wait();
    // 40 files of 50 KB at 400 KB/s: about five seconds of copying.
    let src = source(&w.root, 40, 50_000);
    let m = w.migration(&src, json!({"bwlimit": "400K"}));
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    w.wait_for("the copy to be under way", Duration::from_secs(30), || {
        let r = w.run_state(&copy);
        (r["state"] == "RUNNING" && r["files"].as_i64().unwrap_or(0) > 0).then_some(r)
    });
    // kill -9: no goodbye. The control plane notices the silence and suspends the run.
    w.agent.take();
    let r = w.wait_for("the run to be suspended", Duration::from_secs(20), || {
        let r = w.run_state(&copy);
        (r["state"] == "SUSPENDED").then_some(r)
    });
    assert_eq!(r["status"]["code"], "948", "{r}");
    assert_eq!(w.agent_state(), "900");
    w.start_agent();
    w.wait_end(&copy, "922");
    support::assert_same_tree(&src, &w.target_tree());
}

#[test]
fn the_control_plane_gone_for_some_seconds_loses_nothing() {
    let mut w = World::new();
    w.start_agent_and_wait();
    let src = source(&w.root, 40, 50_000);
    let m = w.migration(&src, json!({"bwlimit": "400K"}));
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    w.wait_for("the copy to be under way", Duration::from_secs(30), || {
        let r = w.run_state(&copy);
        (r["state"] == "RUNNING").then_some(r)
    });
    // The control plane goes away; the copy goes on; its reports wait in the agent.
    w.server.take();
    std::thread::sleep(Duration::from_secs(4));
    w.start_server();
    let r = w.wait_end(&copy, "922");
    assert_eq!(r["files"], 40, "{r}");
    let (_, log) = w.api("GET", &format!("/v1/runs/{copy}/copylog?limit=100"), None);
    assert_eq!(log["count"], 40, "every record arrived: {log}");
    support::assert_same_tree(&src, &w.target_tree());
}

#[test]
fn stop_pause_and_resume_mid_copy_and_one_command_per_migration() {
    let mut w = World::new();
    w.start_agent_and_wait();
    // 60 files of 50 KB at 300 KB/s: about ten seconds of copying.
    let src = source(&w.root, 60, 50_000);
    let m = w.migration(&src, json!({"bwlimit": "300K"}));
    w.scanned(&m);
    let control = |action: &str| {
        w.api(
            "POST",
            &format!("/v1/migrations/{m}/commands"),
            Some(json!({"command": "copy", "action": action})),
        )
    };
    let under_way = |run: &str| {
        w.wait_for("the copy to be under way", Duration::from_secs(30), || {
            let r = w.run_state(run);
            (r["state"] == "RUNNING" && r["files"].as_i64().unwrap_or(0) > 0).then_some(r)
        })
    };

    let copy = w.start(&m, "copy", "927");
    under_way(&copy);
    // The same migration from the command line, on the agent's state directory: locked (1160).
    let mut cli = godwit();
    cli.arg("copy")
        .arg(&src)
        .arg(format!("s3://{}/share", w.bucket))
        .arg("--state-dir")
        .arg(w.root.join("agent-state"));
    s3_env(&mut cli);
    let out = run(&mut cli);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("error[1160]"),
        "{}",
        text(&out.stderr)
    );

    // Pause: the agent winds down and the run is PAUSED (925); resume picks it up again.
    let (s, r) = control("pause");
    assert_eq!((s, r["status"]["code"].clone()), (202, json!("925")), "{r}");
    w.wait_for("the agent to pause", Duration::from_secs(30), || {
        let r = w.run_state(&copy);
        (r["state"] == "PAUSED" && r["ended_ms"].is_null()).then_some(r)
    });
    let (s, r) = control("resume");
    assert_eq!((s, r["state"].clone()), (202, json!("QUEUED")), "{r}");
    under_way(&copy);
    // Stop: STOPPING (923) until the agent has stopped, then STOPPED (924).
    let (s, r) = control("stop");
    assert_eq!((s, r["status"]["code"].clone()), (202, json!("923")), "{r}");
    w.wait_end(&copy, "924");
    // Started again, the copy resumes and ends with everything there.
    let again = w.start(&m, "copy", "927");
    w.wait_end(&again, "922");
    support::assert_same_tree(&src, &w.target_tree());
}

#[test]
fn a_deactivated_agent_is_told_why_and_exits() {
    let mut w = World::new();
    let (s, _) = w.api(
        "POST",
        &format!("/v1/agents/{}/deactivate", w.agent_id),
        None,
    );
    assert_eq!(s, 200);
    let mut c = godwit();
    c.args(["agent", "--server", &w.url(), "--state-dir"])
        .arg(w.root.join("agent-state"))
        .env("GODWIT_AGENT_TOKEN", &w.agent_token);
    let out = run(&mut c);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("error[862]") && err.contains("godwit explain 862"),
        "{err}"
    );
    w.agent.take();
}

#[test]
fn a_true_up_paused_for_review_is_carried_out_by_resume() {
    let mut w = World::new();
    w.start_agent_and_wait();
    let src = source(&w.root, 30, 1000);
    // The default limit: 5% of 30 files, so 1.
    let m = w.migration(&src, json!({"syncDeletes": true}));
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    w.wait_end(&copy, "922");
    for i in 0..3 {
        std::fs::remove_file(src.join(format!("d{}/f{i}.bin", i % 3))).unwrap();
    }
    let sync = w.start(&m, "sync", "957");
    let r = w.wait_end(&sync, "955");
    assert_eq!(r["error"]["code"], "9080", "{r}");
    let (_, errors) = w.api("GET", "/v1/errors", None);
    assert_eq!(errors["count"], 1, "{errors}");
    assert_eq!(
        std::fs::read_dir(w.target_tree().join("d0"))
            .unwrap()
            .count(),
        10,
        "nothing deleted yet"
    );
    // Reviewed: resume carries out the list.
    let (s, r) = w.api(
        "POST",
        &format!("/v1/migrations/{m}/commands"),
        Some(json!({"command": "sync", "action": "resume"})),
    );
    assert_eq!((s, r["state"].clone()), (202, json!("QUEUED")), "{r}");
    let r = w.wait_end(&sync, "952");
    assert!(r["error"].is_null(), "{r}");
    support::assert_same_tree(&src, &w.target_tree());
    let (_, log) = w.api(
        "GET",
        &format!("/v1/runs/{sync}/copylog?status=AZSM2043"),
        None,
    );
    assert_eq!(log["count"], 3, "{log}");
}
