//! `speed-test`: what the path to a target can do, measured from where the copy will run.
//! Many small files and a few large ones are written under a temporary prefix at the target
//! (`.godwit-tmp-speedtest-<run>`, which other commands leave alone), read back and compared
//! byte for byte, then deleted, and a listing checks that nothing is left. Files go over the
//! same connections a copy uses (godwit's own SFTP session on an SFTP target).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use godwit_codes::Code;

use crate::backend::{Side, TEMP_PREFIX};
use crate::error::JobError;
use crate::record::{Latency, SpeedLeg, SpeedReport};
use crate::store::Remote;

/// The files of a speed test.
#[derive(Debug, Clone, Copy)]
pub struct SpeedOptions {
    pub small_files: usize,
    pub small_size: usize,
    pub large_files: usize,
    pub large_size: usize,
    /// Files in flight at once.
    pub workers: usize,
    /// The test stops where it is, cleans up and fails with 6090 past this.
    pub max_time: Option<Duration>,
}

impl Default for SpeedOptions {
    fn default() -> Self {
        SpeedOptions {
            small_files: 200,
            small_size: 64 << 10,
            large_files: 2,
            large_size: 64 << 20,
            workers: 16,
            max_time: None,
        }
    }
}

/// How a speed test ended: its report, and whether it ran out of time.
#[derive(Debug)]
pub struct SpeedOutcome {
    pub report: SpeedReport,
    pub timed_out: bool,
    pub stopped: bool,
}

/// Runs the test against `dst`. An error means the target could not be used at all (or the
/// bytes read back differed from those written: then the target cannot be trusted either).
pub fn speed_test(
    dst: &Side,
    rt: Option<&tokio::runtime::Runtime>,
    run_id: &str,
    o: &SpeedOptions,
    stop: &AtomicBool,
) -> Result<SpeedOutcome, JobError> {
    let prefix = format!("{TEMP_PREFIX}speedtest-{run_id}");
    let store = Store::of(dst, rt)?;
    // A local target made for the test goes with it.
    let made_root = match dst {
        Side::Local(root) if !root.exists() => Some(root.clone()),
        _ => None,
    };
    let deadline = o.max_time.map(|d| Instant::now() + d);
    let late = || deadline.is_some_and(|d| Instant::now() >= d);
    store
        .make_prefix(&prefix)
        .map_err(|why| failure(dst, &why))?;
    // One buffer of bytes that do not compress; each file is a slice of it.
    let data = noise(o.large_size.max(o.small_size * 2));
    let mut report = SpeedReport {
        prefix: format!("{}/{prefix}", dst.shown().trim_end_matches('/')),
        ..SpeedReport::default()
    };
    let mut result = Ok(());
    let legs = [
        (Way::Write, o.small_files, o.small_size),
        (Way::Write, o.large_files, o.large_size),
        (Way::Read, o.small_files, o.small_size),
        (Way::Read, o.large_files, o.large_size),
    ];
    let mut timed_out = false;
    for (i, (way, files, size)) in legs.into_iter().enumerate() {
        if stop.load(Ordering::Relaxed) || late() {
            timed_out |= late();
            break;
        }
        let kind = if i % 2 == 0 { "small" } else { "large" };
        let names: Vec<String> = (0..files).map(|n| format!("{prefix}/{kind}-{n}")).collect();
        let leg = run_leg(&store, way, &names, size, &data, o.workers, deadline, stop);
        match leg {
            Ok((leg, cut)) => {
                timed_out |= cut && late();
                *match i {
                    0 => &mut report.write_small,
                    1 => &mut report.write_large,
                    2 => &mut report.read_small,
                    _ => &mut report.read_large,
                } = leg;
            }
            Err(why) => {
                result = Err(failure(dst, &why));
                break;
            }
        }
    }
    // Whatever happened, the test files go, and a listing says whether they did.
    let removed = store.remove_prefix(&prefix);
    report.cleaned_up = removed.is_ok() && store.left(&prefix) == Some(0);
    if let Some(root) = made_root {
        let _ = std::fs::remove_dir(root);
    }
    result?;
    if !report.cleaned_up {
        let why = removed
            .err()
            .unwrap_or_else(|| "files were left under it".into());
        return Err(JobError::new(
            Code::AZSM1040,
            &[("path", &report.prefix), ("reason", &why)],
        ));
    }
    Ok(SpeedOutcome {
        report,
        timed_out,
        stopped: stop.load(Ordering::Relaxed),
    })
}

fn failure(dst: &Side, why: &str) -> JobError {
    JobError::new(Code::AZSM1040, &[("path", &dst.shown()), ("reason", why)])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Write,
    Read,
}

/// Writes or reads `names` on `workers` threads; returns the leg and whether it was cut short.
#[allow(clippy::too_many_arguments)]
fn run_leg(
    store: &Store<'_>,
    way: Way,
    names: &[String],
    size: usize,
    data: &Bytes,
    workers: usize,
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> Result<(SpeedLeg, bool), String> {
    let late = || deadline.is_some_and(|d| Instant::now() >= d);
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(names.len()));
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let cut = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, names.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    if stop.load(Ordering::Relaxed) || late() {
                        cut.store(true, Ordering::Relaxed);
                        break;
                    }
                    if failure.lock().is_ok_and(|f| f.is_some()) {
                        break;
                    }
                    // Each file its own slice, so no two are the same.
                    let offset = (i * 4099) % (data.len() - size + 1);
                    let body = data.slice(offset..offset + size);
                    let t = Instant::now();
                    let done = match way {
                        Way::Write => store.put(name, body, deadline),
                        Way::Read => store.get(name, deadline).and_then(|got| {
                            if got == body {
                                Ok(())
                            } else {
                                Err(Some(format!(
                                    "{name} read back {} bytes that differ from the {size} written",
                                    got.len()
                                )))
                            }
                        }),
                    };
                    match done {
                        Ok(()) => {
                            let ms = t.elapsed().as_secs_f64() * 1000.0;
                            if let Ok(mut l) = latencies.lock() {
                                l.push(ms);
                            }
                        }
                        // Out of time in the middle of a file: it is not counted.
                        Err(None) => {
                            cut.store(true, Ordering::Relaxed);
                            break;
                        }
                        Err(Some(why)) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(why);
                            }
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(why) = failure.into_inner().unwrap_or_default() {
        return Err(why);
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-6);
    let mut ms = latencies.into_inner().unwrap_or_default();
    let files = ms.len() as u64;
    let bytes = files * size as u64;
    Ok((
        SpeedLeg {
            files,
            bytes,
            seconds,
            bytes_per_second: bytes as f64 / seconds,
            files_per_second: files as f64 / seconds,
            latency_ms: percentiles(&mut ms),
        },
        cut.load(Ordering::Relaxed),
    ))
}

fn percentiles(ms: &mut [f64]) -> Latency {
    if ms.is_empty() {
        return Latency::default();
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    Latency {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: ms[ms.len() - 1],
    }
}

/// `len` bytes that no link compresses (xorshift).
fn noise(len: usize) -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// `work`, unless `deadline` comes first (then Err(None)).
async fn until<T>(
    deadline: Option<Instant>,
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, Option<String>> {
    match deadline {
        None => work.await.map_err(Some),
        Some(d) => match tokio::time::timeout_at(d.into(), work).await {
            Ok(done) => done.map_err(Some),
            Err(_) => Err(None),
        },
    }
}

/// The target, for the few things a speed test does with it.
enum Store<'a> {
    Local(&'a std::path::Path),
    Remote(&'a Remote, &'a tokio::runtime::Runtime),
}

impl<'a> Store<'a> {
    fn of(dst: &'a Side, rt: Option<&'a tokio::runtime::Runtime>) -> Result<Self, JobError> {
        match (dst, rt) {
            (Side::Local(root), _) => Ok(Store::Local(root)),
            (Side::Remote(r), Some(rt)) => {
                crate::store::reachable(r, rt, true)?;
                Ok(Store::Remote(r, rt))
            }
            (Side::Remote(r), None) => Err(crate::store::no_runtime(r)),
        }
    }

    fn make_prefix(&self, prefix: &str) -> Result<(), String> {
        match self {
            Store::Local(root) => {
                std::fs::create_dir_all(root.join(prefix)).map_err(|e| e.to_string())
            }
            Store::Remote(r, rt) if !r.features().atomic_write || r.sftp.is_some() => rt
                .block_on(r.op.create_dir(&format!("{prefix}/")))
                .map_err(|e| e.to_string()),
            Store::Remote(..) => Ok(()),
        }
    }

    /// Writes `body` at `name`; Err(None) when `deadline` came first.
    fn put(
        &self,
        name: &str,
        body: Bytes,
        deadline: Option<Instant>,
    ) -> Result<(), Option<String>> {
        match self {
            Store::Local(root) => {
                std::fs::write(root.join(name), &body).map_err(|e| Some(e.to_string()))
            }
            Store::Remote(r, rt) => rt.block_on(until(deadline, async {
                match &r.sftp {
                    Some(sftp) => {
                        let mut file = sftp.create(name).await.map_err(|e| e.to_string())?;
                        file.write(&body).await.map_err(|e| e.to_string())?;
                        file.finish(0, body.len() as u64, false)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                    None => {
                        r.op.write(name, body)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                }
            })),
        }
    }

    /// Reads `name`; Err(None) when `deadline` came first.
    fn get(&self, name: &str, deadline: Option<Instant>) -> Result<Bytes, Option<String>> {
        match self {
            Store::Local(root) => std::fs::read(root.join(name))
                .map(Bytes::from)
                .map_err(|e| Some(e.to_string())),
            Store::Remote(r, rt) => rt.block_on(until(deadline, async {
                r.op.read(name)
                    .await
                    .map(|b| b.to_bytes())
                    .map_err(|e| e.to_string())
            })),
        }
    }

    fn remove_prefix(&self, prefix: &str) -> Result<(), String> {
        match self {
            Store::Local(root) => match std::fs::remove_dir_all(root.join(prefix)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            },
            Store::Remote(r, rt) => rt
                .block_on(async {
                    r.op.delete_with(&format!("{prefix}/"))
                        .recursive(true)
                        .await
                })
                .map_err(|e| e.to_string()),
        }
    }

    /// Entries left under the prefix (None: it could not be told).
    fn left(&self, prefix: &str) -> Option<usize> {
        match self {
            Store::Local(root) => match std::fs::read_dir(root.join(prefix)) {
                Ok(d) => Some(d.count()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(0),
                Err(_) => None,
            },
            Store::Remote(r, rt) => rt
                .block_on(async { r.op.list_with(&format!("{prefix}/")).recursive(true).await })
                .ok()
                .map(|l| {
                    l.iter()
                        .filter(|e| e.path().trim_end_matches('/') != prefix)
                        .count()
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_test_measures_both_ways_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let side = Side::Local(dir.path().to_path_buf());
        let o = SpeedOptions {
            small_files: 20,
            small_size: 4096,
            large_files: 1,
            large_size: 1 << 20,
            workers: 4,
            max_time: None,
        };
        let out = speed_test(&side, None, "t1", &o, &AtomicBool::new(false)).unwrap();
        let made = Side::Local(dir.path().join("new"));
        speed_test(&made, None, "t2", &o, &AtomicBool::new(false)).unwrap();
        assert!(
            !dir.path().join("new").exists(),
            "a target made for the test goes with it"
        );
        let r = &out.report;
        assert_eq!((r.write_small.files, r.read_small.files), (20, 20));
        assert_eq!(
            (r.write_large.bytes, r.read_large.bytes),
            (1 << 20, 1 << 20)
        );
        assert!(r.write_small.latency_ms.p50 <= r.write_small.latency_ms.max);
        assert!(r.cleaned_up && !out.timed_out);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn percentiles_of_a_few() {
        let mut ms = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        let l = percentiles(&mut ms);
        assert_eq!((l.p50, l.max), (3.0, 5.0));
        assert_eq!(percentiles(&mut []), Latency::default());
    }
}
