//! Scan and copy against real servers on loopback: S3 (moto), Azure Blob (Azurite) and SFTP
//! (OpenSSH). scripts/test.sh starts them and exports where they are; what godwit wrote is
//! checked with tools that are not godwit (the SDKs of each store, the SFTP server's disk).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use support::{assert_same_tree, copylog, godwit, run, summary, text, write};

/// Azurite's well-known development account key (public, documented for the emulator).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

struct Servers {
    s3: String,
    azure_conn: String,
    sftp: String,
    sftp_key: String,
    sftp_root: PathBuf,
    python: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the store tests need the test servers. Run `bash scripts/test.sh` \
             (it installs and starts them), or `bash scripts/servers.sh install && bash \
             scripts/servers.sh start && source .test-servers/env` before cargo test."
        )
    })
}

fn servers() -> Servers {
    Servers {
        s3: var("GODWIT_TEST_S3_ENDPOINT"),
        azure_conn: format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={};",
            var("GODWIT_TEST_AZURE_ENDPOINT")
        ),
        sftp: var("GODWIT_TEST_SFTP_ENDPOINT"),
        sftp_key: var("GODWIT_TEST_SFTP_KEY"),
        sftp_root: PathBuf::from(var("GODWIT_TEST_SFTP_ROOT")),
        python: var("GODWIT_TEST_PYTHON"),
    }
}

impl Servers {
    /// `godwit` with the credentials and endpoints of the test servers in its environment.
    fn godwit(&self) -> Command {
        let mut c = godwit();
        c.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.s3)
            .env("AZURE_STORAGE_CONNECTION_STRING", &self.azure_conn)
            .env("GODWIT_SFTP_KEY", &self.sftp_key);
        c
    }

    /// Runs tests/support/store.py with the SDKs.
    fn store(&self, args: &[&str]) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/store.py");
        let out = Command::new(&self.python)
            .arg(script)
            .args(args)
            .env("AZURE_STORAGE_CONNECTION_STRING", &self.azure_conn)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "store.py {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `sftp://user@127.0.0.1:PORT/<root>/<sub>`
    fn sftp_url(&self, sub: &str) -> String {
        let rest = self.sftp.trim_start_matches("ssh://");
        format!("sftp://{rest}{}/{sub}", self.sftp_root.display())
    }
}

/// A bucket or container name no other test uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Small files in nested folders, an empty file, a name with spaces and accents, and a file of
/// 20 MiB, which is uploaded in parts.
fn tree(root: &Path) -> u64 {
    let mut bytes = 0;
    for i in 0..40u32 {
        let data: Vec<u8> = (0..(i * 97 % 3000 + 1)).map(|j| (j ^ i) as u8).collect();
        bytes += data.len() as u64;
        write(
            &root.join(format!("d{}/sub{}/f{i}.bin", i % 4, i % 3)),
            &data,
        );
    }
    write(&root.join("empty"), b"");
    write(&root.join("café et crème/nom à espaces.txt"), b"accents");
    let big: Vec<u8> = (0..20u32 << 20).map(|j| (j % 251) as u8).collect();
    write(&root.join("big/large.bin"), &big);
    bytes + 7 + big.len() as u64
}

/// Copies the tree to `url`, checks the run, and that a second run sends nothing.
fn copy_there_and_check(s: &Servers, src: &Path, url: &str, state: &Path, bytes: u64) {
    let out = run(s
        .godwit()
        .arg("copy")
        .arg(src)
        .arg(url)
        .arg("--state-dir")
        .arg(state)
        .arg("--json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["counts"]["AZSM0000"], 43, "{sum}");
    assert_eq!(sum["bytes_copied"], bytes);

    let out = run(s
        .godwit()
        .arg("copy")
        .arg(src)
        .arg(url)
        .arg("--state-dir")
        .arg(state)
        .arg("--json"));
    let sum = summary(&out);
    assert_eq!(
        sum["counts"]["AZSM2041"], 43,
        "the second run sends nothing: {sum}"
    );
    assert_eq!(sum["bytes_copied"], 0);
}

/// Copies `url` back to the local folder `back`: every file arrives, byte-identical to `src`.
fn copy_back(s: &Servers, url: &str, src: &Path, back: &Path, state: &Path) {
    let out = run(s
        .godwit()
        .arg("copy")
        .arg(url)
        .arg(back)
        .arg("--state-dir")
        .arg(state)
        .arg("--json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["counts"]["AZSM0000"], 43);
    assert_same_tree(src, back);
}

#[test]
fn s3_copy_there_and_back() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    let bytes = tree(&src);
    let bucket = unique("copy");
    s.store(&["mkbucket", &bucket]);
    let url = format!("s3://{bucket}/migrated/share");
    copy_there_and_check(&s, &src, &url, &state, bytes);

    let fetched = dir.path().join("fetched");
    s.store(&[
        "download",
        "s3",
        &bucket,
        "migrated/share",
        fetched.to_str().unwrap(),
    ]);
    assert_same_tree(&src, &fetched);
    // The source's modification time travels as metadata.
    let meta: serde_json::Value =
        serde_json::from_str(&s.store(&["meta", "s3", &bucket, "migrated/share/d1/sub1/f1.bin"]))
            .unwrap();
    let mtime = fs::metadata(src.join("d1/sub1/f1.bin"))
        .unwrap()
        .modified()
        .unwrap();
    let ns = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    assert_eq!(meta["godwitmtime"], ns.as_str());

    // And back, from the store to a local folder.
    copy_back(&s, &url, &src, &dir.path().join("back"), &state);
}

#[test]
fn azure_copy_there_and_back() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    let bytes = tree(&src);
    let container = unique("copy");
    s.store(&["mkcontainer", &container]);
    let url = format!("az://{container}/share");
    copy_there_and_check(&s, &src, &url, &state, bytes);

    let fetched = dir.path().join("fetched");
    s.store(&[
        "download",
        "az",
        &container,
        "share",
        fetched.to_str().unwrap(),
    ]);
    assert_same_tree(&src, &fetched);

    copy_back(&s, &url, &src, &dir.path().join("back"), &state);
}

#[test]
fn sftp_copy_there_and_back() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    let bytes = tree(&src);
    let sub = unique("copy");
    let url = s.sftp_url(&sub);
    copy_there_and_check(&s, &src, &url, &state, bytes);
    // Straight from the server's disk; nothing left under a temporary name.
    let on_server = s.sftp_root.join(&sub);
    assert_same_tree(&src, &on_server);
    let temps: Vec<_> = fs::read_dir(&on_server)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".godwit-tmp-"))
        .collect();
    assert!(
        temps
            .iter()
            .all(|t| fs::read_dir(t.path()).unwrap().next().is_none()),
        "nothing is left under a temporary name: {temps:?}"
    );
    // Modification times arrive, in the whole seconds SFTP keeps.
    for rel in [
        "d1/sub1/f1.bin",
        "big/large.bin",
        "café et crème/nom à espaces.txt",
    ] {
        let secs = |p: &Path| {
            fs::metadata(p)
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(secs(&on_server.join(rel)), secs(&src.join(rel)), "{rel}");
    }
    // A file rewritten at the source replaces the one at the target.
    write(
        &src.join("d1/sub1/f1.bin"),
        b"rewritten, and of another size",
    );
    let out = run(s
        .godwit()
        .arg("copy")
        .arg(&src)
        .arg(&url)
        .arg("--state-dir")
        .arg(&state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        fs::read(on_server.join("d1/sub1/f1.bin")).unwrap(),
        b"rewritten, and of another size"
    );

    copy_back(&s, &url, &src, &dir.path().join("back"), &state);
}

/// The session a copy writes over breaks (its `ssh` processes killed) in the middle of a run:
/// the files in flight are tried again over a new session, and every file arrives.
#[test]
fn sftp_copy_survives_a_lost_session() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    for i in 0..150u32 {
        write(&src.join(format!("d{}/f{i}.bin", i % 5)), &[i as u8; 4096]);
    }
    let sub = unique("lost");
    let on_server = s.sftp_root.join(&sub);
    // About three seconds at 200 KB/s, so that the kill lands mid-run.
    let child = s
        .godwit()
        .arg("copy")
        .arg(&src)
        .arg(s.sftp_url(&sub))
        .arg("--state-dir")
        .arg(&state)
        .args(["--bwlimit", "200K", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let arrived = || {
        (0..5)
            .map(|d| fs::read_dir(on_server.join(format!("d{d}"))).map_or(0, |r| r.count()))
            .sum::<usize>()
    };
    let started = std::time::Instant::now();
    while arrived() < 20 {
        assert!(
            started.elapsed().as_secs() < 60,
            "no file arrived in a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // godwit's own children are the `ssh` processes of its sessions' channels (their masters
    // run on their own): only this run's are killed, not other tests'.
    let killed = Command::new("pkill")
        .args(["-9", "-P", &child.id().to_string(), "ssh"])
        .status()
        .unwrap();
    assert!(killed.success(), "pkill found the run's ssh processes");
    let before = arrived();
    assert!(
        before < 150,
        "the kill landed before the end ({before} files there)"
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["counts"]["AZSM0000"], 150, "{sum}");
    assert_same_tree(&src, &on_server);
}

#[test]
fn scan_reads_every_kind_of_source() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    let bytes = tree(&src);
    let bucket = unique("scan");
    s.store(&["mkbucket", &bucket]);
    let container = unique("scan");
    s.store(&["mkcontainer", &container]);
    let urls = [
        format!("s3://{bucket}/x"),
        format!("az://{container}/x"),
        s.sftp_url(&unique("scan")),
    ];
    for url in &urls {
        let out = run(s
            .godwit()
            .arg("copy")
            .arg(&src)
            .arg(url)
            .arg("--state-dir")
            .arg(&state));
        assert_eq!(out.status.code(), Some(0), "{url}: {}", text(&out.stderr));
    }
    for url in std::iter::once(src.display().to_string()).chain(urls) {
        let out = run(s
            .godwit()
            .arg("scan")
            .arg(&url)
            .args(["--json", "--target-profile", "windows", "--state-dir"])
            .arg(&state));
        assert_eq!(out.status.code(), Some(0), "{url}: {}", text(&out.stderr));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["files"], 43, "{url}: {r}");
        assert_eq!(r["bytes"], bytes, "{url}");
        assert_eq!(r["status"]["code"], "932");
    }
}

#[test]
fn verify_full_reads_back_what_was_written() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src.join("a.txt"), b"read me back");
    write(&src.join("b/c.bin"), &vec![9u8; 9 << 20]);
    let bucket = unique("verify");
    s.store(&["mkbucket", &bucket]);
    let out = run(s
        .godwit()
        .arg("copy")
        .arg(&src)
        .arg(format!("s3://{bucket}"))
        .args(["--verify", "full", "--json", "--state-dir"])
        .arg(dir.path().join("state")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let log = copylog(summary(&out)["run_dir"].as_str().unwrap());
    assert_eq!(log.len(), 2);
    for r in log {
        assert_eq!(r["code"], "AZSM0000");
        assert!(
            r["checksum"].as_str().unwrap().starts_with("xxh3-128:"),
            "{r}"
        );
    }
}

#[test]
fn an_unreachable_or_missing_target_is_a_job_error_with_its_code() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src.join("a"), b"x");
    let out = run(s
        .godwit()
        .arg("copy")
        .arg(&src)
        .arg("s3://no-such-bucket-here/x")
        .arg("--state-dir")
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(said.contains("error[AZSM1022]"), "{said}");
    // What the store said, in a line: not the request and every header of the answer.
    assert!(
        said.contains("NoSuchBucket: The specified bucket does not exist")
            && !said.contains("headers")
            && !said.contains("list-type"),
        "{said}"
    );

    let out = run(s
        .godwit()
        .arg("copy")
        .arg(&src)
        .arg("s3://b/x")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .arg("--state-dir")
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("error[AZSM1040]") && said.contains("Connection refused"),
        "{said}"
    );

    let out = run(godwit()
        .arg("copy")
        .arg(&src)
        .arg("az://c/x")
        .env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .env_remove("AZURE_STORAGE_ACCOUNT")
        .arg("--state-dir")
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("AZURE_STORAGE_CONNECTION_STRING"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn copy_to_memory() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let out = run(godwit()
        .arg("copy")
        .arg(&src)
        .arg("memory://m/x")
        .args(["--json", "--state-dir"])
        .arg(dir.path().join("s")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["counts"]["AZSM0000"], 43);
}

#[test]
fn compare_target_on_s3_finds_what_is_already_there() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src);
    let bucket = unique("compare");
    s.store(&["mkbucket", &bucket]);
    let url = format!("s3://{bucket}/x");
    let out = run(s
        .godwit()
        .arg("copy")
        .arg(&src)
        .arg(&url)
        .arg("--state-dir")
        .arg(dir.path().join("first")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Another state directory: no index. The target itself says all 43 files are there.
    write(&src.join("new.txt"), b"one more");
    let out = run(s
        .godwit()
        .arg("copy")
        .arg(&src)
        .arg(&url)
        .args(["--compare", "target", "--json", "--state-dir"])
        .arg(dir.path().join("second")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["counts"]["AZSM2042"], 43, "{sum}");
    assert_eq!(sum["counts"]["AZSM0000"], 1, "{sum}");
}

/// What the target holds, relative to the migration's root: keys (with `name/` markers) on
/// object stores, files and folders (folders with a trailing `/`) on the SFTP server's disk.
fn target_names(s: &Servers, kind: &str, name: &str, prefix: &str) -> Vec<String> {
    if kind == "sftp" {
        let root = s.sftp_root.join(name);
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(&root).unwrap().display().to_string();
                if rel.starts_with(".godwit-tmp-") {
                    continue;
                }
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                    out.push(format!("{rel}/"));
                } else {
                    out.push(rel);
                }
            }
        }
        out.sort();
        return out;
    }
    serde_json::from_str(&s.store(&["keys", kind, name, prefix])).unwrap()
}

#[test]
fn sync_deletes_and_empty_folders_on_every_store_and_back() {
    let s = servers();
    for kind in ["s3", "az", "sftp"] {
        let dir = tempfile::tempdir().unwrap();
        let (src, state) = (dir.path().join("src"), dir.path().join("state"));
        write(&src.join("a.txt"), b"a");
        write(&src.join("sub/b.txt"), b"b");
        write(&src.join("sub/gone.txt"), b"gone");
        write(&src.join("sub-x"), b"sorts between sub and sub/");
        let moved: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        write(&src.join("big/moved.bin"), &moved);
        fs::create_dir_all(src.join("emptydir")).unwrap();
        fs::create_dir_all(src.join("nested/empty")).unwrap();
        let name = unique("sync");
        let url = match kind {
            "s3" => {
                s.store(&["mkbucket", &name]);
                format!("s3://{name}/share")
            }
            "az" => {
                s.store(&["mkcontainer", &name]);
                format!("az://{name}/share")
            }
            _ => s.sftp_url(&name),
        };
        let sync = |from: &str, to: &str, extra: &[&str]| {
            let out = run(s
                .godwit()
                .args(["sync", from, to, "--json", "--state-dir"])
                .arg(&state)
                .args(extra));
            assert_eq!(
                out.status.code(),
                Some(0),
                "{kind} {from} -> {to}: {}",
                text(&out.stderr)
            );
            summary(&out)
        };
        let src_s = src.to_str().unwrap();
        let sum = sync(src_s, &url, &["--create-empty-dirs"]);
        assert_eq!(sum["counts"]["AZSM0000"], 5, "{kind}: {sum}");
        let prefix = if kind == "sftp" { "" } else { "share" };
        let names = target_names(&s, kind, &name, prefix);
        for want in ["emptydir/", "nested/empty/", "a.txt", "sub/gone.txt"] {
            assert!(
                names.contains(&want.to_string()),
                "{kind}: {want} in {names:?}"
            );
        }

        // A file goes, and another moves: the move is followed at the target, not re-sent.
        fs::remove_file(src.join("sub/gone.txt")).unwrap();
        fs::create_dir_all(src.join("elsewhere")).unwrap();
        fs::rename(src.join("big/moved.bin"), src.join("elsewhere/renamed.bin")).unwrap();
        let sum = sync(src_s, &url, &["--delete", "--max-delete", "5"]);
        assert_eq!(sum["true_up"]["deleted"], 1, "{kind}: {sum}");
        assert_eq!(sum["counts"]["AZSM2044"], 1, "{kind}: {sum}");
        assert_eq!(sum["bytes_copied"], 0, "{kind}: {sum}");
        let names = target_names(&s, kind, &name, prefix);
        assert!(
            names.contains(&"elsewhere/renamed.bin".to_string()),
            "{kind}: {names:?}"
        );
        assert!(
            !names.contains(&"big/moved.bin".to_string()),
            "{kind}: {names:?}"
        );
        assert!(
            !names.contains(&"sub/gone.txt".to_string()),
            "{kind}: {names:?}"
        );
        assert!(
            names.contains(&"sub/b.txt".to_string()),
            "{kind}: {names:?}"
        );

        // Back from the store: the remote listing finds deletions there too.
        let back = dir.path().join("back");
        let back_s = back.to_str().unwrap();
        let sum = sync(&url, back_s, &["--create-empty-dirs"]);
        assert_eq!(sum["counts"]["AZSM0000"], 4, "{kind}: {sum}");
        assert_eq!(fs::read(back.join("elsewhere/renamed.bin")).unwrap(), moved);
        assert!(back.join("emptydir").is_dir(), "{kind}");
        fs::remove_file(src.join("a.txt")).unwrap();
        sync(src_s, &url, &["--delete", "--max-delete", "5"]);
        let sum = sync(&url, back_s, &["--delete", "--max-delete", "5"]);
        assert_eq!(sum["true_up"]["gone_from_source"], 1, "{kind}: {sum}");
        assert_eq!(sum["true_up"]["deleted"], 1, "{kind}: {sum}");
        assert!(!back.join("a.txt").exists(), "{kind}");
        assert_eq!(
            fs::read(back.join("sub-x")).unwrap(),
            b"sorts between sub and sub/"
        );
        assert_eq!(fs::read(back.join("sub/b.txt")).unwrap(), b"b");
    }
}

#[test]
fn empty_folders_command_makes_markers_on_s3() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src.join("f.txt"), b"f");
    fs::create_dir_all(src.join("only/empty")).unwrap();
    let bucket = unique("empty");
    s.store(&["mkbucket", &bucket]);
    let out = run(s
        .godwit()
        .arg("empty-folders")
        .arg(&src)
        .arg(format!("s3://{bucket}/p"))
        .args(["--json", "--state-dir"])
        .arg(dir.path().join("state")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["status"]["code"], "122");
    let keys = target_names(&s, "s3", &bucket, "p");
    assert_eq!(keys, ["only/empty/"]);
}

/// `godwit copy SRC URL --state-dir STATE --json ARGS...` with the test servers' credentials.
fn copy_to(
    s: &Servers,
    src: &Path,
    url: &str,
    state: &Path,
    args: &[&str],
) -> std::process::Output {
    run(s
        .godwit()
        .arg("copy")
        .arg(src)
        .arg(url)
        .arg("--state-dir")
        .arg(state)
        .arg("--json")
        .args(args))
}

#[test]
fn regression_an_emptied_s3_prefix_is_never_reported_in_step() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    tree(&src);
    let bucket = unique("emptied");
    s.store(&["mkbucket", &bucket]);
    let url = format!("s3://{bucket}/share");
    assert_eq!(copy_to(&s, &src, &url, &state, &[]).status.code(), Some(0));
    s.store(&["delete", "s3", &bucket, "share/"]);

    let out = copy_to(&s, &src, &url, &state, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error[AZSM1028]") && err.contains("--compare target"),
        "{err}"
    );
    let sum = summary(&out);
    assert_eq!(sum["state"], "FAILED", "{sum}");
    // About 32 of the 43 files in the index are checked, found gone and sent again; the others
    // are not looked at (which is why the message says to run with --compare target).
    let sent = sum["counts"]["AZSM0000"].as_u64().unwrap();
    assert!((10..=43).contains(&sent), "{sum}");
    assert_eq!(
        sent + sum["counts"]["AZSM2041"].as_u64().unwrap_or(0),
        43,
        "{sum}"
    );
    let message = sum["job_error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{sent} of the {sent} files checked")),
        "{message}"
    );

    // Some objects deleted, one rewritten by another tool with the same size.
    s.store(&["delete", "s3", &bucket, "share/d1/"]);
    s.store(&[
        "put",
        "s3",
        &bucket,
        "share/café et crème/nom à espaces.txt",
        "ACCENTS",
    ]);
    let out = copy_to(&s, &src, &url, &state, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["job_error"]["code"], "AZSM1028");
    // What the message says to run puts every object back.
    let out = copy_to(&s, &src, &url, &state, &["--compare", "target"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let fetched = dir.path().join("fetched");
    s.store(&[
        "download",
        "s3",
        &bucket,
        "share",
        fetched.to_str().unwrap(),
    ]);
    assert_same_tree(&src, &fetched);
}

#[test]
fn regression_compare_target_on_s3_repairs_a_same_size_rewrite() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    tree(&src);
    let bucket = unique("rewrite");
    s.store(&["mkbucket", &bucket]);
    let url = format!("s3://{bucket}/share");
    assert_eq!(copy_to(&s, &src, &url, &state, &[]).status.code(), Some(0));
    // Other bytes of the same size, written without godwit.
    let key = "share/café et crème/nom à espaces.txt";
    s.store(&["put", "s3", &bucket, key, "ACCENTS"]);

    let out = copy_to(&s, &src, &url, &state, &["--compare", "target"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(
        sum["counts"]["AZSM0000"], 1,
        "only the rewritten object is sent: {sum}"
    );
    assert_eq!(sum["counts"]["AZSM2042"], 42, "{sum}");
    let log = copylog(sum["run_dir"].as_str().unwrap());
    let sent = log.iter().find(|r| r["code"] == "AZSM0000").unwrap();
    assert_eq!(sent["path"], "café et crème/nom à espaces.txt");
    let fetched = dir.path().join("fetched");
    s.store(&[
        "download",
        "s3",
        &bucket,
        "share",
        fetched.to_str().unwrap(),
    ]);
    assert_same_tree(&src, &fetched);
}

#[test]
fn regression_kill_9_during_an_s3_copy_leaves_no_open_multipart_upload() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    // Two large files, uploaded in 8 MiB parts, and a few small ones.
    for i in 0..2u32 {
        let data: Vec<u8> = (0..40u32 << 20).map(|j| (j ^ i) as u8).collect();
        write(&src.join(format!("large{i}.bin")), &data);
    }
    for i in 0..5 {
        write(&src.join(format!("small{i}.txt")), b"small");
    }
    let bucket = unique("killed");
    s.store(&["mkbucket", &bucket]);
    let url = format!("s3://{bucket}/share");
    // An upload another tool left open under the prefix: not godwit's, never aborted.
    s.store(&["start-upload", "s3", &bucket, "share/someone-else.bin"]);

    let mut killed_with_uploads = 0;
    // A multipart upload starts when its first 8 MiB parts are read: about 2 s in at 8 MiB/s,
    // and a 40 MiB file takes 5 s, so each kill lands during an upload.
    for round in 0..4 {
        let mut child = s
            .godwit()
            .arg("copy")
            .arg(&src)
            .arg(&url)
            .arg("--state-dir")
            .arg(&state)
            .args(["--bwlimit", "8M", "--transfers", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3000 + 250 * round));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let open: Vec<String> =
            serde_json::from_str(&s.store(&["uploads", "s3", &bucket, "share/large"])).unwrap();
        if !open.is_empty() {
            killed_with_uploads += 1;
        }
    }
    assert!(
        killed_with_uploads >= 3,
        "most kills landed during an upload: {killed_with_uploads} of 4"
    );
    let out = copy_to(&s, &src, &url, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert!(sum["uploads_aborted"].as_u64().unwrap_or(0) >= 1, "{sum}");
    assert_eq!(
        sum["uploads_open"], 1,
        "the other tool's upload is reported: {sum}"
    );
    let open: Vec<String> =
        serde_json::from_str(&s.store(&["uploads", "s3", &bucket, "share/"])).unwrap();
    assert_eq!(
        open,
        ["share/someone-else.bin"],
        "godwit's uploads are all gone"
    );
    let fetched = dir.path().join("fetched");
    s.store(&[
        "download",
        "s3",
        &bucket,
        "share",
        fetched.to_str().unwrap(),
    ]);
    assert_same_tree(&src, &fetched);
}

/// `godwit verify SRC URL --json ARGS...`: the exit status, the summary, and each record's
/// code by path (one record a file).
fn verify_at(
    s: &Servers,
    src: &Path,
    url: &str,
    state: &Path,
    args: &[&str],
) -> (
    Option<i32>,
    serde_json::Value,
    std::collections::BTreeMap<String, String>,
) {
    let out = run(s
        .godwit()
        .arg("verify")
        .arg(src)
        .arg(url)
        .arg("--state-dir")
        .arg(state)
        .arg("--json")
        .args(args));
    let sum = summary(&out);
    let mut codes = std::collections::BTreeMap::new();
    for r in copylog(sum["run_dir"].as_str().unwrap()) {
        let path = r["path"].as_str().unwrap().to_string();
        let code = r["code"].as_str().unwrap().to_string();
        assert!(codes.insert(path.clone(), code).is_none(), "{path} twice");
    }
    (out.status.code(), sum, codes)
}

/// A verification of a copy at `url`, before and after three changes made at the target by
/// `tamper` (a byte flipped with size and time kept at `FLIPPED`, `GONE` deleted, `ADDED`
/// written): clean first, then each change found with its code, the flipped byte only with
/// `--checksum`.
fn verify_finds_what_changed_at_the_target(s: &Servers, url: &str, tamper: &dyn Fn()) {
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    tree(&src);
    let out = run(s
        .godwit()
        .arg("copy")
        .arg(&src)
        .arg(url)
        .arg("--state-dir")
        .arg(&state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for args in [&[][..], &["--checksum"][..]] {
        let (code, sum, codes) = verify_at(s, &src, url, &state, args);
        assert_eq!(code, Some(0), "{args:?}: {sum}");
        assert_eq!(sum["status"]["code"], "242", "{sum}");
        assert_eq!(sum["verify"]["same"], 43, "{sum}");
        assert!(codes.values().all(|c| c == "AZSM2045"), "{codes:?}");
    }
    tamper();
    let (code, sum, codes) = verify_at(s, &src, url, &state, &[]);
    assert_eq!(code, Some(3), "{sum}");
    assert_eq!(sum["job_error"]["code"], "AZSM1047", "{sum}");
    assert_eq!(codes[FLIPPED], "AZSM2045", "size and time kept: {sum}");
    assert_eq!(codes[GONE], "AZSM2075");
    assert_eq!(codes[ADDED], "AZSM2076");
    assert_eq!(
        codes.len(),
        44,
        "43 source files and the added one: {codes:?}"
    );
    let (code, sum, codes) = verify_at(s, &src, url, &state, &["--checksum"]);
    assert_eq!(code, Some(3), "{sum}");
    assert_eq!(codes[FLIPPED], "AZSM2074", "{sum}");
    assert_eq!(
        (
            sum["verify"]["same"].clone(),
            sum["verify"]["differ"].clone()
        ),
        (41.into(), 1.into()),
        "{sum}"
    );
}

const FLIPPED: &str = "big/large.bin";
const GONE: &str = "d2/sub2/f2.bin";
const ADDED: &str = "d0/added by someone.txt";

#[test]
fn s3_verify_finds_a_flipped_byte_a_deleted_and_an_added_file() {
    let s = servers();
    let bucket = unique("verify");
    s.store(&["mkbucket", &bucket]);
    let url = format!("s3://{bucket}/share");
    verify_finds_what_changed_at_the_target(&s, &url, &|| {
        s.store(&["flip", "s3", &bucket, &format!("share/{FLIPPED}")]);
        s.store(&["delete", "s3", &bucket, &format!("share/{GONE}")]);
        s.store(&["put", "s3", &bucket, &format!("share/{ADDED}"), "extra"]);
    });
}

#[test]
fn azure_verify_finds_a_flipped_byte_a_deleted_and_an_added_file() {
    let s = servers();
    let container = unique("verify");
    s.store(&["mkcontainer", &container]);
    let url = format!("az://{container}/share");
    verify_finds_what_changed_at_the_target(&s, &url, &|| {
        s.store(&["flip", "az", &container, &format!("share/{FLIPPED}")]);
        s.store(&["delete", "az", &container, &format!("share/{GONE}")]);
        s.store(&["put", "az", &container, &format!("share/{ADDED}"), "extra"]);
    });
}

#[test]
fn sftp_verify_finds_a_flipped_byte_a_deleted_and_an_added_file() {
    let s = servers();
    let sub = unique("verify");
    let url = s.sftp_url(&sub);
    let on_server = s.sftp_root.join(&sub);
    verify_finds_what_changed_at_the_target(&s, &url, &|| {
        let flipped = on_server.join(FLIPPED);
        let mtime = fs::metadata(&flipped).unwrap().modified().unwrap();
        let mut data = fs::read(&flipped).unwrap();
        let middle = data.len() / 2;
        data[middle] ^= 0x40;
        fs::write(&flipped, &data).unwrap();
        fs::File::options()
            .write(true)
            .open(&flipped)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        fs::remove_file(on_server.join(GONE)).unwrap();
        write(&on_server.join(ADDED), b"extra");
    });
}

/// `godwit speed-test URL --json ARGS...`: the exit status and the summary.
fn speed_test_at(
    s: &Servers,
    url: &str,
    state: &Path,
    args: &[&str],
) -> (Option<i32>, serde_json::Value) {
    let out = run(s
        .godwit()
        .arg("speed-test")
        .arg(url)
        .arg("--state-dir")
        .arg(state)
        .arg("--json")
        .args(args));
    (out.status.code(), summary(&out))
}

/// A speed test's figures: every leg moved its files, and the test files are gone.
fn assert_measured(sum: &serde_json::Value) {
    let t = &sum["speed_test"];
    for leg in ["write_small", "read_small"] {
        assert_eq!(t[leg]["files"], 200, "{leg}: {sum}");
        assert!(t[leg]["bytes_per_second"].as_f64().unwrap() > 0.0, "{sum}");
        let l = &t[leg]["latency_ms"];
        assert!(
            l["p50"].as_f64().unwrap() <= l["p99"].as_f64().unwrap(),
            "{sum}"
        );
    }
    for leg in ["write_large", "read_large"] {
        assert_eq!(t[leg]["bytes"], 2u64 << 26, "{leg}: {sum}");
    }
    assert_eq!(t["cleaned_up"], true, "{sum}");
}

#[test]
fn s3_speed_test_measures_both_ways_and_leaves_nothing() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let bucket = unique("speed");
    s.store(&["mkbucket", &bucket]);
    let url = format!("s3://{bucket}/share");
    let (code, sum) = speed_test_at(&s, &url, &state, &[]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["status"]["code"], "212", "{sum}");
    assert_measured(&sum);
    let left: Vec<String> = serde_json::from_str(&s.store(&["keys", "s3", &bucket, ""])).unwrap();
    assert!(left.is_empty(), "{left:?}");
    // Out of time: 6090, nothing left behind either.
    let (code, sum) = speed_test_at(&s, &url, &state, &["--max-time", "1ms"]);
    assert_eq!(code, Some(1), "{sum}");
    assert_eq!(sum["job_error"]["code"], "6090", "{sum}");
    assert_eq!(sum["speed_test"]["cleaned_up"], true, "{sum}");
    let left: Vec<String> = serde_json::from_str(&s.store(&["keys", "s3", &bucket, ""])).unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn sftp_speed_test_measures_both_ways_and_estimates_a_scanned_copy() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    tree(&src);
    let out = run(s
        .godwit()
        .arg("scan")
        .arg(&src)
        .arg("--state-dir")
        .arg(&state)
        .arg("--json"));
    assert_eq!(out.status.code(), Some(0));
    let scan_runs = run(s
        .godwit()
        .args(["runs", "--json", "--state-dir"])
        .arg(&state));
    let runs: serde_json::Value = serde_json::from_slice(&scan_runs.stdout).unwrap();
    let scan_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let sub = unique("speed");
    let url = s.sftp_url(&sub);
    let (code, sum) = speed_test_at(&s, &url, &state, &["--from-scan", &scan_id]);
    assert_eq!(code, Some(0), "{sum}");
    assert_measured(&sum);
    let e = &sum["speed_test"]["estimate"];
    assert_eq!(e["files"], 43, "{sum}");
    assert!(e["seconds"].as_f64().unwrap() > 0.0, "{sum}");
    let on_server = s.sftp_root.join(&sub);
    let left: Vec<_> = fs::read_dir(&on_server)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // A scan run that is not there: refused before anything is written.
    let out = run(s
        .godwit()
        .arg("speed-test")
        .arg(&url)
        .args(["--from-scan", "20990101T000000Z-0000", "--state-dir"])
        .arg(&state));
    assert_eq!(
        out.status.code(),
        Some(2),
        "an id that names no run is a usage error"
    );
    assert!(
        text(&out.stderr).contains("error[800]"),
        "{}",
        text(&out.stderr)
    );
}

/// What the target at `url` holds, downloaded into `dest` with the stores' own SDKs (read on
/// the server's disk for SFTP), empty folders aside.
fn fetch(s: &Servers, url: &str, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    if let Some(rest) = url.strip_prefix("sftp://") {
        // The test server is on this machine: the URL's path is a path here.
        let on_server = Path::new("/").join(rest.split_once('/').unwrap().1);
        if !on_server.exists() {
            return;
        }
        let out = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", on_server.display()))
            .arg(dest)
            .status()
            .unwrap();
        assert!(out.success());
        return;
    }
    let (kind, rest) = url.split_once("://").unwrap();
    let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    s.store(&["download", kind, name, prefix, dest.to_str().unwrap()]);
}

/// A true-up with `--backup-dir` at `url` keeps what it deletes and replaces under `backups`,
/// and `godwit undo` puts it all back, byte-identical.
fn backup_and_undo_at(s: &Servers, url: &str, backups: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    write(&src.join("keep.txt"), b"kept as it is");
    write(&src.join("changed.txt"), b"the first version");
    write(&src.join("gone/deep/a.txt"), b"a file whose folder goes");
    let large: Vec<u8> = (0..3u32 << 20).map(|j| (j % 249) as u8).collect();
    write(&src.join("gone/large.bin"), &large);
    let sync = |args: &[&str]| {
        let out = run(s
            .godwit()
            .arg("sync")
            .arg(&src)
            .arg(url)
            .arg("--state-dir")
            .arg(&state)
            .arg("--json")
            .args(args));
        let sum = summary(&out);
        assert_eq!(out.status.code(), Some(0), "{url}: {sum}");
        sum
    };
    sync(&[]);
    let before = dir.path().join("before");
    fetch(s, url, &before);

    write(&src.join("changed.txt"), b"the second version, longer");
    fs::remove_dir_all(src.join("gone")).unwrap();
    let sum = sync(&["--delete", "--max-delete", "9", "--backup-dir", backups]);
    let run_id = sum["run_id"].as_str().unwrap().to_string();
    assert_eq!(sum["counts"]["AZSM2046"], 2, "{url}: {sum}");
    assert_eq!(sum["counts"]["AZSM0000"], 1, "{url}: {sum}");
    assert_eq!(sum["backup"], format!("{backups}/{run_id}"), "{sum}");
    let after = dir.path().join("after");
    fetch(s, url, &after);
    assert_eq!(files_of(&src), files_of(&after), "{url}");
    let kept = dir.path().join("kept");
    fetch(s, &format!("{backups}/{run_id}"), &kept);
    assert_eq!(
        fs::read(kept.join("changed.txt")).unwrap(),
        b"the first version"
    );
    assert_eq!(fs::read(kept.join("gone/large.bin")).unwrap(), large);
    assert_eq!(
        fs::read(kept.join("gone/deep/a.txt")).unwrap(),
        b"a file whose folder goes"
    );

    let out = run(s
        .godwit()
        .args(["undo", &run_id, "--json", "--state-dir"])
        .arg(&state));
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(0), "{url}: {sum}");
    assert_eq!(sum["counts"]["AZSM2047"], 3, "{url}: {sum}");
    let undone = dir.path().join("undone");
    fetch(s, url, &undone);
    assert_eq!(files_of(&before), files_of(&undone), "{url}");
    let left = dir.path().join("left");
    fetch(s, &format!("{backups}/{run_id}"), &left);
    let files = walkdir_files(&left);
    assert!(files.is_empty(), "{url}: the backup still holds {files:?}");
}

/// Every file below `root` with its bytes (folders left empty by a move are not files: an
/// SFTP target keeps them, an object store has none).
fn files_of(root: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    walkdir_files(root)
        .into_iter()
        .map(|p| {
            let data = fs::read(&p).unwrap();
            (p.strip_prefix(root).unwrap().to_path_buf(), data)
        })
        .collect()
}

fn walkdir_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn s3_backup_dir_keeps_deleted_and_replaced_objects_and_undo_restores_them() {
    let s = servers();
    let bucket = unique("backup");
    s.store(&["mkbucket", &bucket]);
    backup_and_undo_at(
        &s,
        &format!("s3://{bucket}/share"),
        &format!("s3://{bucket}/backups"),
    );
}

#[test]
fn azure_backup_dir_keeps_deleted_and_replaced_blobs_and_undo_restores_them() {
    let s = servers();
    let container = unique("backup");
    s.store(&["mkcontainer", &container]);
    backup_and_undo_at(
        &s,
        &format!("az://{container}/share"),
        &format!("az://{container}/backups"),
    );
}

#[test]
fn sftp_backup_dir_keeps_deleted_and_replaced_files_and_undo_restores_them() {
    let s = servers();
    let sub = unique("backup");
    backup_and_undo_at(
        &s,
        &s.sftp_url(&sub),
        &s.sftp_url(&format!("{sub}-backups")),
    );
}

#[test]
fn sftp_permissions_carry_owners_modes_and_times_and_say_what_sftp_cannot() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    write(&src.join("team/plan.txt"), b"plan");
    write(&src.join("open.txt"), b"open");
    let sh = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let at = |rel: &str| src.join(rel).to_str().unwrap().to_string();
    sh(&["chown", "nobody:nogroup", &at("team/plan.txt")]);
    sh(&["chmod", "2750", &at("team")]);
    sh(&["chmod", "604", &at("open.txt")]);
    sh(&["setfacl", "-m", "u:nobody:rw-", &at("open.txt")]);
    let sub = unique("perms");
    let url = s.sftp_url(&sub);
    let out = run(s
        .godwit()
        .arg("copy")
        .arg(&src)
        .arg(&url)
        .arg("--state-dir")
        .arg(&state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(s
        .godwit()
        .arg("permissions")
        .arg(&src)
        .arg(&url)
        .arg("--state-dir")
        .arg(&state)
        .arg("--json"));
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    assert_eq!(sum["status"]["code"], "962", "{sum}");
    assert_eq!(sum["counts"]["AZSM0000"], 4, "{sum}");
    // On the server's disk (the test server is this machine).
    let on_server = s.sftp_root.join(&sub);
    let stat = |rel: &str| {
        sh(&[
            "stat",
            "-c",
            "%U:%G %a %Y",
            on_server.join(rel).to_str().unwrap(),
        ])
        .trim()
        .to_string()
    };
    let mtime = |p: &Path| {
        sh(&["stat", "-c", "%Y", p.to_str().unwrap()])
            .trim()
            .to_string()
    };
    assert_eq!(
        stat("team/plan.txt"),
        format!("nobody:nogroup 644 {}", mtime(&src.join("team/plan.txt")))
    );
    assert_eq!(
        stat("team"),
        format!("root:root 2750 {}", mtime(&src.join("team")))
    );
    // The ACL made the source's group bits rw- (its mask); SFTP sets the mode, not the ACL,
    // and the report says so.
    assert!(
        stat("open.txt").starts_with("root:root 664"),
        "{}",
        stat("open.txt")
    );
    let report = std::fs::read_to_string(sum["permissions"]["report"].as_str().unwrap()).unwrap();
    let line = report.lines().find(|l| l.contains("\"open.txt\"")).unwrap();
    assert!(line.contains("ACLs: SFTP carries none"), "{line}");

    // With the data (`--metadata`), into another folder: the same owners, modes and times.
    let sub2 = unique("carried");
    let url2 = s.sftp_url(&sub2);
    let copy = |command: &str| {
        let out = run(s
            .godwit()
            .arg(command)
            .arg(&src)
            .arg(&url2)
            .arg("--state-dir")
            .arg(&state)
            .args(["--metadata", "--json"]));
        let sum = summary(&out);
        assert_eq!(out.status.code(), Some(0), "{sum}");
        sum
    };
    let sum = copy("copy");
    // What SFTP cannot hold is said, with how many files had it.
    assert_eq!(
        sum["metadata_not_carried"]["ACLs: SFTP carries none"], 1,
        "{sum}"
    );
    let carried = s.sftp_root.join(&sub2);
    let stat2 = |rel: &str| {
        sh(&[
            "stat",
            "-c",
            "%U:%G %a %Y",
            carried.join(rel).to_str().unwrap(),
        ])
        .trim()
        .to_string()
    };
    assert_eq!(
        stat2("team/plan.txt"),
        format!("nobody:nogroup 644 {}", mtime(&src.join("team/plan.txt")))
    );
    assert_eq!(
        stat2("team"),
        format!("root:root 2750 {}", mtime(&src.join("team"))),
        "a folder's, after its files"
    );
    // A change of owner alone: one setstat, no data.
    sh(&["chown", "root:nogroup", &at("team/plan.txt")]);
    let sum = copy("sync");
    assert_eq!(sum["counts"]["AZSM2048"], 1, "{sum}");
    assert_eq!(sum["bytes_copied"], 0, "{sum}");
    assert!(stat2("team/plan.txt").starts_with("root:nogroup 644"));
}

#[test]
fn s3_permissions_are_kept_as_object_metadata_in_rclone_form() {
    let s = servers();
    let bucket = unique("perms");
    s.store(&["mkbucket", &bucket]);
    permissions_as_metadata(&s, "s3", &bucket);
}

#[test]
fn azure_permissions_are_kept_as_blob_metadata_in_rclone_form() {
    let s = servers();
    let container = unique("perms");
    s.store(&["mkcontainer", &container]);
    permissions_as_metadata(&s, "az", &container);
}

/// Owners, modes and times written to an object store as each object's metadata, read back
/// with the store's SDK; the object's bytes and godwit's own time untouched.
fn permissions_as_metadata(s: &Servers, kind: &str, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    write(&src.join("team/plan.txt"), b"plan");
    let plan = src.join("team/plan.txt");
    let sh = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    sh(&["chown", "nobody:nogroup", plan.to_str().unwrap()]);
    sh(&["chmod", "2640", plan.to_str().unwrap()]);
    sh(&[
        "touch",
        "-d",
        "2024-05-06T07:08:09.123456789Z",
        plan.to_str().unwrap(),
    ]);
    let url = format!("{kind}://{name}/share");
    let out = run(s
        .godwit()
        .arg("copy")
        .arg(&src)
        .arg(&url)
        .arg("--state-dir")
        .arg(&state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let before = s.store(&["meta", kind, name, "share/team/plan.txt"]);
    let out = run(s
        .godwit()
        .arg("permissions")
        .arg(&src)
        .arg(&url)
        .arg("--state-dir")
        .arg(&state)
        .arg("--json"));
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    // The root folder and team/ have nothing to hold them: said, not failed.
    assert_eq!(sum["counts"]["AZSM0000"], 3, "{sum}");
    // The object held no permissions before: the report shows none, not root's.
    let report = std::fs::read_to_string(sum["permissions"]["report"].as_str().unwrap()).unwrap();
    let line: serde_json::Value = report
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["path"] == "team/plan.txt")
        .unwrap();
    assert!(line.get("now").is_none(), "{line}");
    assert_eq!(line["set"]["owner"], "nobody", "{line}");
    let meta: serde_json::Value =
        serde_json::from_str(&s.store(&["meta", kind, name, "share/team/plan.txt"])).unwrap();
    assert_eq!(meta["mode"], "102640", "{meta}");
    assert_eq!(meta["uid"], "65534", "{meta}");
    assert_eq!(meta["gid"], "65534", "{meta}");
    assert_eq!(meta["uname"], "nobody", "{meta}");
    assert_eq!(meta["mtime"], "2024-05-06T07:08:09.123456789Z", "{meta}");
    assert!(meta["atime"].as_str().is_some(), "{meta}");
    // godwit's own time is kept: the next true-up sends nothing.
    let kept: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert_eq!(meta["godwitmtime"], kept["godwitmtime"], "{meta}");
    let out = run(s
        .godwit()
        .arg("sync")
        .arg(&src)
        .arg(&url)
        .arg("--state-dir")
        .arg(&state)
        .args(["--json", "--spot-check", "1000"]));
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    assert_eq!(sum["bytes_copied"], 0, "{sum}");
    // The object's bytes are as they were.
    let back = dir.path().join("back");
    s.store(&["download", kind, name, "share", back.to_str().unwrap()]);
    assert_eq!(fs::read(back.join("team/plan.txt")).unwrap(), b"plan");

    // With the data (`--metadata`): the upload carries them, no request of its own.
    let carried = format!("{kind}://{name}/carried");
    let copy = |command: &str| {
        let out = run(s
            .godwit()
            .arg(command)
            .arg(&src)
            .arg(&carried)
            .arg("--state-dir")
            .arg(&state)
            .args(["--metadata", "--json"]));
        let sum = summary(&out);
        assert_eq!(out.status.code(), Some(0), "{sum}");
        sum
    };
    let sum = copy("copy");
    assert_eq!(sum["counts"]["AZSM0000"], 1, "{sum}");
    let meta_of = || -> serde_json::Value {
        serde_json::from_str(&s.store(&["meta", kind, name, "carried/team/plan.txt"])).unwrap()
    };
    let meta = meta_of();
    assert_eq!(meta["mode"], "102640", "{meta}");
    assert_eq!(meta["uname"], "nobody", "{meta}");
    assert_eq!(meta["mtime"], "2024-05-06T07:08:09.123456789Z", "{meta}");
    assert!(meta["godwitmtime"].as_str().is_some(), "{meta}");
    // Only the mode changes at the source: the true-up replaces the metadata, sends no data.
    sh(&["chmod", "0600", plan.to_str().unwrap()]);
    let sum = copy("sync");
    assert_eq!(sum["counts"]["AZSM2048"], 1, "{sum}");
    assert_eq!(sum["bytes_copied"], 0, "{sum}");
    let meta = meta_of();
    assert_eq!(meta["mode"], "100600", "{meta}");
    assert_eq!(meta["mtime"], "2024-05-06T07:08:09.123456789Z", "{meta}");
    // And nothing changed: no request, nothing set.
    let sum = copy("sync");
    assert_eq!(sum["counts"]["AZSM2041"], 1, "{sum}");
    assert!(sum["counts"].get("AZSM2048").is_none(), "{sum}");
}

#[test]
fn validate_probes_an_sftp_target_that_does_not_exist_yet_and_leaves_nothing() {
    let s = servers();
    let dir = tempfile::tempdir().unwrap();
    let (src, state) = (dir.path().join("src"), dir.path().join("state"));
    write(&src.join("a.txt"), b"a");
    let sub = unique("validate");
    let url = s.sftp_url(&format!("{sub}/new/share"));
    let out = run(s
        .godwit()
        .arg("validate")
        .arg(&src)
        .arg(&url)
        .arg("--state-dir")
        .arg(&state)
        .arg("--json"));
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    assert_eq!(sum["validation"]["target_writable"], true, "{sum}");
    // The target's folder is there as a copy would make it, and empty: no probe is left.
    let made = s.sftp_root.join(&sub).join("new/share");
    assert_eq!(
        std::fs::read_dir(&made).unwrap().count(),
        0,
        "{}",
        made.display()
    );
}
