//! `godwit permissions` as an administrator runs it, as root: users and groups of its own
//! (made here, removed at the end), a tree with several owners, a setgid folder, POSIX ACLs
//! with a named user and a default ACL, and `user.*` extended attributes, carried to a local
//! target and checked with `stat`, `getfacl` and `getfattr`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{Dirs, copylog, dirs, godwit, is_root, run, summary, text, write};

/// Users and groups made for one test, removed when it ends.
struct Principals {
    users: Vec<String>,
    groups: Vec<String>,
}

impl Principals {
    fn new(users: &[&str], groups: &[&str]) -> Principals {
        assert!(
            is_root(),
            "these tests make users and give files to them, which needs root (CI runs as root)"
        );
        let tag = std::process::id() % 100_000;
        let p = Principals {
            users: users.iter().map(|u| format!("gw{tag}{u}")).collect(),
            groups: groups.iter().map(|g| format!("gw{tag}{g}")).collect(),
        };
        for g in &p.groups {
            sh(&["groupadd", g]);
        }
        for u in &p.users {
            sh(&["useradd", "-M", "-N", u]);
        }
        p
    }

    fn user(&self, i: usize) -> &str {
        &self.users[i]
    }

    fn group(&self, i: usize) -> &str {
        &self.groups[i]
    }

    /// The users and groups of the shared tree: alice, bob, carol, dave, staff, eng.
    fn cast(&self) -> [&str; 6] {
        [
            self.user(0),
            self.user(1),
            self.user(2),
            self.user(3),
            self.group(0),
            self.group(1),
        ]
    }
}

impl Drop for Principals {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).output();
        }
        for g in &self.groups {
            let _ = Command::new("groupdel").arg(g).output();
        }
    }
}

/// Runs a command that must succeed; its standard output.
fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `owner:group mode` of a path, as `stat` says.
fn owned(p: &Path) -> String {
    sh(&["stat", "-c", "%U:%G %a", path(p)]).trim().to_string()
}

/// The ACL entries of a path, as `getfacl` says, without its comment lines.
fn acl(p: &Path) -> Vec<String> {
    sh(&["getfacl", "-p", "--omit-header", path(p)])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The source tree: files of three owners, a setgid folder whose group is `staff` with a
/// default ACL for it, a file with an ACL entry for a named user, a `user.*` attribute.
fn tree(d: &Dirs, p: &Principals) {
    write(&d.src.join("team/plan.txt"), b"plan");
    write(&d.src.join("team/sub/notes.txt"), b"notes");
    write(&d.src.join("own.txt"), b"mine");
    let src = |rel: &str| path(&d.src.join(rel)).to_string();
    let (alice, bob, carol, staff) = (p.user(0), p.user(1), p.user(2), p.group(0));
    sh(&["chown", &format!("{alice}:{staff}"), &src("team/plan.txt")]);
    sh(&["chown", carol, &src("own.txt")]);
    sh(&["chgrp", staff, &src("team")]);
    sh(&["chmod", "2775", &src("team")]);
    sh(&["chmod", "640", &src("team/plan.txt")]);
    sh(&[
        "setfacl",
        "-m",
        &format!("u:{bob}:r-x"),
        &src("team/plan.txt"),
    ]);
    sh(&[
        "setfacl",
        "-d",
        "-m",
        &format!("g:{staff}:rwx"),
        &src("team"),
    ]);
    sh(&[
        "setfattr",
        "-n",
        "user.project",
        "-v",
        "apollo",
        &src("team/sub/notes.txt"),
    ]);
}

/// Copies the source to the target: permissions are set on what is there.
fn copy(d: &Dirs) {
    let out = run(godwit()
        .arg("copy")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

fn permissions(d: &Dirs, args: &[&str]) -> (Option<i32>, Value) {
    let out = run(godwit()
        .arg("permissions")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .arg("--json")
        .args(args));
    (out.status.code(), summary(&out))
}

/// The report of a permissions run, by path.
fn report(sum: &Value) -> BTreeMap<String, Value> {
    let file = sum["permissions"]["report"].as_str().unwrap();
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["path"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
fn owners_modes_acls_and_xattrs_reach_the_target_through_the_owner_map() {
    let p = Principals::new(&["alice", "bob", "carol", "dave"], &["staff", "eng"]);
    let d = dirs();
    tree(&d, &p);
    copy(&d);
    let [alice, bob, carol, dave, staff, eng] = p.cast();

    // A map that forgets carol and bob, with no default: carol's file is 7020, and so is the
    // file whose ACL names bob; nothing else.
    let map = d.root.join("owners.txt");
    fs::write(
        &map,
        format!("# the new owners\n{alice}={dave}\n@{staff}=@{eng}\nroot=keep\n@root=@root\n"),
    )
    .unwrap();
    let map_arg = path(&map).to_string();
    let (code, sum) = permissions(&d, &["--simulate", "--owner-map", &map_arg]);
    assert_eq!(code, Some(3), "{sum}");
    assert_eq!(sum["status"]["code"], "131", "{sum}");
    assert_eq!(sum["counts"]["7020"], 2, "{sum}");
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let mut refused: Vec<(&str, &str)> = log
        .iter()
        .filter(|r| r["code"] == "7020")
        .map(|r| (r["path"].as_str().unwrap(), r["message"].as_str().unwrap()))
        .collect();
    refused.sort();
    assert_eq!(refused.len(), 2, "{log:?}");
    assert_eq!(refused[0].0, "own.txt");
    assert!(
        refused[0].1.contains(carol),
        "names the principal: {refused:?}"
    );
    assert_eq!(refused[1].0, "team/plan.txt");
    assert!(refused[1].1.contains(bob), "an ACL's user too: {refused:?}");
    // A simulation changes nothing at the target.
    assert_eq!(owned(&d.dst.join("team/plan.txt")), "root:root 650");

    // With a default, the simulation is clean, and says who would own what.
    fs::write(
        &map,
        format!("{alice}={dave}\n@{staff}=@{eng}\n*=keep\n@*=@keep\n"),
    )
    .unwrap();
    let (code, simulated) = permissions(&d, &["--simulate", "--owner-map", &map_arg]);
    assert_eq!(code, Some(0), "{simulated}");
    assert_eq!(simulated["status"]["code"], "132");
    assert_eq!(simulated["permissions"]["owners"][dave], 1, "{simulated}");
    assert_eq!(simulated["permissions"]["groups"][eng], 2, "{simulated}");
    assert_eq!(owned(&d.dst.join("team/plan.txt")), "root:root 650");

    // For a person: who would own what, and each path that would change, saying what.
    let out = run(godwit()
        .arg("permissions")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .args(["--simulate", "--owner-map", &map_arg]));
    let said = text(&out.stdout);
    assert!(said.contains("paths they would own"), "{said}");
    let plan = said
        .lines()
        .find(|l| l.trim_start().starts_with("team/plan.txt"))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        plan.contains(&format!("-> {dave}:{eng} 0650 +acl (owner, group")) && plan.contains("acl"),
        "{plan}"
    );
    let (code, applied) = permissions(&d, &["--owner-map", &map_arg]);
    assert_eq!(code, Some(0), "{applied}");
    assert_eq!(applied["status"]["code"], "962");
    assert_eq!(
        applied["counts"]["AZSM0000"], 6,
        "the root folder and five paths: {applied}"
    );
    // The run set, path for path, what the simulation said it would.
    let (would, did) = (report(&simulated), report(&applied));
    assert_eq!(would.len(), 6);
    for (rel, line) in &would {
        assert_eq!(line["set"], did[rel]["set"], "{rel}");
    }

    let dst = |rel: &str| d.dst.join(rel);
    assert_eq!(owned(&dst("team")), format!("root:{eng} 2775"));
    assert_eq!(owned(&dst("team/plan.txt")), format!("{dave}:{eng} 650"));
    assert_eq!(owned(&dst("own.txt")), format!("{carol}:root 644"));
    assert!(
        acl(&dst("team/plan.txt")).contains(&format!("user:{bob}:r-x")),
        "{:?}",
        acl(&dst("team/plan.txt"))
    );
    assert!(
        acl(&dst("team")).contains(&format!("default:group:{eng}:rwx")),
        "the default ACL's group is translated: {:?}",
        acl(&dst("team"))
    );
    let attrs = sh(&["getfattr", "-d", path(&dst("team/sub/notes.txt"))]);
    assert!(attrs.contains("user.project=\"apollo\""), "{attrs}");
    let times = |p: &Path| sh(&["stat", "-c", "%y", path(p)]);
    assert_eq!(times(&d.src.join("team")), times(&dst("team")));

    // Only modes and times: owners stay as the target has them.
    sh(&["chmod", "600", path(&d.src.join("own.txt"))]);
    sh(&["chown", alice, path(&d.src.join("own.txt"))]);
    let (code, sum) = permissions(&d, &["--what", "mode,times"]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(owned(&dst("own.txt")), format!("{carol}:root 600"));
}

#[test]
fn a_path_the_target_does_not_hold_is_7030_and_the_others_are_set() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"a");
    write(&d.src.join("b.txt"), b"b");
    copy(&d);
    fs::remove_file(d.dst.join("b.txt")).unwrap();
    sh(&["chmod", "604", path(&d.src.join("a.txt"))]);
    sh(&["chmod", "604", path(&d.src.join("b.txt"))]);
    let (code, sum) = permissions(&d, &[]);
    assert_eq!(code, Some(3), "{sum}");
    assert_eq!(sum["counts"]["7030"], 1, "{sum}");
    assert_eq!(sum["job_error"]["code"], "7030", "{sum}");
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let failed: Vec<&Value> = log.iter().filter(|r| r["code"] == "7030").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["path"], "b.txt");
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .contains("copy it first"),
        "{failed:?}"
    );
    assert_eq!(owned(&d.dst.join("a.txt")), "root:root 604");
}

#[test]
fn a_bad_owner_map_or_what_is_refused_before_anything_runs() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"a");
    let map = d.root.join("owners.txt");
    fs::write(&map, "alice bob\n").unwrap();
    for args in [
        vec!["--owner-map", path(&map)],
        vec!["--what", "owner,colour"],
        vec!["--owner-map", "/no/such/map"],
    ] {
        let out = run(godwit()
            .arg("permissions")
            .arg(&d.src)
            .arg(&d.dst)
            .arg("--state-dir")
            .arg(&d.state)
            .args(&args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("error[724]"),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(!d.state.exists(), "no run was started");
    // Permissions are read from a local or mounted source only.
    let out = run(godwit()
        .arg("permissions")
        .arg("s3://bucket/share")
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("from a local or mounted folder"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_second_run_while_one_holds_the_migration_is_7010() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"a");
    copy(&d);
    // Another process holds the migration, as a running godwit does.
    let migration = fs::read_dir(d.state.join("migrations"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // (--no-fork: flock is the sleep, so killing it lets go of the lock at once.)
    let mut holder = Command::new("flock")
        .arg("--no-fork")
        .arg(migration.join("lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = run(godwit()
        .arg("permissions")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("error[7010]"),
        "{}",
        text(&out.stderr)
    );
}

fn copy_with(d: &Dirs, command: &str, args: &[&str]) -> (Option<i32>, Value) {
    let out = run(godwit()
        .arg(command)
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .args(["--metadata", "--json"])
        .args(args));
    (out.status.code(), summary(&out))
}

#[test]
fn metadata_travels_with_the_data_and_a_true_up_carries_a_permission_change_alone() {
    let p = Principals::new(&["alice", "bob", "carol", "dave"], &["staff", "eng"]);
    let d = dirs();
    tree(&d, &p);
    let [alice, bob, carol, dave, staff, eng] = p.cast();
    let map = d.root.join("owners.txt");
    fs::write(
        &map,
        format!("{alice}={dave}\n@{staff}=@{eng}\n*=keep\n@*=@keep\n"),
    )
    .unwrap();
    let map_arg = path(&map).to_string();
    let dst = |rel: &str| d.dst.join(rel);

    // The first copy: data and permissions at once.
    let (code, sum) = copy_with(&d, "copy", &["--owner-map", &map_arg]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["counts"]["AZSM0000"], 3, "{sum}");
    // 650: with an ACL, the group bits show its mask.
    assert_eq!(owned(&dst("team/plan.txt")), format!("{dave}:{eng} 650"));
    assert_eq!(owned(&dst("own.txt")), format!("{carol}:root 644"));
    assert_eq!(
        owned(&dst("team")),
        format!("root:{eng} 2775"),
        "a setgid folder"
    );
    assert!(acl(&dst("team/plan.txt")).contains(&format!("user:{bob}:r-x")));
    assert!(acl(&dst("team")).contains(&format!("default:group:{eng}:rwx")));
    let attrs = sh(&["getfattr", "-d", path(&dst("team/sub/notes.txt"))]);
    assert!(attrs.contains("user.project=\"apollo\""), "{attrs}");
    let mtime = |p: &Path| sh(&["stat", "-c", "%y", path(p)]);
    assert_eq!(
        mtime(&d.src.join("team")),
        mtime(&dst("team")),
        "folder times last"
    );

    // Nothing changed: nothing is set, nothing sent.
    let (code, sum) = copy_with(&d, "sync", &["--owner-map", &map_arg]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["counts"]["AZSM2041"], 3, "{sum}");
    assert!(sum["counts"].get("AZSM2048").is_none(), "{sum}");

    // An ACL changes, the bytes do not: the true-up sets the ACL and sends no data.
    let inode = |p: &Path| sh(&["stat", "-c", "%i", path(p)]);
    let before = inode(&dst("team/plan.txt"));
    sh(&[
        "setfacl",
        "-m",
        &format!("u:{bob}:rw-"),
        path(&d.src.join("team/plan.txt")),
    ]);
    let (code, sum) = copy_with(&d, "sync", &["--owner-map", &map_arg]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["counts"]["AZSM2048"], 1, "{sum}");
    assert_eq!(sum["bytes_copied"], 0, "{sum}");
    assert!(acl(&dst("team/plan.txt")).contains(&format!("user:{bob}:rw-")));
    assert_eq!(
        inode(&dst("team/plan.txt")),
        before,
        "the file was not written again"
    );
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let set: Vec<&str> = log
        .iter()
        .filter(|r| r["code"] == "AZSM2048")
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(set, ["team/plan.txt"], "{log:?}");

    // An owner the map no longer names: the data still travels, the permissions do not
    // (7020 for exactly that path), and the run says so.
    fs::write(
        &map,
        format!("{alice}={dave}\n@{staff}=@{eng}\n{bob}=keep\nroot=keep\n@root=@root\n"),
    )
    .unwrap();
    write(&d.src.join("own.txt"), b"mine, longer now");
    sh(&["chown", carol, path(&d.src.join("own.txt"))]);
    let (code, sum) = copy_with(&d, "sync", &["--owner-map", &map_arg]);
    assert_eq!(code, Some(3), "{sum}");
    assert_eq!(sum["counts"]["7020"], 1, "{sum}");
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let refused: Vec<&Value> = log.iter().filter(|r| r["code"] == "7020").collect();
    assert_eq!(refused.len(), 1, "{log:?}");
    assert_eq!(refused[0]["path"], "own.txt");
    assert!(
        refused[0]["message"].as_str().unwrap().contains(carol),
        "{refused:?}"
    );
    assert_eq!(fs::read(dst("own.txt")).unwrap(), b"mine, longer now");

    // --owner-map and --what without --metadata are refused by the command line.
    let out = run(godwit()
        .arg("copy")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .args(["--owner-map", &map_arg]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--metadata"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_real_run_after_a_simulation_says_what_changed_since_and_sets_only_what_differs() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"a");
    write(&d.src.join("b.txt"), b"b");
    copy(&d);
    sh(&["chmod", "600", path(&d.src.join("a.txt"))]);
    sh(&["chmod", "600", path(&d.src.join("b.txt"))]);
    let (code, simulated) = permissions(&d, &["--simulate"]);
    assert_eq!(code, Some(0), "{simulated}");
    // The root folder (whose time the copy did not set) and the two files would change.
    assert_eq!(simulated["permissions"]["applied"], 3, "{simulated}");
    assert_eq!(simulated["permissions"]["already"], 0, "{simulated}");
    // The source changes after the simulation: that path is read again, set as it is now,
    // and the run says it differs from what the simulation reported.
    sh(&["chmod", "640", path(&d.src.join("b.txt"))]);
    let (code, applied) = permissions(&d, &[]);
    assert_eq!(code, Some(0), "{applied}");
    let since = &applied["permissions"]["since_simulation"];
    assert_eq!(since["run"], simulated["run_id"], "{applied}");
    assert_eq!(since["changed"], 1, "{applied}");
    let did = report(&applied);
    assert_eq!(did["b.txt"]["since_simulation"], "changed", "{did:?}");
    assert!(did["a.txt"].get("since_simulation").is_none(), "{did:?}");
    assert_eq!(did["a.txt"]["set"], report(&simulated)["a.txt"]["set"]);
    assert_eq!(owned(&d.dst.join("a.txt")), "root:root 600");
    assert_eq!(owned(&d.dst.join("b.txt")), "root:root 640");
    // Run again: everything is held already, nothing is set, and the simulation is used up.
    let (code, again) = permissions(&d, &[]);
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(again["permissions"]["already"], 3, "{again}");
    assert!(
        again["permissions"].get("since_simulation").is_none(),
        "{again}"
    );
}

/// Lines in the report of the newest run of the test's migration.
fn report_lines(d: &Dirs) -> (std::path::PathBuf, usize) {
    let Ok(migrations) = fs::read_dir(d.state.join("migrations")) else {
        return (std::path::PathBuf::new(), 0);
    };
    let mut runs: Vec<std::path::PathBuf> = migrations
        .filter_map(Result::ok)
        .flat_map(|m| fs::read_dir(m.path().join("runs")).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|r| r.path())
        .filter(|r| r.join("permissions.jsonl").exists())
        .collect();
    runs.sort();
    let Some(newest) = runs.pop() else {
        return (std::path::PathBuf::new(), 0);
    };
    let lines = fs::read_to_string(newest.join("permissions.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    (newest, lines)
}

/// Starts `godwit permissions` and waits until it has reported at least `lines` paths of a
/// run started after `after` (a run folder name). The caller waits for the child.
#[allow(clippy::zombie_processes)]
fn started_permissions(
    d: &Dirs,
    after: &Path,
    lines: usize,
) -> (std::process::Child, std::path::PathBuf) {
    use std::process::Stdio;
    let mut child = godwit()
        .arg("permissions")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (run, n) = report_lines(d);
        if run.as_path() > after && n >= lines {
            return (child, run);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no progress");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[test]
fn a_stopped_or_killed_permissions_run_resumes_where_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let d = dirs();
    const FILES: usize = 20_000;
    for i in 0..FILES {
        write(&d.src.join(format!("d{}/f{i:05}", i % 20)), b"x");
    }
    copy(&d);
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    for i in 0..FILES {
        let f = d.src.join(format!("d{}/f{i:05}", i % 20));
        fs::set_permissions(f, fs::Permissions::from_mode(0o600)).unwrap();
    }

    // Ctrl-C: a clean stop (964), with what was set so far kept.
    let (child, stopped_run) = started_permissions(&d, Path::new(""), 500);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(1), "{sum}");
    assert_eq!(sum["status"]["code"], "964", "{sum}");
    assert_eq!(sum["status"]["name"], "MIGRATE_PERMISSIONS : STOPPED");
    let set_before = sum["counts"]["AZSM0000"].as_u64().unwrap();
    assert!(
        set_before > 0 && set_before < FILES as u64,
        "stopped mid-run: {sum}"
    );

    // kill -9: nothing is written at the end, the lock goes with the process.
    let (child, killed_run) = started_permissions(&d, &stopped_run, 500);
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed_run.join("summary.json").exists(),
        "killed mid-run: {}",
        killed_run.display()
    );

    // The same command again finishes the job, setting only what is not set yet.
    let (code, sum) = permissions(&d, &[]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["status"]["code"], "962", "{sum}");
    let total = FILES as u64 + 21;
    assert_eq!(
        sum["permissions"]["applied"], total,
        "every path, the folders too: {sum}"
    );
    let already = sum["permissions"]["already"].as_u64().unwrap();
    assert!(
        already >= set_before,
        "what was set ({set_before}) is not set again: {sum}"
    );
    for i in (0..FILES).step_by(997) {
        assert_eq!(mode(&d.dst.join(format!("d{}/f{i:05}", i % 20))), 0o600);
    }
}
