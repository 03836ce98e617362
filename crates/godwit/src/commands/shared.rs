//! What the job subcommands share: turning arguments into a job's options, and reporting a job
//! error with its code.

use std::path::PathBuf;

use godwit_engine::JobError;
use godwit_spec::{FilterRules, JobOptions, Location, SanitizeMode};

use crate::cli::{CopyArgs, FilterArgs, StateArgs};
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

/// The location `text` names, a local path made absolute (a migration is found by its
/// locations whatever folder the command runs in).
pub fn location(text: &str) -> Result<Location, JobError> {
    Location::parse(text).map(godwit_engine::job::absolute)
}

/// The filter rules, links and target profile the flags ask for.
pub fn filter_options(args: &FilterArgs) -> Result<JobOptions, JobError> {
    use godwit_spec::filter::{parse_age, parse_size};
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
        scoped: false,
    };
    for file in &args.exclude_from {
        rules.exclude_from(file)?;
    }
    // Refused here, with the flag's own words, rather than after the run has started.
    godwit_spec::Filter::new(&rules)?;
    Ok(JobOptions {
        filters: rules,
        links: args.links,
        target_profile: args.target_profile,
        ..JobOptions::default()
    })
}

/// The options of a copy or a true-up.
pub fn copy_options(args: &CopyArgs) -> Result<JobOptions, JobError> {
    Ok(JobOptions {
        transfers: args.transfers,
        checksum: args.checksum,
        verify: args.verify,
        compare: args.compare,
        spot_check: Some(args.spot_check),
        hard_links: args.hard_links,
        dry_run: args.dry_run,
        bwlimit: args
            .bwlimit
            .as_deref()
            .map(godwit_spec::Bandwidth::parse)
            .transpose()?,
        create_empty_dirs: args.create_empty_dirs,
        sanitize: if args.sanitize == "on-the-fly" {
            SanitizeMode::OnTheFly
        } else {
            SanitizeMode::Off
        },
        log_excluded: args.log_excluded,
        log_unchanged: args.log_unchanged,
        // A local path made absolute; checked against the target by the run, before it writes.
        backup_dir: args
            .backup_dir
            .as_deref()
            .map(|d| location(d).map(|l| l.to_string()))
            .transpose()?,
        files_from: args.files_from.as_deref().map(|p| match p.to_str() {
            Some("-") => "-".to_string(),
            _ => std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string(),
        }),
        metadata: args.metadata,
        ..filter_options(&args.filters)?
    })
    .and_then(|mut o| {
        perms_options(args.owner_map.as_deref(), args.what.as_deref(), &mut o)?;
        Ok(o)
    })
}

/// The largest owner map read (a map names principals, not files).
const MAX_MAP: u64 = 1 << 20;

/// `--owner-map FILE` and `--what LIST` into `options`, each refused here with the flag's
/// words rather than after the run has started.
pub fn perms_options(
    owner_map: Option<&std::path::Path>,
    what: Option<&str>,
    options: &mut JobOptions,
) -> Result<(), JobError> {
    if let Some(what) = what {
        godwit_engine::perms::What::parse(what)?;
        options.what = Some(what.to_string());
    }
    if let Some(file) = owner_map {
        let unreadable =
            |why: String| JobError::config(&format!("--owner-map {}: {why}", file.display()));
        let size = std::fs::metadata(file)
            .map_err(|e| unreadable(e.to_string()))?
            .len();
        if size > MAX_MAP {
            return Err(unreadable(format!(
                "{size} bytes, over the 1 MiB an owner map may have"
            )));
        }
        let text = std::fs::read_to_string(file).map_err(|e| unreadable(e.to_string()))?;
        godwit_engine::perms::OwnerMap::parse(&text)?;
        options.owner_map = Some(text);
    }
    Ok(())
}

/// The spec of `command` from SOURCE to TARGET as the command line gives them, with `options`.
pub fn spec_between(
    command: godwit_spec::CommandKind,
    source: &str,
    target: &str,
    options: JobOptions,
    state: &StateArgs,
) -> Result<godwit_engine::job::JobSpec, JobError> {
    Ok(godwit_engine::job::JobSpec {
        command,
        source: location(source)?,
        target: Some(location(target)?),
        options,
        reviewed_run: None,
        state_dir: state_dir(state),
    })
}

pub fn state_dir(args: &StateArgs) -> PathBuf {
    args.state_dir
        .clone()
        .unwrap_or_else(godwit_engine::state::default_state_dir)
}

/// `n` bytes for people: 1.5 GiB (the engine's one formatting, also in its messages).
pub fn bytes(n: u64) -> String {
    godwit_engine::record::human_bytes(n)
}

/// A `--files-from -` list read from standard input into a file of the state directory, which
/// the run then reads like any list; removed when the guard goes.
pub struct StdinList(Option<PathBuf>);

impl StdinList {
    pub fn take(spec: &mut godwit_engine::job::JobSpec) -> Result<StdinList, JobError> {
        let from_stdin = spec.options.files_from.as_deref().is_some_and(|p| p == "-");
        if !from_stdin {
            return Ok(StdinList(None));
        }
        let path = spec
            .state_dir
            .join(format!("files-from-{}.txt", std::process::id()));
        let copied = godwit_engine::state::private_dir(&spec.state_dir).and_then(|()| {
            let mut out = std::fs::File::create(&path)?;
            std::io::copy(&mut std::io::stdin().lock(), &mut out).map(|_| ())
        });
        copied.map_err(|e| {
            JobError::config(&format!(
                "--files-from -: standard input could not be kept in {}: {e}",
                path.display()
            ))
        })?;
        spec.options.files_from = Some(path.display().to_string());
        Ok(StdinList(Some(path)))
    }
}

impl Drop for StdinList {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `--max-job-size SIZE` in bytes (at least 1), refused with the flag's words.
pub fn job_size(size: Option<&str>) -> Result<Option<u64>, godwit_engine::JobError> {
    let Some(size) = size else { return Ok(None) };
    let bytes = godwit_spec::filter::parse_size("--max-job-size", size).map_err(|_| {
        godwit_engine::JobError::config(&format!(
            "--max-job-size {size}: not a size such as 500G or 10T (K, M, G, T, P)"
        ))
    })?;
    if bytes == 0 {
        return Err(godwit_engine::JobError::config(
            "--max-job-size 0 leaves nothing to put in a job",
        ));
    }
    Ok(Some(bytes))
}
