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
    let (alice, bob, carol, dave, staff, eng) = (
        p.user(0),
        p.user(1),
        p.user(2),
        p.user(3),
        p.group(0),
        p.group(1),
    );

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
    let (alice, bob, carol, dave, staff, eng) = (
        p.user(0),
        p.user(1),
        p.user(2),
        p.user(3),
        p.group(0),
        p.group(1),
    );
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
