//! The agent's upgrade to a signed release, and its rollback.
//!
//! Steps, each reported with its time and code (AZSM0001-0005, with 8010-8040 under them):
//! `download` (resumed from what an earlier attempt fetched), `pre-check` (free space, a newer
//! version), `verify` (the size, the SHA-256 and the Ed25519 signature, with the agent's own
//! `--release-key`), `install` (the new binary beside the old one; the new binary's trial run;
//! the old one kept as `NAME.previous`; the new one renamed over the old: the agent's path
//! always holds a whole binary), then the agent re-executes itself. The new binary's
//! `post-check` is that it registers with the control plane within the window; if it does not,
//! or fails its self-test, or has started three times without getting there, it renames the
//! previous binary back and re-executes that (`rollback`).
//!
//! A journal in the state directory (`upgrade/journal.json`, written before each step that
//! changes anything) says where an upgrade stands, so that whichever binary starts after a
//! crash or a kill -9 finishes or undoes it, and reports it.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use godwit_codes::Code;
use godwit_spec::protocol::{ToServer, UpgradeOrder, UpgradeStep};
use godwit_spec::release::PublicKey;
use serde::{Deserialize, Serialize};

use crate::{Shared, lock};

/// Where an upgrade stands, as the journal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Phase {
    /// Fetching the release (nothing changed yet).
    Downloading,
    /// Writing the new binary beside the old one, and trying it.
    Installing,
    /// The old binary is kept as `.previous`; the new one is being renamed over it.
    Swapping,
    /// The new binary is in place and must now connect.
    Swapped,
    /// The new binary connected: done.
    Confirmed,
    /// The previous binary is being put back.
    RollingBack,
    /// Over, well or not; the steps say which.
    Ended,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    upgrade_id: String,
    from_version: String,
    to_version: String,
    phase: Phase,
    /// Starts of the new binary that have not connected yet.
    starts: u32,
    steps: Vec<UpgradeStep>,
}

/// What the agent needs to upgrade itself.
#[derive(Debug, Clone)]
pub struct Context {
    pub state_dir: PathBuf,
    /// The binary the agent runs as (the one replaced).
    pub exe: PathBuf,
    /// Its arguments, to start the new binary with the same ones.
    pub args: Vec<OsString>,
    pub version: String,
    /// The control plane the agent is connected to now (one of its replicas): relative
    /// release URLs are fetched from it.
    pub server: std::sync::Arc<std::sync::Mutex<String>>,
    pub token: String,
    pub release_key: Option<PublicKey>,
    /// How long a new binary has to connect before it rolls back.
    pub window: Duration,
    /// The CA file the control plane's certificate chains to (release downloads).
    pub ca_file: Option<PathBuf>,
    /// A test's hook: stop (sleep) when the upgrade reaches this point, to be killed there.
    pub hold: Option<String>,
}

/// How many starts of a new binary that never connects before it is rolled back.
const MAX_STARTS: u32 = 3;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn step(
    name: &str,
    failure: Option<(Code, Option<Code>)>,
    message: impl Into<String>,
) -> UpgradeStep {
    UpgradeStep {
        step: name.to_string(),
        at_ms: now_ms(),
        code: failure.map(|(c, _)| c.id().to_string()),
        cause: failure.and_then(|(_, c)| c).map(|c| c.id().to_string()),
        message: message.into(),
    }
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("upgrade")
}

fn sibling(exe: &Path, suffix: &str) -> PathBuf {
    let mut name = exe.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    exe.with_file_name(name)
}

/// The old binary, kept beside the new one.
pub fn previous_of(exe: &Path) -> PathBuf {
    sibling(exe, ".previous")
}

fn new_of(exe: &Path) -> PathBuf {
    sibling(exe, ".new")
}

fn load(state_dir: &Path) -> Option<Journal> {
    let text = std::fs::read(dir(state_dir).join("journal.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Writes the journal whole or not at all: a temporary file, synced, renamed over it.
fn save(state_dir: &Path, j: &Journal) -> std::io::Result<()> {
    let d = dir(state_dir);
    std::fs::create_dir_all(&d)?;
    let tmp = d.join("journal.json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(j).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, d.join("journal.json"))?;
    std::fs::File::open(&d)?.sync_all()
}

fn report(shared: &Shared, j: &Journal, version: &str, done: bool) {
    let (id, steps) = (j.upgrade_id.clone(), j.steps.clone());
    let version = version.to_string();
    shared.push(false, move |seq| ToServer::Upgrade {
        seq,
        upgrade_id: id,
        version,
        steps,
        done,
    });
}

/// Stops here when a test asked to (to kill the agent at this point).
fn hold(ctx: &Context, at: &str) {
    if ctx.hold.as_deref() == Some(at) {
        tracing::warn!("upgrade held at {at} (GODWIT_TEST_UPGRADE_HOLD)");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// What the agent does at start about an upgrade it was in.
#[derive(Debug)]
pub enum Startup {
    Nothing,
    /// The new binary runs: it must register within the window.
    Confirm(Duration),
}

/// Finishes or undoes an upgrade the journal says was going on; returns what is left to do.
/// May re-execute the process into the previous binary (and then does not return).
pub(crate) fn on_start(ctx: &Context, shared: &Shared) -> Startup {
    let Some(mut j) = load(&ctx.state_dir) else {
        return Startup::Nothing;
    };
    let mine = ctx.version == j.to_version;
    match j.phase {
        Phase::Ended | Phase::Confirmed => {
            // Reported again: the control plane may not have stored it before we stopped.
            report(shared, &j, &ctx.version, true);
            Startup::Nothing
        }
        Phase::Downloading | Phase::Installing => {
            let (name, code) = if j.phase == Phase::Downloading {
                ("download", Code::XDM_AGSTATUS_UPG_DOWNLOAD_FAILED)
            } else {
                ("install", Code::XDM_AGSTATUS_UPG_UPGRADE_FAILED)
            };
            let _ = std::fs::remove_file(new_of(&ctx.exe));
            end(
                ctx,
                shared,
                &mut j,
                step(
                    name,
                    Some((code, None)),
                    "the agent stopped before the upgrade was installed; nothing was changed",
                ),
            );
            Startup::Nothing
        }
        Phase::Swapping | Phase::Swapped if mine => {
            j.phase = Phase::Swapped;
            j.starts += 1;
            let _ = save(&ctx.state_dir, &j);
            if j.starts > MAX_STARTS {
                return roll_back(
                    ctx,
                    shared,
                    j,
                    &format!("the new binary started {MAX_STARTS} times without connecting"),
                );
            }
            if let Err(why) = self_test(&ctx.state_dir) {
                return roll_back(ctx, shared, j, &why);
            }
            hold(ctx, "post-check");
            Startup::Confirm(ctx.window)
        }
        Phase::Swapping => {
            let _ = std::fs::remove_file(new_of(&ctx.exe));
            let s = step(
                "install",
                Some((
                    Code::XDM_AGSTATUS_UPG_UPGRADE_FAILED,
                    Some(Code::CMM_INSTALLER_EXECUTION),
                )),
                "the agent stopped while installing; the previous binary was kept",
            );
            end(ctx, shared, &mut j, s);
            Startup::Nothing
        }
        Phase::Swapped => {
            // The previous binary runs again, put back by hand or by a crash of the rollback.
            let s = step(
                "post-check",
                Some((Code::XDM_AGSTATUS_UPG_POST_CHECK_FAILED, None)),
                format!("the previous binary ({}) runs again", ctx.version),
            );
            end(ctx, shared, &mut j, s);
            Startup::Nothing
        }
        Phase::RollingBack if ctx.version == j.from_version => {
            j.steps.push(step(
                "rollback",
                None,
                format!("the previous binary ({}) runs again", ctx.version),
            ));
            j.phase = Phase::Ended;
            let _ = save(&ctx.state_dir, &j);
            report(shared, &j, &ctx.version, true);
            Startup::Nothing
        }
        Phase::RollingBack => restore(ctx, shared, j),
    }
}

/// Ends the upgrade with its last step, and reports it.
fn end(ctx: &Context, shared: &Shared, j: &mut Journal, last: UpgradeStep) {
    tracing::error!(
        upgrade_id = %j.upgrade_id,
        step = %last.step,
        code = last.code.as_deref().unwrap_or(""),
        "upgrade failed: {}",
        last.message
    );
    j.steps.push(last);
    j.phase = Phase::Ended;
    let _ = save(&ctx.state_dir, j);
    report(shared, j, &ctx.version, true);
}

/// The new binary failed its post-check: the previous binary is put back and run.
pub(crate) fn roll_back_now(ctx: &Context, shared: &Shared, why: &str) -> Startup {
    match load(&ctx.state_dir) {
        Some(j) if j.phase == Phase::Swapped => roll_back(ctx, shared, j, why),
        _ => Startup::Nothing,
    }
}

fn roll_back(ctx: &Context, shared: &Shared, mut j: Journal, why: &str) -> Startup {
    tracing::error!(
        upgrade_id = %j.upgrade_id,
        "the new binary failed its post-check: {why}; rolling back"
    );
    j.steps.push(step(
        "post-check",
        Some((Code::XDM_AGSTATUS_UPG_POST_CHECK_FAILED, None)),
        why,
    ));
    j.phase = Phase::RollingBack;
    let _ = save(&ctx.state_dir, &j);
    restore(ctx, shared, j)
}

/// Renames the previous binary over the current one and runs it; AZSM0005 when it cannot.
fn restore(ctx: &Context, shared: &Shared, mut j: Journal) -> Startup {
    let previous = previous_of(&ctx.exe);
    match std::fs::rename(&previous, &ctx.exe) {
        Ok(()) => {
            let e = exec(ctx);
            // Only here when the previous binary could not be started.
            let s = step(
                "rollback",
                Some((Code::XDM_AGSTATUS_UPG_ROLLBACK_FAILED, None)),
                format!("the previous binary could not be started: {e}"),
            );
            end(ctx, shared, &mut j, s);
        }
        Err(e) => {
            let s = step(
                "rollback",
                Some((Code::XDM_AGSTATUS_UPG_ROLLBACK_FAILED, None)),
                format!("{} could not be put back: {e}", previous.display()),
            );
            end(ctx, shared, &mut j, s);
        }
    }
    Startup::Nothing
}

/// The new binary registered with the control plane: the upgrade succeeded.
pub(crate) fn confirmed(ctx: &Context, shared: &Shared) {
    let Some(mut j) = load(&ctx.state_dir) else {
        return;
    };
    if j.phase != Phase::Swapped {
        return;
    }
    j.steps.push(step(
        "post-check",
        None,
        format!("{} registered with the control plane", ctx.version),
    ));
    j.phase = Phase::Confirmed;
    let _ = save(&ctx.state_dir, &j);
    tracing::info!(upgrade_id = %j.upgrade_id, version = %ctx.version, "upgrade done");
    report(shared, &j, &ctx.version, true);
}

/// Replaces this process with the binary at the agent's path, same arguments. Returns only
/// when that failed.
fn exec(ctx: &Context) -> std::io::Error {
    use std::os::unix::process::CommandExt as _;
    tracing::info!(exe = %ctx.exe.display(), "starting the agent's binary");
    std::process::Command::new(&ctx.exe).args(&ctx.args).exec()
}

/// The new binary's own checks: its catalog and digest work, its state directory is usable.
fn self_test(state_dir: &Path) -> Result<(), String> {
    if Code::lookup("994").is_err() {
        return Err("self-test: the code catalog does not load".into());
    }
    let mut h = godwit_spec::release::Hasher::default();
    h.update(b"abc");
    if h.hex() != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
        return Err("self-test: SHA-256 gives a wrong digest".into());
    }
    std::fs::read_dir(state_dir).map_err(|e| {
        format!(
            "the state directory {} cannot be read: {e}",
            state_dir.display()
        )
    })?;
    let probe = dir(state_dir).join(".probe");
    std::fs::write(&probe, b"godwit")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            format!(
                "the state directory {} cannot be written: {e}",
                state_dir.display()
            )
        })
}

/// `godwit agent --post-check`: what a new binary must pass before it replaces the old one.
/// Its self-test, its state directory, and the control plane reachable with the agent's token
/// (as `godwit doctor --server` checks it).
pub async fn post_check(
    servers: &[String],
    token: &str,
    ca_file: Option<&Path>,
    state_dir: &Path,
) -> Result<(), String> {
    std::fs::create_dir_all(dir(state_dir)).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    self_test(state_dir)?;
    // One replica reached is enough.
    let mut last = String::from("no control plane is named");
    for server in servers {
        match crate::reach_control_plane(server, token, ca_file, true).await {
            Ok(_) => return Ok(()),
            Err((code, message)) => last = format!("[{code}] {message}"),
        }
    }
    Err(last)
}

/// A failed step: its code, the agent-side code under it, and what happened.
type Failure = (Code, Option<Code>, String);

/// Carries out `order`; on success does not return (the process becomes the new binary).
pub(crate) async fn perform(ctx: Arc<Context>, shared: Arc<Shared>, order: UpgradeOrder) {
    if let Some(j) = load(&ctx.state_dir)
        && !matches!(j.phase, Phase::Ended | Phase::Confirmed)
    {
        // Sent again after a reconnect while it goes on: it goes on.
        if j.upgrade_id == order.upgrade_id {
            return;
        }
    }
    let started = Instant::now();
    let limit = Duration::from_secs(order.time_limit_secs);
    let mut j = Journal {
        upgrade_id: order.upgrade_id.clone(),
        from_version: ctx.version.clone(),
        to_version: order.release.version.clone(),
        phase: Phase::Downloading,
        starts: 0,
        steps: Vec::new(),
    };
    tracing::info!(upgrade_id = %j.upgrade_id, version = %j.to_version, "upgrade starting");
    if !lock(&shared.jobs).is_empty() {
        let s = step(
            "pre-check",
            Some((Code::XDM_AGSTATUS_UPG_PRE_CHECK_FAILED, None)),
            "the agent runs a command; nothing was changed",
        );
        return end(&ctx, &shared, &mut j, s);
    }
    if let Err(e) = save(&ctx.state_dir, &j) {
        let s = step(
            "download",
            Some((
                Code::XDM_AGSTATUS_UPG_UPGRADE_FAILED,
                Some(Code::AGENT_VERSION_SAVE_FILE),
            )),
            format!(
                "the upgrade journal in {} cannot be written: {e}",
                dir(&ctx.state_dir).display()
            ),
        );
        j.steps.push(s);
        return report(&shared, &j, &ctx.version, true);
    }
    report(&shared, &j, &ctx.version, false);
    let part = match download(&ctx, &order, started + limit).await {
        Ok(p) => p,
        Err((code, cause, why)) => {
            let s = step("download", Some((code, cause)), why);
            return end(&ctx, &shared, &mut j, s);
        }
    };
    j.steps.push(step(
        "download",
        None,
        format!("{} bytes", order.release.size),
    ));
    let checks = pre_check(&ctx, &order).and_then(|()| verify(&ctx, &order, &part));
    if let Err((name, code, why)) = checks {
        // A download that is not installed is not kept: the next upgrade fetches afresh what
        // it verifies (only a broken download is resumed).
        let _ = std::fs::remove_file(&part);
        let s = step(name, Some((code, None)), why);
        return end(&ctx, &shared, &mut j, s);
    }
    j.steps
        .push(step("pre-check", None, "free space and version"));
    j.steps
        .push(step("verify", None, "size, SHA-256 and signature"));
    if started.elapsed() > limit {
        let s = step(
            "install",
            Some((Code::XDM_AGSTATUS_UPG_UPGRADE_FAILED, None)),
            "the upgrade's time limit passed before installing; nothing was changed",
        );
        return end(&ctx, &shared, &mut j, s);
    }
    let staged = new_of(&ctx.exe);
    if let Err(s) = install(&ctx, &shared, &mut j, &part, &order.release.version).await {
        let _ = std::fs::remove_file(&staged);
        return end(&ctx, &shared, &mut j, s);
    }
    j.phase = Phase::Swapped;
    let _ = save(&ctx.state_dir, &j);
    report(&shared, &j, &ctx.version, false);
    // What is reported is in the journal too; a moment for it to reach the control plane.
    let flush = Instant::now();
    while lock(&shared.outbox)
        .pending
        .values()
        .any(|m| matches!(m, ToServer::Upgrade { .. }))
        && flush.elapsed() < Duration::from_secs(3)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hold(&ctx, "swapped");
    let e = exec(&ctx);
    // The new binary could not be started: the previous one is put back.
    j.steps.push(install_failed(
        Code::CMM_INSTALLER_EXECUTION,
        format!("the new binary could not be started: {e}"),
    ));
    j.phase = Phase::RollingBack;
    let _ = save(&ctx.state_dir, &j);
    let _ = restore(&ctx, &shared, j);
}

/// A failed install step: AZSM0003 with the agent-side code under it (8030, 8040).
fn install_failed(cause: Code, message: String) -> UpgradeStep {
    step(
        "install",
        Some((Code::XDM_AGSTATUS_UPG_UPGRADE_FAILED, Some(cause))),
        message,
    )
}

/// Installs the verified download: the new binary staged beside the agent's and tried, the
/// old one kept as `.previous`, the new one renamed over it. The failed step otherwise; the
/// agent's binary is then the old one still (the caller removes the staged copy).
async fn install(
    ctx: &Context,
    shared: &Shared,
    j: &mut Journal,
    part: &Path,
    version: &str,
) -> Result<(), UpgradeStep> {
    let journal = |j: &Journal| {
        save(&ctx.state_dir, j).map_err(|e| {
            install_failed(
                Code::AGENT_VERSION_SAVE_FILE,
                format!("the upgrade journal cannot be written: {e}"),
            )
        })
    };
    j.phase = Phase::Installing;
    journal(j)?;
    report(shared, j, &ctx.version, false);
    let staged = new_of(&ctx.exe);
    stage(part, &staged).map_err(|e| {
        install_failed(
            Code::CMM_INSTALLER_EXECUTION,
            format!("{} cannot be written: {e}", staged.display()),
        )
    })?;
    // The download is in place beside the binary; its copy in the state directory can go.
    let _ = std::fs::remove_file(part);
    trial(ctx, &staged, version).await.map_err(|why| {
        step(
            "post-check",
            Some((Code::XDM_AGSTATUS_UPG_POST_CHECK_FAILED, None)),
            format!("the new binary's trial run failed: {why}; the previous binary was kept"),
        )
    })?;
    hold(ctx, "install");
    let previous = previous_of(&ctx.exe);
    let _ = std::fs::remove_file(&previous);
    std::fs::hard_link(&ctx.exe, &previous)
        .or_else(|_| std::fs::copy(&ctx.exe, &previous).map(|_| ()))
        .map_err(|e| {
            install_failed(
                Code::CMM_INSTALLER_EXECUTION,
                format!(
                    "the previous binary cannot be kept as {}: {e}",
                    previous.display()
                ),
            )
        })?;
    j.phase = Phase::Swapping;
    journal(j)?;
    hold(ctx, "swap");
    std::fs::rename(&staged, &ctx.exe).map_err(|e| {
        install_failed(
            Code::CMM_INSTALLER_EXECUTION,
            format!("{} cannot be replaced: {e}", ctx.exe.display()),
        )
    })?;
    j.steps.push(step(
        "install",
        None,
        format!(
            "{} is {}; the previous binary is {}",
            ctx.exe.display(),
            j.to_version,
            previous.display()
        ),
    ));
    Ok(())
}

fn pre_check(ctx: &Context, order: &UpgradeOrder) -> Result<(), (&'static str, Code, String)> {
    let fail = |why: String| ("pre-check", Code::XDM_AGSTATUS_UPG_PRE_CHECK_FAILED, why);
    let at = ctx.exe.parent().unwrap_or(Path::new("/"));
    let needed = order.release.size.saturating_mul(2) + (16 << 20);
    if let Some(free) = godwit_engine::precheck::free_at(at)
        && free < needed
    {
        return Err(fail(format!(
            "{} has {free} bytes free; the new binary and the kept one need {needed}",
            at.display()
        )));
    }
    let newer = godwit_spec::release::compare(&order.release.version, &ctx.version);
    if newer != Some(std::cmp::Ordering::Greater) && !order.allow_downgrade {
        return Err(fail(format!(
            "{} is not newer than {}, and going back was not allowed",
            order.release.version, ctx.version
        )));
    }
    if order.release.platform != godwit_spec::release::platform() {
        return Err(fail(format!(
            "the release is for {}, this agent runs on {}",
            order.release.platform,
            godwit_spec::release::platform()
        )));
    }
    Ok(())
}

fn verify(
    ctx: &Context,
    order: &UpgradeOrder,
    part: &Path,
) -> Result<(), (&'static str, Code, String)> {
    let fail = |why: String| ("verify", Code::XDM_AGSTATUS_UPG_DOWNLOAD_FAILED, why);
    let Some(key) = &ctx.release_key else {
        return Err(fail(
            "the signature cannot be checked: the agent was started without --release-key".into(),
        ));
    };
    godwit_spec::release::verify(key, &order.release)
        .map_err(|e| fail(format!("signature: {e}")))?;
    let (sha, size) = godwit_spec::release::sha256_of(part)
        .map_err(|e| fail(format!("{}: {e}", part.display())))?;
    if size != order.release.size || sha != order.release.sha256.to_ascii_lowercase() {
        return Err(fail(format!(
            "the download has {size} bytes and SHA-256 {sha}, not the signed {} bytes and {}",
            order.release.size, order.release.sha256
        )));
    }
    Ok(())
}

/// Copies the downloaded release next to the agent's binary, executable, synced.
fn stage(part: &Path, staged: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::copy(part, staged)?;
    std::fs::set_permissions(staged, std::fs::Permissions::from_mode(0o755))?;
    std::fs::File::open(staged)?.sync_all()
}

/// Runs the new binary with the agent's arguments and `--post-check`: it must pass and say
/// the version it was signed as.
async fn trial(ctx: &Context, staged: &Path, version: &str) -> Result<(), String> {
    let run = tokio::process::Command::new(staged)
        .args(&ctx.args)
        .arg("--post-check")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .map_err(|_| "it did not finish within 60 s".to_string())?
        .map_err(|e| format!("it cannot be started: {e}"))?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").trim();
        return Err(format!(
            "it exited with {}{}",
            out.status,
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        ));
    }
    let reported = serde_json::from_str::<serde_json::Value>(said.trim())
        .ok()
        .and_then(|v| v["version"].as_str().map(str::to_string))
        .unwrap_or_default();
    if reported != version {
        return Err(format!(
            "it reports version {reported:?}, the release is {version}"
        ));
    }
    Ok(())
}

/// Fetches the release into the state directory, resuming what an earlier attempt got; tries
/// again on a broken connection until the deadline.
async fn download(
    ctx: &Context,
    order: &UpgradeOrder,
    deadline: Instant,
) -> Result<PathBuf, Failure> {
    let fail =
        |cause: Code, why: String| (Code::XDM_AGSTATUS_UPG_DOWNLOAD_FAILED, Some(cause), why);
    let url = if order.url.starts_with("http://") || order.url.starts_with("https://") {
        order.url.clone()
    } else {
        let server = ctx
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        format!("{}{}", server.trim_end_matches('/'), order.url)
    };
    let parsed = reqwest::Url::parse(&url).map_err(|e| {
        (
            Code::XDM_AGSTATUS_UPG_DOWNLOAD_FAILED,
            Some(Code::AGENT_INSTALLER_URL),
            Code::AGENT_INSTALLER_URL.render(&[("url", &url)]) + &format!(" ({e})"),
        )
    })?;
    let hex_ok = order.release.sha256.len() == 64
        && order.release.sha256.chars().all(|c| c.is_ascii_hexdigit());
    if !hex_ok {
        return Err(fail(
            Code::UPDATE_CMMAGENT_ERROR,
            "the release's SHA-256 is not 64 hex digits".into(),
        ));
    }
    let part = dir(&ctx.state_dir).join(format!(
        "{}.part",
        order.release.sha256.to_ascii_lowercase()
    ));
    let client = crate::tls::http_client(ctx.ca_file.as_deref()).map_err(|e| {
        fail(
            Code::UPDATE_CMMAGENT_ERROR,
            Code::UPDATE_CMMAGENT_ERROR.render(&[("reason", &e)]),
        )
    })?;
    let mut wait = Duration::from_millis(500);
    let mut last = String::new();
    for _attempt in 0..6 {
        if Instant::now() > deadline {
            break;
        }
        match fetch(ctx, &client, parsed.clone(), &part, order.release.size).await {
            Ok(()) => return Ok(part),
            Err(e) => last = e,
        }
        tracing::warn!("upgrade download: {last}; trying again");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(8));
    }
    Err(fail(
        Code::UPDATE_CMMAGENT_ERROR,
        Code::UPDATE_CMMAGENT_ERROR.render(&[("reason", &last)]),
    ))
}

async fn fetch(
    ctx: &Context,
    client: &reqwest::Client,
    url: reqwest::Url,
    part: &Path,
    size: u64,
) -> Result<(), String> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if have == size && size > 0 {
        return Ok(());
    }
    let mut request = client
        .get(url)
        .bearer_auth(&ctx.token)
        .timeout(Duration::from_secs(300));
    if have > 0 && have < size {
        request = request.header("range", format!("bytes={have}-"));
    }
    let mut response = request.send().await.map_err(|e| e.to_string())?;
    let mut file = match response.status().as_u16() {
        206 => std::fs::OpenOptions::new()
            .append(true)
            .open(part)
            .map_err(|e| format!("{}: {e}", part.display()))?,
        200 => std::fs::File::create(part).map_err(|e| format!("{}: {e}", part.display()))?,
        s => return Err(format!("the control plane answered {s}")),
    };
    let mut first = true;
    while let Some(bytes) = response
        .chunk()
        .await
        .map_err(|e| format!("the download broke off: {e}"))?
    {
        file.write_all(&bytes)
            .map_err(|e| format!("{}: {e}", part.display()))?;
        if first {
            first = false;
            file.flush().map_err(|e| e.to_string())?;
            hold(ctx, "download");
        }
    }
    file.sync_all().map_err(|e| e.to_string())?;
    let got = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if got < size {
        return Err(format!("the download ended at {got} of {size} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(state_dir: &Path, server: &str) -> Context {
        Context {
            state_dir: state_dir.to_path_buf(),
            exe: state_dir.join("bin/godwit"),
            args: Vec::new(),
            version: "0.1.0".into(),
            server: std::sync::Arc::new(std::sync::Mutex::new(server.into())),
            token: "t".into(),
            release_key: None,
            window: Duration::from_secs(5),
            hold: None,
            ca_file: None,
        }
    }

    fn order(url: &str) -> UpgradeOrder {
        UpgradeOrder {
            upgrade_id: "u1".into(),
            url: url.into(),
            release: godwit_spec::release::Manifest {
                version: "0.2.0".into(),
                platform: godwit_spec::release::platform(),
                sha256: "ab".repeat(32),
                size: 10,
                signature: String::new(),
            },
            allow_downgrade: false,
            time_limit_secs: 60,
        }
    }

    #[tokio::test]
    async fn a_download_address_that_cannot_be_used_is_8020_and_an_unreachable_one_8010() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path(), "http://127.0.0.1:9");
        let soon = Instant::now() + Duration::from_millis(200);
        let (code, cause, why) = download(&ctx, &order("http://[::1/x"), soon)
            .await
            .unwrap_err();
        assert_eq!(
            (code, cause),
            (
                Code::XDM_AGSTATUS_UPG_DOWNLOAD_FAILED,
                Some(Code::AGENT_INSTALLER_URL)
            )
        );
        assert!(why.contains("http://[::1/x"), "{why}");
        // Nothing listens on port 9 (discard): refused, tried again until the deadline.
        let (code, cause, why) = download(&ctx, &order("/v1/releases/r/binary"), soon)
            .await
            .unwrap_err();
        assert_eq!(
            (code, cause),
            (
                Code::XDM_AGSTATUS_UPG_DOWNLOAD_FAILED,
                Some(Code::UPDATE_CMMAGENT_ERROR)
            )
        );
        assert!(why.contains("could not be downloaded"), "{why}");
    }

    #[tokio::test]
    async fn an_upgrade_that_cannot_write_its_journal_is_refused_with_8030() {
        let dir = tempfile::tempdir().unwrap();
        // Where the journal's folder should be, a file.
        std::fs::write(dir.path().join("upgrade"), b"in the way").unwrap();
        let shared = Arc::new(Shared::default());
        let ctx = Arc::new(context(dir.path(), "http://127.0.0.1:9"));
        perform(ctx, shared.clone(), order("/v1/releases/r/binary")).await;
        let sent = shared.waiting_after(None);
        let Some((_, ToServer::Upgrade { steps, done, .. })) = sent.last() else {
            panic!("{sent:?}")
        };
        assert!(done);
        let last = steps.last().unwrap();
        assert_eq!(last.code.as_deref(), Some("AZSM0003"));
        assert_eq!(last.cause.as_deref(), Some("8030"));
        assert!(!dir.path().join("bin").exists(), "nothing was installed");
    }
}
