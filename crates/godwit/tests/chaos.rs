//! The chaos suite: godwit killed with SIGKILL at random instants of a local, an S3 and an
//! SFTP copy of mixed sizes; a 10% rate of injected faults on an S3 copy; a target that fills
//! up; a source folder that vanishes during a true-up. Each case ends by checking what
//! matters: the target byte-identical to the source, no temporary file left, no open
//! multipart upload, no run that claimed success over a wrong target.
//!
//! CI runs a bounded form (`bash scripts/test.sh`); `bash scripts/chaos.sh` runs the long one
//! (GODWIT_CHAOS_KILLS=20, GODWIT_CHAOS_FILES=10000) and collects the `CHAOS` lines each case
//! prints into the figures of docs/reliability.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::proxy::{Fault, Proxy};
use support::{SmallDisk, assert_same_tree, godwit, is_root, run, summary, text, write};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run `bash scripts/test.sh`"))
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Kills a case makes: 5 in CI, 20 by hand.
fn kills() -> u64 {
    setting("GODWIT_CHAOS_KILLS", 5)
}

/// A figure for docs/reliability.md, on a line scripts/chaos.sh collects.
fn figure(case: &str, facts: &[(&str, u64)]) {
    let facts: Vec<String> = facts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("CHAOS {case}: {}", facts.join(" "));
}

/// A pseudo-random sequence from a seed (no dependency, repeatable from the printed seed).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn seed() -> u64 {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {s}");
    s
}

/// 150 small files (1-20 KB), 8 of 1 MB, 2 of 12 MB (multipart on S3) in nested folders.
fn mixed(src: &Path) -> u64 {
    let mut bytes = 0;
    for i in 0..150u32 {
        let data: Vec<u8> = (0..(1000 + i * 131 % 19_000))
            .map(|j| (j ^ i) as u8)
            .collect();
        bytes += data.len() as u64;
        write(
            &src.join(format!("s{}/t{}/small{i}.bin", i % 5, i % 3)),
            &data,
        );
    }
    for i in 0..8u32 {
        let data: Vec<u8> = (0..1u32 << 20).map(|j| (j % 241) as u8 ^ i as u8).collect();
        bytes += data.len() as u64;
        write(&src.join(format!("medium/m{i}.bin")), &data);
    }
    for i in 0..2u32 {
        let data: Vec<u8> = (0..12u32 << 20)
            .map(|j| (j % 251) as u8 ^ i as u8)
            .collect();
        bytes += data.len() as u64;
        write(&src.join(format!("large/l{i}.bin")), &data);
    }
    bytes
}

fn s3_env(c: &mut Command, endpoint: &str) {
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("GODWIT_SFTP_KEY", var("GODWIT_TEST_SFTP_KEY"));
}

fn store_py(args: &[&str]) -> String {
    let out = Command::new(var("GODWIT_TEST_PYTHON"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/store.py"
        ))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "store.py {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// How a kill loop went.
struct Killed {
    /// Kills that landed while the run was going on (the others found it finished).
    mid_run: u64,
    /// Runs that exited 0 while the target was not byte-identical (checked with `lost`).
    false_successes: u64,
    /// Files missing or different at the target after the last run.
    lost: u64,
}

/// Copies `src` to `url` again and again at `rate` (so that a run is still going when the
/// kill comes), each run killed with SIGKILL at a random instant, then once to the end. `lost` counts the files the target does not hold as the source
/// does; it is asked after every run that exited 0 (a run that says it succeeded must be
/// right) and after the last.
fn kill_loop(
    src: &Path,
    (url, rate): (&str, &str),
    state: &Path,
    endpoint: &str,
    lost: &dyn Fn() -> u64,
) -> Killed {
    let mut seed = seed();
    let (mut mid_run, mut false_successes) = (0, 0);
    for _ in 0..kills() {
        let mut c = godwit();
        c.arg("copy")
            .arg(src)
            .arg(url)
            .arg("--state-dir")
            .arg(state)
            .args(["--bwlimit", rate, "--transfers", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        s3_env(&mut c, endpoint);
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(30 + next(&mut seed) % 2000));
        let _ = child.kill();
        match child.wait().unwrap().code() {
            None => mid_run += 1,
            Some(0) if lost() > 0 => false_successes += 1,
            Some(_) => {}
        }
    }
    let mut c = godwit();
    c.arg("copy")
        .arg(src)
        .arg(url)
        .arg("--state-dir")
        .arg(state)
        .arg("--json");
    s3_env(&mut c, endpoint);
    let out = run(&mut c);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let left = lost();
    Killed {
        mid_run,
        false_successes: false_successes + u64::from(left > 0),
        lost: left,
    }
}

/// No temporary folder of godwit's with anything in it under `root`.
fn no_temp_files(root: &Path) -> bool {
    fs::read_dir(root).unwrap().flatten().all(|e| {
        !e.file_name().to_string_lossy().starts_with(".godwit-tmp-")
            || fs::read_dir(e.path()).unwrap().all(|r| {
                r.map(|r| fs::read_dir(r.path()).map_or(true, |mut d| d.next().is_none()))
                    .unwrap_or(true)
            })
    })
}

/// Files of `src` missing or different under `dst`.
fn lost(src: &Path, dst: &Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(src).unwrap().flatten() {
        let other = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            n += lost(&e.path(), &other);
        } else if fs::read(e.path()).ok() != fs::read(&other).ok() {
            n += 1;
        }
    }
    n
}

#[test]
fn chaos_kill_9_during_a_local_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, state) = (
        dir.path().join("src"),
        dir.path().join("dst"),
        dir.path().join("st"),
    );
    mixed(&src);
    let k = kill_loop(
        &src,
        (dst.to_str().unwrap(), "4M"),
        &state,
        "http://127.0.0.1:9",
        &|| lost(&src, &dst),
    );
    figure(
        "local",
        &[
            ("kills", kills()),
            ("mid_run", k.mid_run),
            ("files_lost", k.lost),
            ("false_successes", k.false_successes),
        ],
    );
    assert_eq!((k.lost, k.false_successes), (0, 0));
    assert_same_tree(&src, &dst);
    assert!(no_temp_files(&dst));
}

#[test]
fn chaos_kill_9_during_an_s3_copy() {
    let endpoint = var("GODWIT_TEST_S3_ENDPOINT");
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("st"));
    mixed(&src);
    let bucket = format!("chaos-{}", std::process::id());
    store_py(&["mkbucket", &bucket]);
    let url = format!("s3://{bucket}/share");
    let fetched = dir.path().join("fetched");
    let k = kill_loop(&src, (&url, "4M"), &state, &endpoint, &|| {
        let _ = fs::remove_dir_all(&fetched);
        store_py(&[
            "download",
            "s3",
            &bucket,
            "share",
            fetched.to_str().unwrap(),
        ]);
        lost(&src, &fetched)
    });
    let open: Vec<String> =
        serde_json::from_str(&store_py(&["uploads", "s3", &bucket, "share/"])).unwrap();
    figure(
        "s3",
        &[
            ("kills", kills()),
            ("mid_run", k.mid_run),
            ("files_lost", k.lost),
            ("open_uploads", open.len() as u64),
            ("false_successes", k.false_successes),
        ],
    );
    assert_eq!((k.lost, k.false_successes), (0, 0));
    assert_same_tree(&src, &fetched);
    assert!(
        open.is_empty(),
        "no multipart upload is left open: {open:?}"
    );
}

#[test]
fn chaos_kill_9_during_an_sftp_copy() {
    let endpoint = var("GODWIT_TEST_SFTP_ENDPOINT");
    let root = PathBuf::from(var("GODWIT_TEST_SFTP_ROOT"));
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("st"));
    mixed(&src);
    let sub = format!("chaos-{}", std::process::id());
    let rest = endpoint.trim_start_matches("ssh://");
    let url = format!("sftp://{rest}{}/{sub}", root.display());
    let on_disk = root.join(&sub);
    let k = kill_loop(&src, (&url, "4M"), &state, "http://127.0.0.1:9", &|| {
        lost(&src, &on_disk)
    });
    let clean = no_temp_files(&on_disk);
    figure(
        "sftp",
        &[
            ("kills", kills()),
            ("mid_run", k.mid_run),
            ("files_lost", k.lost),
            ("stray_temp_files", u64::from(!clean)),
            ("false_successes", k.false_successes),
        ],
    );
    assert_eq!((k.lost, k.false_successes), (0, 0));
    assert_same_tree(&src, &on_disk);
    assert!(clean, "no temporary file is left at the target");
}

#[test]
fn chaos_ten_percent_of_s3_requests_fail() {
    let files = setting("GODWIT_CHAOS_FILES", 1000);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for i in 0..files {
        write(
            &src.join(format!("d{}/f{i}.txt", i % 50)),
            format!("file {i} ")
                .repeat(1 + (i % 40) as usize)
                .as_bytes(),
        );
    }
    let bucket = format!("chaos-faults-{}", std::process::id());
    store_py(&["mkbucket", &bucket]);
    // One request in ten: a 503, a 429 with Retry-After, or a dropped connection.
    let proxy = Proxy::start(
        &var("GODWIT_TEST_S3_ENDPOINT"),
        Box::new(|n, _, _| match n % 30 {
            3 => Fault::Unavailable,
            13 => Fault::RateLimited,
            23 => Fault::Drop,
            _ => Fault::Pass,
        }),
    );
    let mut c = godwit();
    c.arg("copy")
        .arg(&src)
        .arg(format!("s3://{bucket}/share"))
        .arg("--state-dir")
        .arg(dir.path().join("st"))
        .arg("--json");
    s3_env(&mut c, &proxy.url);
    let out = run(&mut c);
    let injected: u64 = proxy.injected().values().sum();
    let requests: u64 = proxy.counts.lock().unwrap().values().sum();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["counts"]["AZSM0000"], files, "{sum}");
    let fetched = dir.path().join("fetched");
    store_py(&[
        "download",
        "s3",
        &bucket,
        "share",
        fetched.to_str().unwrap(),
    ]);
    let lost = lost(&src, &fetched);
    figure(
        "s3_faults",
        &[
            ("files", files),
            ("requests", requests),
            ("faults_injected", injected),
            ("files_lost", lost),
            ("false_successes", 0),
        ],
    );
    assert!(injected * 100 >= requests * 9, "{injected} of {requests}");
    assert_eq!(lost, 0);
}

#[test]
fn chaos_a_target_that_fills_up() {
    assert!(
        is_root(),
        "this case mounts a small tmpfs, which needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, state) = (
        dir.path().join("src"),
        dir.path().join("dst"),
        dir.path().join("st"),
    );
    mixed(&src);
    fs::create_dir_all(&dst).unwrap();
    let mount = |opts: &str| {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(&dst)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {}", text(&out.stderr));
    };
    mount("size=8m");
    let copy = || {
        run(godwit()
            .arg("copy")
            .arg(&src)
            .arg(&dst)
            .arg("--state-dir")
            .arg(&state)
            .arg("--json"))
    };
    let full = copy();
    let sum = summary(&full);
    let false_success = u64::from(sum["state"] == "SUCCEEDED");
    // The disk grows (as when someone frees space), and the same command finishes the job.
    mount("remount,size=64m");
    let done = copy();
    let lost = lost(&src, &dst);
    let clean = no_temp_files(&dst);
    let _ = Command::new("umount").arg(&dst).status();
    figure(
        "target_full",
        &[
            ("fills", 1),
            ("false_successes", false_success),
            ("files_lost", lost),
            ("stray_temp_files", u64::from(!clean)),
        ],
    );
    assert_eq!(full.status.code(), Some(1), "{}", text(&full.stderr));
    assert_eq!(sum["job_error"]["code"], "6080", "{sum}");
    assert_eq!(false_success, 0);
    assert_eq!(done.status.code(), Some(0), "{}", text(&done.stderr));
    assert_eq!(lost, 0);
    assert!(clean);
}

#[test]
fn a_pre_check_refuses_a_target_too_small_before_writing_anything() {
    assert!(
        is_root(),
        "this case mounts a small tmpfs, which needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, state) = (
        dir.path().join("src"),
        dir.path().join("dst"),
        dir.path().join("st"),
    );
    for i in 0..3u8 {
        write(&src.join(format!("f{i}.bin")), &vec![i; 1 << 20]);
    }
    let out = run(godwit()
        .arg("scan")
        .arg(&src)
        .arg("--state-dir")
        .arg(&state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let disk = SmallDisk::mount(&dst);
    let out = run(godwit()
        .arg("copy")
        .arg(&src)
        .arg(&dst)
        .arg("--state-dir")
        .arg(&state)
        .arg("--json"));
    let left: Vec<_> = fs::read_dir(&dst)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    drop(disk);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["job_error"]["code"], "6080", "{sum}");
    let message = sum["job_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("1.0 MiB free") && message.contains("3.0 MiB needed"),
        "{message}"
    );
    assert!(
        left.is_empty(),
        "nothing is written before the check: {left:?}"
    );
    assert_eq!(sum["files"], 0, "{sum}");
}

#[test]
fn chaos_a_source_folder_vanishes_during_a_true_up() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, state) = (
        dir.path().join("src"),
        dir.path().join("dst"),
        dir.path().join("st"),
    );
    for i in 0..2000u32 {
        write(
            &src.join(format!("d{:02}/f{i}.txt", i % 10)),
            format!("{i}").as_bytes(),
        );
    }
    let sync = |extra: &[&str]| {
        godwit()
            .arg("sync")
            .arg(&src)
            .arg(&dst)
            .arg("--state-dir")
            .arg(&state)
            .args(["--json", "--delete"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    assert_eq!(sync(&[]).wait_with_output().unwrap().status.code(), Some(0));
    // Changed files keep the next true-up busy while a folder of 200 files disappears.
    for i in (0..2000u32).step_by(7) {
        write(&src.join(format!("d{:02}/f{i}.txt", i % 10)), &[b'c'; 2000]);
    }
    let child = sync(&["--bwlimit", "200K"]);
    std::thread::sleep(Duration::from_millis(300));
    fs::remove_dir_all(src.join("d03")).unwrap();
    let first = child.wait_with_output().unwrap();
    let again = sync(&[]).wait_with_output().unwrap();
    // The true-up that saw the folder gone (this one or the next) pauses for review: 200 of
    // 2,000 files is over the default limit (5%). Nothing of the folder is deleted unasked.
    let paused = [&first, &again]
        .iter()
        .filter(|o| o.status.code() == Some(4))
        .count() as u64;
    let still_there = fs::read_dir(dst.join("d03")).map_or(0, |d| d.count() as u64);
    let false_successes = [&first, &again]
        .iter()
        .filter(|o| {
            o.status.code() == Some(0)
                && summary(o)["true_up"]["gone_from_source"]
                    .as_u64()
                    .unwrap_or(0)
                    > 0
        })
        .count() as u64;
    figure(
        "source_vanishes",
        &[
            ("paused_for_review", paused),
            ("deleted_unasked", 200 - still_there),
            ("false_successes", false_successes),
        ],
    );
    assert_eq!(still_there, 200, "{}", text(&first.stderr));
    assert!(
        paused >= 1,
        "{}\n{}",
        text(&first.stderr),
        text(&again.stderr)
    );
    assert_eq!(false_successes, 0);
}
