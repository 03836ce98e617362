//! The end-to-end world: a real `godwit serve` and a real `godwit agent` as processes, the
//! S3 test server as target, driven over the API with curl.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{godwit, run, text, write};

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run `bash scripts/test.sh`"))
}

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct World {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub cp_state: PathBuf,
    pub port: u16,
    pub server: Option<Proc>,
    pub agent: Option<Proc>,
    pub admin: String,
    pub agent_id: String,
    pub agent_token: String,
    pub bucket: String,
    /// The control plane's PostgreSQL database; None: SQLite in its state directory.
    pub database: Option<String>,
    /// More environment for the control plane, its `godwit token` and the agent.
    pub extra_env: Vec<(String, String)>,
    /// The binary the agent runs as (a copy, for upgrade tests); None: the built one.
    pub agent_binary: Option<PathBuf>,
    /// More environment for the agent only.
    pub agent_env: Vec<(String, String)>,
    /// The agent's `--server` (several replicas' URLs); None: this control plane's.
    pub agent_servers: Option<String>,
}

pub fn s3_env(c: &mut Command) {
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", env("GODWIT_TEST_S3_ENDPOINT"));
}

pub fn store_py(args: &[&str]) -> String {
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
    pub fn new() -> World {
        World::with_database(None)
    }

    /// A world whose control plane keeps its records in a new PostgreSQL database.
    pub fn on_postgresql() -> World {
        World::with_database(Some(new_pg_database()))
    }

    pub fn with_database(database: Option<String>) -> World {
        World::with(database, Vec::new())
    }

    pub fn with(database: Option<String>, extra_env: Vec<(String, String)>) -> World {
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
            database,
            extra_env,
            agent_binary: None,
            agent_env: Vec::new(),
            agent_servers: None,
        };
        w.start_server();
        let mut c = godwit();
        c.args(["token", "create", "--role", "admin", "--state-dir"])
            .arg(&w.cp_state)
            .env_remove("GODWIT_DATABASE_URL")
            .envs(w.extra_env.iter().map(|(k, v)| (k, v)));
        if let Some(db) = &w.database {
            c.args(["--database", db]);
        }
        let out = run(&mut c);
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

    pub fn start_server(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port);
        let mut c = godwit();
        c.args(["serve", "--listen", &listen, "--state-dir"])
            .arg(&self.cp_state);
        if let Some(db) = &self.database {
            c.args(["--database", db]);
        }
        let mut child = c
            .env("GODWIT_HEARTBEAT_WINDOW", "3")
            .env_remove("GODWIT_JWT_SECRET")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // What it says goes to server.log (logging may come before the address).
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("server.log"))
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the control plane stopped").unwrap();
            use std::io::Write;
            writeln!(log, "{line}").unwrap();
            if let Some(addr) = listening_url(&line) {
                break addr;
            }
        };
        self.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
            }
        });
        self.server = Some(Proc(child));
    }

    pub fn start_agent(&mut self) {
        let mut c = match &self.agent_binary {
            Some(b) => {
                let mut c = Command::new(b);
                c.env("NO_COLOR", "1").env_remove("GODWIT_STATE_DIR");
                c
            }
            None => godwit(),
        };
        let server = self.agent_servers.clone().unwrap_or_else(|| self.url());
        c.args(["agent", "--server", &server, "--state-dir"])
            .arg(self.root.join("agent-state"))
            .env("GODWIT_AGENT_TOKEN", &self.agent_token);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("agent.log"))
            .unwrap();
        c.stderr(log).stdout(Stdio::null());
        s3_env(&mut c);
        c.envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        c.envs(self.agent_env.iter().map(|(k, v)| (k, v)));
        self.agent = Some(Proc(c.spawn().unwrap()));
    }

    /// Starts another control plane (a replica) on this one's PostgreSQL database, with its
    /// own state directory `name` holding the same token secret, listening on `port` (0: any);
    /// returns it and its URL.
    pub fn start_replica(&self, name: &str, port: u16) -> (Proc, String) {
        let state = self.root.join(name);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::copy(self.cp_state.join("jwt-secret"), state.join("jwt-secret")).unwrap();
        let mut c = godwit();
        c.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state-dir",
        ])
        .arg(&state)
        .args(["--database", self.database.as_deref().unwrap()])
        .env("GODWIT_HEARTBEAT_WINDOW", "3")
        .env_remove("GODWIT_JWT_SECRET")
        .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(format!("{name}.log")))
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("the replica stopped").unwrap();
            use std::io::Write;
            writeln!(log, "{line}").unwrap();
            if let Some(url) = listening_url(&line) {
                break url;
            }
        };
        std::thread::spawn(move || {
            use std::io::Write;
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
            }
        });
        (Proc(child), url)
    }

    /// Sends the agent process `sig` (`-STOP`: it hangs; `-CONT`: it goes on).
    pub fn signal_agent(&self, sig: &str) {
        let pid = self.agent.as_ref().unwrap().0.id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Starts the agent and waits until the control plane says it is active (901).
    pub fn start_agent_and_wait(&mut self) {
        self.start_agent();
        self.wait_for("the agent to be active", Duration::from_secs(20), || {
            (self.agent_state() == "901").then_some(Value::Null)
        });
    }

    /// Scans the migration (937, then 932), as copies and true-ups need.
    pub fn scanned(&self, migration: &str) -> Value {
        let scan = self.start(migration, "scan", "937");
        self.wait_end(&scan, "932")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        api_call(&self.url(), &self.admin, method, path, body, None)
    }

    pub fn wait_for(
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

    pub fn agent_state(&self) -> String {
        self.api("GET", &format!("/v1/agents/{}", self.agent_id), None)
            .1["state"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Endpoints, a project and a migration of `src` to the bucket; returns the migration id.
    pub fn migration(&self, src: &Path, options: Value) -> String {
        let target =
            json!({"name": "dst", "kind": "s3", "uri": format!("s3://{}/share", self.bucket)});
        self.migration_to(src, target, options)
    }

    /// A migration of `src` to the endpoint `target` (its creation body).
    pub fn migration_to(&self, src: &Path, target: Value, options: Value) -> String {
        let (_, s) = self.api(
            "POST",
            "/v1/endpoints",
            Some(json!({"name": format!("src-{}", rand_suffix()), "kind": "local", "uri": src.to_str().unwrap()})),
        );
        let (_, d) = self.api("POST", "/v1/endpoints", Some(target));
        let (_, p) = self.api(
            "POST",
            "/v1/projects",
            Some(json!({"name": format!("e2e-{}", rand_suffix())})),
        );
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
    pub fn start(&self, migration: &str, command: &str, queued: &str) -> String {
        let (s, r) = self.api(
            "POST",
            &format!("/v1/migrations/{migration}/commands"),
            Some(json!({"command": command, "action": "start"})),
        );
        assert_eq!(s, 202, "{r}");
        assert_eq!(r["status"]["code"], queued, "{r}");
        r["id"].as_str().unwrap().to_string()
    }

    /// The report of an ended run: the agent's summary of it.
    pub fn report(&self, run_id: &str) -> Value {
        let (s, rep) = self.api("GET", &format!("/v1/runs/{run_id}/report"), None);
        assert_eq!(s, 200, "{rep}");
        rep["report"].clone()
    }

    pub fn run_state(&self, run_id: &str) -> Value {
        self.api("GET", &format!("/v1/runs/{run_id}"), None).1
    }

    pub fn wait_end(&self, run_id: &str, code: &str) -> Value {
        self.wait_end_within(run_id, code, Duration::from_secs(90))
    }

    /// As `wait_end`, for runs that may take long on a busy machine.
    pub fn wait_end_within(&self, run_id: &str, code: &str, limit: Duration) -> Value {
        self.wait_for(&format!("run {run_id} to end with {code}"), limit, || {
            let r = self.run_state(run_id);
            match r["state"].as_str() {
                Some("SUCCEEDED" | "FAILED" | "STOPPED" | "PAUSED") => {
                    assert_eq!(r["status"]["code"], code, "{r}");
                    Some(r)
                }
                _ => None,
            }
        })
    }

    /// The bucket's objects under the migration, downloaded.
    pub fn target_tree(&self) -> PathBuf {
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

/// A new database on the test PostgreSQL server; its URL.
/// `method path` with `body` on the control plane at `url` with `token` (over HTTPS trusting
/// the CA file `ca`, when given): the status and the JSON answer.
pub fn api_call(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    ca: Option<&Path>,
) -> (u16, Value) {
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .arg(format!("{url}{path}"))
        .args(["-H", &format!("Authorization: Bearer {token}")]);
    if let Some(ca) = ca {
        c.arg("--cacert").arg(ca);
    }
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

/// The URL in the control plane's `listening on URL` line, as text or as a JSON log line.
pub fn listening_url(line: &str) -> Option<String> {
    let at = line.find("listening on ")? + "listening on ".len();
    let url: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || ".:/[]".contains(*c))
        .collect();
    (url.starts_with("http://") || url.starts_with("https://")).then_some(url)
}

pub fn new_pg_database() -> String {
    let admin = env("GODWIT_TEST_POSTGRES_URL");
    let name = format!("godwit_e2e_{}_{}", std::process::id(), rand_suffix());
    let out = Command::new("psql")
        .args([&admin, "-qc", &format!("CREATE DATABASE {name}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

pub fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

pub fn source(root: &Path, files: usize, size: usize) -> PathBuf {
    let src = root.join("src");
    for i in 0..files {
        let data: Vec<u8> = (0..size).map(|j| ((i * 31 + j) % 251) as u8).collect();
        write(&src.join(format!("d{}/f{i}.bin", i % 3)), &data);
    }
    src
}
