//! End to end: a real `godwit serve` and a real `godwit agent` as processes, a local source and
//! the S3 test server as target, driven over the API with curl. Scan, copy, a change and a
//! true-up; an agent killed mid-copy; the control plane gone for some seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::world::*;
use support::{godwit, run, text, write};

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

/// The run's counts and copy log after a crash: every one of the 40 files copied in this run,
/// once, whichever attempt copied it; the report (the last attempt's summary) counts the same.
fn assert_exact(w: &World, copy: &str) {
    let (_, rep) = w.api("GET", &format!("/v1/runs/{copy}/report"), None);
    assert_eq!(rep["run"]["counts"], json!({"AZSM0000": 40}), "{rep}");
    assert_eq!(rep["run"]["files"], 40, "{rep}");
    assert_eq!(rep["report"]["counts"], json!({"AZSM0000": 40}), "{rep}");
    let (_, log) = w.api("GET", &format!("/v1/runs/{copy}/copylog?limit=100"), None);
    assert_eq!(log["count"], 40, "one record a path: {log}");
    let mut paths: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["code"], "AZSM0000", "{r}");
            r["path"].as_str().unwrap()
        })
        .collect();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(paths.len(), 40, "{log}");
}

#[test]
fn regression_an_agent_killed_mid_copy_counts_what_it_copied_and_loses_nothing() {
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
    assert_exact(&w, &copy);
}

/// kill -9 of the control plane during an agent's copy, then a new one on the same records;
/// GODWIT_CHAOS_KILLS times (once in CI; scripts/chaos.sh asks for more).
fn control_plane_killed_mid_copy(mut w: World, case: &str) {
    let kills: usize = std::env::var("GODWIT_CHAOS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    w.start_agent_and_wait();
    // About ten seconds of copying for each kill.
    let src = source(&w.root, 40, 100_000 * kills);
    let m = w.migration(&src, json!({"bwlimit": "400K"}));
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    let mut landed = 0;
    for _ in 0..kills {
        let deadline = Instant::now() + Duration::from_secs(30);
        let r = loop {
            let r = w.run_state(&copy);
            let going = r["state"] == "RUNNING" && r["files"].as_i64().unwrap_or(0) > 0;
            if going || r["state"] == "SUCCEEDED" {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "the copy is not under way after {landed} kills: {r}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        if r["state"] == "SUCCEEDED" {
            break;
        }
        landed += 1;
        std::thread::sleep(Duration::from_millis(700));
        // The control plane is killed (SIGKILL); the copy goes on; its reports wait in the
        // agent.
        w.server.take();
        std::thread::sleep(Duration::from_secs(3));
        w.start_server();
    }
    let r = w.wait_end(&copy, "922");
    assert_eq!(r["files"], 40, "{r}");
    support::assert_same_tree(&src, &w.target_tree());
    assert_exact(&w, &copy);
    assert!(landed >= 1);
    eprintln!("CHAOS {case}: kills={landed} counts_exact=1 copylog_exact=1 files_lost=0");
}

#[test]
fn regression_the_control_plane_killed_mid_copy_keeps_counts_and_copy_log_exact() {
    control_plane_killed_mid_copy(World::new(), "control_plane_sqlite");
}

#[test]
fn regression_the_control_plane_killed_mid_copy_on_postgresql_keeps_counts_exact() {
    control_plane_killed_mid_copy(World::on_postgresql(), "control_plane_postgresql");
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
fn a_connected_agent_whose_token_is_revoked_is_told_why_and_exits() {
    let mut w = World::new();
    w.start_agent_and_wait();
    let jti = godwit_spec::Claims::read_unverified(&w.agent_token)
        .unwrap()
        .jti;
    let (s, t) = w.api("POST", &format!("/v1/tokens/{jti}/revoke"), None);
    assert_eq!(s, 200, "{t}");
    // Checked again at the next heartbeat (1 s with a 3 s window): refused, and it exits.
    let mut agent = w.agent.take().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the agent is still running"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(1));
    let log = std::fs::read_to_string(w.root.join("agent.log")).unwrap();
    assert!(
        log.contains("error[707]") && log.contains("it was revoked"),
        "{log}"
    );
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
    // Waiting for a person is not an error: /v1/errors lists failed runs only.
    let (_, errors) = w.api("GET", "/v1/errors", None);
    assert_eq!(errors["count"], 0, "{errors}");
    assert_eq!(
        std::fs::read_dir(w.target_tree().join("d0"))
            .unwrap()
            .count(),
        10,
        "nothing deleted yet"
    );
    // The list to review, as the agent sent it: the three files, whole.
    let (s, review) = w.api("GET", &format!("/v1/runs/{sync}/review"), None);
    assert_eq!(s, 200, "{review}");
    let mut listed: Vec<&str> = review["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, ["d0/f0.bin", "d1/f1.bin", "d2/f2.bin"], "{review}");
    assert_eq!(
        (review["count"].clone(), review["expected"].clone()),
        (json!(3), json!(3))
    );
    let digest = review["digest"].as_str().unwrap().to_string();
    assert_eq!(digest.len(), 64, "{review}");
    let (s, paged) = w.api(
        "GET",
        &format!("/v1/runs/{sync}/review?limit=1&offset=2"),
        None,
    );
    assert_eq!(
        (s, paged["items"].as_array().unwrap().len()),
        (200, 1),
        "{paged}"
    );
    let (_, unreadable) = w.api(
        "GET",
        &format!("/v1/runs/{sync}/review?list=unreadable"),
        None,
    );
    assert_eq!(unreadable["count"], 0, "{unreadable}");
    let (s, e) = w.api("GET", &format!("/v1/runs/{sync}/review?list=other"), None);
    assert_eq!((s, e["error_code"].clone()), (400, json!("HTTP400")), "{e}");
    // A confirmation of another list than the run's is refused (1055), and deletes nothing.
    let resume = |reviewed: &str| {
        w.api(
            "POST",
            &format!("/v1/migrations/{m}/commands"),
            Some(json!({"command": "sync", "action": "resume", "reviewed": reviewed})),
        )
    };
    let (s, e) = resume(&"0".repeat(64));
    assert_eq!(
        (s, e["error_code"].clone()),
        (409, json!("AZSM1055")),
        "{e}"
    );
    assert_eq!(w.run_state(&sync)["state"], "PAUSED");
    let (s, e) = w.api(
        "POST",
        &format!("/v1/migrations/{m}/commands"),
        Some(json!({"command": "copy", "action": "start", "reviewed": digest})),
    );
    assert_eq!(s, 422, "{e}");
    // Reviewed: resume, naming the list read, carries it out.
    let (s, r) = resume(&digest);
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
    // The audit log says who confirmed the deletions.
    let (_, audit) = w.api("GET", "/v1/audit", None);
    let confirmed = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["action"] == "deletions.confirm")
        .unwrap_or_else(|| panic!("no deletions.confirm in {audit}"));
    assert_eq!(confirmed["subject"], "cli", "{confirmed}");
    assert_eq!(confirmed["outcome"], "HTTP202", "{confirmed}");
    assert_eq!(confirmed["target"], format!("/v1/migrations/{m}/commands"));
}

/// The agent's state directory's one migration of `kind` runs (source and target), its folder.
fn agent_migration_dir(w: &World) -> PathBuf {
    let root = w.root.join("agent-state/migrations");
    std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|m| {
            std::fs::read_dir(m.join("runs")).is_ok_and(|mut runs| {
                runs.any(|r| {
                    let summary = r.unwrap().path().join("summary.json");
                    std::fs::read_to_string(summary).is_ok_and(|t| t.contains("\"copy\""))
                })
            })
        })
        .expect("the agent's copy migration")
}

#[test]
fn regression_an_agent_run_migration_that_loses_its_index_fails_with_6030() {
    let mut w = World::new();
    w.start_agent_and_wait();
    let src = source(&w.root, 12, 500);
    let m = w.migration(&src, json!({"syncDeletes": true}));
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    w.wait_end(&copy, "922");
    // The agent's run wrote its summary like the command line's does.
    let dir = agent_migration_dir(&w);
    std::fs::remove_file(dir.join("index.redb")).unwrap();
    std::fs::remove_file(src.join("d0/f0.bin")).unwrap();
    let sync = w.start(&m, "sync", "957");
    let r = w.wait_end(&sync, "951");
    assert_eq!(r["error"]["code"], "6030", "{r}");
    // Nothing was sent again and nothing deleted: the target still holds the removed file.
    let keys: Vec<String> =
        serde_json::from_str(&store_py(&["keys", "s3", &w.bucket, "share"])).unwrap();
    assert_eq!(keys.len(), 12, "{keys:?}");
}

#[test]
fn regression_the_agents_scan_honours_the_migrations_filters_and_profile() {
    let mut w = World::new();
    w.start_agent_and_wait();
    let src = w.root.join("src");
    write(&src.join("keep/a.txt"), b"aaaa");
    write(&src.join("keep/b.txt"), b"bb");
    write(&src.join("keep/scratch.tmp"), b"tmp file");
    write(&src.join("keep/what?.txt"), b"windows refuses the name");
    let m = w.migration(
        &src,
        json!({"targetProfile": "windows", "filters": {"exclude": ["*.tmp"]}}),
    );
    let scan = w.start(&m, "scan", "937");
    let r = w.wait_end(&scan, "932");
    // What a copy would move, the figures the job limits are judged by: 2 files of 6 bytes.
    assert_eq!(
        (r["files"].clone(), r["bytes"].clone()),
        (json!(2), json!(6)),
        "{r}"
    );
    let (_, rep) = w.api("GET", &format!("/v1/runs/{scan}/report"), None);
    assert_eq!(rep["report"]["counts"]["AZSM2001"], 1, "excluded: {rep}");
    assert_eq!(
        rep["report"]["counts"]["AZSM2022"], 1,
        "refused name: {rep}"
    );
}

#[test]
fn the_agent_says_what_it_runs_and_runs_sanitize() {
    let mut w = World::new();
    w.start_agent_and_wait();
    let (_, a) = w.api("GET", &format!("/v1/agents/{}", w.agent_id), None);
    let commands: Vec<&str> = a["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        commands,
        [
            "scan",
            "copy",
            "sync",
            "confirm",
            "sanitize",
            "empty-folders",
            "permissions",
            "simulate-permissions",
            "speed-test",
            "verify",
            "undo",
            "simulate-scan",
            "finalize",
            "validate"
        ],
        "{a}"
    );
    let src = w.root.join("src");
    write(&src.join("ok.txt"), b"fine");
    write(&src.join("bad?.txt"), b"windows refuses the name");
    let m = w.migration(&src, json!({"targetProfile": "windows"}));
    w.scanned(&m);
    // Sanitize is a dry run unless the migration says in-place: the name is listed, kept.
    let run = w.start(&m, "sanitize", "977");
    let r = w.wait_end(&run, "972");
    assert_eq!(r["counts"]["AZSM0000"], 1, "one name to rename: {r}");
    assert!(src.join("bad?.txt").exists());
    // A speed test of the migration's target, run by the agent from where it is.
    let run = w.start(&m, "speed-test", "217");
    w.wait_end(&run, "212");
    let rep = w.report(&run);
    assert_eq!(rep["speed_test"]["write_small"]["files"], 200, "{rep}");
    assert_eq!(rep["speed_test"]["cleaned_up"], true, "{rep}");
    // Permissions: refused for a migration from S3 (they are read from local folders), then
    // simulated and carried by the agent between its own folders.
    let (_, from_s3) = w.api(
        "POST",
        "/v1/endpoints",
        Some(json!({"name": "from-s3", "kind": "s3", "uri": format!("s3://{}/share", w.bucket)})),
    );
    let (_, to_local) = w.api(
        "POST",
        "/v1/endpoints",
        Some(json!({"name": "to-local", "kind": "local", "uri": w.root.join("from-s3").to_str().unwrap()})),
    );
    let (_, p) = w.api("POST", "/v1/projects", Some(json!({"name": "from-s3"})));
    let (st, from_s3) = w.api(
        "POST",
        "/v1/migrations",
        Some(json!({
            "projectId": p["id"], "agentId": w.agent_id,
            "source": {"endpointId": from_s3["id"], "path": "/"},
            "target": {"endpointId": to_local["id"], "path": "/"},
        })),
    );
    assert_eq!(st, 201, "{from_s3}");
    let (s, e) = w.api(
        "POST",
        &format!(
            "/v1/migrations/{}/commands",
            from_s3["id"].as_str().unwrap()
        ),
        Some(json!({"command": "permissions", "action": "start"})),
    );
    assert_eq!((s, e["error_code"].clone()), (422, json!("605")), "{e}");
    assert!(
        e["error_msg"].as_str().unwrap().contains("source is s3"),
        "{e}"
    );
    // A copy with the permissions (`metadata`) from there: refused the same way, and so is a
    // migration that would make every copy carry them.
    let (s, e) = w.api(
        "POST",
        &format!(
            "/v1/migrations/{}/commands",
            from_s3["id"].as_str().unwrap()
        ),
        Some(json!({"command": "copy", "action": "start", "options": {"metadata": true}})),
    );
    assert_eq!((s, e["error_code"].clone()), (422, json!("605")), "{e}");
    assert!(
        e["error_msg"]
            .as_str()
            .unwrap()
            .contains("options.metadata"),
        "{e}"
    );
    let (s, e) = w.api(
        "POST",
        "/v1/migrations",
        Some(json!({
            "projectId": p["id"], "agentId": w.agent_id,
            "source": {"endpointId": from_s3["id"], "path": "/other"},
            "target": {"endpointId": to_local["id"], "path": "/other"},
            "options": {"metadata": true},
        })),
    );
    assert_eq!((s, e["error_code"].clone()), (422, json!("605")), "{e}");
    let copy = w.root.join("perm-copy");
    let m = w.migration_to(
        &src,
        json!({"name": "perm-copy", "kind": "local", "uri": copy.to_str().unwrap()}),
        json!({}),
    );
    let run = w.start(&m, "scan", "937");
    w.wait_end(&run, "932");
    let run = w.start(&m, "copy", "927");
    w.wait_end(&run, "922");
    let run = w.start(&m, "simulate-permissions", "137");
    w.wait_end(&run, "132");
    let rep = w.report(&run);
    assert_eq!(rep["permissions"]["simulate"], true, "{rep}");
    let paths = rep["permissions"]["applied"].as_u64().unwrap();
    assert!(paths >= 3, "the root folder and two files: {rep}");
    let run = w.start(&m, "permissions", "967");
    w.wait_end(&run, "962");
    let rep = w.report(&run);
    assert_eq!(rep["counts"]["AZSM0000"], paths, "{rep}");
    assert_eq!(rep["permissions"]["simulate"], false, "{rep}");
    // A true-up with the permissions: the agent's first one sets every path's (its index
    // knows of none it set), the next only what changed, with no data sent.
    let sync_with_metadata = || {
        let (s, r) = w.api(
            "POST",
            &format!("/v1/migrations/{m}/commands"),
            Some(json!({"command": "sync", "action": "start", "options": {"metadata": true}})),
        );
        assert_eq!(s, 202, "{r}");
        let run = r["id"].as_str().unwrap().to_string();
        w.wait_end(&run, "952");
        w.report(&run)
    };
    sync_with_metadata();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(src.join("ok.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let rep = sync_with_metadata();
    assert_eq!(rep["counts"]["AZSM2048"], 1, "{rep}");
    assert_eq!(rep["bytes_copied"], 0, "{rep}");
    let mode = std::fs::metadata(copy.join("ok.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o600);
    // After the cut-over the migration is finalized by its agent; nothing more starts on it.
    let run = w.start(&m, "finalize", "987");
    w.wait_end(&run, "981");
    let rep = w.report(&run);
    assert!(
        rep["finalized"]["runs_kept"].as_u64().unwrap() >= 5,
        "{rep}"
    );
    let (s, e) = w.api(
        "POST",
        &format!("/v1/migrations/{m}/commands"),
        Some(json!({"command": "sync", "action": "start"})),
    );
    assert_eq!(
        (s, e["error_code"].clone()),
        (409, json!("AZSM1048")),
        "{e}"
    );
    assert!(
        e["error_msg"].as_str().unwrap().contains(&run),
        "names the run that closed it: {e}"
    );
    // Its runs and their records stay listed.
    let (s, runs) = w.api("GET", &format!("/v1/migrations/{m}/runs"), None);
    assert_eq!(s, 200, "{runs}");
    assert!(runs["count"].as_u64().unwrap() >= 6, "{runs}");
}

/// A summary with what differs between two runs of the same job taken out: ids, times,
/// folders, the target's name, and the reviewed run's id.
fn comparable(mut s: Value) -> Value {
    let o = s.as_object_mut().unwrap();
    for key in [
        "run_id",
        "migration_id",
        "started",
        "ended",
        "seconds",
        "bytes_per_second",
        "run_dir",
        "target",
    ] {
        o.remove(key);
    }
    if let Some(t) = o.get_mut("true_up").and_then(Value::as_object_mut) {
        t.remove("review");
        t.remove("confirmed_run");
    }
    if let Some(v) = o.get_mut("verify").and_then(Value::as_object_mut) {
        v.remove("report");
    }
    o.remove("backup");
    s
}

/// A copy log's records, sorted by path (transfers finish in any order), the attempts aside.
fn comparable_log(run_dir: &str) -> Vec<Value> {
    let mut records = support::copylog(run_dir);
    for r in &mut records {
        let o = r.as_object_mut().unwrap();
        o.remove("attempts");
        // Where a file was kept is each run's own folder (named in the message too).
        if o.remove("backup").is_some() {
            o.remove("message");
        }
    }
    records.sort_by_key(|r| (r["path"].to_string(), r["code"].to_string()));
    records
}

/// The newest summary of a `command` run under a state directory.
fn newest_summary(state: &Path, command: &str) -> Value {
    let mut found: Vec<(String, Value)> = Vec::new();
    for m in std::fs::read_dir(state.join("migrations")).unwrap() {
        for r in std::fs::read_dir(m.unwrap().path().join("runs")).unwrap() {
            let r = r.unwrap();
            if let Ok(text) = std::fs::read_to_string(r.path().join("summary.json")) {
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["command"] == command {
                    found.push((r.file_name().to_string_lossy().into_owned(), v));
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.pop().unwrap_or_else(|| panic!("no {command} run")).1
}

#[test]
fn the_agent_and_the_command_line_give_the_same_results_for_the_same_job() {
    let mut w = World::new();
    w.start_agent_and_wait();
    let src = source(&w.root, 20, 3000);
    write(&src.join("skip/me.tmp"), b"excluded");
    let (cli_dst, agent_dst) = (w.root.join("cli-copy"), w.root.join("agent-copy"));
    let m = w.migration_to(
        &src,
        json!({"name": "dst", "kind": "local", "uri": agent_dst.to_str().unwrap()}),
        json!({"syncDeletes": true, "maxDelete": "1", "filters": {"exclude": ["*.tmp"]}}),
    );
    let cli_state = w.root.join("cli-state");
    let cli = |args: &[&str]| {
        let mut c = godwit();
        c.args(args)
            .arg("--state-dir")
            .arg(&cli_state)
            .arg("--json");
        let out = run(&mut c);
        (out.status.code(), support::summary(&out))
    };
    let (s, d) = (src.to_str().unwrap(), cli_dst.to_str().unwrap());
    let both = |step: &str, cli_summary: Value, agent_summary: Value| {
        assert_eq!(
            comparable(cli_summary.clone()),
            comparable(agent_summary.clone()),
            "{step}: the summaries differ"
        );
        if let (Some(a), Some(b)) = (
            cli_summary["run_dir"].as_str(),
            agent_summary["run_dir"].as_str(),
        ) {
            assert_eq!(
                comparable_log(a),
                comparable_log(b),
                "{step}: the copy logs differ"
            );
        }
    };

    // Scan.
    let mut c = godwit();
    c.args(["scan", s, "--exclude", "*.tmp", "--state-dir"])
        .arg(&cli_state);
    assert_eq!(run(&mut c).status.code(), Some(0));
    let scan = w.start(&m, "scan", "937");
    w.wait_end(&scan, "932");
    // The agent's report carries the scan's findings (what scan.json holds on the command
    // line): the same.
    let mut agent_report = w.report(&scan);
    let agent_scan = agent_report
        .as_object_mut()
        .unwrap()
        .remove("scan")
        .expect("the scan's findings in its report");
    let cli_summary = newest_summary(&cli_state, "scan");
    let cli_scan: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(cli_summary["run_dir"].as_str().unwrap()).join("scan.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // Which of equal folders is "deepest" or "largest" depends on the parallel walk's order:
    // their values must agree, not which path was met first.
    let ties = |mut v: Value| {
        for key in ["deepest", "largest_folder", "longest_path"] {
            if let Some(n) = v.get_mut(key).and_then(Value::as_object_mut) {
                n.remove("path");
            }
        }
        v
    };
    assert_eq!(ties(cli_scan), ties(agent_scan));
    both("scan", cli_summary, agent_report);

    // Copy.
    let (code, summary) = cli(&["copy", s, d, "--exclude", "*.tmp"]);
    assert_eq!(code, Some(0), "{summary}");
    let copy = w.start(&m, "copy", "927");
    w.wait_end(&copy, "922");
    both("copy", summary, w.report(&copy));

    // A change, then a true-up with deletes within the limit.
    write(&src.join("d0/f0.bin"), b"changed");
    std::fs::remove_file(src.join("d1/f1.bin")).unwrap();
    write(&src.join("d2/new.bin"), b"new");
    let sync_args = [
        "sync",
        s,
        d,
        "--exclude",
        "*.tmp",
        "--delete",
        "--max-delete",
        "1",
    ];
    let (code, summary) = cli(&sync_args);
    assert_eq!(code, Some(0), "{summary}");
    let sync = w.start(&m, "sync", "957");
    w.wait_end(&sync, "952");
    both("sync --delete", summary, w.report(&sync));

    // Too many deletions: both pause for review, then the confirmation carries out the list.
    for i in [4, 5, 7] {
        std::fs::remove_file(src.join(format!("d{}/f{i}.bin", i % 3))).unwrap();
    }
    let (code, summary) = cli(&sync_args);
    assert_eq!(code, Some(4), "{summary}");
    let paused = w.start(&m, "sync", "957");
    let r = w.wait_end(&paused, "955");
    assert_eq!(r["error"]["code"], "9080", "{r}");
    // A paused run has no report yet: its summary is in the agent's run folder.
    let agent_state = w.root.join("agent-state");
    both(
        "paused true-up",
        summary.clone(),
        newest_summary(&agent_state, "sync"),
    );
    let reviewed = summary["run_id"].as_str().unwrap();
    let (code, confirmed) = cli(&["confirm", reviewed]);
    assert_eq!(code, Some(0), "{confirmed}");
    let (st, _) = w.api(
        "POST",
        &format!("/v1/migrations/{m}/commands"),
        Some(json!({"command": "sync", "action": "resume"})),
    );
    assert_eq!(st, 202);
    w.wait_end(&paused, "952");
    both("confirm", confirmed, w.report(&paused));
    // The same tree at both targets, with what the source holds now.
    support::assert_same_tree(&cli_dst, &agent_dst);
    assert_eq!(
        std::fs::read(agent_dst.join("d0/f0.bin")).unwrap(),
        b"changed"
    );
    assert!(!agent_dst.join("d1/f4.bin").exists());

    // Verify: the same at both, then the same difference found by both (a file someone else
    // wrote at each target), with the same codes.
    // With checksums: options of this run only, laid over the migration's.
    let (code, summary) = cli(&["verify", s, d, "--exclude", "*.tmp", "--checksum"]);
    assert_eq!(code, Some(0), "{summary}");
    let commands = format!("/v1/migrations/{m}/commands");
    let (st, r) = w.api(
        "POST",
        &commands,
        Some(json!({"command": "verify", "action": "start", "options": {"checksum": true}})),
    );
    assert_eq!(
        (st, r["status"]["code"].clone()),
        (202, json!("247")),
        "{r}"
    );
    assert_eq!(r["options"]["checksum"], true, "{r}");
    assert_eq!(r["options"]["filters"]["exclude"], json!(["*.tmp"]), "{r}");
    let verify = r["id"].as_str().unwrap().to_string();
    w.wait_end(&verify, "242");
    assert_eq!(w.report(&verify)["verify"]["checksum"], true);
    both("verify --checksum", summary, w.report(&verify));
    let (_, m_now) = w.api("GET", &format!("/v1/migrations/{m}"), None);
    assert!(
        m_now["options"].get("checksum").is_none_or(|c| c == false),
        "the migration keeps its own: {m_now}"
    );
    for bad in [
        json!({"command": "verify", "action": "start", "options": {"checksumm": true}}),
        json!({"command": "verify", "action": "start", "options": [1]}),
        json!({"command": "verify", "action": "stop", "options": {"checksum": true}}),
        json!({"command": "sync", "action": "start", "options": {"backupDir": "s3://"}}),
        json!({"command": "permissions", "action": "start", "options": {"ownerMap": "alice bob"}}),
        json!({"command": "permissions", "action": "start", "options": {"what": "owner,colour"}}),
    ] {
        let (st, e) = w.api("POST", &commands, Some(bad.clone()));
        assert_eq!(
            (st, e["error_code"].clone()),
            (422, json!("605")),
            "{bad}: {e}"
        );
    }
    write(&cli_dst.join("d0/stray.bin"), b"not from the source");
    write(&agent_dst.join("d0/stray.bin"), b"not from the source");
    let (code, summary) = cli(&["verify", s, d, "--exclude", "*.tmp"]);
    assert_eq!(code, Some(3), "{summary}");
    let verify = w.start(&m, "verify", "247");
    let r = w.wait_end(&verify, "241");
    assert_eq!(r["error"]["code"], "AZSM1047", "{r}");
    both("verify with a difference", summary, w.report(&verify));

    // A true-up that keeps what it deletes and replaces in a backup folder, then its undo.
    let before = w.root.join("agent-before");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&agent_dst)
        .arg(&before)
        .status();
    assert!(cp.unwrap().success());
    write(&src.join("d0/f3.bin"), b"changed again");
    std::fs::remove_file(src.join("d2/f8.bin")).unwrap();
    let (cli_bk, agent_bk) = (w.root.join("cli-backups"), w.root.join("agent-backups"));
    let with_backup = [&sync_args[..], &["--backup-dir", cli_bk.to_str().unwrap()]].concat();
    let (code, summary) = cli(&with_backup);
    assert_eq!(code, Some(0), "{summary}");
    let cli_sync = summary["run_id"].as_str().unwrap().to_string();
    let (st, r) = w.api(
        "POST",
        &commands,
        Some(json!({"command": "sync", "action": "start",
                    "options": {"backupDir": agent_bk.to_str().unwrap()}})),
    );
    assert_eq!(st, 202, "{r}");
    let sync = r["id"].as_str().unwrap().to_string();
    w.wait_end(&sync, "952");
    let report = w.report(&sync);
    assert_eq!(report["counts"]["AZSM2046"], 1, "{report}");
    both("sync --backup-dir", summary, report.clone());
    let kept = agent_bk.join(report["run_id"].as_str().unwrap());
    assert_eq!(report["backup"], kept.display().to_string());
    assert_eq!(
        std::fs::read(kept.join("d0/f3.bin")).unwrap(),
        std::fs::read(before.join("d0/f3.bin")).unwrap()
    );
    assert!(kept.join("d2/f8.bin").is_file());
    assert!(!agent_dst.join("d2/f8.bin").exists());

    let (code, summary) = cli(&["undo", &cli_sync]);
    assert_eq!(code, Some(0), "{summary}");
    let (st, r) = w.api(
        "POST",
        &commands,
        Some(json!({"command": "undo", "action": "start", "options": {"undoRun": sync}})),
    );
    assert_eq!(
        (st, r["status"]["code"].clone()),
        (202, json!("957")),
        "{r}"
    );
    let undo = r["id"].as_str().unwrap().to_string();
    w.wait_end(&undo, "952");
    let report = w.report(&undo);
    assert_eq!(report["counts"]["AZSM2047"], 2, "{report}");
    both("undo", summary, report);
    support::assert_same_tree(&before, &agent_dst);
    support::assert_same_tree(&cli_dst, &agent_dst);
    // An undo names a run of this migration that ended with its report.
    for (options, status) in [
        (json!({}), 422),
        (json!({"undoRun": "no-such-run"}), 404),
        (json!({"undoRun": 7}), 422),
    ] {
        let (st, e) = w.api(
            "POST",
            &commands,
            Some(json!({"command": "undo", "action": "start", "options": options})),
        );
        assert_eq!(st, status, "{options}: {e}");
    }
}

/// Unique values for every secret godwit is given, to look for everywhere afterwards.
struct Markers {
    /// (what it is, its text)
    all: Vec<(&'static str, String)>,
}

impl Markers {
    fn new() -> Markers {
        let tag = format!("gwsecret{}x{}", std::process::id(), rand_suffix());
        let m = |what: &str| format!("{tag}{what}");
        let azure_key = m("azurekey0123456789");
        let azure_b64 = {
            use std::io::Write;
            let mut c = Command::new("base64")
                .args(["-w", "0"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin
                .take()
                .unwrap()
                .write_all(azure_key.as_bytes())
                .unwrap();
            text(&c.wait_with_output().unwrap().stdout)
        };
        Markers {
            all: vec![
                ("the JWT secret", m("jwtsecret-long-enough-for-hs256")),
                ("the database password", m("pgpassword")),
                (
                    "the AWS access key id",
                    format!("AKIA{}", m("keyid").to_uppercase()),
                ),
                ("the AWS secret key", m("awssecret")),
                ("the AWS session token", m("awssession")),
                ("the Azure key", azure_b64),
                ("the Azure key's bytes", azure_key),
                ("the SFTP key file's content", m("sftpkeycontent")),
                ("a password in an SFTP URI", m("uripassword")),
                ("a signature in a URI", m("urisignature")),
            ],
        }
    }

    fn get(&self, what: &str) -> &str {
        &self.all.iter().find(|(w, _)| *w == what).unwrap().1
    }

    /// The environment that hands them to godwit: the store credentials, the token secret,
    /// logging at its most verbose.
    fn env(&self, sftp_key: &Path) -> Vec<(String, String)> {
        [
            ("GODWIT_LOG", "trace".to_string()),
            ("GODWIT_JWT_SECRET", self.get("the JWT secret").into()),
            (
                "AWS_ACCESS_KEY_ID",
                self.get("the AWS access key id").into(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.get("the AWS secret key").into(),
            ),
            (
                "AWS_SESSION_TOKEN",
                self.get("the AWS session token").into(),
            ),
            ("AZURE_STORAGE_ACCOUNT", "devstoreaccount1".into()),
            ("AZURE_STORAGE_KEY", self.get("the Azure key").into()),
            ("AZURE_STORAGE_ENDPOINT", env("GODWIT_TEST_AZURE_ENDPOINT")),
            ("GODWIT_SFTP_KEY", sftp_key.to_str().unwrap().into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Every file under `root` (but `except`), and the PostgreSQL database when there is one,
/// searched for every marker and every token: none may be there.
fn assert_no_secret_in(root: &Path, except: &[PathBuf], secrets: &[(&str, String)]) -> usize {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                walk(&e.path(), out);
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    let mut found = Vec::new();
    let mut searched = 0;
    for f in files.iter().filter(|f| !except.contains(f)) {
        let bytes = std::fs::read(f).unwrap_or_default();
        searched += 1;
        for (what, secret) in secrets {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                found.push(format!("{what} in {}", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "secrets left where anyone may read them: {found:#?}"
    );
    searched
}

/// The secret-marker test: unique values in every credential variable and every secret the
/// control plane knows, copies that succeed and copies that fail through the agent and the
/// command line, logging at `trace`; then every file, log, database and API answer is searched
/// for them.
fn secrets_never_leave(database: Option<String>) {
    let markers = Markers::new();
    let scratch = tempfile::tempdir().unwrap();
    // Outside the searched tree: the files that hold a secret because the test put it there.
    let sftp_key = scratch.path().join("bad_key");
    std::fs::write(
        &sftp_key,
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            markers.get("the SFTP key file's content")
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &sftp_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let database = database.map(|url| {
        // PostgreSQL here trusts local connections, so the password is sent nowhere, but it is
        // in the URL godwit is given, and must not be repeated.
        url.replacen(
            "postgres@",
            &format!("postgres:{}@", markers.get("the database password")),
            1,
        )
    });
    let mut w = World::with(database.clone(), markers.env(&sftp_key));
    let cli_env = w.extra_env.clone();
    w.start_agent_and_wait();
    let src = source(&w.root, 12, 3000);
    let mut answers = Vec::new();

    // An endpoint with a credential in its URI is refused, without repeating it.
    let sftp = env("GODWIT_TEST_SFTP_ENDPOINT");
    let sftp_hostport = sftp.trim_start_matches("ssh://").split_once('@').unwrap().1;
    for uri in [
        format!(
            "sftp://bob:{}@{sftp_hostport}/x",
            markers.get("a password in an SFTP URI")
        ),
        format!("az://c/x?sig={}", markers.get("a signature in a URI")),
    ] {
        let kind = if uri.starts_with("az") {
            "azure-blob"
        } else {
            "sftp"
        };
        let (s, e) = w.api(
            "POST",
            "/v1/endpoints",
            Some(json!({"name": "leaky", "kind": kind, "uri": uri})),
        );
        assert_eq!((s, e["error_code"].as_str()), (422, Some("646")), "{e}");
        answers.push(e);
    }

    // Through the agent: to S3 (succeeds), to Azure with a wrong key and to SFTP with a key
    // that is not one (both fail).
    let to_s3 = w.migration(&src, json!({}));
    w.scanned(&to_s3);
    let copy = w.start(&to_s3, "copy", "927");
    answers.push(w.wait_end(&copy, "922"));
    let sftp_root = env("GODWIT_TEST_SFTP_ROOT");
    let sftp_user = sftp.trim_start_matches("ssh://").split_once('@').unwrap().0;
    let targets = [
        json!({"name": "az", "kind": "azure-blob", "uri": "az://secrets/agent"}),
        json!({"name": "sftp", "kind": "sftp",
               "uri": format!("sftp://{sftp_user}@{sftp_hostport}{sftp_root}/secrets-agent")}),
    ];
    for (i, target) in targets.into_iter().enumerate() {
        let mut t = target;
        t["name"] = json!(format!("{}-{i}", t["name"].as_str().unwrap()));
        let src2 = w.root.join(format!("src{i}"));
        std::fs::create_dir_all(&src2).unwrap();
        std::fs::copy(src.join("d0/f0.bin"), src2.join("f0.bin")).unwrap();
        let m = w.migration_to(&src2, t, json!({}));
        w.scanned(&m);
        let copy = w.start(&m, "copy", "927");
        let run = w.wait_for("the failing copy", Duration::from_secs(120), || {
            let r = w.run_state(&copy);
            matches!(r["state"].as_str(), Some("SUCCEEDED" | "FAILED")).then_some(r)
        });
        assert_eq!(run["state"], "FAILED", "{run}");
        answers.push(run);
    }

    // Through the command line, with the same environment.
    let connection_string = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint={}",
        markers.get("the Azure key"),
        env("GODWIT_TEST_AZURE_ENDPOINT")
    );
    let cli = |target: String, want: i32, name: &str| {
        let mut c = godwit();
        c.args(["copy", src.to_str().unwrap(), &target, "--state-dir"])
            .arg(w.root.join("cli-state"))
            .env("AWS_ENDPOINT_URL", env("GODWIT_TEST_S3_ENDPOINT"))
            .env("AWS_REGION", "us-east-1")
            .envs(cli_env.iter().map(|(k, v)| (k, v)));
        if name == "cli-azure-connection-string" {
            c.env("AZURE_STORAGE_CONNECTION_STRING", &connection_string);
        }
        let out = run(&mut c);
        std::fs::write(w.root.join(format!("{name}.out")), &out.stdout).unwrap();
        std::fs::write(w.root.join(format!("{name}.err")), &out.stderr).unwrap();
        assert_eq!(
            out.status.code(),
            Some(want),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("opendal::services: service=") || want == 2,
            "{name} logged what it did: {}",
            text(&out.stderr)
        );
    };
    cli(format!("s3://{}/cli", w.bucket), 0, "cli-s3");
    cli("az://secrets/cli".into(), 1, "cli-azure");
    cli("az://secrets/cli".into(), 1, "cli-azure-connection-string");
    cli(
        format!("sftp://{sftp_user}@{sftp_hostport}{sftp_root}/secrets-cli"),
        1,
        "cli-sftp",
    );
    cli(
        format!(
            "sftp://bob:{}@{sftp_hostport}/x",
            markers.get("a password in an SFTP URI")
        ),
        2,
        "cli-password-in-uri",
    );

    // Everything the API shows an admin.
    let (_, migrations) = w.api("GET", "/v1/migrations", None);
    for path in [
        "/v1/endpoints",
        "/v1/migrations",
        "/v1/agents",
        "/v1/projects",
        "/v1/errors",
        "/v1/audit?limit=100",
        "/v1/tokens",
    ] {
        answers.push(w.api("GET", path, None).1);
    }
    for m in migrations["items"].as_array().unwrap() {
        let id = m["id"].as_str().unwrap();
        let (_, runs) = w.api("GET", &format!("/v1/migrations/{id}/runs"), None);
        for r in runs["items"].as_array().unwrap() {
            let rid = r["id"].as_str().unwrap();
            for p in ["", "/copylog", "/report"] {
                answers.push(w.api("GET", &format!("/v1/runs/{rid}{p}"), None).1);
            }
        }
        answers.push(runs);
    }
    std::fs::write(
        w.root.join("answers.json"),
        serde_json::to_vec_pretty(&answers).unwrap(),
    )
    .unwrap();
    // The control plane's and the agent's logs are complete once they have stopped.
    w.agent.take();
    w.server.take();
    if let Some(url) = &database {
        let out = Command::new("pg_dump")
            .args([
                "--data-only",
                &url.replacen(markers.get("the database password"), "", 1)
                    .replacen("postgres:@", "postgres@", 1),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        std::fs::write(w.root.join("database.sql"), &out.stdout).unwrap();
        assert!(
            text(&out.stdout).contains("token.create"),
            "the dump holds the audit log"
        );
    }
    let logs = std::fs::read_to_string(w.root.join("agent.log")).unwrap()
        + &std::fs::read_to_string(w.root.join("server.log")).unwrap();
    assert!(
        logs.contains("TRACE") && logs.contains("opendal"),
        "the control plane and the agent logged at trace"
    );

    let mut secrets = markers.all.clone();
    secrets.push(("the admin token", w.admin.clone()));
    secrets.push(("the agent token", w.agent_token.clone()));
    let searched = assert_no_secret_in(&w.root, &[], &secrets);
    assert!(searched > 20, "searched {searched} files");
}

#[test]
fn secrets_never_leave_the_processes_on_sqlite() {
    secrets_never_leave(None);
}

#[test]
fn secrets_never_leave_the_processes_on_postgresql() {
    secrets_never_leave(Some(new_pg_database()));
}

/// An uneven tree under `src` of about `scale` files (most of them small), and three folders of
/// 1 MiB files under `media`; plus `.tmp` files the project's filters leave out. Returns every
/// file's path, relative, but the `.tmp` ones.
fn uneven_tree(src: &Path, scale: usize) -> Vec<String> {
    let mut paths = Vec::new();
    let mut put = |rel: String, size: usize| {
        let data: Vec<u8> = (0..size).map(|j| (j % 251) as u8).collect();
        write(&src.join(&rel), &data);
        if !rel.ends_with(".tmp") {
            paths.push(rel);
        }
    };
    // Departments of very different sizes, some with teams below them.
    let unit = (scale / 1900).max(1);
    for a in 0..40 {
        for b in 0..(a % 7) {
            for i in 0..(unit * (3 + (a * b * 37) % 25)) {
                put(format!("d{a}/team {b}/f{i}.dat"), (i * 7) % 300);
            }
        }
        for i in 0..(unit * a * 6 / 10) {
            put(format!("d{a}/top{i}.txt"), 100);
        }
        put(format!("d{a}/scratch.tmp"), 10);
    }
    for f in 0..5 {
        put(format!("readme{f}.md"), 10);
    }
    for part in ["a", "b", "c"] {
        for i in 0..8 {
            put(format!("media/{part}/clip{i}.mov"), 1 << 20);
        }
    }
    paths
}

/// A project planned, applied and copied through the control plane and its agent: the agent
/// walks the share once, the recommendation cuts it under low job limits on folder boundaries,
/// each job covering every file exactly once (checked with the filter the copies use), applying
/// it makes one migration a job (and nothing more the second time), and the jobs together copy
/// the whole share. On the way: an inactive agent (721), a second scan while one runs
/// (AZSM1049), a source that is not there (9110), an agent that hangs past the time limit
/// (720, answered 504), filters changed since the scan (723).
/// How long a run of the 200,000-file plan may take on a busy 2-core machine (debug build, the
/// rest of the suite beside it).
const LONG: Duration = Duration::from_secs(600);

fn plan_a_project(mut w: World, scale: usize, max_files: u64) {
    w.start_agent_and_wait();
    // Hundreds of thousands of small files: in memory where the machine has it (/dev/shm), for
    // on this ext4 every file made or removed in bulk slows the whole machine's next minute.
    let big = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir_in(&w.root).unwrap(),
    };
    let src = big.path().join("share");
    let files = uneven_tree(&src, scale);
    let dst = big.path().join("copy");
    let (_, s) = w.api(
        "POST",
        "/v1/endpoints",
        Some(json!({"name": "nas", "kind": "local", "uri": src.to_str().unwrap()})),
    );
    let (_, d) = w.api(
        "POST",
        "/v1/endpoints",
        Some(json!({"name": "new-nas", "kind": "local", "uri": dst.to_str().unwrap()})),
    );
    let (st, p) = w.api(
        "POST",
        "/v1/projects",
        Some(json!({"name": "plan", "settings": {"filters": {"exclude": ["*.tmp"]}}})),
    );
    assert_eq!(st, 201, "{p}");
    let project = p["id"].as_str().unwrap().to_string();
    let scan_path = format!("/v1/projects/{project}/simulate-scan");
    let limits = json!({"jobMaxFiles": max_files, "jobMaxBytes": 16 << 20});
    let scan_body = |agent: &str, path: &str, extra: Value| {
        let mut b = json!({"agentId": agent, "source": {"endpointId": s["id"], "path": path}});
        for (k, v) in limits
            .as_object()
            .unwrap()
            .iter()
            .chain(extra.as_object().unwrap())
        {
            b[k] = v.clone();
        }
        b
    };

    // No recommendation before any scan.
    let rec_path = format!("/v1/projects/{project}/recommendation");
    let (st, e) = w.api("GET", &rec_path, None);
    assert_eq!((st, e["error_code"].as_str()), (404, Some("723")), "{e}");
    // An agent that has never connected cannot take it.
    let (_, other) = w.api(
        "POST",
        "/v1/agents",
        Some(json!({"name": "asleep", "version": "0.1.0"})),
    );
    let asleep = other["agent"]["id"].as_str().unwrap();
    let (st, e) = w.api("POST", &scan_path, Some(scan_body(asleep, "/", json!({}))));
    assert_eq!((st, e["error_code"].as_str()), (409, Some("721")), "{e}");

    // A source that is not there: the run fails with 9110, and there is still nothing to apply.
    let (st, r) = w.api(
        "POST",
        &format!("{scan_path}?wait=60"),
        Some(scan_body(&w.agent_id, "/not-there", json!({}))),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["status"]["code"], "142", "{r}");
    assert_eq!(r["error"]["code"], "9110", "{r}");
    let (st, e) = w.api("GET", &rec_path, None);
    assert_eq!((st, e["error_code"].as_str()), (404, Some("723")), "{e}");
    assert!(
        e["details"][0]["error_msg"]
            .as_str()
            .unwrap()
            .contains("9110"),
        "{e}"
    );

    // An agent that hangs: its scan's time limit passes, the waiting request answers 504 with
    // 720 and the run is FAILED with it, whatever the agent says once it wakes.
    w.signal_agent("-STOP");
    let (st, e) = w.api(
        "POST",
        &format!("{scan_path}?wait=30"),
        Some(scan_body(&w.agent_id, "/", json!({"timeLimitSecs": 1}))),
    );
    w.signal_agent("-CONT");
    assert_eq!((st, e["error_code"].as_str()), (504, Some("720")), "{e}");
    let (_, runs) = w.api("GET", &format!("/v1/projects/{project}/runs"), None);
    let hung = runs["items"][0].clone();
    assert_eq!(hung["status"]["code"], "142", "{hung}");
    assert_eq!(hung["error"]["code"], "720", "{hung}");
    w.wait_for("the agent to be back", Duration::from_secs(30), || {
        (w.agent_state() == "901").then_some(Value::Null)
    });

    // The scan itself; a second one meanwhile is refused.
    let (st, r) = w.api(
        "POST",
        &scan_path,
        Some(scan_body(&w.agent_id, "/", json!({}))),
    );
    assert_eq!(st, 202, "{r}");
    assert_eq!(r["status"]["code"], "141", "{r}");
    let run_id = r["id"].as_str().unwrap().to_string();
    let (st, e) = w.api(
        "POST",
        &scan_path,
        Some(scan_body(&w.agent_id, "/", json!({}))),
    );
    assert_eq!(
        (st, e["error_code"].as_str()),
        (409, Some("AZSM1049")),
        "{e}"
    );
    let r = w.wait_for("the simulated scan", LONG, || {
        let (_, r) = w.api(
            "GET",
            &format!("/v1/projects/{project}/runs/{run_id}"),
            None,
        );
        (r["state"] != "QUEUED" && r["state"] != "RUNNING").then_some(r)
    });
    assert_eq!(r["status"]["code"], "143", "{r}");
    assert_eq!(r["files"], files.len(), "{r}");

    let (st, rec) = w.api("GET", &rec_path, None);
    assert_eq!(st, 200, "{rec}");
    assert_eq!(rec["files"], files.len(), "{rec}");
    assert_eq!(rec["runId"], run_id.as_str(), "{rec}");
    let jobs = rec["jobs"].as_array().unwrap();
    assert!(jobs.len() >= 3, "{rec}");
    let mut in_jobs = 0;
    for job in jobs {
        assert!(job["files"].as_u64().unwrap() <= max_files, "{job}");
        assert!(job["bytes"].as_u64().unwrap() <= 16 << 20, "{job}");
        in_jobs += job["files"].as_u64().unwrap();
    }
    assert_eq!(in_jobs as usize, files.len());
    // Every file is in exactly one job, by the filter the jobs' copies use.
    let filters: Vec<godwit_spec::Filter> = jobs
        .iter()
        .map(|j| {
            let rules = godwit_spec::FilterRules {
                include: serde_json::from_value(j["include"].clone()).unwrap(),
                exclude: vec!["*.tmp".into()],
                ..Default::default()
            };
            godwit_spec::Filter::new(&rules).unwrap()
        })
        .collect();
    for f in &files {
        let taking = filters
            .iter()
            .filter(|flt| !flt.excludes_file(f.as_bytes(), 0, 0))
            .count();
        assert_eq!(taking, 1, "{f} is in {taking} jobs");
    }

    // Applied: one migration a job; applying again makes nothing new.
    let apply = format!("/v1/projects/{project}/recommendation/apply");
    let body = json!({"target": {"endpointId": d["id"], "path": "/"}});
    let (st, made) = w.api("POST", &apply, Some(body.clone()));
    assert_eq!(st, 201, "{made}");
    assert_eq!(made["created"], jobs.len(), "{made}");
    let (st, again) = w.api("POST", &apply, Some(body.clone()));
    assert_eq!((st, again["created"].clone()), (200, json!(0)), "{again}");
    let ids = |v: &Value| -> Vec<String> {
        v["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&made), ids(&again));

    // Every job scanned and copied, all at once on the agent: the whole share arrives.
    let migrations = ids(&made);
    let scans: Vec<String> = migrations
        .iter()
        .map(|m| w.start(m, "scan", "937"))
        .collect();
    for (m, scan) in migrations.iter().zip(&scans) {
        let r = w.wait_end_within(scan, "932", LONG);
        let job = &jobs[migrations.iter().position(|x| x == m).unwrap()];
        assert_eq!(r["files"], job["files"], "{r} {job}");
    }
    let copies: Vec<String> = migrations
        .iter()
        .map(|m| w.start(m, "copy", "927"))
        .collect();
    for (copy, job) in copies.iter().zip(jobs) {
        let r = w.wait_end_within(copy, "922", LONG);
        assert_eq!(r["counts"]["AZSM0000"], job["files"], "{r} {job}");
    }
    let mut copied = 0;
    let mut walk = vec![dst.clone()];
    while let Some(dir) = walk.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk.push(e.path());
            } else {
                let rel = e
                    .path()
                    .strip_prefix(&dst)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                assert!(!rel.ends_with(".tmp"), "{rel}");
                assert_eq!(
                    std::fs::read(e.path()).unwrap(),
                    std::fs::read(src.join(&rel)).unwrap()
                );
                copied += 1;
            }
        }
    }
    assert_eq!(copied, files.len());

    // One job finalized after its cut-over: nothing more starts on it, and the next job, a
    // migration of its own on the same agent, goes on (its true-up finds its files unchanged).
    let fin = w.start(&migrations[0], "finalize", "987");
    w.wait_end_within(&fin, "981", LONG);
    let (s, e) = w.api(
        "POST",
        &format!("/v1/migrations/{}/commands", migrations[0]),
        Some(json!({"command": "sync", "action": "start"})),
    );
    assert_eq!(
        (s, e["error_code"].as_str()),
        (409, Some("AZSM1048")),
        "{e}"
    );
    let sync = w.start(&migrations[1], "sync", "957");
    let r = w.wait_end_within(&sync, "952", LONG);
    assert_eq!(r["counts"]["AZSM2041"], jobs[1]["files"], "{r}");

    // The project's filters change: the proposal is stale and is not applied.
    let (st, _) = w.api(
        "PATCH",
        &format!("/v1/projects/{project}"),
        Some(json!({"settings": {"filters": {"exclude": ["*.tmp", "*.bak"]}}})),
    );
    assert_eq!(st, 200);
    let (st, e) = w.api("GET", &rec_path, None);
    assert_eq!((st, e["error_code"].as_str()), (404, Some("723")), "{e}");
    let (st, e) = w.api("POST", &apply, Some(body));
    assert_eq!((st, e["error_code"].as_str()), (404, Some("723")), "{e}");
}

#[test]
fn a_project_is_planned_applied_and_copied_through_its_agent() {
    plan_a_project(World::new(), 200_000, 30_000);
}

#[test]
fn a_project_is_planned_applied_and_copied_through_its_agent_on_postgresql() {
    plan_a_project(World::on_postgresql(), 20_000, 3_000);
}

/// A project validated through its agent: one `validate` run a migration, gathered into one
/// result with every finding and its code. A target nobody may write (722, made immutable so
/// that root too is refused), a name the project's profile refuses (728 while the project does
/// not sanitize on the fly, 9140 once it does), an agent not connected (726, nothing queued),
/// an agent that hangs past the time limit (725, answered 504).
fn validate_a_project(mut w: World) {
    w.start_agent_and_wait();
    let src = w.root.join("share");
    write(&src.join("ok/a.txt"), b"a");
    write(&src.join("ok/b.txt"), b"bb");
    write(&src.join("bad?.txt"), b"a name Windows refuses");
    let fine = w.root.join("fine");
    let locked = w.root.join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    let chattr = |flag: &str| {
        assert!(
            Command::new("chattr")
                .args([flag, locked.to_str().unwrap()])
                .status()
                .unwrap()
                .success()
        );
    };
    chattr("+i");
    struct Unlock(PathBuf);
    impl Drop for Unlock {
        fn drop(&mut self) {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        }
    }
    let _unlock = Unlock(locked.clone());
    let endpoint = |name: &str, path: &Path| {
        let (st, e) = w.api(
            "POST",
            "/v1/endpoints",
            Some(json!({"name": name, "kind": "local", "uri": path.to_str().unwrap()})),
        );
        assert_eq!(st, 201, "{e}");
        e["id"].as_str().unwrap().to_string()
    };
    let (nas, fine_e, locked_e) = (
        endpoint("nas", &src),
        endpoint("fine", &fine),
        endpoint("locked", &locked),
    );
    let (_, p) = w.api(
        "POST",
        "/v1/projects",
        Some(json!({"name": "checked", "settings": {"targetProfile": "windows"}})),
    );
    let project = p["id"].as_str().unwrap().to_string();
    let migration = |agent: &str, source: &str, target: &str| {
        let (st, m) = w.api(
            "POST",
            "/v1/migrations",
            Some(json!({"projectId": project, "agentId": agent,
                "source": {"endpointId": nas, "path": source},
                "target": {"endpointId": target, "path": "/"}})),
        );
        assert_eq!(st, 201, "{m}");
        m["id"].as_str().unwrap().to_string()
    };
    let names = migration(&w.agent_id, "/", &fine_e);
    let unwritable = migration(&w.agent_id, "/ok", &locked_e);
    let validate = format!("/v1/projects/{project}/validate");

    // An agent that is not there: refused before anything is queued.
    let (_, other) = w.api(
        "POST",
        "/v1/agents",
        Some(json!({"name": "away", "version": "0.1.0"})),
    );
    let away = migration(other["agent"]["id"].as_str().unwrap(), "/ok", &fine_e);
    let (st, e) = w.api("POST", &validate, Some(json!({})));
    assert_eq!((st, e["error_code"].as_str()), (409, Some("726")), "{e}");
    let (_, runs) = w.api("GET", &format!("/v1/migrations/{names}/runs"), None);
    assert_eq!(runs["count"], 0, "nothing queued: {runs}");
    let (st, _) = w.api("DELETE", &format!("/v1/migrations/{away}"), None);
    assert_eq!(st, 204);

    // Both problems found, each with its code; the names call for the project's settings.
    let (st, e) = w.api("POST", &format!("{validate}?wait=60"), Some(json!({})));
    assert_eq!((st, e["error_code"].as_str()), (422, Some("728")), "{e}");
    let (_, runs) = w.api("GET", &format!("/v1/projects/{project}/runs"), None);
    let run = runs["items"][0].clone();
    assert_eq!(run["status"]["code"], "161", "{run}");
    let (st, rep) = w.api(
        "GET",
        &format!(
            "/v1/projects/{project}/runs/{}/report",
            run["id"].as_str().unwrap()
        ),
        None,
    );
    assert_eq!(st, 200, "{rep}");
    let found = |migration: &str| -> Vec<String> {
        let m = rep["report"]["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["migrationId"] == migration)
            .unwrap_or_else(|| panic!("{migration} in {rep}"));
        m["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        found(&names).iter().any(|c| c.starts_with("AZSM202")),
        "{rep}"
    );
    assert_eq!(found(&unwritable), ["722"], "{rep}");
    // Each migration's own run is there with its status.
    let (_, runs) = w.api("GET", &format!("/v1/migrations/{unwritable}/runs"), None);
    assert_eq!(runs["items"][0]["command"], "validate", "{runs}");
    assert_eq!(runs["items"][0]["status"]["code"], "161", "{runs}");

    // Sanitizing on the fly, the names are a finding still but no longer the settings' fault.
    let (st, _) = w.api(
        "PATCH",
        &format!("/v1/projects/{project}"),
        Some(json!({"settings": {"targetProfile": "windows", "sanitize": "on-the-fly"}})),
    );
    assert_eq!(st, 200);
    let (st, r) = w.api("POST", &format!("{validate}?wait=60"), Some(json!({})));
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (r["status"]["code"].as_str(), r["error"]["code"].as_str()),
        (Some("161"), Some("9140")),
        "{r}"
    );

    // Fixed: the target writable, the name gone: 162.
    drop(_unlock);
    std::fs::remove_file(src.join("bad?.txt")).unwrap();
    let (st, r) = w.api("POST", &format!("{validate}?wait=60"), Some(json!({})));
    assert_eq!(
        (st, r["status"]["code"].as_str()),
        (200, Some("162")),
        "{r}"
    );
    // The probe written to see the target writable is gone again.
    assert_eq!(std::fs::read_dir(&locked).unwrap().count(), 0);

    // An agent that hangs: 725 once the time limit passes, answered 504; its runs are stopped.
    w.signal_agent("-STOP");
    let (st, e) = w.api(
        "POST",
        &format!("{validate}?wait=30"),
        Some(json!({"timeLimitSecs": 1})),
    );
    w.signal_agent("-CONT");
    let (_, a) = w.api("GET", &format!("/v1/migrations/{names}/runs"), None);
    let (_, b) = w.api("GET", &format!("/v1/migrations/{unwritable}/runs"), None);
    assert_eq!(
        (st, e["error_code"].as_str()),
        (504, Some("725")),
        "{e}\nthe migrations' runs: {a}\n{b}"
    );
    let (_, runs) = w.api("GET", &format!("/v1/projects/{project}/runs"), None);
    assert_eq!(runs["items"][0]["error"]["code"], "725", "{runs}");
    let (_, runs) = w.api("GET", &format!("/v1/migrations/{names}/runs"), None);
    let last = runs["items"][0]["id"].as_str().unwrap().to_string();
    // Told to stop, it ends one way or the other once the agent wakes (it may have finished
    // first); the project run keeps its 725.
    w.wait_for(
        "the hung validation's run to end",
        Duration::from_secs(60),
        || {
            let r = w.run_state(&last);
            ["STOPPED", "FAILED", "SUCCEEDED"]
                .contains(&r["state"].as_str().unwrap_or_default())
                .then_some(r)
        },
    );
    let (_, again) = w.api("GET", &format!("/v1/projects/{project}/runs"), None);
    assert_eq!(again["items"][0]["error"]["code"], "725", "{again}");
}

#[test]
fn a_project_is_validated_through_its_agents() {
    validate_a_project(World::new());
}

#[test]
fn a_project_is_validated_through_its_agents_on_postgresql() {
    validate_a_project(World::on_postgresql());
}

#[test]
fn a_migration_with_a_copy_log_is_deleted_on_postgresql() {
    let mut w = World::on_postgresql();
    w.start_agent_and_wait();
    let src = source(&w.root, 4, 100);
    let m = w.migration(&src, json!({}));
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    w.wait_end(&copy, "922");
    let (_, log) = w.api("GET", &format!("/v1/runs/{copy}/copylog"), None);
    assert_eq!(log["count"], 4, "{log}");
    // Its runs' copy logs, review lists and progress samples go with it.
    let (s, body) = w.api("DELETE", &format!("/v1/migrations/{m}"), None);
    assert_eq!(s, 204, "{body}");
    let (s, body) = w.api("GET", &format!("/v1/runs/{copy}"), None);
    assert_eq!(
        (s, body["error_code"].clone()),
        (404, json!("800")),
        "{body}"
    );
}

#[test]
fn a_source_is_browsed_a_level_at_a_time_through_its_agent() {
    let env = vec![
        ("GODWIT_BROWSE_MAX_FOLDERS".to_string(), "3".to_string()),
        // Shorter than the heartbeat window (3 s here): a hung agent is silent, not gone yet.
        ("GODWIT_BROWSE_WAIT".to_string(), "1.5".to_string()),
    ];
    let mut w = World::with(None, env);
    w.start_agent_and_wait();
    let src = source(&w.root, 9, 100);
    for d in [
        "d1/inner", "d1/other", "many/a", "many/b", "many/c", "many/d",
    ] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    let m = w.migration(&src, json!({}));
    let (_, mig) = w.api("GET", &format!("/v1/migrations/{m}"), None);
    let (source_ep, target_ep) = (
        mig["source_endpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("{mig}"))
            .to_string(),
        mig["target_endpoint"].as_str().unwrap().to_string(),
    );
    let agent = w.agent_id.clone();
    let browse = |endpoint: &str, path: &str| {
        w.api(
            "POST",
            &format!("/v1/agents/{agent}/browse"),
            Some(json!({"endpointId": endpoint, "path": path})),
        )
    };
    let names = |b: &Value| -> Vec<String> {
        b["folders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    // One level, sorted, each with the path a migration's source takes.
    let (s, b) = browse(&source_ep, "/d1");
    assert_eq!((s, b["status"]["code"].clone()), (200, json!("232")), "{b}");
    assert_eq!(names(&b), ["inner", "other"]);
    assert_eq!(b["folders"][0]["path"], "/d1/inner", "{b}");
    let (s, b) = browse(&source_ep, "/d1/inner");
    assert_eq!((s, names(&b).len()), (200, 0), "{b}");
    // More folders than the picker offers (3 here): 638, type the path instead.
    let (s, e) = browse(&source_ep, "/many");
    assert_eq!((s, e["error_code"].clone()), (422, json!("638")), "{e}");
    // A folder the agent cannot list: 9050 with why.
    let (s, e) = browse(&source_ep, "/gone");
    assert_eq!((s, e["error_code"].clone()), (422, json!("9050")), "{e}");
    assert!(e["error_msg"].as_str().unwrap().contains("gone"), "{e}");
    let (s, e) = browse(&source_ep, "relative");
    assert_eq!((s, e["error_code"].clone()), (422, json!("605")), "{e}");
    // An object store, listed by its agent: the folders a copy made there.
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    w.wait_end(&copy, "922");
    let (s, b) = browse(&target_ep, "/");
    assert_eq!(
        (s, names(&b)),
        (200, vec!["d0".to_string(), "d1".into(), "d2".into()]),
        "{b}"
    );
    // An agent that hangs: no answer within GODWIT_BROWSE_WAIT (697), and meanwhile a second
    // browse on it is refused (696).
    w.signal_agent("-STOP");
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| browse(&source_ep, "/d1"));
        std::thread::sleep(Duration::from_millis(500));
        let second = browse(&source_ep, "/d1");
        (first.join().unwrap(), second)
    });
    w.signal_agent("-CONT");
    assert_eq!(
        (first.0, first.1["error_code"].clone()),
        (409, json!("697")),
        "{}",
        first.1
    );
    assert_eq!(
        (second.0, second.1["error_code"].clone()),
        (409, json!("696")),
        "{}",
        second.1
    );
    // Afterwards it answers again; an agent that is gone cannot (695).
    let (s, b) = browse(&source_ep, "/d1");
    assert_eq!((s, names(&b).len()), (200, 2), "{b}");
    w.signal_agent("-KILL");
    w.wait_for("the agent to be inactive", Duration::from_secs(20), || {
        (w.agent_state() == "900").then_some(Value::Null)
    });
    let (s, e) = browse(&source_ep, "/d1");
    assert_eq!((s, e["error_code"].clone()), (409, json!("695")), "{e}");
}

#[test]
fn a_second_control_plane_on_one_sqlite_store_is_refused() {
    let w = World::new();
    let out = godwit()
        .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&w.cp_state)
        .env_remove("GODWIT_DATABASE_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("[AZSM1056]") && err.contains("control-plane.db"),
        "{err}"
    );
    // The first one serves on, and `godwit token` still writes to its store.
    let (s, _) = w.api("GET", "/v1/agents", None);
    assert_eq!(s, 200);
    let out = godwit()
        .args(["token", "create", "--role", "viewer", "--state-dir"])
        .arg(&w.cp_state)
        .env_remove("GODWIT_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_schedule_fires_once_with_two_control_planes_on_one_postgresql() {
    let mut w = World::on_postgresql();
    w.start_agent_and_wait();
    // A second control plane on the same database, with its own state directory.
    let (_second, _) = w.start_replica("cp-second", 0);
    let src = source(&w.root, 3, 10);
    let m = w.migration(&src, json!({}));
    let start = std::time::SystemTime::now() + Duration::from_secs(3);
    let (s, body) = w.api(
        "POST",
        &format!("/v1/migrations/{m}/schedules"),
        Some(json!({
            "command": "scan", "frequency": "once", "repeat": 1,
            "start": humantime::format_rfc3339_seconds(start).to_string()
        })),
    );
    assert_eq!(s, 201, "{body}");
    // Both control planes look for due schedules every half second; one makes the start (the
    // race itself, both seeing it due at once, is rare here: the store test
    // a_schedules_start_is_taken_by_one_control_plane makes it happen).
    let runs = w.wait_for("the scheduled scan", Duration::from_secs(20), || {
        let (_, r) = w.api("GET", &format!("/v1/migrations/{m}/runs"), None);
        (r["count"].as_i64() >= Some(1)).then_some(r)
    });
    std::thread::sleep(Duration::from_secs(3));
    let (_, runs_after) = w.api("GET", &format!("/v1/migrations/{m}/runs"), None);
    assert_eq!(runs_after["count"], 1, "{runs} {runs_after}");
    let (_, left) = w.api("GET", &format!("/v1/migrations/{m}/schedules"), None);
    assert_eq!(left[0]["repeat"], 0, "{left}");
}

/// The agents connected to the control plane at `url`, as its /metrics page says.
fn connected_to(url: &str) -> i64 {
    let out = Command::new("curl")
        .args(["-s", &format!("{url}/metrics")])
        .output()
        .unwrap();
    text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("godwit_agents_connected "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map_or(-1, |n| n as i64)
}

#[test]
fn replicas_relay_commands_and_the_agent_moves_when_its_replica_dies() {
    let mut w = World::on_postgresql();
    let (b, b_url) = w.start_replica("cp-b", 0);
    let mut b = Some(b);
    // The agent is given B first: it connects there, while the requests below go to A.
    w.agent_servers = Some(format!("{b_url},{}", w.url()));
    w.start_agent_and_wait();
    w.wait_for("the agent on B", Duration::from_secs(10), || {
        (connected_to(&b_url) == 1 && connected_to(&w.url()) == 0).then_some(Value::Null)
    });
    // 40 files of 20 KB at 200 KB/s: about four seconds of copying.
    let src = source(&w.root, 40, 20_000);
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let m = w.migration(&src, json!({"bwlimit": "200K"}));
    // A scan asked of A runs on the agent connected to B (relayed through PostgreSQL) ...
    let first_scan = w.scanned(&m)["id"].clone();
    // ... and a browse asked of A is answered through B.
    let (_, mig) = w.api("GET", &format!("/v1/migrations/{m}"), None);
    let (s, found) = w.api(
        "POST",
        &format!("/v1/agents/{}/browse", w.agent_id),
        Some(json!({"endpointId": mig["source_endpoint"], "path": "/"})),
    );
    assert_eq!(
        (s, found["status"]["code"].clone()),
        (200, json!("232")),
        "{found}"
    );
    assert!(
        found["folders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "sub"),
        "{found}"
    );
    // (An object store keeps no empty folder: the tree compared at the end has none.)
    std::fs::remove_dir(src.join("sub")).unwrap();
    let copy = w.start(&m, "copy", "927");
    w.wait_for("the copy to be under way", Duration::from_secs(30), || {
        let r = w.run_state(&copy);
        (r["state"] == "RUNNING" && r["files"].as_i64().unwrap_or(0) > 0).then_some(r)
    });
    // B is killed (SIGKILL) mid-copy: the copy goes on, the agent moves to A and reports there.
    b.take();
    let r = w.wait_end(&copy, "922");
    assert_eq!(r["files"], 40, "{r}");
    support::assert_same_tree(&src, &w.target_tree());
    assert_exact(&w, &copy);
    assert_eq!(connected_to(&w.url()), 1);
    // B again (a new process on its address); then A, which has done the sweeps so far, is
    // killed: B takes them over (a schedule fires there) and the agent moves to B.
    let b_port: u16 = b_url.rsplit(':').next().unwrap().parse().unwrap();
    let (_b2, b2_url) = w.start_replica("cp-b2", b_port);
    w.server.take();
    let on_b = |method: &str, path: &str, body: Option<Value>| {
        api_call(&b2_url, &w.admin, method, path, body, None)
    };
    let start = std::time::SystemTime::now() + Duration::from_secs(2);
    let (s, body) = on_b(
        "POST",
        &format!("/v1/migrations/{m}/schedules"),
        Some(json!({
            "command": "scan", "frequency": "once", "repeat": 1,
            "start": humantime::format_rfc3339_seconds(start).to_string()
        })),
    );
    assert_eq!(s, 201, "{body}");
    let scan = w.wait_for("the scheduled scan to end", Duration::from_secs(40), || {
        let (_, runs) = on_b("GET", &format!("/v1/migrations/{m}/runs"), None);
        runs["items"]
            .as_array()?
            .iter()
            .find(|r| r["command"] == "scan" && r["id"] != first_scan)
            .filter(|r| r["status"]["code"] == "932")
            .cloned()
    });
    let (_, runs) = on_b("GET", &format!("/v1/migrations/{m}/runs"), None);
    assert_eq!(runs["count"], 3, "one scheduled scan: {runs}");
    assert_eq!(connected_to(&b2_url), 1, "{scan}");
}

#[test]
fn a_replica_with_another_token_secret_is_refused() {
    let w = World::on_postgresql();
    // Its own state directory, so its own new secret: the tokens of the running control plane
    // would all be refused there.
    let out = godwit()
        .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(w.root.join("cp-other"))
        .args(["--database", w.database.as_deref().unwrap()])
        .env_remove("GODWIT_JWT_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("[AZSM1057]"), "{err}");
    assert!(err.contains("signs tokens with another secret"), "{err}");
    // The running one is untouched.
    assert_eq!(w.api("GET", "/v1/agents", None).0, 200);
}

/// A tree of `dirs` folders of `per` files, each file's bytes its own.
fn wide_tree(root: &Path, dirs: usize, per: usize) -> PathBuf {
    let src = root.join("wide");
    for d in 0..dirs {
        let dir = src.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..per {
            let line = format!("folder {d} file {f}\n");
            std::fs::write(dir.join(format!("f{f:04}.txt")), line.repeat(8)).unwrap();
        }
    }
    src
}

/// Another agent of `w`'s control plane, registered and started with its own state directory
/// and `--server servers`; its id and process.
fn another_agent(w: &World, name: &str, servers: &str) -> (String, Proc) {
    let (id, token) = register_agent(w, name);
    (id, spawn_agent(w, name, &token, servers))
}

/// A new agent of `w`'s control plane, not started: its id and token.
fn register_agent(w: &World, name: &str) -> (String, String) {
    let (s, a) = w.api("POST", "/v1/agents", Some(json!({"name": name})));
    assert_eq!(s, 201, "{a}");
    (
        a["agent"]["id"].as_str().unwrap().to_string(),
        a["token"].as_str().unwrap().to_string(),
    )
}

/// Starts the agent `name` with `token`, its own state directory and `--server servers`.
fn spawn_agent(w: &World, name: &str, token: &str, servers: &str) -> Proc {
    let mut c = godwit();
    c.args(["agent", "--server", servers, "--state-dir"])
        .arg(w.root.join(format!("{name}-state")))
        .env("GODWIT_AGENT_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(w.root.join(format!("{name}.log"))).unwrap());
    s3_env(&mut c);
    c.envs(w.extra_env.iter().map(|(k, v)| (k, v)));
    Proc(c.spawn().unwrap())
}

/// Waits until agent `id` of `w`'s control plane is active (901).
fn wait_active(w: &World, id: &str) {
    w.wait_for(
        "an agent of the pool to be active",
        Duration::from_secs(30),
        || {
            let (_, a) = w.api("GET", &format!("/v1/agents/{id}"), None);
            (a["state"]["code"] == "901").then_some(a)
        },
    );
}

/// A local endpoint for the tree `src`, one for the test bucket's `share`, and a project: the
/// body of a migration of one to the other by the agents `pool`, with `options`.
fn pool_migration(w: &World, src: &Path) -> impl Fn(Value, Value) -> Value {
    let (_, s) = w.api(
        "POST",
        "/v1/endpoints",
        Some(json!({"name": "wide", "kind": "local", "uri": src.to_str().unwrap()})),
    );
    let (_, d) = w.api(
        "POST",
        "/v1/endpoints",
        Some(json!({"name": "dst", "kind": "s3", "uri": format!("s3://{}/share", w.bucket)})),
    );
    let (_, p) = w.api("POST", "/v1/projects", Some(json!({"name": "pool"})));
    move |pool: Value, options: Value| {
        json!({
            "projectId": p["id"], "pool": pool,
            "source": {"endpointId": s["id"], "path": "/"},
            "target": {"endpointId": d["id"], "path": "/"}, "options": options,
        })
    }
}

/// The PUT requests the S3 server was sent for each key under `prefix` of `bucket`.
fn puts_by_key(bucket: &str, prefix: &str) -> std::collections::BTreeMap<String, usize> {
    let log = std::fs::read_to_string(env("GODWIT_TEST_S3_LOG")).unwrap();
    let start = format!("\"PUT /{bucket}/{prefix}/");
    let mut puts = std::collections::BTreeMap::new();
    for line in log.lines() {
        if let Some(at) = line.find(&start) {
            let rest = &line[at + start.len()..];
            let key = rest.split([' ', '?']).next().unwrap_or_default();
            *puts.entry(key.to_string()).or_insert(0) += 1;
        }
    }
    puts
}

#[test]
fn a_pool_of_agents_copies_one_migration_and_loses_nothing_when_an_agent_and_a_replica_die() {
    let dirs: usize = std::env::var("GODWIT_TEST_POOL_DIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let per = 500;
    let total = (dirs * per) as i64;
    let mut w = World::on_postgresql();
    let (b, b_url) = w.start_replica("cp-b", 0);
    let mut b = Some(b);
    // Agent 1 on A; agents 2 and 3 on B (each moves to the other when its replica goes).
    w.agent_servers = Some(format!("{},{b_url}", w.url()));
    w.start_agent_and_wait();
    let on_b = format!("{b_url},{}", w.url());
    let mut agents = vec![(w.agent_id.clone(), None)];
    for n in 2..=3 {
        let (id, p) = another_agent(&w, &format!("agent-{n}"), &on_b);
        agents.push((id, Some(p)));
    }
    for (id, _) in &agents {
        wait_active(&w, id);
    }
    let pool: Vec<&str> = agents.iter().map(|(id, _)| id.as_str()).collect();
    let src = wide_tree(&w.root, dirs, per);
    let body = pool_migration(&w, &src);
    // A pool is 2 agents or more, each known, and makes its own include rules.
    let (st, e) = w.api(
        "POST",
        "/v1/migrations",
        Some(body(json!([pool[0]]), json!({}))),
    );
    assert_eq!((st, e["error_code"].clone()), (422, json!("605")), "{e}");
    let (st, e) = w.api(
        "POST",
        "/v1/migrations",
        Some(body(
            json!(pool),
            json!({"filters": {"include": ["*.txt"]}}),
        )),
    );
    assert_eq!((st, e["error_code"].clone()), (422, json!("605")), "{e}");
    let (st, m) = w.api("POST", "/v1/migrations", Some(body(json!(pool), json!({}))));
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["pool"], json!(pool), "{m}");
    let m = m["id"].as_str().unwrap().to_string();
    // A verification needs one agent's state: refused for a pool, with why.
    let (st, e) = w.api(
        "POST",
        &format!("/v1/migrations/{m}/commands"),
        Some(json!({"command": "verify", "action": "start"})),
    );
    assert_eq!((st, e["error_code"].clone()), (422, json!("605")), "{e}");
    assert!(e.to_string().contains("scan, copy and sync"), "{e}");
    // The scan runs whole on one agent of the pool.
    let scan = w.scanned(&m);
    assert_eq!(scan["files_found"], total, "{scan}");
    let copy = w.start(&m, "copy", "927");
    // Units handed out to all three agents, files landing.
    let units_now = || w.api("GET", &format!("/v1/runs/{copy}/units"), None).1;
    let under_way = w.wait_for(
        "the copy spread over the pool",
        Duration::from_secs(120),
        || {
            let u = units_now();
            let holders: std::collections::BTreeSet<&str> = u["items"]
                .as_array()?
                .iter()
                .filter(|u| u["kind"] == "copy" && u["state"] == "RUNNING")
                .filter_map(|u| u["holder"].as_str())
                .collect();
            let r = w.run_state(&copy);
            (holders.len() == 3 && r["files"].as_i64().unwrap_or(0) > 0).then(|| u.clone())
        },
    );
    let n_units = under_way["count"].as_i64().unwrap();
    assert!(n_units >= 12, "about 4 units an agent: {under_way}");
    // kill -9 of agent 3 with its unit in hand, and of replica B.
    let victim = agents[2].0.clone();
    let in_flight: Vec<String> = under_way["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["holder"] == json!(victim) && u["state"] == "RUNNING")
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(in_flight.len(), 1, "{under_way}");
    agents[2].1.take();
    b.take();
    let r = w.wait_end_within(&copy, "922", Duration::from_secs(600));
    assert_eq!(r["files"], total, "{r}");
    // Every unit succeeded; the one the killed agent held was finished by another.
    let units = units_now();
    for u in units["items"].as_array().unwrap() {
        assert_eq!(u["state"], "SUCCEEDED", "{u}");
        if in_flight.contains(&u["id"].as_str().unwrap().to_string()) {
            assert_ne!(u["holder"], json!(victim), "{u}");
            assert!(u["attempts"].as_i64().unwrap() >= 2, "{u}");
        }
    }
    let (_, rep) = w.api("GET", &format!("/v1/runs/{copy}/report"), None);
    let counts = rep["run"]["counts"].as_object().unwrap().clone();
    let copied = counts.get("AZSM0000").and_then(Value::as_i64).unwrap_or(0);
    let found = counts.get("AZSM2042").and_then(Value::as_i64).unwrap_or(0);
    assert_eq!(copied + found, total, "{counts:?}");
    // The target holds every file, byte for byte.
    support::assert_same_tree(&src, &w.target_tree());
    // The S3 server was sent each file once, but for those of the unit in flight when its
    // agent was killed (its new holder finds at the target what was already written there).
    let in_flight_rules: Vec<String> = units["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| in_flight.contains(&u["id"].as_str().unwrap().to_string()))
        .flat_map(|u| u["include"].as_array().unwrap().clone())
        .map(|r| r.as_str().unwrap().trim_end_matches("/**").to_string())
        .collect();
    let puts = puts_by_key(&w.bucket, "share");
    let mut twice = Vec::new();
    for (key, n) in &puts {
        if *n > 1
            && !in_flight_rules
                .iter()
                .any(|r| key.starts_with(&format!("{r}/")))
        {
            twice.push(key.clone());
        }
    }
    assert!(
        twice.is_empty(),
        "sent twice outside the unit in flight: {twice:?}"
    );
    assert!(puts.len() as i64 >= total, "{} keys put", puts.len());
}

/// The rows of a work unit's part of its migration's index, as the control plane keeps them.
fn unit_index(w: &World, unit: &str) -> Vec<Value> {
    let out = Command::new("curl")
        .args(["-sf", "-H", &format!("Authorization: Bearer {}", w.admin)])
        .arg(format!("{}/v1/units/{unit}/index", w.url()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_pool_true_up_judges_its_deletions_on_the_whole_migration_and_carries_out_the_review() {
    // Two replicas on PostgreSQL; agent 1 on A, agents 2 and 3 on B.
    let mut w = World::on_postgresql();
    let (_b, b_url) = w.start_replica("cp-b", 0);
    w.start_agent_and_wait();
    let a1 = w.agent_id.clone();
    let on_b = format!("{b_url},{}", w.url());
    let (a3, _agent3) = another_agent(&w, "agent-3", &on_b);
    // Agent 2 joins after the copy: what it deletes, other agents wrote.
    let (a2, token2) = register_agent(&w, "agent-2");
    let src = wide_tree(&w.root, 8, 25);
    let body = pool_migration(&w, &src);
    // At most 10 deletions without review: each unit will find 3, the migration 24.
    let (st, m) = w.api(
        "POST",
        "/v1/migrations",
        Some(body(
            json!([a1, a2, a3]),
            json!({"syncDeletes": true, "maxDelete": "10"}),
        )),
    );
    assert_eq!(st, 201, "{m}");
    let m = m["id"].as_str().unwrap().to_string();
    wait_active(&w, &a3);
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    w.wait_end(&copy, "922");
    let units = w.api("GET", &format!("/v1/runs/{copy}/units"), None).1;
    let copied: Vec<&Value> = units["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] == "copy")
        .collect();
    assert!(copied.len() >= 8, "{units}");
    for u in &copied {
        assert!(u["holder"] == json!(a1) || u["holder"] == json!(a3), "{u}");
    }
    // Each unit sent its part of the index back: the control plane holds every file.
    let rows: usize = copied
        .iter()
        .map(|u| unit_index(&w, u["id"].as_str().unwrap()).len())
        .sum();
    assert_eq!(rows, 200);
    let one = unit_index(&w, copied[0]["id"].as_str().unwrap());
    let rule = copied[0]["include"][0]
        .as_str()
        .unwrap()
        .trim_end_matches('*');
    assert!(
        one.iter()
            .all(|r| r["path"].as_str().unwrap().starts_with(rule) && r["size"].as_u64() > Some(0)),
        "{one:?}"
    );
    let _agent2 = spawn_agent(&w, "agent-2", &token2, &on_b);
    wait_active(&w, &a2);
    // Changes in every folder: 3 files deleted, one changed, one new; and a new folder.
    let mut gone = Vec::new();
    for dir in 0..8 {
        let d = src.join(format!("d{dir:03}"));
        for f in 0..3 {
            std::fs::remove_file(d.join(format!("f{f:04}.txt"))).unwrap();
            gone.push(format!("d{dir:03}/f{f:04}.txt"));
        }
        std::fs::write(
            d.join("f0010.txt"),
            "changed, and longer than it was before\n",
        )
        .unwrap();
        std::fs::write(d.join("new.txt"), "new\n").unwrap();
    }
    std::fs::create_dir_all(src.join("d008")).unwrap();
    for f in 0..5 {
        std::fs::write(src.join(format!("d008/f{f}.txt")), "a new folder\n").unwrap();
    }
    let sync = w.start(&m, "sync", "957");
    let r = w.wait_end_within(&sync, "955", Duration::from_secs(180));
    // Under the limit in every unit, over it for the migration: paused, nothing deleted.
    assert_eq!(r["error"]["code"], "9080", "{r}");
    let units = w.api("GET", &format!("/v1/runs/{sync}/units"), None).1;
    let parts: Vec<&Value> = units["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] == "sync")
        .collect();
    assert!(parts.len() >= 8, "{units}");
    let waiting: Vec<&&Value> = parts.iter().filter(|u| u["state"] == "REVIEW").collect();
    let mut found = 0;
    for u in &waiting {
        assert!(u["error"].is_null(), "{u}");
        let n = u["deletes_found"].as_i64().unwrap();
        assert!((1..=10).contains(&n), "within the limit in each unit: {u}");
        found += n;
    }
    assert_eq!(found, 24, "{units}");
    assert!(
        parts.iter().any(|u| u["holder"] == json!(a2)),
        "the second agent ran a part: {units}"
    );
    let params = &r["error"]["params"];
    assert_eq!(
        (params["count"].clone(), params["limit"].clone()),
        (json!("24"), json!("10")),
        "{r}"
    );
    let before = w.target_tree();
    for path in &gone {
        assert!(before.join(path).exists(), "{path} deleted before review");
    }
    // One list for the migration, as its units found it (gathered as the run pauses: a client
    // reads it once all of it is there, `count` = `expected`).
    let review = w.wait_for("the review's list", Duration::from_secs(30), || {
        let (_, r) = w.api("GET", &format!("/v1/runs/{sync}/review?limit=100"), None);
        (r["expected"].is_i64() && r["count"] == r["expected"]).then_some(r)
    });
    assert_eq!(review["count"], 24, "{review}");
    let mut listed: Vec<String> = review["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    gone.sort();
    assert_eq!(listed, gone);
    let digest = review["digest"].as_str().unwrap().to_string();
    let (st, r) = w.api(
        "POST",
        &format!("/v1/migrations/{m}/commands"),
        Some(json!({"command": "sync", "action": "resume", "reviewed": digest})),
    );
    assert_eq!((st, r["state"].clone()), (202, json!("QUEUED")), "{r}");
    let r = w.wait_end_within(&sync, "952", Duration::from_secs(180));
    assert!(r["error"].is_null(), "{r}");
    // Every reviewed deletion carried out, whichever agent wrote the file: none kept for
    // want of a record of writing it.
    let count = |code: &str| {
        w.api(
            "GET",
            &format!("/v1/runs/{sync}/copylog?status={code}"),
            None,
        )
        .1["count"]
            .clone()
    };
    assert_eq!(count("AZSM2043"), json!(24));
    assert_eq!(count("AZSM2072"), json!(0));
    assert_eq!(count("AZSM0000"), json!(8 * 2 + 5));
    support::assert_same_tree(&src, &w.target_tree());
    let (_, report) = w.api("GET", &format!("/v1/runs/{sync}/report"), None);
    assert_eq!(report["report"]["true_up"]["deleted"], 24, "{report}");
    // The next true-up finds nothing to delete: the index the units sent back knows.
    let again = w.start(&m, "sync", "957");
    let r = w.wait_end_within(&again, "952", Duration::from_secs(180));
    assert!(r["error"].is_null(), "{r}");
    let units = w.api("GET", &format!("/v1/runs/{again}/units"), None).1;
    for u in units["items"].as_array().unwrap() {
        assert_eq!(u["state"], "SUCCEEDED", "{u}");
    }
}
