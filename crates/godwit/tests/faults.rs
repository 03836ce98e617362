//! godwit against a flaky S3: our fault-injecting proxy between godwit and the S3 test server
//! answers 503s, 429s with Retry-After, drops connections and stalls. The copy must still end
//! byte-identical, and a file the store refuses for good must end with its code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::proxy::{Fault, Proxy};
use support::{assert_same_tree, copylog, godwit, run, summary, text, write};

fn s3_endpoint() -> String {
    std::env::var("GODWIT_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("GODWIT_TEST_S3_ENDPOINT is not set: run `bash scripts/test.sh`, which starts the test servers")
    })
}

fn python(args: &[&str]) {
    python_at(None, args);
}

/// tests/support/store.py against the S3 server at `endpoint` (default: moto).
fn python_at(endpoint: Option<&str>, args: &[&str]) {
    let py =
        std::env::var("GODWIT_TEST_PYTHON").expect("GODWIT_TEST_PYTHON, set by scripts/test.sh");
    let mut cmd = Command::new(py);
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/store.py"
    ))
    .args(args);
    if let Some(e) = endpoint {
        cmd.env("STORE_S3_ENDPOINT", e);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "store.py {args:?}: {}",
        text(&out.stderr)
    );
}

fn godwit_via(proxy: &Proxy) -> Command {
    let mut c = godwit();
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &proxy.url)
        // Stalls longer than this are abandoned and retried.
        .env("GODWIT_IO_TIMEOUT", "1.5");
    c
}

fn bucket(name: &str) -> String {
    let b = format!("{name}-{}", std::process::id());
    python(&["mkbucket", &b]);
    b
}

#[test]
fn transient_faults_are_retried_and_a_file_refused_for_good_ends_with_its_code() {
    let upstream = s3_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for i in 0..30u32 {
        write(
            &src.join(format!("d{}/f{i}", i % 3)),
            format!("file {i} ").repeat(100 + i as usize).as_bytes(),
        );
    }
    let big: Vec<u8> = (0..(18u32 << 20)).map(|j| (j % 253) as u8).collect();
    write(&src.join("big.bin"), &big);
    write(
        &src.join("doomed.txt"),
        b"the store will never take this one",
    );
    let b = bucket("faults");

    let proxy = Proxy::start(
        &upstream,
        Box::new(|n, method, path| {
            if path.contains("doomed") && method == "PUT" {
                return Fault::Unavailable;
            }
            match n % 9 {
                1 => Fault::Unavailable,
                3 => Fault::RateLimited,
                5 => Fault::Drop,
                7 if n % 18 == 7 => Fault::Stall(Duration::from_secs(3)),
                _ => Fault::Pass,
            }
        }),
    );
    let out = run(godwit_via(&proxy)
        .arg("copy")
        .arg(&src)
        .arg(format!("s3://{b}/data"))
        .args(["--json", "--state-dir"])
        .arg(dir.path().join("state")));
    let injected = proxy.injected();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}\n{injected:?}",
        text(&out.stderr)
    );
    for kind in ["unavailable", "ratelimited", "drop", "stall"] {
        assert!(
            injected.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} was injected: {injected:?}"
        );
    }
    let sum = summary(&out);
    let log = copylog(sum["run_dir"].as_str().unwrap());
    for r in log.iter().filter(|r| r["code"] != "AZSM0000") {
        eprintln!("not copied: {r}");
    }
    let doomed = log.iter().find(|r| r["path"] == "doomed.txt").unwrap();
    assert_eq!(doomed["code"], "AZSM2066", "{doomed}");
    assert_eq!(doomed["attempts"], 3, "{doomed}");
    assert!(
        doomed["message"].as_str().unwrap().contains("SlowDown"),
        "the reason is kept: {doomed}"
    );
    assert_eq!(sum["counts"]["AZSM0000"], 31, "{sum}");

    // Fetched straight from the S3 server, without the proxy: byte-identical.
    std::fs::remove_file(src.join("doomed.txt")).unwrap();
    let fetched = dir.path().join("fetched");
    python(&["download", "s3", &b, "data", fetched.to_str().unwrap()]);
    assert_same_tree(&src, &fetched);
    assert!(!Path::new(&fetched).join("doomed.txt").exists());
}

#[test]
fn one_request_per_small_file_and_none_per_file_when_nothing_changed() {
    let upstream = s3_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for i in 0..50 {
        write(&src.join(format!("f{i}")), b"small");
    }
    let b = bucket("requests");
    let state = dir.path().join("state");
    let proxy = Proxy::start(&upstream, Box::new(|_, _, _| Fault::Pass));
    let copy = |proxy: &Proxy| {
        run(godwit_via(proxy)
            .arg("copy")
            .arg(&src)
            .arg(format!("s3://{b}/x"))
            .args(["--json", "--state-dir"])
            .arg(&state))
    };
    let out = copy(&proxy);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        proxy.count("PUT"),
        50,
        "one PUT per file: {:?}",
        proxy.counts.lock().unwrap()
    );
    assert_eq!(proxy.count("HEAD"), 0);
    let first_total: u64 = proxy.counts.lock().unwrap().values().sum();
    assert_eq!(
        first_total,
        51,
        "50 PUTs and one listing to check the bucket: {:?}",
        proxy.counts.lock().unwrap()
    );

    // Nothing changed: the only requests are the spot checks, one HEAD for each of about 32
    // files picked at random among the 50 (never all of them, never none).
    let again = Proxy::start(&upstream, Box::new(|_, _, _| Fault::Pass));
    let out = copy(&again);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["counts"]["AZSM2041"], 50);
    let heads = again.count("HEAD");
    let total: u64 = again.counts.lock().unwrap().values().sum();
    assert!(
        (10..50).contains(&heads) && total == heads,
        "only spot checks, about 32 HEADs: {:?}",
        again.counts.lock().unwrap()
    );
    // Without spot checks, and the index saying the bucket was there: no request at all.
    let off = Proxy::start(&upstream, Box::new(|_, _, _| Fault::Pass));
    let out = run(godwit_via(&off)
        .arg("copy")
        .arg(&src)
        .arg(format!("s3://{b}/x"))
        .args(["--json", "--spot-check", "0", "--state-dir"])
        .arg(&state));
    assert_eq!(summary(&out)["counts"]["AZSM2041"], 50);
    let total: u64 = off.counts.lock().unwrap().values().sum();
    assert_eq!(total, 0, "{:?}", off.counts.lock().unwrap());

    // A true-up with nothing to do sends nothing either; with one new file, the bucket check
    // and one PUT.
    let sync = |proxy: &Proxy| {
        run(godwit_via(proxy)
            .arg("sync")
            .arg(&src)
            .arg(format!("s3://{b}/x"))
            .args(["--delete", "--json", "--spot-check", "0", "--state-dir"])
            .arg(&state))
    };
    let quiet = Proxy::start(&upstream, Box::new(|_, _, _| Fault::Pass));
    let out = sync(&quiet);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(quiet.counts.lock().unwrap().values().sum::<u64>(), 0);
    write(&src.join("new"), b"one more");
    let one = Proxy::start(&upstream, Box::new(|_, _, _| Fault::Pass));
    let out = sync(&one);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(one.count("PUT"), 1, "{:?}", one.counts.lock().unwrap());
    assert_eq!(one.counts.lock().unwrap().values().sum::<u64>(), 2);
}

#[test]
fn a_target_gone_since_the_last_run_is_found_at_the_first_write() {
    let upstream = s3_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src.join("a"), b"a");
    let b = bucket("gone");
    let state = dir.path().join("state");
    let proxy = Proxy::start(&upstream, Box::new(|_, _, _| Fault::Pass));
    let out = run(godwit_via(&proxy)
        .arg("sync")
        .arg(&src)
        .arg(format!("s3://{b}/x"))
        .args(["--json", "--state-dir"])
        .arg(&state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    write(&src.join("b"), b"b");
    let out = run(godwit_via(&proxy)
        .arg("sync")
        .arg(&src)
        .arg(format!("s3://{b}/x"))
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("GODWIT_REQUEST_TIMEOUT", "2")
        .args(["--json", "--state-dir"])
        .arg(&state));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("error[AZSM1040]"),
        "{}",
        text(&out.stderr)
    );
}

/// The first upload of every object, and of every part, is damaged on the way; later ones
/// pass. Parts are told apart by object and part number (a new attempt has a new uploadId).
fn damage_first_uploads(upstream: &str) -> Proxy {
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    Proxy::start(
        upstream,
        Box::new(move |_, method, path| {
            let (object, query) = path.split_once('?').unwrap_or((path, ""));
            let part = query
                .split('&')
                .find(|p| p.starts_with("partNumber="))
                .unwrap_or("");
            if method == "PUT" && seen.lock().unwrap().insert(format!("{object}?{part}")) {
                Fault::Corrupt
            } else {
                Fault::Pass
            }
        }),
    )
}

fn strict_s3() -> String {
    std::env::var("GODWIT_TEST_S3S_ENDPOINT").unwrap_or_else(|_| {
        panic!("GODWIT_TEST_S3S_ENDPOINT is not set: run `bash scripts/test.sh`")
    })
}

/// godwit sends a CRC32C with every PUT and part. A store that checks it (S3 does; s3s-fs does
/// for whole objects, moto never) refuses a body damaged on the way, and the file is sent
/// again: what lands is byte-identical, with the default verification.
#[test]
fn a_damaged_body_is_refused_by_a_checking_store_and_sent_again() {
    let upstream = strict_s3();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for i in 0..5 {
        write(
            &src.join(format!("doc{i}.txt")),
            format!("line {i} of a document\n").repeat(200).as_bytes(),
        );
    }
    let bucket = format!("integrity-{}", std::process::id());
    python_at(Some(&upstream), &["mkbucket", &bucket]);
    let proxy = damage_first_uploads(&upstream);
    let out = run(godwit_via(&proxy)
        .arg("copy")
        .arg(&src)
        .arg(format!("s3://{bucket}/x"))
        .args(["--json", "--state-dir"])
        .arg(dir.path().join("state")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(proxy.injected().get("corrupt").copied(), Some(5));
    let sum = summary(&out);
    assert_eq!(sum["counts"]["AZSM0000"], 5);
    for r in copylog(sum["run_dir"].as_str().unwrap()) {
        assert!(
            r["attempts"].as_u64().unwrap() >= 2,
            "refused once, then sent again: {r}"
        );
    }
    let fetched = dir.path().join("fetched");
    python_at(
        Some(&upstream),
        &["download", "s3", &bucket, "x", fetched.to_str().unwrap()],
    );
    assert_same_tree(&src, &fetched);
}

/// s3s-fs stores a damaged part without checking its checksum (its upload_part hashes only for
/// the ETag), so a multipart upload can complete damaged. `--verify full` reads the object back,
/// finds the difference (AZSM2071) and sends the file again.
#[test]
fn verify_full_catches_a_damaged_part_the_store_did_not_check() {
    let upstream = strict_s3();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(
        &src.join("parts.txt"),
        "abcdefghij".repeat(1_100_000).as_bytes(),
    );
    let bucket = format!("parts-{}", std::process::id());
    python_at(Some(&upstream), &["mkbucket", &bucket]);
    let proxy = damage_first_uploads(&upstream);
    let out = run(godwit_via(&proxy)
        .arg("copy")
        .arg(&src)
        .arg(format!("s3://{bucket}/x"))
        .args(["--verify", "full", "--json", "--state-dir"])
        .arg(dir.path().join("state")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        proxy.injected().get("corrupt").copied().unwrap_or(0) >= 2,
        "{:?}",
        proxy.injected()
    );
    let log = copylog(summary(&out)["run_dir"].as_str().unwrap());
    assert_eq!(log[0]["code"], "AZSM0000");
    assert_eq!(
        log[0]["attempts"], 2,
        "the first attempt was read back and found damaged: {}",
        log[0]
    );
    let fetched = dir.path().join("fetched");
    python_at(
        Some(&upstream),
        &["download", "s3", &bucket, "x", fetched.to_str().unwrap()],
    );
    assert_same_tree(&src, &fetched);
}

/// Each way a store can fail a file has its own code in the copy log, with what was being
/// done: a connection dropped on every try (AZSM2065) and a write that stalls past its time
/// (AZSM2067) at the target, a read that stalls (AZSM2064) at the source.
#[test]
fn each_way_a_store_fails_a_file_has_its_code() {
    let upstream = s3_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for name in ["fine.txt", "lost.txt", "stuck.txt"] {
        write(&src.join(name), name.repeat(50).as_bytes());
    }
    let b = bucket("codes");
    let proxy = Proxy::start(
        &upstream,
        Box::new(|_, method, path| match (method, path) {
            ("PUT", p) if p.contains("lost") => Fault::Drop,
            ("PUT", p) if p.contains("stuck") => Fault::Stall(Duration::from_secs(3)),
            ("GET", p) if p.contains("stuck") => Fault::Stall(Duration::from_secs(3)),
            _ => Fault::Pass,
        }),
    );
    let quick = |c: &mut Command| {
        c.env("GODWIT_IO_TIMEOUT", "0.3")
            .env("GODWIT_REQUEST_TIMEOUT", "0.6");
    };
    let mut to_s3 = godwit_via(&proxy);
    quick(&mut to_s3);
    let out = run(to_s3
        .arg("copy")
        .arg(&src)
        .arg(format!("s3://{b}/data"))
        .args(["--json", "--state-dir"])
        .arg(dir.path().join("state")));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let log = copylog(summary(&out)["run_dir"].as_str().unwrap());
    let record = |log: &[serde_json::Value], name: &str| {
        log.iter()
            .find(|r| r["path"] == name)
            .unwrap_or_else(|| panic!("{name} in {log:?}"))
            .clone()
    };
    assert_eq!(record(&log, "fine.txt")["code"], "AZSM0000");
    let lost = record(&log, "lost.txt");
    assert_eq!(
        (lost["code"].as_str(), lost["operation"].as_str()),
        (Some("AZSM2065"), Some("write target")),
        "{lost}"
    );
    let stuck = record(&log, "stuck.txt");
    assert_eq!(stuck["code"], "AZSM2067", "{stuck}");

    // Reading back through the proxy: the stalled object fails with the source's code.
    let direct = run(godwit()
        .arg("copy")
        .arg(&src)
        .arg(format!("s3://{b}/direct"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &upstream)
        .arg("--state-dir")
        .arg(dir.path().join("state-direct")));
    assert_eq!(direct.status.code(), Some(0), "{}", text(&direct.stderr));
    let mut from_s3 = godwit_via(&proxy);
    quick(&mut from_s3);
    let out = run(from_s3
        .arg("copy")
        .arg(format!("s3://{b}/direct"))
        .arg(dir.path().join("back"))
        .args(["--json", "--state-dir"])
        .arg(dir.path().join("state-back")));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let log = copylog(summary(&out)["run_dir"].as_str().unwrap());
    let stuck = record(&log, "stuck.txt");
    assert_eq!(
        (stuck["code"].as_str(), stuck["operation"].as_str()),
        (Some("AZSM2064"), Some("read source")),
        "{stuck}"
    );
    assert_eq!(record(&log, "lost.txt")["code"], "AZSM0000");
}
