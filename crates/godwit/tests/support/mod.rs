//! Helpers shared by the CLI test binaries.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod proxy;
pub mod world;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `godwit` with a clean environment for what it reads.
pub fn godwit() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_godwit"));
    c.env("NO_COLOR", "1").env_remove("GODWIT_STATE_DIR");
    c
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run godwit")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// The records of a run's copy log.
pub fn copylog(run_dir: &str) -> Vec<serde_json::Value> {
    fs::read_to_string(Path::new(run_dir).join("copylog.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `a` and `b` hold the same files with the same bytes (godwit's temporary folder aside).
pub fn assert_same_tree(a: &Path, b: &Path) {
    let mut n = 0;
    for entry in fs::read_dir(a).unwrap() {
        let entry = entry.unwrap();
        let other = b.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            assert_same_tree(&entry.path(), &other);
        } else {
            assert_eq!(
                fs::read(entry.path()).unwrap(),
                fs::read(&other).unwrap(),
                "{}",
                other.display()
            );
        }
        n += 1;
    }
    let m = fs::read_dir(b)
        .unwrap_or_else(|e| panic!("{}: {e}", b.display()))
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".godwit-tmp-")
        })
        .count();
    assert_eq!(n, m, "{} has entries the source does not", b.display());
}

/// The summary a `--json` run prints as its last line (progress lines come before it).
pub fn summary(out: &Output) -> serde_json::Value {
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", text(&out.stderr)))
}

pub fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    text(&out.stdout).trim() == "0"
}

/// Runs godwit as `nobody` when the tests run as root (as CI does), so that permission bits
/// really stop reads; as another user they already do. `dir` must be open to everyone.
pub fn as_unprivileged(dir: &Path) -> Command {
    if !is_root() {
        return godwit();
    }
    // nobody cannot enter root's home, where the test binary usually lives: run a copy of it.
    let bin = dir.join("godwit");
    if !bin.exists() {
        fs::copy(env!("CARGO_BIN_EXE_godwit"), &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(bin)
        .env("NO_COLOR", "1")
        .env_remove("GODWIT_STATE_DIR");
    c
}

/// A source, a target and a state directory in a temporary folder open to everyone (so that
/// [`as_unprivileged`] runs can use it), removed with the value.
pub struct Dirs {
    pub _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub src: PathBuf,
    pub dst: PathBuf,
    pub state: PathBuf,
}

pub fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
    Dirs {
        src: root.join("src"),
        dst: root.join("dst"),
        state: root.join("state"),
        root,
        _tmp: tmp,
    }
}

/// A 1 MiB file system mounted at `at` for as long as the value lives.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    pub fn mount(at: &Path) -> SmallDisk {
        SmallDisk::of_size(at, "1m")
    }

    /// A file system of `size` (`130m`) at `at`.
    pub fn of_size(at: &Path, size: &str) -> SmallDisk {
        assert!(
            is_root(),
            "this test mounts a small tmpfs as the target, which needs root (CI runs as root)"
        );
        fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {}", text(&out.stderr));
        SmallDisk(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a process still using it (a test that failed early) must not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A memory cgroup with a limit, for the commands run through [`MemoryLimit::godwit`], removed
/// with the value (cgroup v1's memory controller where the machine has it, else v2).
pub struct MemoryLimit(PathBuf);

impl MemoryLimit {
    pub fn new(limit: u64) -> MemoryLimit {
        assert!(
            is_root(),
            "this test limits godwit's memory with a cgroup, which needs root (CI runs as root)"
        );
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let cgroups = fs::read_to_string("/proc/self/cgroup").unwrap();
        let v1 = cgroups.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| path.trim_start_matches('/').to_string())
        });
        let (parent, file) = match v1 {
            Some(path) => (
                Path::new("/sys/fs/cgroup/memory").join(path),
                "memory.limit_in_bytes",
            ),
            None => {
                let path = cgroups.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
                (
                    Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')),
                    "memory.max",
                )
            }
        };
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = parent.join(format!("godwit-test-{}-{n}", std::process::id()));
        fs::create_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: this test needs a memory cgroup it can make",
                dir.display()
            )
        });
        fs::write(dir.join(file), limit.to_string()).unwrap();
        MemoryLimit(dir)
    }

    /// godwit, started inside the cgroup.
    pub fn godwit(&self) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "echo $$ > '{}/cgroup.procs' && exec \"$0\" \"$@\"",
                self.0.display()
            ))
            .arg(env!("CARGO_BIN_EXE_godwit"))
            .env("NO_COLOR", "1");
        c
    }
}

impl Drop for MemoryLimit {
    fn drop(&mut self) {
        // Empty once its processes have exited.
        for _ in 0..50 {
            if fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
