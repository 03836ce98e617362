//! `godwit sync`, `confirm`, `sanitize` and `empty-folders` as a user runs them: the delete
//! guards pause and delete nothing until confirmed, an unreadable folder is never taken for a
//! deleted one, sanitized names hold across runs, and filters from the command line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{
    Dirs, as_unprivileged, assert_same_tree, copylog, dirs, godwit, run, summary, text, write,
};

/// `godwit sync SRC DST --state-dir STATE --json ARGS...` run by `cmd`.
fn sync_with(mut cmd: Command, d: &Dirs, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = run(cmd
        .arg("sync")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .arg("--json")
        .args(args));
    let code = out.status.code();
    let sum = summary(&out);
    if code == Some(4) {
        let err = text(&out.stderr);
        assert!(
            err.contains("Nothing was deleted") && err.contains("godwit confirm"),
            "a paused run says what to review and how to confirm: {err}"
        );
    }
    (code, sum)
}

fn sync(d: &Dirs, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    sync_with(godwit(), d, args)
}

fn confirm(d: &Dirs, run_id: &str) -> (Option<i32>, serde_json::Value) {
    let out = run(godwit()
        .args(["confirm", run_id, "--json", "--state-dir"])
        .arg(&d.state));
    (out.status.code(), summary(&out))
}

fn lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn run_dir(sum: &serde_json::Value) -> PathBuf {
    PathBuf::from(sum["run_dir"].as_str().unwrap())
}

#[test]
fn deletions_over_the_limit_pause_with_9080_and_confirm_carries_out_exactly_the_reviewed_list() {
    let d = dirs();
    for i in 0..40 {
        write(
            &d.src.join(format!("dir{}/f{i}.txt", i % 4)),
            format!("{i}").as_bytes(),
        );
    }
    write(&d.src.join("old/deep/x.txt"), b"x");
    let (code, sum) = sync(&d, &[]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["status"]["name"], "DATA_SYNC : SUCCEEDED");
    assert_eq!(sum["counts"]["AZSM0000"], 41);

    // Five files and a whole folder go; the default limit for 41 files is 2 (5%).
    for i in 0..5 {
        fs::remove_file(d.src.join(format!("dir{}/f{i}.txt", i % 4))).unwrap();
    }
    fs::remove_dir_all(d.src.join("old")).unwrap();
    let (code, sum) = sync(&d, &["--delete"]);
    assert_eq!(code, Some(4), "{sum}");
    assert_eq!(sum["status"]["code"], "955");
    assert_eq!(sum["job_error"]["code"], "9080");
    assert_eq!(sum["true_up"]["gone_from_source"], 6);
    assert_eq!(sum["true_up"]["max_delete"], 2);
    assert_eq!(sum["true_up"]["deleted"], 0);
    let paused = sum["run_id"].as_str().unwrap().to_string();
    let listed = lines(&run_dir(&sum).join("deletes.txt"));
    assert_eq!(
        listed,
        [
            "dir0/f0.txt",
            "dir0/f4.txt",
            "dir1/f1.txt",
            "dir2/f2.txt",
            "dir3/f3.txt",
            "old/deep/x.txt"
        ]
    );
    for rel in &listed {
        assert!(d.dst.join(rel).exists(), "{rel} was deleted before review");
    }

    // Before the confirmation: f0 comes back, and f5 goes (after the review).
    write(&d.src.join("dir0/f0.txt"), b"back again");
    fs::remove_file(d.src.join("dir1/f5.txt")).unwrap();
    let (code, sum) = confirm(&d, &paused);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["true_up"]["deleted"], 5);
    assert_eq!(sum["true_up"]["kept"], 1);
    assert_eq!(sum["counts"]["AZSM2043"], 5);
    assert!(d.dst.join("dir0/f0.txt").exists(), "re-created: kept");
    assert!(
        d.dst.join("dir1/f5.txt").exists(),
        "not on the reviewed list: kept"
    );
    assert!(!d.dst.join("dir0/f4.txt").exists());
    assert!(
        !d.dst.join("old").exists(),
        "a folder gone at the source goes too"
    );
    let log = copylog(sum["run_dir"].as_str().unwrap());
    assert!(log.iter().all(|r| r["code"] == "AZSM2043"), "{log:?}");

    // A larger --max-delete lets the next true-up through: f5 deleted, f0 copied anew.
    let (code, sum) = sync(&d, &["--delete", "--max-delete", "5%"]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["true_up"]["deleted"], 1);
    assert_eq!(sum["counts"]["AZSM0000"], 1);
    assert_same_tree(&d.src, &d.dst);

    // --confirm-deletes with the same command carries out a reviewed list too.
    for i in 6..10 {
        fs::remove_file(d.src.join(format!("dir{}/f{i}.txt", i % 4))).unwrap();
    }
    let (code, sum) = sync(&d, &["--delete", "--max-delete", "1"]);
    assert_eq!(code, Some(4), "{sum}");
    let paused = sum["run_id"].as_str().unwrap().to_string();
    let (code, sum) = sync(&d, &["--delete", "--confirm-deletes", &paused]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["true_up"]["deleted"], 4);
    assert_eq!(sum["true_up"]["confirmed_run"], paused.as_str());
    assert_same_tree(&d.src, &d.dst);

    // Bad values are refused up front.
    let (code, _) = (
        run(godwit()
            .arg("sync")
            .arg(&d.src)
            .arg(&d.dst)
            .args(["--delete", "--max-delete", "lots", "--state-dir"])
            .arg(&d.state))
        .status
        .code(),
        (),
    );
    assert_eq!(code, Some(2));
    // An id that names no paused run: exit 2, as confirm's --help says.
    let out = run(godwit()
        .args(["confirm", "20990101T000000Z-dead", "--state-dir"])
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("error[800]"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_lost_index_is_6030_and_compare_target_rebuilds_it() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"a");
    write(&d.src.join("b.txt"), b"b");
    let (_, sum) = sync(&d, &[]);
    let index = run_dir(&sum).join("../../index.redb");
    fs::remove_file(&index).unwrap();
    let out = run(godwit()
        .arg("sync")
        .arg(&d.src)
        .arg(&d.dst)
        .args(["--delete", "--state-dir"])
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("error[6030]"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("--compare target"),
        "{}",
        text(&out.stderr)
    );
    // The target itself says a.txt is there, and the index is whole again. b.txt, gone from
    // the source, is at the target, but with the index lost godwit has no record of writing
    // it: it is kept (AZSM2072 says why), never deleted on a listing's word.
    fs::remove_file(d.src.join("b.txt")).unwrap();
    let (code, sum) = sync(
        &d,
        &["--compare", "target", "--delete", "--max-delete", "5"],
    );
    assert_eq!(code, Some(3), "{sum}");
    assert_eq!(sum["counts"]["AZSM2042"], 1, "{sum}");
    assert_eq!(sum["counts"]["AZSM2072"], 1, "{sum}");
    assert_eq!(sum["true_up"]["deleted"], 0, "{sum}");
    assert_eq!(sum["job_error"]["code"], "AZSM1046", "{sum}");
    let kept = copylog(sum["run_dir"].as_str().unwrap());
    let b = kept.iter().find(|r| r["path"] == "b.txt").unwrap();
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("no record of writing it"),
        "{b}"
    );
    assert!(d.dst.join("b.txt").exists());
    let (_, sum) = sync(&d, &[]);
    assert_eq!(sum["counts"]["AZSM2041"], 1, "{sum}");
}

#[test]
fn without_delete_nothing_is_removed_and_the_list_is_kept() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"a");
    write(&d.src.join("b.txt"), b"b");
    assert_eq!(sync(&d, &[]).0, Some(0));
    fs::remove_file(d.src.join("a.txt")).unwrap();
    let (code, sum) = sync(&d, &[]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["true_up"]["gone_from_source"], 1);
    assert_eq!(sum["true_up"]["deleted"], 0);
    assert!(d.dst.join("a.txt").exists());
    assert_eq!(lines(&run_dir(&sum).join("deletes.txt")), ["a.txt"]);
}

#[test]
fn an_unreadable_folder_is_never_taken_for_deleted_9090_and_9100() {
    let d = dirs();
    for name in [
        "keep/a",
        "keep/b",
        "keep/c",
        "keep/d",
        "locked/in1",
        "locked/sub/in2",
    ] {
        write(&d.src.join(name), name.as_bytes());
    }
    let nobody = || as_unprivileged(&d.root);
    assert_eq!(sync_with(nobody(), &d, &[]).0, Some(0));

    // The folder becomes unreadable, and one file really goes.
    fs::set_permissions(d.src.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::remove_file(d.src.join("keep/a")).unwrap();
    let (code, sum) = sync_with(nobody(), &d, &["--delete", "--max-delete", "10"]);
    assert_eq!(code, Some(4), "{sum}");
    assert_eq!(sum["job_error"]["code"], "9090");
    assert_eq!(sum["true_up"]["unreadable"], 1);
    assert_eq!(lines(&run_dir(&sum).join("deletes.txt")), ["keep/a"]);
    assert_eq!(lines(&run_dir(&sum).join("unreadable.txt")), ["locked"]);
    assert!(d.dst.join("keep/a").exists());

    // Over the limit as well: 9100.
    fs::remove_file(d.src.join("keep/b")).unwrap();
    fs::remove_file(d.src.join("keep/c")).unwrap();
    let (code, sum) = sync_with(nobody(), &d, &["--delete", "--max-delete", "1"]);
    assert_eq!(code, Some(4), "{sum}");
    assert_eq!(sum["job_error"]["code"], "9100");
    let paused = sum["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        lines(&run_dir(&sum).join("deletes.txt")),
        ["keep/a", "keep/b", "keep/c"]
    );

    // Confirmed: exactly those three go; what the unreadable folder holds stays.
    let out = run(nobody()
        .args(["confirm", &paused, "--json", "--state-dir"])
        .arg(&d.state));
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    assert_eq!(sum["true_up"]["deleted"], 3);
    fs::set_permissions(d.src.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    assert!(d.dst.join("locked/in1").exists());
    assert!(d.dst.join("locked/sub/in2").exists());
    assert!(d.dst.join("keep/d").exists());
    assert!(!d.dst.join("keep/a").exists());
    assert_same_tree(&d.src, &d.dst);
}

/// Every name under `root`, relative, sorted.
fn names(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if rel.starts_with(".godwit-tmp-") {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(rel);
        }
    }
    out.sort();
    out
}

fn windows_safe(name: &str) -> bool {
    !name.contains(['<', '>', ':', '"', '\\', '|', '?', '*'])
}

#[test]
fn sanitize_on_the_fly_keeps_its_names_across_runs_with_collisions() {
    let d = dirs();
    write(&d.src.join("a:b.txt"), b"colon");
    write(&d.src.join("a?b.txt"), b"question");
    write(&d.src.join("a_b.txt"), b"real");
    write(&d.src.join("dir:x/in.txt"), b"inside");
    write(&d.src.join("fine.txt"), b"fine");
    let args = ["--sanitize", "on-the-fly", "--target-profile", "windows"];
    let (code, sum) = sync(&d, &args);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["counts"]["AZSM0000"], 5);
    let first = names(&d.dst);
    assert!(first.iter().all(|n| windows_safe(n)), "{first:?}");
    assert_eq!(first.len(), 6, "5 files and a folder: {first:?}");
    // The real a_b.txt keeps its name; the two that sanitize to it get stable tags.
    assert_eq!(fs::read(d.dst.join("a_b.txt")).unwrap(), b"real");
    assert_eq!(fs::read(d.dst.join("dir_x/in.txt")).unwrap(), b"inside");
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let target_of = |p: &str| {
        log.iter().find(|r| r["path"] == p).unwrap()["target_path"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let colon = target_of("a:b.txt");
    let question = target_of("a?b.txt");
    assert!(
        colon.starts_with("a_b~") && colon.ends_with(".txt"),
        "{colon}"
    );
    assert!(
        question.starts_with("a_b~") && question != colon,
        "{question}"
    );
    assert_eq!(fs::read(d.dst.join(&colon)).unwrap(), b"colon");
    assert_eq!(fs::read(d.dst.join(&question)).unwrap(), b"question");

    // Again: nothing to send, the same names.
    let (code, sum) = sync(&d, &args);
    assert_eq!(code, Some(0));
    assert_eq!(sum["counts"]["AZSM2041"], 5, "{sum}");
    assert_eq!(names(&d.dst), first);

    // A change goes to the same target name; a delete removes the mapped name.
    write(&d.src.join("a?b.txt"), b"question, changed");
    fs::remove_file(d.src.join("a:b.txt")).unwrap();
    let mut with_delete = args.to_vec();
    with_delete.extend(["--delete", "--max-delete", "5"]);
    let (code, sum) = sync(&d, &with_delete);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["true_up"]["deleted"], 1);
    assert_eq!(
        fs::read(d.dst.join(&question)).unwrap(),
        b"question, changed"
    );
    assert!(!d.dst.join(&colon).exists());
    assert_eq!(names(&d.dst).len(), 5);
}

#[test]
fn sanitize_in_place_dry_run_then_apply_with_collisions_and_again() {
    let d = dirs();
    write(&d.src.join("a:b.txt"), b"1");
    write(&d.src.join("a?b.txt"), b"2");
    write(&d.src.join("x|dir/in?.txt"), b"3");
    write(&d.src.join("ok.txt"), b"4");
    let before = names(&d.src);
    let sanitize = |apply: bool| {
        let mut c = godwit();
        c.arg("sanitize")
            .arg(&d.src)
            .args(["--target-profile", "windows", "--json", "--state-dir"])
            .arg(&d.state);
        if apply {
            c.arg("--apply");
        }
        let out = run(&mut c);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let sum = summary(&out);
        let csv = fs::read_to_string(run_dir(&sum).join("sanitize.csv")).unwrap();
        (sum, csv)
    };
    let (sum, csv) = sanitize(false);
    assert_eq!(sum["status"]["name"], "SANITIZE : SUCCEEDED");
    assert_eq!(sum["counts"]["AZSM0000"], 4, "{csv}");
    assert_eq!(csv.matches("would rename").count(), 4, "{csv}");
    assert_eq!(names(&d.src), before, "a dry run changes nothing");

    let (_, applied) = sanitize(true);
    assert_eq!(applied.matches(",renamed,").count(), 4, "{applied}");
    let after = names(&d.src);
    assert!(after.iter().all(|n| windows_safe(n)), "{after:?}");
    assert_eq!(after.len(), before.len());
    // What the dry run announced is what was done.
    for line in csv.lines().skip(1) {
        let new = line.split(',').nth(1).unwrap();
        assert!(
            applied.contains(&format!(",{new},renamed")),
            "{new}\n{applied}"
        );
    }
    let mut contents: Vec<Vec<u8>> = after
        .iter()
        .filter(|n| d.src.join(n).is_file())
        .map(|n| fs::read(d.src.join(n)).unwrap())
        .collect();
    contents.sort();
    assert_eq!(contents, [b"1", b"2", b"3", b"4"]);
    assert_eq!(fs::read(d.src.join("x_dir/in_.txt")).unwrap(), b"3");

    // Again: nothing to do. A new name that collides gets its own tag; nothing is overwritten.
    let (sum, _) = sanitize(true);
    assert!(sum["counts"].get("AZSM0000").is_none(), "{sum}");
    write(&d.src.join("a<b.txt"), b"5");
    let (sum, csv) = sanitize(true);
    assert_eq!(sum["counts"]["AZSM0000"], 1, "{csv}");
    let now = names(&d.src);
    assert_eq!(now.len(), before.len() + 1);
    assert!(now.iter().all(|n| windows_safe(n)), "{now:?}");
}

#[test]
fn filters_from_the_command_line_and_excluded_files_counted_not_logged() {
    let d = dirs();
    write(&d.src.join("keep.txt"), b"keep this");
    write(&d.src.join("small.txt"), b"s");
    write(&d.src.join("build/out.o"), b"object file");
    write(&d.src.join("notes.tmp"), b"temporary");
    let rules = d.root.join("rules");
    fs::write(&rules, "# generated files\n*.o\n\n*.tmp\n").unwrap();
    let args = |extra: &[&str]| {
        let mut v = vec!["--exclude-from", rules.to_str().unwrap(), "--min-size", "2"];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let a = args(&[]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, sum) = sync(&d, &a);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["counts"]["AZSM0000"], 1);
    assert_eq!(sum["counts"]["AZSM2001"], 3);
    let log = copylog(sum["run_dir"].as_str().unwrap());
    assert!(
        log.iter().all(|r| r["code"] != "AZSM2001"),
        "excluded files are counted, not logged: {log:?}"
    );
    assert!(d.dst.join("keep.txt").exists() && !d.dst.join("notes.tmp").exists());

    let a = args(&["--log-excluded", "--max-age", "1h"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (_, sum) = sync(&d, &a);
    let log = copylog(sum["run_dir"].as_str().unwrap());
    assert_eq!(log.iter().filter(|r| r["code"] == "AZSM2001").count(), 3);

    // --min-age 1d leaves out everything just written.
    let (_, sum) = sync(&d, &["--min-age", "1d"]);
    assert_eq!(sum["counts"]["AZSM2001"], 4, "{sum}");

    for (flag, value, code) in [
        ("--min-size", "ten", "634"),
        ("--max-age", "soon", "634"),
        ("--exclude", "a[b", "635"),
        ("--exclude-regex", "(x", "636"),
    ] {
        let out = run(godwit()
            .arg("sync")
            .arg(&d.src)
            .arg(&d.dst)
            .args([flag, value, "--state-dir"])
            .arg(&d.state));
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(
            text(&out.stderr).contains(&format!("error[{code}]")),
            "{flag}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn empty_folders_made_at_a_local_target_by_copy_and_by_empty_folders() {
    let d = dirs();
    write(&d.src.join("full/a.txt"), b"a");
    fs::create_dir_all(d.src.join("empty/inner")).unwrap();
    fs::create_dir_all(d.src.join("lonely")).unwrap();
    let out = run(godwit()
        .arg("empty-folders")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--json")
        .arg("--state-dir")
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["status"]["name"], "CREATE_EMPTY_FOLDERS : SUCCEEDED");
    assert!(d.dst.join("empty/inner").is_dir() && d.dst.join("lonely").is_dir());
    assert!(
        !d.dst.join("full/a.txt").exists(),
        "empty-folders copies no file"
    );
}

#[test]
fn a_file_moved_at_the_source_is_moved_at_the_target_not_sent_again() {
    let d = dirs();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    write(&d.src.join("old/place/report.pdf"), &big);
    write(&d.src.join("small.txt"), b"small files are simply sent");
    assert_eq!(sync(&d, &[]).0, Some(0));
    fs::create_dir_all(d.src.join("new/home")).unwrap();
    fs::rename(
        d.src.join("old/place/report.pdf"),
        d.src.join("new/home/report-final.pdf"),
    )
    .unwrap();
    fs::rename(d.src.join("small.txt"), d.src.join("small-renamed.txt")).unwrap();

    // Without --delete a move is a new file: sent, and the old one stays.
    let (code, sum) = sync(&d, &["--dry-run"]);
    assert_eq!(code, Some(0), "{sum}");
    assert!(d.dst.join("old/place/report.pdf").exists());

    let (code, sum) = sync(&d, &["--delete", "--max-delete", "5"]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["counts"]["AZSM2044"], 1, "{sum}");
    assert_eq!(
        sum["counts"]["AZSM2043"], 1,
        "the small file's old name: {sum}"
    );
    assert_eq!(
        sum["bytes_copied"],
        "small files are simply sent".len(),
        "the moved file was not sent: {sum}"
    );
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let moved = log.iter().find(|r| r["code"] == "AZSM2044").unwrap();
    assert_eq!(moved["path"], "new/home/report-final.pdf");
    assert!(
        moved["message"]
            .as_str()
            .unwrap()
            .contains("old/place/report.pdf")
    );
    assert_eq!(
        fs::read(d.dst.join("new/home/report-final.pdf")).unwrap(),
        big
    );
    // The source keeps its emptied folder, and so does the target.
    assert!(d.dst.join("old/place").is_dir());
    assert_same_tree(&d.src, &d.dst);

    // And the next true-up knows it under its new name.
    let (_, sum) = sync(&d, &["--delete"]);
    assert_eq!(sum["counts"]["AZSM2041"], 2, "{sum}");
}

#[test]
fn a_name_that_cannot_be_renamed_in_place_is_4010_and_the_rest_goes_on() {
    let d = dirs();
    write(&d.src.join("open/a?b.txt"), b"1");
    write(&d.src.join("shut/c?d.txt"), b"2");
    // `open` may be written by anyone (the test may run as root, godwit as nobody); `shut` by
    // no one.
    fs::set_permissions(d.src.join("open"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(d.src.join("shut"), fs::Permissions::from_mode(0o555)).unwrap();
    let out = run(as_unprivileged(&d.root)
        .arg("sanitize")
        .arg(&d.src)
        .args([
            "--target-profile",
            "windows",
            "--apply",
            "--json",
            "--state-dir",
        ])
        .arg(&d.state));
    fs::set_permissions(d.src.join("shut"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["counts"]["4010"], 1, "{sum}");
    assert_eq!(sum["counts"]["AZSM0000"], 1, "{sum}");
    assert!(d.src.join("open/a_b.txt").exists());
    assert!(d.src.join("shut/c?d.txt").exists(), "left as it was");
    let csv = fs::read_to_string(run_dir(&sum).join("sanitize.csv")).unwrap();
    assert!(
        csv.contains("shut/c?d.txt,shut/c_d.txt,failed,4010,permission denied"),
        "{csv}"
    );
}

#[test]
fn unchanged_files_are_counted_not_logged_unless_asked() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"a");
    write(&d.src.join("b.txt"), b"b");
    assert_eq!(sync(&d, &[]).0, Some(0));
    write(&d.src.join("c.txt"), b"c");
    let (code, sum) = sync(&d, &[]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["counts"]["AZSM2041"], 2, "{sum}");
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let paths: Vec<&str> = log.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["c.txt"], "only what the run did is listed");
    let (_, sum) = sync(&d, &["--log-unchanged"]);
    assert_eq!(sum["counts"]["AZSM2041"], 3, "{sum}");
    let log = copylog(sum["run_dir"].as_str().unwrap());
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|r| r["code"] == "AZSM2041"), "{log:?}");
}

/// `godwit undo RUN_ID --json` in `d`'s state directory.
fn undo(d: &Dirs, run_id: &str) -> (Option<i32>, serde_json::Value) {
    let out = run(godwit()
        .args(["undo", run_id, "--json", "--state-dir"])
        .arg(&d.state));
    (out.status.code(), summary(&out))
}

#[test]
fn backup_dir_keeps_what_a_true_up_deletes_and_replaces_and_undo_puts_it_back_byte_identical() {
    use std::os::unix::ffi::OsStrExt;
    let d = dirs();
    let odd = std::ffi::OsStr::from_bytes(b"odd\nname \xff.bin");
    write(&d.src.join("keep.txt"), b"kept as it is");
    write(&d.src.join("changed.txt"), b"the first version");
    write(&d.src.join("gone/deep/a.txt"), b"a file whose folder goes");
    write(&d.src.join("gone/b.txt"), b"b");
    write(
        &d.src.join(odd),
        b"a name with a newline and a byte that is not UTF-8",
    );
    assert_eq!(sync(&d, &[]).0, Some(0));
    // The target as the first true-up left it, to compare with after the undo.
    let before = d.root.join("before");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&d.dst)
        .arg(&before)
        .status()
        .unwrap();
    assert!(cp.success());

    write(&d.src.join("changed.txt"), b"the second version, longer");
    fs::remove_dir_all(d.src.join("gone")).unwrap();
    fs::remove_file(d.src.join(odd)).unwrap();
    let backups = d.root.join("backups");
    let (code, sum) = sync(
        &d,
        &[
            "--delete",
            "--max-delete",
            "10",
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{sum}");
    let run_id = sum["run_id"].as_str().unwrap().to_string();
    let kept_in = backups.join(&run_id);
    assert_eq!(
        sum["backup"],
        kept_in.display().to_string(),
        "the summary says where"
    );
    assert_eq!(sum["counts"]["AZSM2046"], 3, "{sum}");
    assert_eq!(sum["counts"]["AZSM0000"], 1, "{sum}");
    assert!(
        sum["counts"].get("AZSM2043").is_none(),
        "nothing deleted: {sum}"
    );
    // Gone from the target, each in the run's backup folder with its bytes.
    assert!(!d.dst.join("gone").exists());
    assert!(!d.dst.join(odd).exists());
    assert_same_tree(&d.src, &d.dst);
    assert_eq!(
        fs::read(kept_in.join("changed.txt")).unwrap(),
        b"the first version"
    );
    assert_eq!(
        fs::read(kept_in.join("gone/deep/a.txt")).unwrap(),
        b"a file whose folder goes"
    );
    assert!(kept_in.join(odd).is_file());
    assert!(
        !kept_in.join("keep.txt").exists(),
        "unchanged: nothing to keep"
    );
    for r in copylog(sum["run_dir"].as_str().unwrap()) {
        // (A name that is not UTF-8 is shown escaped.)
        if let Some(b) = r["backup"].as_str().filter(|_| r.get("path_hex").is_none()) {
            assert!(Path::new(b).is_file(), "{r}");
        }
    }

    let (code, sum) = undo(&d, &run_id);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["counts"]["AZSM2047"], 4, "{sum}");
    assert_same_tree(&before, &d.dst);
    assert!(!kept_in.exists(), "an emptied backup folder goes");

    // An id that names no run is a usage error.
    let out = run(godwit()
        .args(["undo", "20991231T000000Z-0000", "--state-dir"])
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("error[800]"),
        "{}",
        text(&out.stderr)
    );

    // Undone twice: nothing left to put back, said per file, and exit 3.
    let (code, sum) = undo(&d, &run_id);
    assert_eq!(code, Some(3), "{sum}");
    assert_eq!(sum["counts"]["AZSM2079"], 4, "{sum}");
    assert_same_tree(&before, &d.dst);

    // The index holds what was put back: the next true-up does the run's work again.
    let (code, sum) = sync(&d, &["--delete", "--max-delete", "10"]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["counts"]["AZSM2043"], 3, "{sum}");
    assert_eq!(sum["counts"]["AZSM0000"], 1, "{sum}");
    assert_same_tree(&d.src, &d.dst);
}

#[test]
fn undo_leaves_alone_a_file_changed_at_the_target_since_the_run() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"one");
    write(&d.src.join("b.txt"), b"bee");
    assert_eq!(sync(&d, &[]).0, Some(0));
    write(&d.src.join("a.txt"), b"two!");
    fs::remove_file(d.src.join("b.txt")).unwrap();
    let backups = d.root.join("backups");
    let bk = ["--delete", "--max-delete", "9", "--backup-dir"];
    let (code, sum) = sync(&d, &[&bk[..], &[backups.to_str().unwrap()]].concat());
    assert_eq!(code, Some(0), "{sum}");
    let run_id = sum["run_id"].as_str().unwrap().to_string();
    // Someone writes at the target after the run.
    fs::write(d.dst.join("a.txt"), b"edited at the target").unwrap();
    fs::write(d.dst.join("b.txt"), b"a new b").unwrap();
    let (code, sum) = undo(&d, &run_id);
    assert_eq!(code, Some(3), "{sum}");
    assert_eq!(sum["counts"]["AZSM2079"], 2, "{sum}");
    let log = copylog(sum["run_dir"].as_str().unwrap());
    assert!(
        log.iter().all(|r| r["code"] == "AZSM2079"
            && (r["message"].as_str().unwrap().contains("never overwritten")
                || r["message"].as_str().unwrap().contains("no longer the one"))),
        "{log:?}"
    );
    assert_eq!(
        fs::read(d.dst.join("a.txt")).unwrap(),
        b"edited at the target"
    );
    assert_eq!(fs::read(d.dst.join("b.txt")).unwrap(), b"a new b");
    assert_eq!(
        fs::read(backups.join(&run_id).join("a.txt")).unwrap(),
        b"one"
    );
    assert_eq!(
        fs::read(backups.join(&run_id).join("b.txt")).unwrap(),
        b"bee"
    );
}

#[test]
fn a_backup_dir_inside_the_target_is_refused_before_anything_is_written() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"one");
    assert_eq!(sync(&d, &[]).0, Some(0));
    write(&d.src.join("a.txt"), b"two");
    let inside = d.dst.join(".old");
    let out = run(godwit()
        .arg("sync")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .arg("--backup-dir")
        .arg(&inside));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("error[724]") && err.contains("overlaps the target"),
        "{err}"
    );
    assert_eq!(fs::read(d.dst.join("a.txt")).unwrap(), b"one");
    assert!(!inside.exists());
}

#[test]
fn a_file_that_cannot_be_kept_in_the_backup_is_neither_replaced_nor_deleted_azsm2080() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"one");
    write(&d.src.join("b.txt"), b"bee");
    let nobody = || as_unprivileged(&d.root);
    assert_eq!(sync_with(nobody(), &d, &[]).0, Some(0));
    write(&d.src.join("a.txt"), b"two");
    fs::remove_file(d.src.join("b.txt")).unwrap();
    // A backup folder the user godwit runs as may not write to.
    let backups = d.root.join("backups");
    fs::create_dir(&backups).unwrap();
    fs::set_permissions(&backups, fs::Permissions::from_mode(0o555)).unwrap();
    let args = ["--delete", "--max-delete", "9", "--backup-dir"];
    let (code, sum) = sync_with(
        nobody(),
        &d,
        &[&args[..], &[backups.to_str().unwrap()]].concat(),
    );
    let log = copylog(sum["run_dir"].as_str().unwrap());
    assert_eq!(code, Some(3), "{sum}");
    assert_eq!(sum["counts"]["AZSM2080"], 2, "{log:?}");
    assert_eq!(fs::read(d.dst.join("a.txt")).unwrap(), b"one");
    assert_eq!(fs::read(d.dst.join("b.txt")).unwrap(), b"bee");
    assert!(
        log.iter().any(|r| r["code"] == "AZSM2080"
            && r["message"].as_str().unwrap().contains("ermission denied")),
        "{log:?}"
    );
    // Writable again: the next true-up keeps and replaces.
    fs::set_permissions(&backups, fs::Permissions::from_mode(0o777)).unwrap();
    let (code, sum) = sync_with(
        nobody(),
        &d,
        &[&args[..], &[backups.to_str().unwrap()]].concat(),
    );
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(fs::read(d.dst.join("a.txt")).unwrap(), b"two");
}

#[test]
fn a_copy_with_backup_dir_keeps_what_it_replaces_too() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"one");
    let copy = || {
        run(godwit()
            .arg("copy")
            .arg(&d.src)
            .arg(&d.dst)
            .arg("--state-dir")
            .arg(&d.state)
            .arg("--json")
            .arg("--backup-dir")
            .arg("backups")
            .current_dir(&d.root))
    };
    assert_eq!(copy().status.code(), Some(0));
    write(&d.src.join("a.txt"), b"two");
    let out = copy();
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    // A relative backup folder is taken from where the command runs.
    let kept = d.root.join("backups").join(sum["run_id"].as_str().unwrap());
    assert_eq!(sum["backup"], kept.display().to_string());
    assert_eq!(fs::read(kept.join("a.txt")).unwrap(), b"one");
    assert_eq!(fs::read(d.dst.join("a.txt")).unwrap(), b"two");
    let (code, sum) = undo(&d, sum["run_id"].as_str().unwrap());
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(fs::read(d.dst.join("a.txt")).unwrap(), b"one");
}

#[test]
fn finalize_removes_the_index_keeps_the_records_and_closes_the_migration() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"a");
    write(&d.src.join("b.txt"), b"b");
    let (code, first) = sync(&d, &["--delete"]);
    assert_eq!(code, Some(0), "{first}");
    fs::remove_file(d.src.join("b.txt")).unwrap();
    let (code, second) = sync(&d, &["--delete", "--max-delete", "10"]);
    assert_eq!(code, Some(0), "{second}");
    let migration = run_dir(&first)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(migration.join("index.redb").exists());
    assert!(run_dir(&second).join("deletes.txt").exists());

    let finalize = || {
        let out = run(godwit()
            .arg("finalize")
            .arg(&d.src)
            .arg(&d.dst)
            .args(["--json", "--state-dir"])
            .arg(&d.state));
        (out.status.code(), summary(&out))
    };
    let (code, fin) = finalize();
    assert_eq!(code, Some(0), "{fin}");
    assert_eq!(fin["status"]["code"], "981", "{fin}");
    assert_eq!(fin["finalized"]["runs_kept"], 2, "{fin}");
    // The index and the runs' working files are gone; summaries and copy logs stay.
    assert!(!migration.join("index.redb").exists());
    assert!(!run_dir(&second).join("deletes.txt").exists());
    for sum in [&first, &second] {
        assert!(run_dir(sum).join("summary.json").exists());
        assert!(run_dir(sum).join("copylog.jsonl").exists());
    }
    // The source and target are as they were.
    assert_eq!(fs::read(d.dst.join("a.txt")).unwrap(), b"a");
    assert!(!d.dst.join("b.txt").exists());
    let out = run(godwit()
        .args(["runs", "--json", "--state-dir"])
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(first["run_id"].as_str().unwrap()));

    // Nothing more runs on it: AZSM1048, naming the run that closed it.
    let out = run(godwit()
        .arg("sync")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("error[AZSM1048]"), "{err}");
    assert!(err.contains(fin["run_id"].as_str().unwrap()), "{err}");
    // Finalizing again changes nothing, and says so as a success.
    let (code, again) = finalize();
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(again["finalized"]["removed_files"], 0, "{again}");
}

#[test]
fn a_finalize_that_cannot_remove_a_file_is_2090_and_finishes_when_run_again() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"a");
    // As nobody when the tests run as root, so that a folder's permission bits hold.
    let godwit_as = || as_unprivileged(&d.root);
    let (code, first) = sync_with(godwit_as(), &d, &[]);
    assert_eq!(code, Some(0), "{first}");
    write(&d.src.join("b.txt"), b"b");
    let (code, second) = sync_with(godwit_as(), &d, &[]);
    assert_eq!(code, Some(0), "{second}");
    let migration = run_dir(&first)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    // A working file in a folder that may not be changed.
    let stuck = run_dir(&second);
    fs::write(stuck.join("deletes.txt"), b"").unwrap();
    fs::set_permissions(&stuck, fs::Permissions::from_mode(0o555)).unwrap();
    let finalize = || {
        let out = run(godwit_as()
            .arg("finalize")
            .arg(&d.src)
            .arg(&d.dst)
            .args(["--json", "--state-dir"])
            .arg(&d.state));
        (out.status.code(), summary(&out))
    };
    let (code, failed) = finalize();
    fs::set_permissions(&stuck, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code, Some(1), "{failed}");
    assert_eq!(failed["status"]["code"], "982", "{failed}");
    assert_eq!(failed["job_error"]["code"], "2090", "{failed}");
    let message = failed["job_error"]["message"].as_str().unwrap();
    assert!(message.contains("deletes.txt"), "{message}");
    // Not closed: the marker is written last.
    assert!(!migration.join("finalized.json").exists());
    let (code, done) = finalize();
    assert_eq!(code, Some(0), "{done}");
    assert!(!stuck.join("deletes.txt").exists());
    assert!(migration.join("finalized.json").exists());
}
