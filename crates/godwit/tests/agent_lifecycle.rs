//! The agent's lifecycle end to end, with a real control plane and real agents.
//!
//! Upgrades: the agent runs from a copy of the godwit binary and is upgraded to a second real
//! build that reports a newer version (`GODWIT_TEST_NEXT_BUILD`, built by scripts/test.sh with
//! `GODWIT_BUILD_VERSION`). A release the agent's key did not sign, and a build that cannot
//! start, are refused before anything is replaced; the agent killed at each step comes back on
//! a working binary; a new binary that cannot register in its window puts the old one back by
//! itself. Retirement: the agent stops its runs, removes its state and leaves (194); coming
//! back is 195; one that hangs is 196.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::world::*;
use support::{godwit, run, text};

fn next_build() -> PathBuf {
    PathBuf::from(env("GODWIT_TEST_NEXT_BUILD"))
}

/// What `bin --version` says: `godwit 0.1.0` gives `0.1.0`.
fn version_of(bin: &Path) -> String {
    let out = Command::new(bin).arg("--version").output().unwrap();
    assert!(out.status.success(), "{} does not run", bin.display());
    text(&out.stdout)
        .trim()
        .trim_start_matches("godwit ")
        .to_string()
}

/// A release key in `dir`: the secret key's file and the public key.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(format!("{name}.key"));
    let out = run(godwit().args(["release", "keygen", "--out"]).arg(&file));
    assert!(out.status.success(), "{}", text(&out.stderr));
    (file, text(&out.stdout).trim().to_string())
}

/// Signs `binary` as `version` with `key` and uploads it; the release's id.
fn upload(w: &World, key: &Path, binary: &Path, version: &str) -> String {
    let out = run(godwit()
        .args(["release", "sign", "--key"])
        .arg(key)
        .args(["--version", version])
        .arg(binary));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let query = text(&out.stdout).trim().to_string();
    let out = Command::new("curl")
        .args(["-s", "-X", "POST", "-H"])
        .arg(format!("Authorization: Bearer {}", w.admin))
        .args([
            "-H",
            "content-type: application/octet-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", binary.display()))
        .arg(format!("{}/v1/releases?{query}", w.url()))
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["version"], version, "{r}");
    r["id"].as_str().unwrap().to_string()
}

/// Asks the agent to upgrade to `version`; the upgrade's id. Tried again while the agent is
/// not connected yet (693: it is reconnecting after a restart).
fn upgrade(w: &World, version: &str, limit_secs: u64) -> String {
    let body = json!({"version": version, "timeLimitSecs": limit_secs});
    w.wait_for(
        "the upgrade to be accepted",
        Duration::from_secs(30),
        || {
            let (s, v) = w.api(
                "POST",
                &format!("/v1/agents/{}/upgrade", w.agent_id),
                Some(body.clone()),
            );
            match s {
                202 => {
                    assert_eq!(v["status"]["code"], "993", "{v}");
                    Some(v["id"].clone())
                }
                409 if v["error_code"] == "693" => None,
                _ => panic!("upgrade: {s} {v}"),
            }
        },
    )
    .as_str()
    .unwrap()
    .to_string()
}

fn ended(w: &World, id: &str) -> Value {
    w.wait_for(
        &format!("upgrade {id} to end"),
        Duration::from_secs(90),
        || {
            let (_, v) = w.api("GET", &format!("/v1/upgrades/{id}"), None);
            matches!(v["state"].as_str(), Some("SUCCEEDED" | "FAILED")).then_some(v)
        },
    )
}

/// The agent runs from a copy of the built binary, which upgrades replace.
fn agent_copy(w: &mut World) -> PathBuf {
    let bin = w.root.join("bin/godwit");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_godwit"), &bin).unwrap();
    w.agent_binary = Some(bin.clone());
    bin
}

fn agent_version(w: &World) -> String {
    let (_, a) = w.api("GET", &format!("/v1/agents/{}", w.agent_id), None);
    a["version"].as_str().unwrap_or_default().to_string()
}

fn log_count(w: &World, needle: &str) -> usize {
    std::fs::read_to_string(w.root.join("agent.log"))
        .unwrap_or_default()
        .matches(needle)
        .count()
}

#[test]
fn an_agent_is_upgraded_to_a_signed_release_and_refuses_what_its_key_did_not_sign() {
    let keys = tempfile::tempdir().unwrap();
    let (real, real_pub) = keygen(keys.path(), "real");
    let (evil, evil_pub) = keygen(keys.path(), "evil");
    // A control plane that holds another key than its agents (it was compromised).
    let mut w = World::with(None, vec![("GODWIT_RELEASE_KEY".into(), evil_pub)]);
    w.agent_env = vec![("GODWIT_RELEASE_KEY".into(), real_pub.clone())];
    let bin = agent_copy(&mut w);
    w.start_agent_and_wait();
    let old = version_of(&bin);
    let next = next_build();
    let new = version_of(&next);
    assert_ne!(old, new, "the second build must report another version");

    // It takes a release signed with its key; the agent checks with its own, before install.
    let release = upload(&w, &evil, &next, &new);
    let up = ended(&w, &upgrade(&w, &new, 120));
    assert_eq!(up["status"]["code"], "995", "{up}");
    assert_eq!(up["error"]["code"], "AZSM0001", "{up}");
    let failed = up["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(failed["step"], "verify", "{up}");
    assert!(
        failed["message"].as_str().unwrap().contains("signature"),
        "{up}"
    );
    assert_eq!(version_of(&bin), old);
    assert!(!bin.with_file_name("godwit.previous").exists());
    assert!(!bin.with_file_name("godwit.new").exists());

    // The control plane gets the right key; the release signed with the other one goes.
    let (s, _) = w.api("DELETE", &format!("/v1/releases/{release}"), None);
    assert_eq!(s, 204);
    w.extra_env = vec![("GODWIT_RELEASE_KEY".into(), real_pub)];
    w.server = None;
    w.start_server();

    // The right signature, but the binary in the control plane's store altered afterwards
    // (one byte of its first piece): the agent finds the SHA-256 wrong before installing.
    let release = upload(&w, &real, &next, &new);
    let db = w.cp_state.join("control-plane.db");
    let script = "import sqlite3,sys\n\
        c=sqlite3.connect(sys.argv[1])\n\
        d=bytearray(c.execute('SELECT data FROM release_chunks WHERE seq=0').fetchone()[0])\n\
        d[4096]^=1\n\
        c.execute('UPDATE release_chunks SET data=? WHERE seq=0',(bytes(d),))\n\
        c.commit()";
    let out = Command::new(env("GODWIT_TEST_PYTHON"))
        .args(["-c", script])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let up = ended(&w, &upgrade(&w, &new, 120));
    assert_eq!(up["status"]["code"], "995", "{up}");
    assert_eq!(up["error"]["code"], "AZSM0001", "{up}");
    assert!(
        up["error"]["params"]["message"]
            .as_str()
            .unwrap()
            .contains("SHA-256"),
        "{up}"
    );
    assert_eq!(version_of(&bin), old);
    let (s, _) = w.api("DELETE", &format!("/v1/releases/{release}"), None);
    assert_eq!(s, 204);

    // A build that cannot even start, properly signed: its trial run fails, nothing is replaced.
    let broken = keys.path().join("godwit-broken");
    std::fs::write(&broken, "#!/bin/sh\necho 'cannot start' >&2\nexit 3\n").unwrap();
    upload(&w, &real, &broken, "0.1.1-broken");
    let up = ended(&w, &upgrade(&w, "0.1.1-broken", 120));
    assert_eq!(up["status"]["code"], "995", "{up}");
    assert_eq!(up["error"]["code"], "AZSM0004", "{up}");
    assert!(
        up["error"]["params"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot start"),
        "{up}"
    );
    assert_eq!(version_of(&bin), old);
    assert_eq!(w.agent_state(), "901");

    // The real release, asked for while the agent copies: refused (680), or with `drain`
    // queued until the copy has ended; meanwhile the agent takes no new command (680).
    upload(&w, &real, &next, &new);
    let src = source(&w.root, 20, 200_000);
    let m = w.migration(&src, json!({"bwlimit": "1M"}));
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    let path = format!("/v1/agents/{}/upgrade", w.agent_id);
    let (s, v) = w.api("POST", &path, Some(json!({"version": new})));
    assert_eq!((s, v["error_code"].as_str()), (409, Some("680")), "{v}");
    let (s, queued) = w.api("POST", &path, Some(json!({"version": new, "drain": true})));
    assert_eq!(
        (s, queued["state"].as_str()),
        (202, Some("QUEUED")),
        "{queued}"
    );
    let (s, v) = w.api(
        "POST",
        &format!("/v1/migrations/{m}/commands"),
        Some(json!({"command": "scan", "action": "start"})),
    );
    assert_eq!((s, v["error_code"].as_str()), (409, Some("680")), "{v}");
    let copied = w.wait_end(&copy, "922");
    assert_eq!(copied["files"], 20, "{copied}");
    // Downloaded, checked, installed beside the old binary, run, confirmed.
    let up = ended(&w, queued["id"].as_str().unwrap());
    assert!(
        up["sent_ms"].as_i64().unwrap() >= copied["ended_ms"].as_i64().unwrap(),
        "{up} {copied}"
    );
    assert_eq!(up["status"]["code"], "994", "{up}");
    assert!(up["error"].is_null(), "{up}");
    let steps: Vec<&str> = up["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["download", "pre-check", "verify", "install", "post-check"],
        "{up}"
    );
    assert_eq!(version_of(&bin), new);
    assert_eq!(version_of(&bin.with_file_name("godwit.previous")), old);
    w.wait_for(
        "the new version's heartbeat",
        Duration::from_secs(20),
        || (agent_version(&w) == new && w.agent_state() == "901").then_some(Value::Null),
    );
    // Asked again: it runs that version already.
    let (s, v) = w.api(
        "POST",
        &format!("/v1/agents/{}/upgrade", w.agent_id),
        Some(json!({"version": new})),
    );
    assert_eq!((s, v["error_code"].as_str()), (409, Some("1011")), "{v}");
    let (_, list) = w.api("GET", &format!("/v1/agents/{}/upgrades", w.agent_id), None);
    assert_eq!(list["count"], 4, "{list}");
}

/// A control plane with a release key, the agent's binary a copy of the built one (not
/// started), and the next build uploaded as a release.
struct Upgradable {
    _keys: tempfile::TempDir,
    w: World,
    bin: PathBuf,
    old: String,
    new: String,
}

fn upgradable() -> Upgradable {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "k");
    let mut w = World::with(None, vec![("GODWIT_RELEASE_KEY".into(), public)]);
    let bin = agent_copy(&mut w);
    let next = next_build();
    let (old, new) = (version_of(&bin), version_of(&next));
    upload(&w, &key, &next, &new);
    Upgradable {
        _keys: keys,
        w,
        bin,
        old,
        new,
    }
}

#[test]
fn an_agent_killed_at_any_step_of_its_upgrade_comes_back_on_a_working_binary() {
    let Upgradable {
        _keys,
        mut w,
        bin,
        old,
        new,
    } = upgradable();
    let cases = [
        ("download", "995", Some("AZSM0001")),
        ("install", "995", Some("AZSM0003")),
        ("swap", "995", Some("AZSM0003")),
        ("swapped", "994", None),
        ("post-check", "994", None),
    ];
    for (at, status, code) in cases {
        // Each case starts from the old binary.
        w.agent = None;
        std::fs::copy(env!("CARGO_BIN_EXE_godwit"), &bin).unwrap();
        w.agent_env = vec![("GODWIT_TEST_UPGRADE_HOLD".into(), at.into())];
        w.start_agent_and_wait();
        w.wait_for("the old binary registered", Duration::from_secs(30), || {
            (agent_version(&w) == old).then_some(Value::Null)
        });
        let held = format!("upgrade held at {at}");
        let before = log_count(&w, &held);
        let id = upgrade(&w, &new, 120);
        w.wait_for(&held, Duration::from_secs(60), || {
            (log_count(&w, &held) > before).then_some(Value::Null)
        });
        w.signal_agent("-KILL");
        w.agent = None;
        // Whatever binary the path holds now is started, as a service manager would.
        w.agent_env.clear();
        w.start_agent();
        let up = ended(&w, &id);
        assert_eq!(up["status"]["code"], status, "killed at {at}: {up}");
        assert_eq!(up["error"]["code"].as_str(), code, "killed at {at}: {up}");
        if at == "swap" {
            // Killed between keeping the old binary and renaming the new one over it.
            let last = up["steps"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(last["cause"], "8040", "{up}");
        }
        let runs = version_of(&bin);
        assert_eq!(&runs, if status == "994" { &new } else { &old }, "{at}");
        w.wait_for(
            &format!("the agent back after {at}"),
            Duration::from_secs(30),
            || (agent_version(&w) == runs && w.agent_state() == "901").then_some(Value::Null),
        );
        assert!(!bin.with_file_name("godwit.new").exists(), "{at}");
    }
}

#[test]
fn a_new_binary_that_cannot_register_in_its_window_puts_the_old_one_back() {
    let Upgradable {
        _keys,
        mut w,
        bin,
        old,
        new,
    } = upgradable();

    // An upgrade that outlasts its limit is 996 (held in its download here).
    w.agent_env = vec![("GODWIT_TEST_UPGRADE_HOLD".into(), "download".into())];
    w.start_agent_and_wait();
    let up = ended(&w, &upgrade(&w, &new, 10));
    assert_eq!(up["status"]["code"], "996", "{up}");
    w.signal_agent("-KILL");
    w.agent = None;

    // Installed, then killed before it runs the new binary; the control plane is away when
    // the new binary starts, and its window is 3 s.
    w.agent_env = vec![("GODWIT_TEST_UPGRADE_HOLD".into(), "swapped".into())];
    w.start_agent_and_wait();
    let id = upgrade(&w, &new, 120);
    w.wait_for("the upgrade held", Duration::from_secs(60), || {
        (log_count(&w, "upgrade held at swapped") > 0).then_some(Value::Null)
    });
    w.signal_agent("-KILL");
    w.agent = None;
    assert_eq!(version_of(&bin), new);
    w.server = None;
    w.agent_env = vec![("GODWIT_UPGRADE_WINDOW".into(), "3".into())];
    w.start_agent();
    w.wait_for("the previous binary back", Duration::from_secs(30), || {
        (version_of(&bin) == old).then_some(Value::Null)
    });
    w.start_server();
    let up = ended(&w, &id);
    assert_eq!(up["status"]["code"], "995", "{up}");
    assert_eq!(up["error"]["code"], "AZSM0004", "{up}");
    assert!(
        up["error"]["params"]["message"]
            .as_str()
            .unwrap()
            .contains("within 3 s"),
        "{up}"
    );
    let last = up["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["step"].as_str(), last["code"].as_str()),
        (Some("rollback"), None),
        "{up}"
    );
    w.wait_for("the old agent back", Duration::from_secs(30), || {
        (agent_version(&w) == old && w.agent_state() == "901").then_some(Value::Null)
    });

    // Again, but the kept binary is gone when the new one has to roll back: it cannot
    // (AZSM0005), and carries on as the new version, which it reports.
    w.agent = None;
    w.agent_env = vec![("GODWIT_TEST_UPGRADE_HOLD".into(), "swapped".into())];
    w.start_agent_and_wait();
    let id = upgrade(&w, &new, 120);
    w.wait_for("the upgrade held again", Duration::from_secs(60), || {
        (log_count(&w, "upgrade held at swapped") > 1).then_some(Value::Null)
    });
    w.signal_agent("-KILL");
    w.agent = None;
    std::fs::remove_file(bin.with_file_name("godwit.previous")).unwrap();
    w.server = None;
    w.agent_env = vec![("GODWIT_UPGRADE_WINDOW".into(), "3".into())];
    w.start_agent();
    w.wait_for("the failed rollback", Duration::from_secs(30), || {
        (log_count(&w, "could not be put back") > 0).then_some(Value::Null)
    });
    w.start_server();
    let up = ended(&w, &id);
    assert_eq!(up["status"]["code"], "995", "{up}");
    assert_eq!(up["error"]["code"], "AZSM0005", "{up}");
    assert_eq!(version_of(&bin), new);
    w.wait_for("the new version connected", Duration::from_secs(30), || {
        (agent_version(&w) == new && w.agent_state() == "901").then_some(Value::Null)
    });
}

/// The agent process's exit status, once it has exited by itself.
fn exit_code(w: &mut World, limit: Duration) -> Option<i32> {
    let start = std::time::Instant::now();
    let child = &mut w.agent.as_mut().unwrap().0;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        assert!(start.elapsed() < limit, "the agent did not exit");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn retirement(w: &World) -> Value {
    let (_, a) = w.api("GET", &format!("/v1/agents/{}", w.agent_id), None);
    a["retire"].clone()
}

#[test]
fn a_retired_agent_stops_its_runs_removes_its_state_and_stays_away() {
    let mut w = World::new();
    w.start_agent_and_wait();
    let src = source(&w.root, 20, 200_000);
    let m = w.migration(&src, json!({"bwlimit": "500K"}));
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    w.wait_for("the copy to run", Duration::from_secs(30), || {
        (w.run_state(&copy)["state"] == "RUNNING").then_some(Value::Null)
    });
    let state_dir = w.root.join("agent-state");
    assert!(state_dir.exists());
    let path = format!("/v1/agents/{}/retire", w.agent_id);
    let (s, a) = w.api("POST", &path, None);
    assert_eq!(
        (s, a["retire"]["status"]["code"].as_str()),
        (202, Some("193")),
        "{a}"
    );
    // The agent stops the copy, removes its state directory and exits by itself, with 0.
    assert_eq!(exit_code(&mut w, Duration::from_secs(60)), Some(0));
    assert!(!state_dir.exists(), "the state directory is removed");
    let r = w.wait_end(&copy, "924");
    assert_eq!(r["state"], "STOPPED", "{r}");
    // It stays away a heartbeat window: retired, and deactivated.
    let r = w.wait_for("194", Duration::from_secs(30), || {
        let r = retirement(&w);
        (r["status"]["code"] == "194").then_some(r)
    });
    assert!(r["left_ms"].as_i64().is_some(), "{r}");
    assert_eq!(w.agent_state(), "902");
    // Started again on its host: refused, and the retirement is recorded as failed.
    w.agent = None;
    w.start_agent();
    assert_eq!(exit_code(&mut w, Duration::from_secs(30)), Some(1));
    assert_eq!(retirement(&w)["status"]["code"], "195");
    let (s, v) = w.api("POST", &path, None);
    assert_eq!((s, v["error_code"].as_str()), (409, Some("693")), "{v}");
}

#[test]
fn a_retirement_an_agent_does_not_carry_out_times_out_with_196() {
    let mut w = World::with(None, vec![("GODWIT_RETIRE_TIMEOUT".into(), "4".into())]);
    w.start_agent_and_wait();
    // Hung: it takes the message off the wire only when it is too late.
    w.signal_agent("-STOP");
    let (s, a) = w.api("POST", &format!("/v1/agents/{}/retire", w.agent_id), None);
    assert_eq!(s, 202, "{a}");
    let r = w.wait_for("196", Duration::from_secs(30), || {
        let r = retirement(&w);
        (r["status"]["code"] == "196").then_some(r)
    });
    assert!(r["left_ms"].is_null(), "{r}");
    w.signal_agent("-CONT");
}

#[test]
fn a_long_transfer_of_one_large_file_is_not_taken_for_a_hung_command() {
    // Hung after 2 s without activity; one 3 MB file at 500 KB/s takes about 6 s, and no file
    // is done before it ends: the bytes on their way are the activity.
    let mut w = World::with(None, vec![("GODWIT_RUN_HUNG_WINDOW".into(), "2".into())]);
    w.start_agent_and_wait();
    let src = w.root.join("large");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    support::write(&src.join("one.bin"), &data);
    let m = w.migration(&src, json!({"bwlimit": "500K"}));
    w.scanned(&m);
    let copy = w.start(&m, "copy", "927");
    let r = w.wait_end(&copy, "922");
    assert!(r["error"].is_null(), "{r}");
    assert!(
        r["ended_ms"].as_i64().unwrap() - r["started_ms"].as_i64().unwrap() > 4000,
        "the copy was meant to outlast the window: {r}"
    );
}

#[test]
fn an_upgrade_without_room_beside_the_binary_is_refused_at_its_pre_check() {
    let Upgradable {
        _keys,
        mut w,
        old,
        new,
        ..
    } = upgradable();
    // The agent's binary on a file system with room for it and little more.
    let size = std::fs::metadata(env!("CARGO_BIN_EXE_godwit"))
        .unwrap()
        .len();
    let disk = w.root.join("small");
    let _mounted = support::SmallDisk::of_size(&disk, &format!("{}k", size / 1024 + 20 * 1024));
    let bin = disk.join("godwit");
    std::fs::copy(env!("CARGO_BIN_EXE_godwit"), &bin).unwrap();
    w.agent_binary = Some(bin.clone());
    w.start_agent_and_wait();
    let up = ended(&w, &upgrade(&w, &new, 120));
    assert_eq!(up["status"]["code"], "995", "{up}");
    assert_eq!(up["error"]["code"], "AZSM0002", "{up}");
    assert!(
        up["error"]["params"]["message"]
            .as_str()
            .unwrap()
            .contains("free"),
        "{up}"
    );
    assert_eq!(version_of(&bin), old);
    assert_eq!(
        std::fs::read_dir(&disk).unwrap().count(),
        1,
        "nothing but the binary"
    );
    w.agent = None;
}
