//! The catalog as the Markdown page `docs/codes.md`.

use std::fmt::Write as _;

use crate::{CATALOG, CodeInfo, Namespace, Scope};

const SECTIONS: &[(Namespace, Option<Scope>, &str, &str)] = &[
    (
        Namespace::App,
        Some(Scope::Job),
        "Commands and jobs",
        "The status of each command run, and why a job failed.",
    ),
    (
        Namespace::Azsm,
        Some(Scope::Job),
        "Job runs (AZSM1xxx)",
        "Why a job run failed.",
    ),
    (
        Namespace::Azsm,
        Some(Scope::Api),
        "API requests (AZSM1xxx)",
        "godwit's own reasons the REST API refuses a request, where the seed has none.",
    ),
    (
        Namespace::Azsm,
        Some(Scope::File),
        "Files (AZSM2xxx)",
        "The one final status of each file in a run's copy log.",
    ),
    (
        Namespace::Azsm,
        Some(Scope::Agent),
        "Agent (AZSM0xxx)",
        "Success at any scope, and agent upgrade failures.",
    ),
    (
        Namespace::App,
        Some(Scope::Agent),
        "Agents",
        "Agent states, registration and local failures.",
    ),
    (
        Namespace::App,
        Some(Scope::ControlPlane),
        "Control plane",
        "Projects and the control plane's store.",
    ),
    (
        Namespace::App,
        Some(Scope::Api),
        "API requests",
        "Why the REST API refused a request; the HTTP status is the one the answer carries.",
    ),
    (
        Namespace::Http,
        None,
        "HTTP statuses",
        "The HTTP statuses the REST API answers with.",
    ),
];

/// `docs/codes.md`: every code, grouped for reading, with its meaning and what to do.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "<!-- Generated from crates/godwit-codes/codes.toml by `godwit codes --markdown`. \
         Do not edit: change codes.toml and regenerate. -->\n\n\
         # godwit status and error codes\n\n\
         Every condition godwit can report has one stable code. Look one up offline with \
         `godwit explain CODE` (any case: `9080`, `azsm2023`, `http404`, or a name), or list them \
         with `godwit codes [--scope S] [--json]`. The REST API returns the same codes in \
         `error_code`, and `GET /v1/codes/{code}` serves these entries.\n\n\
         Numbers and names come from the documents the status model is based on; the meanings \
         and remediations are godwit's. A bare number is an application code: `500` is \
         `ERR_POST_CONFIG_FILE_GET`, the HTTP status is `HTTP500`.\n\n",
    );
    let total = CATALOG.len();
    let _ = writeln!(out, "{total} codes.\n");

    for (ns, scope, title, intro) in SECTIONS {
        let entries: Vec<&CodeInfo> = CATALOG
            .iter()
            .filter(|i| i.namespace == *ns && scope.is_none_or(|s| i.scope == s))
            .collect();
        if entries.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {title}\n\n{intro}\n");
        out.push_str("| code | name | kind | HTTP | retry | meaning | what to do |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
        for i in entries {
            let mut name = format!("`{}`", i.name);
            for a in i.aliases {
                let _ = write!(name, "<br>also `{a}`");
            }
            let mut meaning = cell(i.description);
            if let Some(other) = i.duplicate_of {
                let _ = write!(meaning, " (Same as {other}; godwit reports {other}.)");
            }
            if i.reserved {
                meaning.push_str(" (Reserved: godwit does not report it.)");
            }
            let _ = writeln!(
                out,
                "| <a id=\"{id}\"></a>`{id}` | {name} | {kind} | {http} | {retry} | {meaning} | {fix} |",
                id = i.id,
                kind = i.kind,
                http = i.http_status.map(|h| h.to_string()).unwrap_or_default(),
                retry = if i.retryable { "yes" } else { "" },
                fix = cell(i.remediation),
            );
        }
        out.push('\n');
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}
