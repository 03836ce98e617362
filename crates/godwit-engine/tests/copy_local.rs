//! Local-to-local copies on real folders: content, times, modes, resume, odd names, and the
//! per-file codes of what cannot be copied.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};

use godwit_codes::Code;
use godwit_engine::backend::{TEMP_PREFIX, temp_dir_name};
use godwit_engine::{
    CopyOptions, CopyOutcome, Filter, FilterRules, Links, Location, Migration, Progress,
    ScanOptions, Side, TargetProfile, Verify, copy_local, scan,
};

struct Setup {
    _dir: tempfile::TempDir,
    src: std::path::PathBuf,
    dst: std::path::PathBuf,
    state: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dst = dir.path().join("dst");
    let state = dir.path().join("state");
    fs::create_dir_all(&src).unwrap();
    Setup {
        src,
        dst,
        state,
        _dir: dir,
    }
}

fn options() -> CopyOptions {
    CopyOptions {
        transfers: 4,
        checksum: false,
        verify: Verify::Size,
        filter: Filter::default(),
        links: Links::Skip,
        profile: TargetProfile::by_name("posix").unwrap(),
        ..CopyOptions::default()
    }
}

fn run_copy(s: &Setup, o: &CopyOptions) -> (CopyOutcome, Vec<serde_json::Value>) {
    let m = Migration::open(
        &s.state,
        &Location::Local(s.src.clone()),
        Some(&Location::Local(s.dst.clone())),
        &[],
    )
    .unwrap();
    let run = m.new_run("copy").unwrap();
    let outcome = copy_local(
        &s.src,
        &s.dst,
        &m,
        &run,
        o,
        &AtomicBool::new(false),
        &Progress::default(),
    )
    .unwrap();
    let log = fs::read_to_string(run.dir.join("copylog.jsonl")).unwrap();
    let records = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (outcome, records)
}

fn count(o: &CopyOutcome, code: Code) -> u64 {
    o.counts.get(&code).copied().unwrap_or(0)
}

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// Every file under `a` is under `b` with the same bytes.
fn assert_same_tree(a: &Path, b: &Path) {
    for entry in fs::read_dir(a).unwrap() {
        let entry = entry.unwrap();
        let other = b.join(entry.file_name());
        let t = entry.file_type().unwrap();
        if t.is_dir() {
            assert_same_tree(&entry.path(), &other);
        } else if t.is_file() {
            assert_eq!(
                fs::read(entry.path()).unwrap(),
                fs::read(&other).unwrap(),
                "{}",
                other.display()
            );
        }
    }
}

#[test]
fn copies_a_tree_byte_identical_with_times_and_modes() {
    let s = setup();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(&s.src.join("a/b/big.bin"), &big);
    write(&s.src.join("a/small.txt"), b"hello");
    write(&s.src.join("empty"), b"");
    fs::set_permissions(s.src.join("a/small.txt"), fs::Permissions::from_mode(0o640)).unwrap();

    let (o, records) = run_copy(&s, &options());
    assert_eq!(count(&o, Code::AZSM0000), 3, "{:?}", o.counts);
    assert_eq!(o.files, 3);
    assert_eq!(o.bytes_copied, 5_000_005);
    assert!(o.job_error.is_none());
    assert_same_tree(&s.src, &s.dst);
    let (sm, dm) = (
        fs::metadata(s.src.join("a/b/big.bin")).unwrap(),
        fs::metadata(s.dst.join("a/b/big.bin")).unwrap(),
    );
    assert_eq!((sm.mtime(), sm.mtime_nsec()), (dm.mtime(), dm.mtime_nsec()));
    assert_eq!(
        fs::metadata(s.dst.join("a/small.txt")).unwrap().mode() & 0o777,
        0o640
    );
    assert!(
        no_temp_folder(&s.dst),
        "the temporary folder is removed at the end"
    );
    assert!(
        records
            .iter()
            .all(|r| r["code"] == "AZSM0000" && r["attempts"] == 1)
    );
}

#[test]
fn a_second_run_skips_unchanged_files_and_copies_changed_ones() {
    let s = setup();
    write(&s.src.join("keep.txt"), b"same");
    write(&s.src.join("change.txt"), b"old");
    run_copy(&s, &options());
    // Another modification time and content.
    write(&s.src.join("change.txt"), b"new content");
    let t = fs::File::options()
        .write(true)
        .open(s.src.join("change.txt"))
        .unwrap();
    t.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();

    let (o, records) = run_copy(&s, &options());
    assert_eq!(count(&o, Code::AZSM2041), 1, "{:?}", o.counts);
    assert_eq!(count(&o, Code::AZSM0000), 1, "{:?}", o.counts);
    let changed = records.iter().find(|r| r["path"] == "change.txt").unwrap();
    assert_eq!(changed["code"], "AZSM0000");
    assert_eq!(fs::read(s.dst.join("change.txt")).unwrap(), b"new content");
}

#[test]
fn after_an_interrupted_run_files_already_at_the_target_are_not_sent_again() {
    let s = setup();
    write(&s.src.join("done.txt"), b"finished before the crash");
    write(&s.src.join("todo.txt"), b"not yet");
    // What a run killed after its rename and before its index commit leaves behind: the file
    // at the target with the source's time, a leftover temporary file, the run marker.
    let m = Migration::open(
        &s.state,
        &Location::Local(s.src.clone()),
        Some(&Location::Local(s.dst.clone())),
        &[],
    )
    .unwrap();
    fs::write(m.dir.join("copy-running"), "killed-run").unwrap();
    fs::create_dir_all(m.dir.join("runs/killed-run")).unwrap();
    let temp = s.dst.join(temp_dir_name(&m.id));
    drop(m);
    write(&s.dst.join("done.txt"), b"finished before the crash");
    let src_time = fs::metadata(s.src.join("done.txt"))
        .unwrap()
        .modified()
        .unwrap();
    fs::File::options()
        .write(true)
        .open(s.dst.join("done.txt"))
        .unwrap()
        .set_modified(src_time)
        .unwrap();
    write(&temp.join("killed-run/0"), b"half");
    let inode_before = fs::metadata(s.dst.join("done.txt")).unwrap().ino();

    let (o, records) = run_copy(&s, &options());
    // The interrupted run copied it and had no time to record it: this run records the copy.
    let done = records.iter().find(|r| r["path"] == "done.txt").unwrap();
    assert_eq!(done["code"], "AZSM0000");
    assert_eq!(
        fs::metadata(s.dst.join("done.txt")).unwrap().ino(),
        inode_before,
        "not rewritten"
    );
    assert_eq!(count(&o, Code::AZSM0000), 2);
    assert_eq!(o.bytes_copied, 7, "only todo.txt was sent");
    assert!(!temp.exists(), "leftovers are cleared");
    // And the next run trusts the index for both.
    let (o, _) = run_copy(&s, &options());
    assert_eq!(count(&o, Code::AZSM2041), 2);
}

#[test]
fn odd_names_are_copied_byte_for_byte() {
    let s = setup();
    let names: Vec<&[u8]> = vec![
        b"new\nline.txt",
        b"bad\xffutf8",
        b"sp ace  ",
        b"\xe2\x82\xac-euro",
        b"-dash",
    ];
    for n in &names {
        write(&s.src.join(std::ffi::OsStr::from_bytes(n)), n);
    }
    let (o, records) = run_copy(&s, &options());
    assert_eq!(count(&o, Code::AZSM0000), names.len() as u64, "{records:?}");
    for n in &names {
        assert_eq!(
            fs::read(s.dst.join(std::ffi::OsStr::from_bytes(n))).unwrap(),
            *n
        );
    }
    let bad = records
        .iter()
        .find(|r| r["path_hex"] == "626164ff75746638")
        .unwrap();
    assert_eq!(bad["path"], "bad\\xFFutf8");
}

#[test]
fn names_the_target_profile_cannot_hold_are_unsupported_not_copied() {
    let s = setup();
    write(&s.src.join("ok.txt"), b"1");
    write(&s.src.join("what?.txt"), b"2");
    write(&s.src.join(std::ffi::OsStr::from_bytes(b"x\xff")), b"3");
    let o = CopyOptions {
        profile: TargetProfile::by_name("windows").unwrap(),
        ..options()
    };
    let (out, records) = run_copy(&s, &o);
    assert_eq!(count(&out, Code::AZSM2022), 2, "{records:?}");
    assert!(!s.dst.join("what?.txt").exists());
    let r = records.iter().find(|r| r["path"] == "what?.txt").unwrap();
    assert_eq!(
        r["message"],
        "what?.txt: the name has characters the target does not allow (?)."
    );
}

#[test]
fn fifos_symlinks_and_symlink_loops_get_codes_and_the_copy_goes_on() {
    let s = setup();
    write(&s.src.join("dir/file.txt"), b"data");
    std::os::unix::fs::symlink("..", s.src.join("dir/loop")).unwrap();
    std::os::unix::fs::symlink("file.txt", s.src.join("dir/link.txt")).unwrap();
    let fifo = s.src.join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());

    let (o, _) = run_copy(&s, &options());
    assert_eq!(
        count(&o, Code::AZSM2021),
        3,
        "pipe and two links skipped: {:?}",
        o.counts
    );
    assert_eq!(count(&o, Code::AZSM0000), 1);

    let s2 = setup();
    fs::remove_dir_all(&s2.src).unwrap();
    fs::rename(&s.src, &s2.src).unwrap();
    let (o, records) = run_copy(
        &s2,
        &CopyOptions {
            links: Links::Follow,
            ..options()
        },
    );
    let loop_ = records.iter().find(|r| r["path"] == "dir/loop").unwrap();
    assert_eq!(loop_["code"], "AZSM2061", "{loop_}");
    assert!(loop_["message"].as_str().unwrap().contains("loop"));
    assert_eq!(
        fs::read(s2.dst.join("dir/link.txt")).unwrap(),
        b"data",
        "followed link copies its target"
    );
    assert_eq!(
        count(&o, Code::AZSM2021),
        1,
        "only the FIFO: {:?}",
        o.counts
    );
}

#[test]
fn filters_exclude_files_and_whole_folders() {
    let s = setup();
    write(&s.src.join("a.tmp"), b"x");
    write(&s.src.join("keep/a.txt"), b"x");
    write(&s.src.join("node_modules/x/y.js"), b"x");
    let filter = Filter::new(&FilterRules {
        exclude: vec!["*.tmp".into(), "node_modules/".into()],
        ..Default::default()
    })
    .unwrap();
    let (o, records) = run_copy(
        &s,
        &CopyOptions {
            filter,
            log_excluded: true,
            ..options()
        },
    );
    assert_eq!(count(&o, Code::AZSM2001), 2, "{records:?}");
    assert!(
        records
            .iter()
            .any(|r| r["path"] == "node_modules" && r["code"] == "AZSM2001")
    );
    assert!(
        !s.dst.join("node_modules").exists(),
        "an excluded folder is not walked or made"
    );
    assert!(s.dst.join("keep/a.txt").exists());
}

#[test]
fn verify_full_and_checksum_record_the_content_hash() {
    let s = setup();
    write(&s.src.join("f"), b"checked");
    let (o, records) = run_copy(
        &s,
        &CopyOptions {
            verify: Verify::Full,
            checksum: true,
            ..options()
        },
    );
    assert_eq!(count(&o, Code::AZSM0000), 1);
    let sum = records[0]["checksum"].as_str().unwrap();
    assert!(sum.starts_with("xxh3-128:") && sum.len() == 9 + 32, "{sum}");
}

#[test]
fn a_dry_run_writes_nothing() {
    let s = setup();
    write(&s.src.join("f"), b"abc");
    let (o, records) = run_copy(
        &s,
        &CopyOptions {
            dry_run: true,
            ..options()
        },
    );
    assert_eq!(o.would_copy, (1, 3));
    assert!(records.is_empty());
    assert!(!s.dst.join("f").exists());
}

#[test]
fn a_target_inside_the_source_is_refused() {
    let s = setup();
    write(&s.src.join("f"), b"abc");
    let m = Migration::open(&s.state, &Location::Local(s.src.clone()), None, &[]).unwrap();
    let run = m.new_run("copy").unwrap();
    let inner = s.src.join("copy");
    let e = copy_local(
        &s.src,
        &inner,
        &m,
        &run,
        &options(),
        &AtomicBool::new(false),
        &Progress::default(),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::MIGRATION_INVALID_DESTINATION_PATH_ERROR);
}

#[test]
fn a_second_process_on_the_same_migration_gets_1160() {
    let s = setup();
    let loc = Location::Local(s.src.clone());
    let _held = Migration::open(&s.state, &loc, None, &[]).unwrap();
    let e = Migration::open(&s.state, &loc, None, &[]).unwrap_err();
    assert_eq!(e.code, Code::MIGRATION_LOCK_ERROR);
    assert!(
        e.message.contains(&std::process::id().to_string()),
        "{}",
        e.message
    );
}

fn scan_options(profile: &str) -> ScanOptions {
    ScanOptions {
        profile: TargetProfile::by_name(profile).unwrap(),
        filter: Filter::default(),
        links: Links::Skip,
        max_folder_entries: 50_000,
        threads: 2,
    }
}

#[test]
fn scan_reports_sizes_extremes_and_problems_with_examples() {
    let s = setup();
    for i in 0..30 {
        write(&s.src.join(format!("bad/f{i}?.txt")), b"x");
    }
    write(&s.src.join("deep/a/b/c/d.txt"), &[0u8; 5000]);
    write(&s.src.join("zero"), b"");
    let mut inventory = Vec::new();
    let r = scan(
        &Side::Local(s.src.clone()),
        &scan_options("windows"),
        Some(&mut inventory),
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
    .unwrap();
    assert_eq!(r.status.code, Code::SCAN_SUCCEEDED);
    assert_eq!(r.files, 32);
    assert_eq!(r.folders, 5);
    assert_eq!(r.bytes, 5030);
    let p = &r.problems[&Code::AZSM2022];
    assert_eq!(p.count, 30);
    assert_eq!(p.examples.len(), 20, "examples are capped");
    assert_eq!(r.files_to_migrate, 2);
    assert_eq!(r.deepest.as_ref().unwrap().path, "deep/a/b/c/d.txt");
    assert_eq!(r.largest_folder.as_ref().unwrap().path, "bad");
    assert_eq!(r.size_histogram[0].files, 1, "one empty file");
    assert_eq!(
        String::from_utf8(inventory).unwrap().lines().count(),
        32 + 5
    );
}

#[test]
fn scan_job_level_findings_use_their_codes() {
    let s = setup();
    for i in 0..12 {
        write(&s.src.join(format!("big/{i}")), b"x");
    }
    let o = ScanOptions {
        max_folder_entries: 10,
        ..scan_options("posix")
    };
    let r = scan(
        &Side::Local(s.src.clone()),
        &o,
        None,
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
    .unwrap();
    assert_eq!(r.status.code, Code::SCAN_FAILED);
    assert_eq!(
        r.job_error.as_ref().unwrap().code,
        Code::SCAN_FAILURE_50K_LIMIT_ERROR
    );

    let filter = Filter::new(&FilterRules {
        exclude: vec!["*".into()],
        ..Default::default()
    })
    .unwrap();
    let r = scan(
        &Side::Local(s.src.clone()),
        &ScanOptions {
            filter,
            ..scan_options("posix")
        },
        None,
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
    .unwrap();
    assert_eq!(
        r.job_error.as_ref().unwrap().code,
        Code::SCAN_FAILURE_NOTHING_TO_MIGRATE
    );

    let e = scan(
        &Side::Local(s.src.join("missing")),
        &scan_options("posix"),
        None,
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::INVALID_SOURCE_PATH_ERROR);
}

#[test]
fn links_copy_recreates_the_links_themselves() {
    let s = setup();
    write(&s.src.join("dir/file.txt"), b"data");
    std::os::unix::fs::symlink("file.txt", s.src.join("dir/rel.txt")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/elsewhere", s.src.join("dangling")).unwrap();
    let (o, records) = run_copy(
        &s,
        &CopyOptions {
            links: Links::Copy,
            ..options()
        },
    );
    assert_eq!(count(&o, Code::AZSM0000), 3, "{records:?}");
    assert_eq!(
        fs::read_link(s.dst.join("dir/rel.txt")).unwrap(),
        Path::new("file.txt")
    );
    assert_eq!(
        fs::read_link(s.dst.join("dangling")).unwrap(),
        Path::new("/nonexistent/elsewhere")
    );
    assert_eq!(fs::read(s.dst.join("dir/rel.txt")).unwrap(), b"data");
    // Unchanged links are not made again.
    let (o, _) = run_copy(
        &s,
        &CopyOptions {
            links: Links::Copy,
            ..options()
        },
    );
    assert_eq!(count(&o, Code::AZSM2041), 3, "{:?}", o.counts);
}

#[test]
fn compare_target_decides_from_the_target_and_repairs_the_index() {
    let s = setup();
    write(&s.src.join("same.txt"), b"same");
    write(
        &s.src.join("gone.txt"),
        b"deleted at the target behind godwit's back",
    );
    write(&s.src.join("changed.txt"), b"original");
    run_copy(&s, &options());
    // Behind godwit's back: one file deleted, one replaced (another size and time), and the
    // index lost with the state directory.
    fs::remove_file(s.dst.join("gone.txt")).unwrap();
    fs::write(s.dst.join("changed.txt"), b"someone else's edit").unwrap();
    fs::remove_dir_all(&s.state).unwrap();

    let (o, records) = run_copy(
        &s,
        &CopyOptions {
            compare_target: true,
            ..options()
        },
    );
    let code = |p: &str| records.iter().find(|r| r["path"] == p).unwrap()["code"].clone();
    assert_eq!(code("same.txt"), "AZSM2042", "{records:?}");
    assert_eq!(code("gone.txt"), "AZSM0000");
    assert_eq!(code("changed.txt"), "AZSM0000");
    assert_eq!(fs::read(s.dst.join("changed.txt")).unwrap(), b"original");
    assert_eq!(count(&o, Code::AZSM2042), 1);
    // The index is whole again: the next ordinary run sends nothing.
    let (o, _) = run_copy(&s, &options());
    assert_eq!(count(&o, Code::AZSM2041), 3, "{:?}", o.counts);
}

/// Whether the target root holds no temporary folder of godwit's.
fn no_temp_folder(dst: &Path) -> bool {
    fs::read_dir(dst)
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
}

#[test]
fn sparse_files_stay_sparse_at_a_local_target() {
    let s = setup();
    // 64 MiB long, with 1 MiB of data at its start and another at its end.
    let path = s.src.join("disk.img");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::File::create(&path).unwrap();
        f.write_all(&[7u8; 1 << 20]).unwrap();
        f.seek(SeekFrom::Start(63 << 20)).unwrap();
        f.write_all(&[9u8; 1 << 20]).unwrap();
    }
    let on_disk = |p: &Path| fs::metadata(p).unwrap().blocks() * 512;
    assert!(on_disk(&path) < 8 << 20, "the test file system keeps holes");

    let (o, _) = run_copy(&s, &options());
    assert_eq!(count(&o, Code::AZSM0000), 1, "{:?}", o.counts);
    let copy = s.dst.join("disk.img");
    assert_eq!(fs::read(&copy).unwrap(), fs::read(&path).unwrap());
    assert!(
        on_disk(&copy) < 8 << 20,
        "the copy keeps its holes: {} bytes on disk for 64 MiB",
        on_disk(&copy)
    );
}

#[test]
fn hard_links_are_kept_with_hard_links_and_copied_apart_without() {
    let s = setup();
    write(&s.src.join("a/original.bin"), &[5u8; 100_000]);
    for (i, name) in ["a/second.bin", "b/third.bin", "b/fourth.bin"]
        .iter()
        .enumerate()
    {
        fs::create_dir_all(s.src.join(name).parent().unwrap()).unwrap();
        fs::hard_link(s.src.join("a/original.bin"), s.src.join(name)).unwrap();
        assert_eq!(
            fs::metadata(s.src.join(name)).unwrap().nlink(),
            i as u64 + 2
        );
    }
    write(&s.src.join("alone.txt"), b"one name");

    let kept = CopyOptions {
        hard_links: true,
        ..options()
    };
    let (o, records) = run_copy(&s, &kept);
    assert_eq!(count(&o, Code::AZSM0000), 5, "{records:?}");
    assert_eq!(o.bytes_copied, 100_000 + 8, "the linked file is sent once");
    let ino = fs::metadata(s.dst.join("a/original.bin")).unwrap().ino();
    for name in ["a/second.bin", "b/third.bin", "b/fourth.bin"] {
        let m = fs::metadata(s.dst.join(name)).unwrap();
        assert_eq!(
            m.ino(),
            ino,
            "{name} is a link to the same file at the target"
        );
        assert_eq!(m.nlink(), 4);
    }
    assert_same_tree(&s.src, &s.dst);
    let (o, _) = run_copy(&s, &kept);
    assert_eq!(count(&o, Code::AZSM2041), 5);

    // Without the option, each name is a file of its own (as cp -r does).
    let apart = setup();
    write(&apart.src.join("x.bin"), b"data");
    fs::hard_link(apart.src.join("x.bin"), apart.src.join("y.bin")).unwrap();
    run_copy(&apart, &options());
    let (x, y) = (
        fs::metadata(apart.dst.join("x.bin")).unwrap(),
        fs::metadata(apart.dst.join("y.bin")).unwrap(),
    );
    assert_ne!(x.ino(), y.ino());
    assert_eq!((x.nlink(), y.nlink()), (1, 1));
}
