//! One behaviour suite for every kind of store, the way OpenDAL's behaviour tests and rclone's
//! fstests work: each store is reached as the engine reaches it, and each [`Features`] it
//! claims is checked against the real server (moto for S3, Azurite, OpenSSH's SFTP, a local
//! folder, memory). What a store does not claim is not asked of it; what it claims must hold,
//! because the engine relies on it (a rename to publish, a server-side copy for a move, user
//! metadata for modification times, an abandoned upload leaving nothing).
//!
//! The servers come from scripts/test.sh (GODWIT_TEST_S3_ENDPOINT, ..._AZURE_ENDPOINT,
//! ..._SFTP_ENDPOINT, ..._SFTP_KEY, ..._SFTP_ROOT).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use futures::TryStreamExt;
use godwit_engine::store::StoreEnv;
use godwit_engine::{Features, Location, Side};

/// Azurite's well-known development account key (public, documented for the emulator).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `bash scripts/test.sh`"))
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The test servers' settings, given explicitly (not through the process's environment).
fn env() -> StoreEnv {
    StoreEnv::empty()
        .set("AWS_ACCESS_KEY_ID", "test")
        .set("AWS_SECRET_ACCESS_KEY", "test")
        .set("AWS_REGION", "us-east-1")
        .set("AWS_ENDPOINT_URL", &var("GODWIT_TEST_S3_ENDPOINT"))
        .set(
            "AZURE_STORAGE_CONNECTION_STRING",
            &format!(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={};",
                var("GODWIT_TEST_AZURE_ENDPOINT")
            ),
        )
        .set("GODWIT_SFTP_KEY", &var("GODWIT_TEST_SFTP_KEY"))
}

/// A fresh place on a store of each kind, as a location.
fn location(kind: &str, rt: &tokio::runtime::Runtime) -> Location {
    let text = match kind {
        "s3" => {
            let bucket = unique("behaviour");
            make_bucket(&bucket);
            format!("s3://{bucket}/suite")
        }
        "azure" => {
            let container = unique("behaviour");
            make_container(&container, rt);
            format!("az://{container}/suite")
        }
        "sftp" => {
            let rest = var("GODWIT_TEST_SFTP_ENDPOINT")
                .trim_start_matches("ssh://")
                .to_string();
            let dir = std::path::Path::new(&var("GODWIT_TEST_SFTP_ROOT")).join(unique("behaviour"));
            std::fs::create_dir_all(&dir).unwrap();
            format!("sftp://{rest}{}", dir.display())
        }
        "memory" => format!("memory://{}", unique("behaviour")),
        other => panic!("{other}"),
    };
    Location::parse(&text).unwrap()
}

fn make_bucket(bucket: &str) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../godwit/tests/support/store.py"
    );
    let out = std::process::Command::new(var("GODWIT_TEST_PYTHON"))
        .args([script, "mkbucket", bucket])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn make_container(container: &str, _rt: &tokio::runtime::Runtime) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../godwit/tests/support/store.py"
    );
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={};",
        var("GODWIT_TEST_AZURE_ENDPOINT")
    );
    let out = std::process::Command::new(var("GODWIT_TEST_PYTHON"))
        .args([script, "mkcontainer", container])
        .env("AZURE_STORAGE_CONNECTION_STRING", conn)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// The suite against one remote store.
fn remote_behaves(kind: &str) {
    let rt = rt();
    let location = location(kind, &rt);
    let side = Side::open_with(&location, "target", &env()).unwrap();
    let Side::Remote(remote) = &side else {
        panic!("{kind} is remote")
    };
    let f = side.features();
    assert_eq!(f, Features::of(location.kind()));
    assert!(!f.local, "{kind}");
    let op = &remote.op;
    rt.block_on(async {
        // Write, read back, stat, list.
        op.write("a/one.txt", "first file").await.unwrap();
        op.write("a/b/two.txt", vec![7u8; 70_000]).await.unwrap();
        let back = op.read("a/one.txt").await.unwrap().to_vec();
        assert_eq!(back, b"first file", "{kind}");
        assert_eq!(
            op.stat("a/b/two.txt").await.unwrap().content_length(),
            70_000
        );
        let listed: Vec<String> = op
            .lister_with("")
            .recursive(true)
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| !e.metadata().is_dir())
            .map(|e| e.path().trim_start_matches('/').to_string())
            .collect();
        let mut listed = listed;
        listed.sort();
        assert_eq!(listed, ["a/b/two.txt", "a/one.txt"], "{kind}");

        // Atomic publish: a write that is not finished is nowhere; an abandoned one leaves
        // nothing behind.
        if f.atomic_write {
            let mut w = op.writer("pending.txt").await.unwrap();
            w.write("not yet").await.unwrap();
            assert!(
                !op.exists("pending.txt").await.unwrap(),
                "{kind}: visible before close"
            );
            w.abort().await.unwrap();
            assert!(
                !op.exists("pending.txt").await.unwrap(),
                "{kind}: left after abort"
            );
        }
        // Rename: how a store without atomic writes publishes, and how a move is followed.
        if f.rename {
            op.write("tmp/x.part", "renamed").await.unwrap();
            op.rename("tmp/x.part", "a/renamed.txt").await.unwrap();
            assert!(!op.exists("tmp/x.part").await.unwrap(), "{kind}");
            let back = op.read("a/renamed.txt").await.unwrap().to_vec();
            assert_eq!(back, b"renamed", "{kind}");
        }
        assert!(
            f.atomic_write || f.rename,
            "{kind}: a store must publish atomically or by renaming"
        );
        // Server-side copy: a move on an object store is a copy and a delete.
        if f.server_side_copy {
            op.copy("a/one.txt", "c/copied.txt").await.unwrap();
            let back = op.read("c/copied.txt").await.unwrap().to_vec();
            assert_eq!(back, b"first file", "{kind}");
        }
        // User metadata: where godwit keeps a file's modification time.
        if f.user_metadata {
            op.write_with("m.txt", "with metadata")
                .user_metadata([("godwitmtime".to_string(), "12345".to_string())])
                .await
                .unwrap();
            let meta = op.stat("m.txt").await.unwrap();
            let kept = meta
                .user_metadata()
                .and_then(|m| m.get("godwitmtime").map(str::to_string));
            assert_eq!(kept.as_deref(), Some("12345"), "{kind}");
        }
        // Folders by themselves: listed one at a time, an empty one exists.
        if f.real_folders {
            op.create_dir("empty/").await.unwrap();
            let entries: Vec<_> = op
                .list("")
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.path().trim_matches('/').to_string())
                .collect();
            assert!(
                entries.contains(&"empty".to_string()),
                "{kind}: {entries:?}"
            );
        }
        // Delete: gone, and deleting what is gone is not an error.
        op.delete("a/one.txt").await.unwrap();
        assert!(!op.exists("a/one.txt").await.unwrap(), "{kind}");
        op.delete("a/one.txt").await.unwrap();
    });
}

#[test]
fn s3_behaves_as_its_features_say() {
    remote_behaves("s3");
}

#[test]
fn azure_blob_behaves_as_its_features_say() {
    remote_behaves("azure");
}

#[test]
fn sftp_behaves_as_its_features_say() {
    remote_behaves("sftp");
}

#[test]
fn memory_behaves_as_its_features_say() {
    remote_behaves("memory");
}

/// A local folder: the engine uses the kernel there (rename to publish, set times, links).
#[test]
fn a_local_folder_behaves_as_its_features_say() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let side = Side::open(&Location::Local(dir.path().to_path_buf()), "target").unwrap();
    let f = side.features();
    assert!(f.local && f.rename && f.set_mtime && f.links && f.real_folders);
    assert!(
        !f.atomic_write,
        "a local file is visible while it is written"
    );
    let root = dir.path();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::write(root.join("tmp/x.part"), b"renamed").unwrap();
    std::fs::rename(root.join("tmp/x.part"), root.join("x.txt")).unwrap();
    assert_eq!(std::fs::read(root.join("x.txt")).unwrap(), b"renamed");
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(root.join("x.txt"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    assert_eq!(
        std::fs::metadata(root.join("x.txt"))
            .unwrap()
            .modified()
            .unwrap(),
        t
    );
    symlink("x.txt", root.join("link")).unwrap();
    assert_eq!(
        std::fs::read_link(root.join("link")).unwrap(),
        std::path::Path::new("x.txt")
    );
}
