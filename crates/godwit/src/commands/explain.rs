//! `godwit explain CODE`: one catalog entry, for a person or (with --json) for a script.

use std::fmt::Write as _;

use godwit_codes::Code;

use crate::cli::ExplainArgs;
use crate::commands::{print, wrap};
use crate::exit::ExitStatus;

pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitStatus> {
    let code = match Code::lookup(&args.code) {
        Ok(code) => code,
        Err(err) => {
            let mut msg = format!(
                "error: `{}` is not a code in godwit's catalog.\n",
                err.query
            );
            if !err.suggestions.is_empty() {
                msg.push_str("Did you mean:\n");
                for s in &err.suggestions {
                    let _ = writeln!(msg, "  {:<9} {}", s.code.id(), s.code.name());
                }
            }
            msg.push_str("List every code with `godwit codes`.");
            eprintln!("{msg}");
            return Ok(ExitStatus::Usage);
        }
    };
    if args.json {
        print(&(serde_json::to_string_pretty(code.info())? + "\n"))?;
    } else {
        print(&describe(code))?;
    }
    Ok(ExitStatus::Success)
}

/// The entry as a person reads it.
fn describe(code: Code) -> String {
    let i = code.info();
    let mut out = format!("{}  {}\n", i.id, i.name);
    for alias in i.aliases {
        let _ = writeln!(out, "  also written {alias}");
    }

    let mut facts = vec![format!("scope: {}", i.scope), format!("kind: {}", i.kind)];
    if let (Some(command), Some(state)) = (i.command, i.state) {
        let cli = command
            .cli()
            .map(|c| format!(" (godwit {c})"))
            .unwrap_or_default();
        facts.push(format!("{} {state}{cli}", command.title()));
    }
    if let Some(http) = i.http_status {
        facts.push(format!("HTTP {http}"));
    }
    facts.push(if i.retryable {
        "retryable".into()
    } else {
        "not retryable".into()
    });
    let _ = writeln!(out, "  {}\n", facts.join(" · "));

    out.push_str("Message\n");
    out.push_str(&wrap(i.message, "  ", 96));
    out.push_str("\nWhat it means\n");
    out.push_str(&wrap(i.description, "  ", 96));
    out.push_str("\nWhat to do\n");
    out.push_str(&wrap(i.remediation, "  ", 96));

    let mut notes = Vec::new();
    if let Some(other) = i.duplicate_of {
        notes.push(format!(
            "{} has the same meaning as {other}; godwit reports {other}, never {}.",
            i.id, i.id
        ));
    }
    if i.reserved {
        notes.push(
            "Reserved: kept so the numbering matches the documents godwit's codes come from; \
             godwit itself does not report it."
                .to_string(),
        );
    }
    if let Some(twin) = code.http_twin() {
        notes.push(format!(
            "{} is also an HTTP status: for that one, run `godwit explain {}`.",
            i.number,
            twin.id()
        ));
    }
    if !notes.is_empty() {
        out.push_str("\nNote\n");
        for n in notes {
            out.push_str(&wrap(&n, "  ", 96));
        }
    }
    out
}
