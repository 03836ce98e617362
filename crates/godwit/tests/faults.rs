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
    let py =
        std::env::var("GODWIT_TEST_PYTHON").expect("GODWIT_TEST_PYTHON, set by scripts/test.sh");
    let out = Command::new(py)
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

    let again = Proxy::start(&upstream, Box::new(|_, _, _| Fault::Pass));
    let out = copy(&again);
    assert_eq!(summary(&out)["counts"]["AZSM2041"], 50);
    let total: u64 = again.counts.lock().unwrap().values().sum();
    assert_eq!(
        total,
        1,
        "nothing changed: only the bucket check: {:?}",
        again.counts.lock().unwrap()
    );
}
