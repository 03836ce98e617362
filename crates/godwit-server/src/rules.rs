//! The command state machine: what `start`, `stop`, `pause` and `resume` of a command do to a
//! migration, given its runs that are not over, its agent and its last scan. Every refusal is
//! one of seed 000's state-validation codes (650-698) with 409.

use godwit_codes::{Code, State};
use godwit_spec::CommandKind;
use godwit_spec::command::state_text;

use crate::error::DomainError;
use crate::records::JobRun;

/// What is asked of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Pause,
    Resume,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Pause => "pause",
            Action::Resume => "resume",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Some(match text {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            _ => return None,
        })
    }
}

/// What the migration looks like when the command arrives.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    pub migration_id: &'a str,
    /// Runs not over yet (at most one, since a migration runs one command at a time).
    pub active: &'a [JobRun],
    /// The migration's agent and whether it is active (901); None: no agent assigned yet.
    pub agent: Option<(&'a str, bool)>,
    /// Whether a scan of the migration has succeeded.
    pub scanned: bool,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// A new run, QUEUED.
    NewRun,
    /// Move run `id` to a state.
    Move { id: String, to: State },
}

struct Codes {
    in_progress: Option<Code>,
    stop_unrequired: Option<Code>,
    stop_in_progress: Option<Code>,
    stop_required: Option<Code>,
    agent_inactive: Option<Code>,
}

fn codes(command: CommandKind) -> Codes {
    let (a, b, c, d, e) = match command {
        CommandKind::Scan => (
            Some(Code::SCAN_INPROGRESS_ERR),
            Some(Code::SCAN_STOP_UNREQUIRED_ERR),
            Some(Code::SCAN_STOP_INPROGRESS_ERR),
            Some(Code::SCAN_STOP_REQUIRED_ERR),
            Some(Code::SCAN_AGENT_INACTIVE_ERR),
        ),
        CommandKind::Sanitize => (
            Some(Code::SANITIZE_INPROGRESS_ERR),
            Some(Code::SANITIZE_STOP_UNREQUIRED_ERR),
            Some(Code::SANITIZE_STOP_INPROGRESS_ERR),
            Some(Code::SANITIZE_STOP_REQUIRED_ERR),
            Some(Code::SANITIZE_AGENT_INACTIVE_ERR),
        ),
        CommandKind::Copy => (
            Some(Code::COPY_INPROGRESS_ERR),
            Some(Code::COPY_STOP_UNREQUIRED_ERR),
            Some(Code::COPY_STOP_INPROGRESS_ERR),
            Some(Code::COPY_STOP_REQUIRED_ERR),
            Some(Code::COPY_AGENT_INACTIVE_ERR),
        ),
        CommandKind::Sync | CommandKind::Confirm | CommandKind::Undo => (
            Some(Code::SYNC_INPROGRESS_ERR),
            Some(Code::SYNC_STOP_UNREQUIRED_ERR),
            Some(Code::SYNC_STOP_INPROGRESS_ERR),
            Some(Code::SYNC_STOP_REQUIRED_ERR),
            Some(Code::SYNC_AGENT_INACTIVE_ERR),
        ),
        CommandKind::Permissions | CommandKind::SimulatePermissions => (
            Some(Code::PERMS_INPROGRESS_ERR),
            Some(Code::PERMS_STOP_UNREQUIRED_ERR),
            Some(Code::PERMS_STOP_INPROGRESS_ERR),
            Some(Code::PERMS_STOP_REQUIRED_ERR),
            Some(Code::MIGRATE_PERMISSION_AGENT_INACTIVE_ERR),
        ),
        CommandKind::EmptyFolders => (
            Some(Code::EMPTY_FOLDERS_INPROGRESS_ERR),
            Some(Code::EMPTY_FOLDERS_STOP_UNREQUIRED_ERR),
            Some(Code::EMPTY_FOLDERS_STOP_INPROGRESS_ERR),
            Some(Code::EMPTY_FOLDERS_STOP_REQUIRED_ERR),
            Some(Code::EMPTY_FOLDER_AGENT_INACTIVE_ERR),
        ),
        CommandKind::SpeedTest | CommandKind::Verify => (None, None, None, None, None),
        CommandKind::Finalize => (
            None,
            None,
            None,
            None,
            Some(Code::MIGRATION_DELETION_PAUSED_ERR),
        ),
        // Started on a project, not through a migration's commands (not in the API's list).
        CommandKind::Validate => (
            None,
            None,
            None,
            None,
            Some(Code::VALIDATE_PROJECT_AGENT_INACTIVE_ERR),
        ),
        CommandKind::SimulateScan => (
            None,
            None,
            None,
            None,
            Some(Code::SIMULATE_SCAN_AGENT_INACTIVE_ERR),
        ),
    };
    Codes {
        in_progress: a,
        stop_unrequired: b,
        stop_in_progress: c,
        stop_required: d,
        agent_inactive: e,
    }
}

/// Commands that need a successful scan first (655).
const NEED_SCAN: &[CommandKind] = &[
    CommandKind::Copy,
    CommandKind::Sync,
    CommandKind::Sanitize,
    CommandKind::EmptyFolders,
];

pub(crate) fn busy(migration_id: &str, command: CommandKind) -> DomainError {
    DomainError::new(
        Code::MIGRATION_INPROGRESS_ERR,
        &[
            ("migration_id", migration_id),
            ("command", command.as_str()),
        ],
    )
}

fn with_migration(code: Option<Code>, s: &Situation<'_>, command: CommandKind) -> DomainError {
    match code {
        Some(c) => DomainError::new(
            c,
            &[
                ("migration_id", s.migration_id),
                ("command", command.as_str()),
            ],
        ),
        None => busy(s.migration_id, command),
    }
}

/// What `action` on `command` does in situation `s`, or the 409 that refuses it.
pub fn decide(
    command: CommandKind,
    action: Action,
    s: &Situation<'_>,
) -> Result<Transition, DomainError> {
    let own = codes(command);
    let mine = s.active.iter().find(|r| r.command == command);
    match action {
        Action::Start => {
            if let Some((agent_id, false)) = s.agent {
                return Err(match own.agent_inactive {
                    Some(c) => DomainError::new(c, &[("agent_id", agent_id)]),
                    None => busy(s.migration_id, command),
                });
            }
            if let Some(run) = mine {
                return Err(if run.state == State::Stopping {
                    with_migration(own.stop_in_progress, s, command)
                } else {
                    with_migration(own.in_progress, s, command)
                });
            }
            if let Some(other) = s.active.first() {
                return Err(with_migration(
                    codes(other.command).stop_required,
                    s,
                    other.command,
                ));
            }
            if NEED_SCAN.contains(&command) && !s.scanned {
                return Err(DomainError::new(
                    Code::SCAN_REQUIRED_ERR,
                    &[
                        ("migration_id", s.migration_id),
                        ("command", command.as_str()),
                    ],
                ));
            }
            Ok(Transition::NewRun)
        }
        Action::Stop => {
            let run = mine.ok_or_else(|| with_migration(own.stop_unrequired, s, command))?;
            let to = match run.state {
                State::Stopping => return Err(with_migration(own.stop_in_progress, s, command)),
                // Never started: nothing to wind down.
                State::Queued => State::Stopped,
                _ => State::Stopping,
            };
            Ok(Transition::Move {
                id: run.id.clone(),
                to,
            })
        }
        Action::Pause => {
            let run = mine.ok_or_else(|| with_migration(own.stop_unrequired, s, command))?;
            match run.state {
                State::Queued | State::Running => Ok(Transition::Move {
                    id: run.id.clone(),
                    to: State::Paused,
                }),
                State::Stopping => Err(with_migration(own.stop_in_progress, s, command)),
                _ => Err(with_migration(own.in_progress, s, command).details(format!(
                    "The {command} is {} already.",
                    state_text(run.state).to_lowercase()
                ))),
            }
        }
        Action::Resume => {
            let run = mine.ok_or_else(|| with_migration(own.stop_unrequired, s, command))?;
            match run.state {
                State::Paused | State::Suspended => {
                    if let Some((agent_id, false)) = s.agent {
                        return Err(match own.agent_inactive {
                            Some(c) => DomainError::new(c, &[("agent_id", agent_id)]),
                            None => busy(s.migration_id, command),
                        });
                    }
                    Ok(Transition::Move {
                        id: run.id.clone(),
                        to: State::Queued,
                    })
                }
                State::Stopping => Err(with_migration(own.stop_in_progress, s, command)),
                _ => Err(with_migration(own.in_progress, s, command).details(format!(
                    "The {command} is {}; nothing to resume.",
                    state_text(run.state).to_lowercase()
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::CodeName;

    fn kind(name: &str) -> CommandKind {
        CommandKind::parse(name).unwrap()
    }

    fn run(command: &str, state: &str) -> JobRun {
        JobRun {
            id: format!("{command}-{state}"),
            migration_id: "m".into(),
            command: kind(command),
            state: godwit_spec::command::state_of(state).unwrap(),
            status: CodeName::of(Code::HTTP_OK),
            error: None,
            files: 0,
            bytes: 0,
            files_failed: 0,
            files_found: 0,
            bytes_found: 0,
            bytes_per_second: 0.0,
            counts: serde_json::Value::Null,
            options: None,
            created_ms: 0,
            started_ms: None,
            ended_ms: None,
            updated_ms: 0,
        }
    }

    fn situation<'a>(
        active: &'a [JobRun],
        agent: Option<(&'static str, bool)>,
        scanned: bool,
    ) -> Situation<'a> {
        Situation {
            migration_id: "m",
            active,
            agent,
            scanned,
        }
    }

    fn code(r: Result<Transition, DomainError>) -> String {
        r.unwrap_err().code.id().to_string()
    }

    #[test]
    fn start_rules() {
        let none: Vec<JobRun> = vec![];
        let s = situation(&none, None, false);
        assert_eq!(
            decide(kind("scan"), Action::Start, &s).unwrap(),
            Transition::NewRun
        );
        assert_eq!(code(decide(kind("copy"), Action::Start, &s)), "655");
        assert_eq!(code(decide(kind("sync"), Action::Start, &s)), "655");
        let scanned = situation(&none, Some(("a", true)), true);
        assert_eq!(
            decide(kind("copy"), Action::Start, &scanned).unwrap(),
            Transition::NewRun
        );
        // The agent is inactive: each command has its code.
        for (cmd, c) in [
            ("scan", "686"),
            ("sanitize", "687"),
            ("copy", "688"),
            ("sync", "689"),
            ("empty-folders", "690"),
            ("permissions", "691"),
        ] {
            assert_eq!(
                code(decide(
                    kind(cmd),
                    Action::Start,
                    &situation(&none, Some(("a", false)), true)
                )),
                c
            );
        }
        // The same command already running, or stopping.
        for (cmd, running, stopping) in [
            ("scan", "650", "663"),
            ("sanitize", "651", "664"),
            ("copy", "652", "665"),
            ("sync", "653", "666"),
            ("permissions", "654", "667"),
            ("empty-folders", "682", "684"),
        ] {
            let a = [run(cmd, "RUNNING")];
            assert_eq!(
                code(decide(kind(cmd), Action::Start, &situation(&a, None, true))),
                running
            );
            let a = [run(cmd, "STOPPING")];
            assert_eq!(
                code(decide(kind(cmd), Action::Start, &situation(&a, None, true))),
                stopping
            );
        }
        // Another command is running: stop it first.
        for (other, c) in [
            ("scan", "668"),
            ("sanitize", "669"),
            ("copy", "670"),
            ("sync", "671"),
            ("permissions", "672"),
            ("empty-folders", "685"),
            ("speed-test", "661"),
        ] {
            let a = [run(other, "RUNNING")];
            let cmd = if other == "sync" { "copy" } else { "sync" };
            assert_eq!(
                code(decide(kind(cmd), Action::Start, &situation(&a, None, true))),
                c,
                "{other}"
            );
        }
    }

    #[test]
    fn stop_pause_resume_rules() {
        let none: Vec<JobRun> = vec![];
        for (cmd, c) in [
            ("scan", "656"),
            ("sanitize", "657"),
            ("copy", "658"),
            ("sync", "659"),
            ("permissions", "660"),
            ("empty-folders", "683"),
        ] {
            assert_eq!(
                code(decide(
                    kind(cmd),
                    Action::Stop,
                    &situation(&none, None, true)
                )),
                c
            );
        }
        let q = [run("copy", "QUEUED")];
        assert_eq!(
            decide(kind("copy"), Action::Stop, &situation(&q, None, true)).unwrap(),
            Transition::Move {
                id: "copy-QUEUED".into(),
                to: State::Stopped
            }
        );
        let r = [run("copy", "RUNNING")];
        assert_eq!(
            decide(kind("copy"), Action::Stop, &situation(&r, None, true)).unwrap(),
            Transition::Move {
                id: "copy-RUNNING".into(),
                to: State::Stopping
            }
        );
        let st = [run("copy", "STOPPING")];
        assert_eq!(
            code(decide(
                kind("copy"),
                Action::Stop,
                &situation(&st, None, true)
            )),
            "665"
        );
        assert_eq!(
            decide(kind("copy"), Action::Pause, &situation(&r, None, true)).unwrap(),
            Transition::Move {
                id: "copy-RUNNING".into(),
                to: State::Paused
            }
        );
        let p = [run("copy", "PAUSED")];
        assert_eq!(
            code(decide(
                kind("copy"),
                Action::Pause,
                &situation(&p, None, true)
            )),
            "652"
        );
        assert_eq!(
            decide(
                kind("copy"),
                Action::Resume,
                &situation(&p, Some(("a", true)), true)
            )
            .unwrap(),
            Transition::Move {
                id: "copy-PAUSED".into(),
                to: State::Queued
            }
        );
        assert_eq!(
            code(decide(
                kind("copy"),
                Action::Resume,
                &situation(&p, Some(("a", false)), true)
            )),
            "688"
        );
        assert_eq!(
            code(decide(
                kind("copy"),
                Action::Resume,
                &situation(&r, None, true)
            )),
            "652"
        );
        assert_eq!(
            code(decide(
                kind("copy"),
                Action::Resume,
                &situation(&none, None, true)
            )),
            "658"
        );
    }
}
