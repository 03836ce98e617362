//! Data safety at a local target, as someone trying to break it would: a target deleted,
//! emptied or rewritten behind godwit's back, a source folder named like godwit's own, a
//! symbolic link planted at the target, two state directories writing one target, a target
//! that fills up, SIGTERM. Each test is named after the case it reproduces; each asserts the
//! code the user sees and that nothing was lost or touched outside the target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{
    Dirs, SmallDisk, assert_same_tree, copylog, dirs, godwit, run, summary, text, write,
};

/// `godwit COMMAND SRC DST --state-dir STATE --json ARGS...`
fn job(d: &Dirs, command: &str, args: &[&str]) -> Output {
    run(godwit()
        .arg(command)
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .arg("--json")
        .args(args))
}

fn ten_files(src: &Path) {
    for i in 0..10 {
        write(
            &src.join(format!("d{}/f{i}.txt", i % 3)),
            format!("file {i}").as_bytes(),
        );
    }
}

#[test]
fn regression_a_deleted_target_is_never_reported_in_step() {
    let d = dirs();
    ten_files(&d.src);
    assert_eq!(job(&d, "copy", &[]).status.code(), Some(0));
    fs::remove_dir_all(&d.dst).unwrap();

    for command in ["copy", "sync"] {
        let out = job(&d, command, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {err}");
        assert!(err.contains("error[AZSM1028]"), "{command}: {err}");
        assert!(err.contains("--compare target"), "{command}: {err}");
        let sum = summary(&out);
        assert_eq!(sum["state"], "FAILED", "{sum}");
        assert_eq!(sum["job_error"]["code"], "AZSM1028", "{sum}");
        assert!(
            !d.dst.exists(),
            "{command} did not quietly make a new target"
        );
    }
    // What the message says to run repairs it.
    let out = job(&d, "copy", &["--compare", "target"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["counts"]["AZSM0000"], 10);
    assert_same_tree(&d.src, &d.dst);
    let out = job(&d, "copy", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["counts"]["AZSM2041"], 10);
}

#[test]
fn regression_files_deleted_or_rewritten_at_the_target_are_found_and_copied_again() {
    let d = dirs();
    ten_files(&d.src);
    assert_eq!(job(&d, "copy", &[]).status.code(), Some(0));
    fs::remove_file(d.dst.join("d0/f0.txt")).unwrap();
    fs::remove_dir_all(d.dst.join("d1")).unwrap();
    // Other bytes of another size at one file, the same size at another.
    fs::write(d.dst.join("d2/f2.txt"), b"changed behind godwit's back").unwrap();
    fs::write(d.dst.join("d2/f5.txt"), b"FILE 5").unwrap();

    let out = job(&d, "copy", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["job_error"]["code"], "AZSM1028", "{sum}");
    let message = sum["job_error"]["message"].as_str().unwrap();
    // Ten files in the index: every one is checked; d0/f0, d1's three, d2/f2 and d2/f5.
    assert!(message.contains("6 of the 10 files checked"), "{message}");
    assert_eq!(sum["counts"]["AZSM0000"], 6, "{sum}");
    assert_same_tree(&d.src, &d.dst);
    let out = job(&d, "copy", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // With the check off, the index is trusted (and says so by costing nothing).
    fs::remove_file(d.dst.join("d0/f3.txt")).unwrap();
    let out = job(&d, "copy", &["--spot-check", "0"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(summary(&out)["counts"]["AZSM2041"], 10);
}

#[test]
fn regression_a_source_folder_named_godwit_tmp_is_copied_like_any_other() {
    let d = dirs();
    write(&d.src.join(".godwit-tmp/kept.txt"), b"a user's own folder");
    write(&d.src.join("plain.txt"), b"plain");
    let out = job(&d, "copy", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["counts"]["AZSM0000"], 2, "{sum}");
    assert_eq!(
        fs::read(d.dst.join(".godwit-tmp/kept.txt")).unwrap(),
        b"a user's own folder"
    );
    // Even the very name of this migration's temporary folder is an ordinary source name.
    let own = format!(".godwit-tmp-{}", sum["migration_id"].as_str().unwrap());
    write(&d.src.join(&own).join("x.txt"), b"named like godwit's own");
    for _ in 0..2 {
        let out = job(&d, "copy", &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(
            fs::read(d.dst.join(".godwit-tmp/kept.txt")).unwrap(),
            b"a user's own folder",
            "later runs leave it too"
        );
        assert_eq!(
            fs::read(d.dst.join(&own).join("x.txt")).unwrap(),
            b"named like godwit's own"
        );
    }
    assert_eq!(fs::read(d.dst.join("plain.txt")).unwrap(), b"plain");
}

#[test]
fn regression_a_symlink_at_the_target_is_never_written_or_deleted_through() {
    let d = dirs();
    write(&d.src.join("a/f.txt"), b"one");
    write(&d.src.join("a/g.txt"), b"two");
    write(&d.src.join("top.txt"), b"top");
    assert_eq!(job(&d, "sync", &[]).status.code(), Some(0));
    // Someone replaces the folder a at the target with a link to a folder elsewhere, which
    // holds files of the same names.
    let elsewhere = d.root.join("elsewhere");
    write(&elsewhere.join("f.txt"), b"not godwit's");
    write(&elsewhere.join("g.txt"), b"two");
    fs::remove_dir_all(d.dst.join("a")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, d.dst.join("a")).unwrap();
    let before = fs::metadata(elsewhere.join("g.txt"))
        .unwrap()
        .modified()
        .unwrap();

    // The spot checks see that a/g.txt is not at the target as written (it sits behind a
    // link), so the run says the target was altered; neither file is written through the link.
    write(&d.src.join("a/f.txt"), b"one, changed");
    let out = job(&d, "copy", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["state"], "FAILED", "{sum}");
    assert_eq!(sum["job_error"]["code"], "AZSM1028", "{sum}");
    assert_eq!(sum["counts"]["AZSM2073"], 2, "{sum}");
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let f = log.iter().find(|r| r["path"] == "a/f.txt").unwrap();
    assert_eq!(f["code"], "AZSM2073", "{f}");
    assert!(
        f["message"].as_str().unwrap().contains("symbolic link"),
        "{f}"
    );
    assert_eq!(fs::read(elsewhere.join("f.txt")).unwrap(), b"not godwit's");

    // A true-up told to delete g.txt (gone from the source) does not reach through the link.
    fs::remove_file(d.src.join("a/g.txt")).unwrap();
    let out = job(&d, "sync", &["--delete", "--max-delete", "10"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let sum = summary(&out);
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let g = log.iter().find(|r| r["path"] == "a/g.txt").unwrap();
    assert_eq!(g["code"], "AZSM2072", "{g}");
    assert!(
        g["message"].as_str().unwrap().contains("symbolic link"),
        "{g}"
    );
    assert_eq!(sum["true_up"]["deleted"], 0, "{sum}");
    assert_eq!(fs::read(elsewhere.join("g.txt")).unwrap(), b"two");
    assert_eq!(
        fs::metadata(elsewhere.join("g.txt"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    assert_eq!(fs::read(d.dst.join("top.txt")).unwrap(), b"top");
    assert!(
        fs::symlink_metadata(d.dst.join("a"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn regression_two_state_directories_copying_into_one_target_share_no_temporary_folder() {
    let d = dirs();
    // Enough bytes at 2 MiB/s that the two runs overlap for well over a second.
    for i in 0..40 {
        let data: Vec<u8> = (0..200_000u32).map(|j| (j ^ i) as u8).collect();
        write(&d.src.join(format!("f{i:02}.bin")), &data);
    }
    let start = |state: &str| {
        godwit()
            .arg("copy")
            .arg(&d.src)
            .arg(&d.dst)
            .arg("--state-dir")
            .arg(d.root.join(state))
            .args(["--json", "--bwlimit", "2M", "--transfers", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = start("state-a");
    std::thread::sleep(Duration::from_millis(400));
    let second = start("state-b");
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let sum = summary(&out);
        assert_eq!(sum["counts"]["AZSM0000"], 40, "no file failed: {sum}");
    }
    assert_same_tree(&d.src, &d.dst);
    let left: Vec<_> = fs::read_dir(&d.dst)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".godwit-tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn regression_a_full_target_is_a_target_error_and_stops_the_run() {
    let d = dirs();
    let _disk = SmallDisk::mount(&d.dst);
    write(&d.src.join("a-small.txt"), b"fits");
    let big: Vec<u8> = (0..3u32 << 20).map(|j| (j % 251) as u8).collect();
    write(&d.src.join("b-big.bin"), &big);
    for i in 0..20 {
        write(&d.src.join(format!("c/later{i}.txt")), b"would fit");
    }

    let out = job(&d, "copy", &["--transfers", "1"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error[6080]"), "{err}");
    let sum = summary(&out);
    assert_eq!(sum["state"], "FAILED", "never a success: {sum}");
    assert_eq!(sum["job_error"]["code"], "6080", "{sum}");
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let big = log.iter().find(|r| r["path"] == "b-big.bin").unwrap();
    assert_eq!(
        big["code"], "AZSM2066",
        "a target error, not a source one: {big}"
    );
    assert_eq!(big["operation"], "write target", "{big}");
    assert_eq!(big["attempts"], 1, "a full disk is not retried: {big}");
    assert!(
        sum["counts"]["AZSM0000"].as_u64().unwrap_or(0) < 21,
        "the run stopped rather than fail or squeeze in every later file: {sum}"
    );
    assert!(
        !d.dst.join("b-big.bin").exists(),
        "nothing half-written at its name"
    );
}

#[test]
fn regression_sigterm_stops_a_copy_as_cleanly_as_ctrl_c() {
    let d = dirs();
    for i in 0..8 {
        let data: Vec<u8> = (0..300_000u32).map(|j| (j ^ i) as u8).collect();
        write(&d.src.join(format!("f{i}.bin")), &data);
    }
    let child = godwit()
        .arg("copy")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .args(["--json", "--bwlimit", "1M", "--transfers", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(1),
        "it exits by itself, not killed by the signal: {}",
        text(&out.stderr)
    );
    let sum = summary(&out);
    assert_eq!(sum["state"], "STOPPED", "{sum}");
    assert!(text(&out.stderr).contains("stopping"));

    let out = job(&d, "copy", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_tree(&d.src, &d.dst);
}

#[test]
fn the_state_directory_is_readable_by_its_user_only() {
    let d = dirs();
    ten_files(&d.src);
    let out = job(&d, "copy", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run_dir = PathBuf::from(summary(&out)["run_dir"].as_str().unwrap());
    let mode_of = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&fs::metadata(p).unwrap().permissions()) & 0o777
    };
    // The index, copy logs and summaries name a company's files: 0700 from the top down.
    for dir in [
        d.state.clone(),
        d.state.join("migrations"),
        run_dir.parent().unwrap().parent().unwrap().to_path_buf(),
        run_dir.parent().unwrap().to_path_buf(),
        run_dir.clone(),
    ] {
        assert_eq!(mode_of(&dir), 0o700, "{}", dir.display());
    }
}
