//! `godwit permissions SOURCE TARGET [--simulate]`: owners, modes, ACLs, extended attributes
//! and times carried to the target, or reported.

use std::fmt::Write as _;

use godwit_engine::job::{JobReport, JobSpec};
use godwit_spec::CommandKind;

use crate::cli::PermissionsArgs;
use crate::commands::job::{self, Output};
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

/// The largest owner map read (a map names principals, not files).
const MAX_MAP: u64 = 1 << 20;

pub fn run(args: &PermissionsArgs) -> anyhow::Result<ExitStatus> {
    let spec = || -> Result<JobSpec, godwit_engine::JobError> {
        let mut options = shared::filter_options(&args.filters)?;
        options.what = args.what.clone();
        if let Some(what) = &args.what {
            // Refused here, with the flag's words, rather than after the run has started.
            godwit_engine::perms::What::parse(what)?;
        }
        if let Some(file) = &args.owner_map {
            let unreadable = |why: String| {
                godwit_engine::JobError::config(&format!("--owner-map {}: {why}", file.display()))
            };
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
        Ok(JobSpec {
            command: if args.simulate {
                CommandKind::SimulatePermissions
            } else {
                CommandKind::Permissions
            },
            source: shared::location(&args.source)?,
            target: Some(shared::location(&args.target)?),
            options,
            reviewed_run: None,
            state_dir: shared::state_dir(&args.state),
        })
    };
    Ok(match spec() {
        Ok(spec) => job::run(
            &spec,
            Output {
                json: args.json,
                progress: false,
                human,
            },
        ),
        Err(e) => report(&e),
    })
}

fn human(r: &JobReport) -> String {
    let s = &r.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}: {} paths",
        s.status.code, s.status.name, s.files
    );
    for (code, n) in &s.counts {
        let _ = writeln!(out, "  {:<9} {:<40} {n}", code.id(), code.name());
    }
    if let Some(p) = &s.permissions {
        let verb = if p.simulate { "would own" } else { "own" };
        let mut table = |title: &str, who: &std::collections::BTreeMap<String, u64>| {
            if who.is_empty() {
                return;
            }
            let _ = writeln!(out, "  {title:<24} paths they {verb}");
            for (name, n) in who {
                let _ = writeln!(out, "  {name:<24} {n}");
            }
        };
        table("owner at the target", &p.owners);
        table("group at the target", &p.groups);
        let _ = writeln!(out, "  path by path: {}", p.report);
    }
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}
