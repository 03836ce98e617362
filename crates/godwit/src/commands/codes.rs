//! `godwit codes`: the catalog, filtered, as a table, JSON or the Markdown of docs/codes.md.

use std::fmt::Write as _;

use godwit_codes::{Code, CodeInfo, Command, Kind, Namespace, Scope};

use crate::cli::CodesArgs;
use crate::commands::print;
use crate::exit::ExitStatus;

pub fn run(args: &CodesArgs) -> anyhow::Result<ExitStatus> {
    if args.markdown {
        print(&godwit_codes::markdown())?;
        return Ok(ExitStatus::Success);
    }
    let command = match &args.command {
        None => None,
        Some(key) => match Command::ALL
            .iter()
            .find(|c| c.key().eq_ignore_ascii_case(key))
        {
            Some(c) => Some(*c),
            None => {
                let keys: Vec<&str> = Command::ALL.iter().map(|c| c.key()).collect();
                eprintln!(
                    "error: `{key}` is not a command with status codes.\nOne of: {}",
                    keys.join(", ")
                );
                return Ok(ExitStatus::Usage);
            }
        },
    };
    // clap has already checked these against the same keys.
    let scope = args.scope.as_deref().and_then(Scope::from_key);
    let namespace = args.namespace.as_deref().and_then(Namespace::from_key);
    let kind = args.kind.as_deref().and_then(Kind::from_key);

    let selected: Vec<&CodeInfo> = Code::all()
        .map(Code::info)
        .filter(|i| scope.is_none_or(|s| i.scope == s))
        .filter(|i| namespace.is_none_or(|n| i.namespace == n))
        .filter(|i| kind.is_none_or(|k| i.kind == k))
        .filter(|i| command.is_none_or(|c| i.command == Some(c)))
        .collect();

    if args.json {
        print(&(serde_json::to_string_pretty(&selected)? + "\n"))?;
    } else {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<9} {:<48} {:<14} {:<8} HTTP",
            "CODE", "NAME", "SCOPE", "KIND"
        );
        for i in &selected {
            let http = i.http_status.map(|h| h.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<9} {:<48} {:<14} {:<8} {http}",
                i.id,
                i.name,
                i.scope.key(),
                i.kind.key()
            );
        }
        let _ = writeln!(
            out,
            "\n{} codes. `godwit explain CODE` tells more.",
            selected.len()
        );
        print(&out)?;
    }
    Ok(ExitStatus::Success)
}
