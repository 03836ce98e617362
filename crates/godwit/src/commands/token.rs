//! `godwit token create|list|revoke`: tokens for the control plane's API, signed with its
//! secret and recorded in its store (the control plane accepts only tokens it has a record of).
//! Run where the control plane runs, on the same state directory and store; what it does is
//! written to the audit log as `cli:USER`.

use godwit_server::store::TokenRecord;
use godwit_server::{Role, Secret, ServeOptions, Store};

use crate::cli::{StoreArgs, TokenCommand};
use crate::commands::{print, shared};
use crate::exit::ExitStatus;

/// The store `serve` uses: the flags, else the configuration file's [serve] table.
fn options(args: &StoreArgs, file: Option<&crate::config::Serve>) -> ServeOptions {
    ServeOptions {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        database: args
            .database
            .clone()
            .or_else(|| file.and_then(|f| f.database.clone())),
        state_dir: args
            .state
            .state_dir
            .clone()
            .or_else(|| file.and_then(|f| f.state_dir.clone()))
            .unwrap_or_else(godwit_engine::state::default_state_dir),
        heartbeat_window: None,
        release_key: None,
        min_agent_version: None,
        run_windows: None,
        tls: None,
    }
}

/// Who did it, for the audit log: the local user (`cli:alice`), or its uid when the
/// environment does not name it (`cli:uid0`).
fn local_user() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self")
                .map_or_else(|_| "unknown".into(), |m| format!("uid{}", m.uid()))
        });
    format!("cli:{user}")
}

fn when(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

fn state_of(t: &TokenRecord, now_ms: i64) -> &'static str {
    if t.revoked_ms.is_some() {
        "revoked"
    } else if t.expires_ms <= now_ms {
        "expired"
    } else {
        "valid"
    }
}

pub fn run(cmd: &TokenCommand) -> anyhow::Result<ExitStatus> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(cmd))
}

/// The store and state directory `args` name, with the configuration file's when given.
fn resolve(args: &StoreArgs) -> Result<ServeOptions, ExitStatus> {
    let file = args
        .config
        .as_deref()
        .map(|p| crate::config::load_for(p, crate::config::Role::Serve))
        .transpose()
        .map_err(|e| shared::report(&e))?;
    Ok(options(args, file.as_ref().and_then(|f| f.serve.as_ref())))
}

async fn open(args: &StoreArgs) -> Result<Store, ExitStatus> {
    godwit_server::open_store(&resolve(args)?)
        .await
        .map_err(|e| {
            eprintln!("error: the control plane's store: {e}");
            ExitStatus::JobFailed
        })
}

async fn run_async(cmd: &TokenCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        TokenCommand::Create(args) => {
            let ttl = match godwit_server::api::tokens::parse_ttl(&args.ttl) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: --ttl {e}");
                    return Ok(ExitStatus::Usage);
                }
            };
            let role = Role::parse(&args.role).unwrap_or(Role::Viewer);
            let state_dir = match resolve(&args.store) {
                Ok(o) => o.state_dir,
                Err(status) => return Ok(status),
            };
            let secret = match Secret::load(&state_dir) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: the token secret: {e}");
                    return Ok(ExitStatus::JobFailed);
                }
            };
            let store = match open(&args.store).await {
                Ok(s) => s,
                Err(status) => return Ok(status),
            };
            let issued = godwit_server::auth::issue(
                &store,
                &secret,
                &args.subject,
                role,
                args.agent_id.as_deref(),
                ttl,
            )
            .await;
            let status = match issued {
                Ok((token, record)) => {
                    audit(&store, "token.create", &record.id, "0").await;
                    print(&format!("{token}\n"))?;
                    ExitStatus::Success
                }
                Err(e) => {
                    eprintln!("error[{}]: {}", e.code.id(), e.message());
                    ExitStatus::JobFailed
                }
            };
            store.close().await;
            Ok(status)
        }
        TokenCommand::List(args) => {
            let store = match open(&args.store).await {
                Ok(s) => s,
                Err(status) => return Ok(status),
            };
            let mut all = Vec::new();
            let status = loop {
                match store
                    .list_tokens(100, i64::try_from(all.len()).unwrap_or(0))
                    .await
                {
                    Ok((_, page)) if page.is_empty() => break ExitStatus::Success,
                    Ok((count, page)) => {
                        all.extend(page);
                        if i64::try_from(all.len()).unwrap_or(i64::MAX) >= count
                            || all.len() >= 65_535
                        {
                            break ExitStatus::Success;
                        }
                    }
                    Err(e) => {
                        eprintln!("error[{}]: {}", e.code.id(), e.message());
                        break ExitStatus::JobFailed;
                    }
                }
            };
            store.close().await;
            if status != ExitStatus::Success {
                return Ok(status);
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            if args.json {
                let items: Vec<serde_json::Value> = all
                    .iter()
                    .map(|t| {
                        let mut v = serde_json::to_value(t).unwrap_or_default();
                        v["state"] = state_of(t, now).into();
                        v
                    })
                    .collect();
                print(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"count": items.len(), "items": items})
                    )?
                ))?;
                return Ok(ExitStatus::Success);
            }
            if all.is_empty() {
                print("No tokens have been issued.\n")?;
                return Ok(ExitStatus::Success);
            }
            let mut out = format!(
                "{:<32}  {:<8}  {:<8}  {:<20}  {}\n",
                "ID", "ROLE", "STATE", "EXPIRES", "SUBJECT"
            );
            for t in &all {
                let subject = match &t.agent_id {
                    Some(a) => format!("{} (agent {a})", t.subject),
                    None => t.subject.clone(),
                };
                out.push_str(&format!(
                    "{:<32}  {:<8}  {:<8}  {:<20}  {subject}\n",
                    t.id,
                    t.role,
                    state_of(t, now),
                    when(t.expires_ms)
                ));
            }
            print(&out)?;
            Ok(ExitStatus::Success)
        }
        TokenCommand::Revoke(args) => {
            let store = match open(&args.store).await {
                Ok(s) => s,
                Err(status) => return Ok(status),
            };
            let result = store.revoke_token(&args.id, &local_user()).await;
            let status = match result {
                Ok(t) => {
                    audit(&store, "token.revoke", &t.id, "0").await;
                    eprintln!(
                        "revoked token {} ({} {}); the control plane refuses it from now on",
                        t.id, t.role, t.subject
                    );
                    ExitStatus::Success
                }
                Err(e) if e.is_not_found() => {
                    eprintln!(
                        "error[{}]: no token has the id {} (`godwit token list` shows them)",
                        e.code.id(),
                        args.id
                    );
                    ExitStatus::Usage
                }
                Err(e) => {
                    eprintln!("error[{}]: {}", e.code.id(), e.message());
                    ExitStatus::JobFailed
                }
            };
            store.close().await;
            Ok(status)
        }
    }
}

/// Writes what the command line did to the audit log; a failure to is said, not fatal (the
/// token is made or revoked already).
async fn audit(store: &Store, action: &str, target: &str, outcome: &str) {
    if let Err(e) = store
        .audit(&local_user(), "admin", action, target, outcome, 0)
        .await
    {
        eprintln!("warning: the audit log: {}", e.message());
    }
}
