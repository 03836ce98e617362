//! `godwit permissions SOURCE TARGET [--simulate]`: owners, modes, ACLs, extended attributes
//! and times carried to the target, or reported.

use std::fmt::Write as _;

use godwit_engine::job::{JobReport, JobSpec};
use godwit_spec::CommandKind;

use crate::cli::PermissionsArgs;
use crate::commands::job::{self, Output};
use crate::commands::shared::{self, report};
use crate::exit::ExitStatus;

pub fn run(args: &PermissionsArgs) -> anyhow::Result<ExitStatus> {
    let spec = || -> Result<JobSpec, godwit_engine::JobError> {
        let mut options = shared::filter_options(&args.filters)?;
        shared::perms_options(
            args.owner_map.as_deref(),
            args.what.as_deref(),
            &mut options,
        )?;
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
        if p.already > 0 {
            let _ = writeln!(
                out,
                "  {} paths are so at the target already: nothing {}",
                p.already,
                if p.simulate { "to set" } else { "was set" }
            );
        }
        if let Some(since) = &p.since_simulation {
            let _ = writeln!(
                out,
                "  {} paths differ at the source from what simulation {} reported: read \
                 again and set as they are now (\"since_simulation\" in the report)",
                since.changed, since.run
            );
        }
        changes(&mut out, &p.report, p.simulate);
        let _ = writeln!(out, "  path by path: {}", p.report);
    }
    let _ = writeln!(out, "  run folder: {}", s.run_dir);
    out
}

/// The most paths a summary lists; the report has them all.
const LISTED: usize = 40;

/// The paths whose permissions change (or would), and those refused, as a table:
/// `path  owner:group mode -> owner:group mode`, with what cannot be carried.
fn changes(out: &mut String, report: &str, simulate: bool) {
    use std::io::BufRead;
    // Read a line at a time: a report has a line for every path of the share.
    let Ok(file) = std::fs::File::open(report) else {
        return;
    };
    let brief = |v: &serde_json::Value| {
        if v.is_null() {
            // An object that holds no permissions yet.
            return "(none)".to_string();
        }
        format!(
            "{}:{} {}{}",
            v["owner"].as_str().unwrap_or("?"),
            v["group"].as_str().unwrap_or("?"),
            v["mode"].as_str().unwrap_or("?"),
            if v.get("acl").is_some() || v.get("default_acl").is_some() {
                " +acl"
            } else {
                ""
            }
        )
    };
    let mut rows = Vec::new();
    let mut more = 0usize;
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let changed = v["already"] != true && (v["now"] != v["set"] || v["code"] != "AZSM0000");
        if !changed {
            continue;
        }
        if rows.len() == LISTED {
            more += 1;
            continue;
        }
        let path = match v["path"].as_str() {
            Some("") => ".".to_string(),
            Some(p) => p.to_string(),
            None => continue,
        };
        let what = match (v.get("set"), v["reason"].as_str()) {
            (Some(set), _) if v["code"] == "AZSM0000" => {
                let now = &v["now"];
                let differ: Vec<&str> = [
                    ("owner", "owner"),
                    ("group", "group"),
                    ("mode", "mode"),
                    ("acl", "acl"),
                    ("default_acl", "default acl"),
                    ("xattrs", "xattrs"),
                    ("mtime", "times"),
                ]
                .into_iter()
                .filter(|(key, _)| now.get(key) != set.get(key))
                .map(|(_, shown)| shown)
                .collect();
                format!("{} -> {} ({})", brief(now), brief(set), differ.join(", "))
            }
            (_, Some(why)) => format!("{} {why}", v["code"].as_str().unwrap_or("")),
            _ => String::new(),
        };
        let cannot: Vec<&str> = v["cannot"]
            .as_array()
            .map(|c| c.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let cannot = if cannot.is_empty() {
            String::new()
        } else {
            format!(" (cannot: {})", cannot.join("; "))
        };
        rows.push(format!("  {path:<40} {what}{cannot}"));
    }
    if rows.is_empty() {
        return;
    }
    let verb = if simulate { "would change" } else { "changed" };
    let _ = writeln!(out, "  paths that {verb} (now -> set):");
    for r in rows {
        let _ = writeln!(out, "{r}");
    }
    if more > 0 {
        let _ = writeln!(out, "  ... and {more} more in the report");
    }
}
