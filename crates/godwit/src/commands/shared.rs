//! What scan and copy share: turning arguments into engine options, Ctrl-C, and reporting a
//! job error with its code.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use godwit_engine::{Filter, FilterRules, JobError, Links, Location, Side, TargetProfile};

use crate::cli::{FilterArgs, StateArgs};
use crate::exit::ExitStatus;

/// Prints a job error with its code and what to do, and returns the exit status it means.
pub fn report(e: &JobError) -> ExitStatus {
    let remedy = e.code.info().remediation;
    eprintln!(
        "error[{}]: {}\n  {remedy}\n  (godwit explain {} tells more)",
        e.code.id(),
        e.message,
        e.code.id()
    );
    if e.is_usage() {
        ExitStatus::Usage
    } else {
        ExitStatus::JobFailed
    }
}

/// The location `text` names (a local path made absolute, since the migration is found by it
/// whatever folder the command runs in), and that location opened as one side of a command.
pub fn side(text: &str, role: &str) -> Result<(Location, Side), JobError> {
    let location = match Location::parse(text)? {
        Location::Local(p) => Location::Local(std::path::absolute(&p).unwrap_or(p)),
        other => other,
    };
    let side = Side::open(&location, role)?;
    Ok((location, side))
}

pub fn filter(args: &FilterArgs) -> Result<Filter, JobError> {
    use godwit_engine::filter::{parse_age, parse_size};
    let mut rules = FilterRules {
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        exclude_regex: args.exclude_regex.clone(),
        min_size: args
            .min_size
            .as_deref()
            .map(|t| parse_size("--min-size", t))
            .transpose()?,
        max_size: args
            .max_size
            .as_deref()
            .map(|t| parse_size("--max-size", t))
            .transpose()?,
        min_age: args
            .min_age
            .as_deref()
            .map(|t| parse_age("--min-age", t))
            .transpose()?,
        max_age: args
            .max_age
            .as_deref()
            .map(|t| parse_age("--max-age", t))
            .transpose()?,
        ignore_case: args.ignore_case,
    };
    for file in &args.exclude_from {
        rules.exclude_from(file)?;
    }
    Filter::new(&rules)
}

pub fn links(args: &FilterArgs) -> Links {
    match args.links.as_str() {
        "follow" => Links::Follow,
        "copy" => Links::Copy,
        _ => Links::Skip,
    }
}

pub fn profile(args: &FilterArgs, target_kind: &str) -> TargetProfile {
    args.target_profile
        .as_deref()
        .and_then(TargetProfile::by_name)
        .unwrap_or_else(|| TargetProfile::for_kind(target_kind))
}

pub fn state_dir(args: &StateArgs) -> PathBuf {
    args.state_dir
        .clone()
        .unwrap_or_else(godwit_engine::run::default_state_dir)
}

/// A flag set by the first Ctrl-C (the run then stops cleanly); a second one exits at once.
pub fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\nstopping: finishing files in flight; run the same command again to resume (Ctrl-C again to quit now)"
        );
    });
    stop
}

/// `n` bytes for people: 1.5 GiB.
pub fn bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
