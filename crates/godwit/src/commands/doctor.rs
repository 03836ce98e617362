//! `godwit doctor`: what runs will need, checked, each problem with its code (the checks are
//! the engine's, `godwit_engine::doctor`; the control plane's is the agent's own).

use godwit_engine::doctor::{self, Check};

use crate::cli::DoctorArgs;
use crate::commands::{print, shared};
use crate::exit::ExitStatus;

pub fn run(args: &DoctorArgs) -> anyhow::Result<ExitStatus> {
    if args.locations.is_empty() && args.control_plane.server.is_none() {
        eprintln!(
            "note: no LOCATION and no --server: only the state directory is checked \
             (see godwit doctor --help)"
        );
    }
    let mut checks: Vec<Check> = Vec::new();
    for text in &args.locations {
        match shared::location(text) {
            Ok(l) => checks.extend(doctor::location(&l)),
            Err(e) => checks.push(Check::failed("location", text, &e)),
        }
    }
    checks.push(doctor::state_dir(&shared::state_dir(&args.state)));
    // Each replica named is checked: an agent moves to another when its own goes away.
    let servers = args
        .control_plane
        .server
        .as_deref()
        .map(godwit_agent::servers);
    for server in servers.unwrap_or_default() {
        let server = &server;
        let check = match &args.control_plane.token {
            None => Check {
                check: "control-plane",
                subject: server.clone(),
                ok: false,
                code: Some(godwit_codes::Code::ERR_TOKEN_MISSING.id().to_string()),
                name: Some(godwit_codes::Code::ERR_TOKEN_MISSING.name()),
                message: "no token to reach it with: set GODWIT_AGENT_TOKEN".into(),
            },
            Some(token) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                match rt.block_on(godwit_agent::reach_control_plane(
                    server,
                    token,
                    args.control_plane.ca_file.as_deref(),
                    true,
                )) {
                    Ok(found) => Check::passed("control-plane", server, found),
                    Err((code, message)) => Check {
                        check: "control-plane",
                        subject: server.clone(),
                        ok: false,
                        name: godwit_codes::Code::lookup(&code).ok().map(|c| c.name()),
                        code: Some(code),
                        message,
                    },
                }
            }
        };
        checks.push(check);
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if args.json {
        let out = serde_json::json!({ "ok": failed == 0, "checks": checks });
        print(&format!("{out}\n"))?;
    } else {
        let mut text = String::new();
        for c in &checks {
            match &c.code {
                None => text.push_str(&format!(
                    "ok    {:<13} {}: {}\n",
                    c.check, c.subject, c.message
                )),
                Some(code) => text.push_str(&format!(
                    "FAIL  {:<13} {}: [{code}] {}\n",
                    c.check, c.subject, c.message
                )),
            }
        }
        text.push_str(&match failed {
            0 => format!("\nall {} checks passed\n", checks.len()),
            n => format!(
                "\n{n} of {} checks failed; `godwit explain CODE` says what to do about each\n",
                checks.len()
            ),
        });
        print(&text)?;
    }
    Ok(if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::JobFailed
    })
}
