//! `godwit verify` on local folders as a user runs it before switching over: a clean migration
//! is reported the same, every kind of difference gets its code, nothing is written to either
//! side, and an unreadable folder is never mistaken for missing or extra files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{Dirs, as_unprivileged, dirs, godwit, run, summary, text, write};

/// A source of a few folders, an empty file, and names that are not plain: a newline, bytes
/// that are not UTF-8, spaces and accents.
fn tree(src: &Path) {
    for i in 0..30u32 {
        let data: Vec<u8> = (0..(i * 131 % 2000 + 1)).map(|j| (j ^ i) as u8).collect();
        write(&src.join(format!("d{}/s{}/f{i}.bin", i % 3, i % 2)), &data);
    }
    write(&src.join("empty"), b"");
    write(&src.join("line\nbreak.txt"), b"newline in the name");
    write(
        &src.join(OsStr::from_bytes(b"raw\xff\xfe.bin")),
        b"not utf-8",
    );
    write(&src.join("café/nom à espaces.txt"), b"accents");
}

fn copy(d: &Dirs, extra: &[&str]) {
    copy_with(godwit(), d, extra);
}

fn copy_with(mut cmd: Command, d: &Dirs, extra: &[&str]) {
    let out = run(cmd
        .arg("copy")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .args(extra));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// `godwit verify SRC DST --json ARGS...` run by `cmd`: the exit status, the summary, and the
/// copy log's records by path.
fn verify_with(mut cmd: Command, d: &Dirs, args: &[&str]) -> (Option<i32>, Value, Records) {
    let out = run(cmd
        .arg("verify")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state)
        .arg("--json")
        .args(args));
    let sum = summary(&out);
    let records = match sum["run_dir"].as_str() {
        Some(dir) => records(Path::new(dir)),
        None => Records::default(),
    };
    (out.status.code(), sum, records)
}

fn verify(d: &Dirs, args: &[&str]) -> (Option<i32>, Value, Records) {
    verify_with(godwit(), d, args)
}

/// A run's records by path: code, and the message.
#[derive(Debug, Default)]
struct Records {
    by_path: BTreeMap<String, (String, String)>,
    differences: Vec<Value>,
}

fn records(run_dir: &Path) -> Records {
    let mut r = Records::default();
    for rec in support::copylog(run_dir.to_str().unwrap()) {
        let path = rec["path"].as_str().unwrap().to_string();
        let code = rec["code"].as_str().unwrap().to_string();
        let message = rec["message"].as_str().unwrap().to_string();
        assert!(
            r.by_path.insert(path.clone(), (code, message)).is_none(),
            "one record a file: {path} twice"
        );
    }
    let listed = fs::read_to_string(run_dir.join("differences.jsonl")).unwrap();
    r.differences = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    r
}

impl Records {
    fn code(&self, path: &str) -> &str {
        self.by_path
            .get(path)
            .map(|(c, _)| c.as_str())
            .unwrap_or_else(|| panic!("no record of {path}: {:?}", self.by_path.keys()))
    }

    fn message(&self, path: &str) -> &str {
        &self.by_path[path].1
    }

    /// Paths with `code`.
    fn with(&self, code: &str) -> Vec<&str> {
        self.by_path
            .iter()
            .filter(|(_, (c, _))| c == code)
            .map(|(p, _)| p.as_str())
            .collect()
    }
}

/// An entry's mode, size, modification time (ns), change time (s) and bytes.
type Seen = (u32, u64, i64, i64, Vec<u8>);

/// Every entry under `root`, to tell that nothing was written, touched or renamed.
fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Seen> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            let data = if m.is_file() {
                fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            if m.is_dir() {
                stack.push(e.path());
            }
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            out.insert(
                rel,
                (
                    m.mode(),
                    m.len(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000,
                    m.ctime(),
                    data,
                ),
            );
        }
    }
    out
}

#[test]
fn a_clean_migration_is_the_same_file_by_file_and_nothing_is_written() {
    let d = dirs();
    tree(&d.src);
    copy(&d, &[]);
    let (src_before, dst_before) = (snapshot(&d.src), snapshot(&d.dst));
    let (code, sum, recs) = verify(&d, &[]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["status"]["code"], "242", "{sum}");
    assert_eq!(sum["state"], "SUCCEEDED");
    assert!(sum["job_error"].is_null(), "{sum}");
    assert_eq!(sum["files"], 34);
    assert_eq!(sum["verify"]["same"], 34, "{sum}");
    assert_eq!(sum["counts"]["AZSM2045"], 34, "{sum}");
    assert_eq!(recs.with("AZSM2045").len(), 34);
    assert!(recs.differences.is_empty());
    // Odd names are found and matched like any other.
    assert_eq!(recs.code("line\nbreak.txt"), "AZSM2045");
    assert_eq!(recs.code("raw\\xFF\\xFE.bin"), "AZSM2045");
    assert!(
        recs.message("empty").contains("size and modification time"),
        "{}",
        recs.message("empty")
    );
    // With checksums too, and still nothing written on either side.
    let (code, sum, recs) = verify(&d, &["--checksum"]);
    assert_eq!(
        (code, sum["verify"]["same"].clone()),
        (Some(0), 34.into()),
        "{sum}"
    );
    assert!(recs.message("d0/s0/f0.bin").contains("size and content"));
    assert_eq!(snapshot(&d.src), src_before, "the source was changed");
    assert_eq!(snapshot(&d.dst), dst_before, "the target was changed");
}

#[test]
fn every_kind_of_difference_is_found_with_its_code() {
    let d = dirs();
    tree(&d.src);
    copy(&d, &[]);
    // A byte flipped at the target with size and time kept: only a checksum can tell.
    let flipped = d.dst.join("d1/s1/f1.bin");
    let mtime = fs::metadata(&flipped).unwrap().modified().unwrap();
    let mut bytes = fs::read(&flipped).unwrap();
    bytes[7] ^= 0x40;
    fs::write(&flipped, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&flipped)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    // Deleted at the target, added there, grown at the source, touched at the source.
    fs::remove_file(d.dst.join("d2/s0/f2.bin")).unwrap();
    write(&d.dst.join("d0/added.txt"), b"only at the target");
    write(
        &d.dst.join("new folder/deep/x.txt"),
        b"a whole folder only at the target",
    );
    let grown = d.src.join("d0/s0/f0.bin");
    let mut data = fs::read(&grown).unwrap();
    data.extend_from_slice(b"more");
    fs::write(&grown, &data).unwrap();
    let touched = d.src.join("d0/s1/f3.bin");
    fs::File::options()
        .write(true)
        .open(&touched)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000))
        .unwrap();

    let (code, sum, recs) = verify(&d, &[]);
    assert_eq!(code, Some(3), "differences exit 3: {sum}");
    assert_eq!(sum["status"]["code"], "241", "{sum}");
    assert_eq!(sum["job_error"]["code"], "AZSM1047", "{sum}");
    assert_eq!(
        recs.code("d1/s1/f1.bin"),
        "AZSM2045",
        "size and time kept: the same"
    );
    assert_eq!(recs.code("d2/s0/f2.bin"), "AZSM2075");
    assert_eq!(recs.code("d0/added.txt"), "AZSM2076");
    assert_eq!(recs.code("new folder/deep/x.txt"), "AZSM2076");
    assert_eq!(recs.code("d0/s0/f0.bin"), "AZSM2074");
    let size = recs.message("d0/s0/f0.bin");
    assert!(
        size.contains("size") && size.contains(&data.len().to_string()),
        "{size}"
    );
    assert_eq!(recs.code("d0/s1/f3.bin"), "AZSM2074");
    let time = recs.message("d0/s1/f3.bin");
    assert!(
        time.contains("modification time 2020-09-13T12:26:40"),
        "{time}"
    );
    let v = &sum["verify"];
    assert_eq!(
        (
            v["same"].clone(),
            v["differ"].clone(),
            v["missing"].clone(),
            v["extra"].clone()
        ),
        (31.into(), 2.into(), 1.into(), 2.into()),
        "{sum}"
    );
    // The list of differences holds those five and nothing else.
    let mut listed: Vec<&str> = recs
        .differences
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "d0/added.txt",
            "d0/s0/f0.bin",
            "d0/s1/f3.bin",
            "d2/s0/f2.bin",
            "new folder/deep/x.txt"
        ]
    );

    let (code, sum, recs) = verify(&d, &["--checksum"]);
    assert_eq!(code, Some(3));
    assert_eq!(recs.code("d1/s1/f1.bin"), "AZSM2074", "{sum}");
    assert!(recs.message("d1/s1/f1.bin").contains("content"));
    // With checksums, size and content decide: the touched file is the same.
    assert_eq!(recs.code("d0/s1/f3.bin"), "AZSM2045");

    // The text a person reads says what was found and where the list is.
    let out = run(godwit()
        .arg("verify")
        .arg(&d.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state));
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3));
    for part in [
        "241 VERIFY : FAILED",
        "missing at the target (AZSM2075)",
        "AZSM2076 d0/added.txt: at the target, not in the source.",
        "differences.jsonl",
    ] {
        assert!(said.contains(part), "{part} not in: {said}");
    }
    assert!(
        text(&out.stderr).contains("error[AZSM1047]"),
        "{}",
        text(&out.stderr)
    );

    // The remedies the codes give: the file only a checksum tells apart and the files someone
    // else wrote at the target are removed by hand (godwit never deletes what it did not
    // write), then a true-up that compares with the target puts the rest in step.
    fs::remove_file(&flipped).unwrap();
    fs::remove_file(d.dst.join("d0/added.txt")).unwrap();
    fs::remove_dir_all(d.dst.join("new folder")).unwrap();
    let out = run(godwit()
        .arg("sync")
        .arg(&d.src)
        .arg(&d.dst)
        .args(["--compare", "target", "--state-dir"])
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (code, sum, _) = verify(&d, &["--checksum"]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["verify"]["same"], 34, "{sum}");
}

#[test]
fn a_target_that_is_gone_is_every_file_missing_never_a_success() {
    let d = dirs();
    tree(&d.src);
    copy(&d, &[]);
    fs::remove_dir_all(&d.dst).unwrap();
    let (code, sum, recs) = verify(&d, &[]);
    assert_eq!(code, Some(3), "{sum}");
    assert_eq!(sum["verify"]["missing"], 34, "{sum}");
    assert_eq!(recs.with("AZSM2075").len(), 34);
    assert!(!d.dst.exists(), "verify made the target folder");
}

#[test]
fn an_unreadable_folder_is_unreadable_not_missing_or_extra() {
    let d = dirs();
    tree(&d.src);
    copy_with(as_unprivileged(&d.root), &d, &[]);
    // The source folder d1 cannot be listed, the target folder d2 neither.
    let (locked_src, locked_dst) = (d.src.join("d1"), d.dst.join("d2"));
    fs::set_permissions(&locked_src, fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(&locked_dst, fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(&d.dst, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(&d.src, fs::Permissions::from_mode(0o777)).unwrap();
    let (code, sum, recs) = verify_with(as_unprivileged(&d.root), &d, &[]);
    fs::set_permissions(&locked_src, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&locked_dst, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code, Some(3), "{sum}");
    // Each folder has its record, and each file below it that the other side holds says why.
    assert_eq!(recs.code("d1"), "AZSM2077", "{:?}", recs.by_path);
    assert!(
        recs.message("d1").contains("at the source"),
        "{}",
        recs.message("d1")
    );
    assert_eq!(recs.code("d2"), "AZSM2077");
    assert!(recs.message("d2").contains("at the target"));
    let below = |dir: &str| -> Vec<&str> {
        recs.by_path
            .keys()
            .filter(|p| p.starts_with(&format!("{dir}/")))
            .map(String::as_str)
            .collect()
    };
    assert_eq!(
        below("d1").len(),
        10,
        "the target's files under d1 are each recorded"
    );
    assert_eq!(
        below("d2").len(),
        10,
        "the source's files under d2 are each recorded"
    );
    for p in below("d1").into_iter().chain(below("d2")) {
        assert_eq!(recs.code(p), "AZSM2077", "{p}");
        assert!(
            recs.message(p).contains("could not be listed"),
            "{}",
            recs.message(p)
        );
    }
    assert!(recs.with("AZSM2075").is_empty() && recs.with("AZSM2076").is_empty());
    assert_eq!(sum["verify"]["same"], 14, "{sum}");
}

#[test]
fn the_index_can_stand_for_the_source_and_sanitized_names_are_followed() {
    let d = dirs();
    tree(&d.src);
    write(&d.src.join("d0/what?.txt"), b"windows refuses the name");
    copy(
        &d,
        &[
            "--target-profile",
            "windows",
            "--sanitize",
            "on-the-fly",
            "--checksum",
        ],
    );
    // The file was written under another name; verify finds it there.
    let (code, sum, recs) = verify(&d, &[]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(recs.code("d0/what?.txt"), "AZSM2045");
    // The source loses a file: read, the target now holds an extra one; from the index, which
    // still holds the file (and its checksum), the target is the same as what was copied.
    fs::remove_file(d.src.join("d2/s0/f2.bin")).unwrap();
    let (code, _, recs) = verify(&d, &[]);
    assert_eq!((code, recs.code("d2/s0/f2.bin")), (Some(3), "AZSM2076"));
    let (code, sum, recs) = verify(&d, &["--use-index", "--checksum"]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["verify"]["from_index"], true);
    assert_eq!(recs.code("d2/s0/f2.bin"), "AZSM2045");
    assert_eq!(recs.code("d0/what?.txt"), "AZSM2045");
    // A pair godwit never copied has no index to trust: refused, with what to do.
    let other = Dirs {
        dst: d.root.join("elsewhere"),
        ..dirs()
    };
    let out = run(godwit()
        .arg("verify")
        .arg(&d.src)
        .arg(&other.dst)
        .arg("--use-index")
        .arg("--state-dir")
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("verify without --use-index"));
}

#[test]
fn filters_apply_to_both_sides_and_a_missing_source_is_refused() {
    let d = dirs();
    tree(&d.src);
    copy(&d, &[]);
    write(&d.dst.join("d0/leftover.tmp"), b"excluded on both sides");
    write(&d.src.join("d1/new.tmp"), b"excluded on both sides");
    let (code, sum, recs) = verify(&d, &["--exclude", "*.tmp"]);
    assert_eq!(code, Some(0), "{sum}");
    assert!(!recs.by_path.contains_key("d0/leftover.tmp"));
    let gone = Dirs {
        src: d.root.join("no such source"),
        ..dirs()
    };
    let out = run(godwit()
        .arg("verify")
        .arg(&gone.src)
        .arg(&d.dst)
        .arg("--state-dir")
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("error[3030]"),
        "{}",
        text(&out.stderr)
    );
}
