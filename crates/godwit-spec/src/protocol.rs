//! The agent connection's messages: JSON text frames over a WebSocket at `/v1/agent/connect`,
//! each an object with an `op`. The agent opens with `hello`; the control plane answers
//! `welcome` or `refused` (with a catalog code, and whether retrying may help).
//!
//! Nothing is lost on a cut: the control plane keeps commands in its store (a job run stays
//! QUEUED until the agent `ack`s it, and is sent again on every connection until then), and
//! the agent keeps each `progress`, `result` and `copylog` message until the control plane
//! `ack`s its `seq`.

use godwit_codes::{Code, State};
use serde::{Deserialize, Serialize};

use crate::command::CommandKind;
use crate::error::JobError;
use crate::options::JobOptions;

/// Agent to control plane.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum ToServer {
    Hello {
        agent_id: Option<String>,
        name: Option<String>,
        version: Option<String>,
        /// The commands this agent can run (`scan`, `copy`, ...). An agent too old to say is
        /// taken to run scan, copy, sync and empty-folders, all that such agents had.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commands: Option<Vec<String>>,
        /// The platform it runs on (`linux-x86_64`), for the releases it can be upgraded to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        platform: Option<String>,
        /// What the agent itself can be asked besides commands (`AGENT_FEATURES`); an agent
        /// that does not say can be asked none of it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        features: Option<Vec<String>>,
    },
    Heartbeat,
    /// The command of job run `run_id` arrived and is being run. Sent through the same queue
    /// as the reports, so it never overtakes the result of an earlier attempt of the run.
    Taken {
        seq: u64,
        run_id: String,
    },
    Progress {
        seq: u64,
        run_id: String,
        counters: Counters,
    },
    /// The run ended (or paused, or stopped).
    Result {
        seq: u64,
        run_id: String,
        /// SUCCEEDED, FAILED, STOPPED or PAUSED
        #[serde(with = "crate::command::state_serde")]
        state: State,
        counters: Counters,
        /// The job error's code and parameters, when it failed or paused for review.
        error: Option<WireError>,
        /// What the run did, for `GET /v1/runs/{id}/report`.
        #[serde(default)]
        report: Option<serde_json::Value>,
    },
    /// A page of the run's copy log.
    Copylog {
        seq: u64,
        run_id: String,
        /// The agent's name for this attempt of the run (its engine run id).
        attempt: String,
        records: Vec<WireRecord>,
    },
    /// A page of a list a true-up that paused for review wrote (sent before its result):
    /// `deletes`, the files it would delete, or `unreadable`, the source folders it could not
    /// read; each path as the list holds it (escaped, one line), `first` being the first
    /// path's line in the list, from 0.
    Review {
        seq: u64,
        run_id: String,
        /// The agent's name for the attempt that paused (its engine run id).
        attempt: String,
        list: String,
        first: i64,
        paths: Vec<String>,
    },
    /// A page of a pool work unit's part of the migration's index, as the unit left it (sent
    /// before its result): `first` starts the part afresh, so what the control plane held of
    /// the unit's part before is replaced by these pages. Another agent running the part later
    /// starts from it (`GET /v1/units/{id}/index`).
    Index {
        seq: u64,
        run_id: String,
        first: bool,
        rows: Vec<IndexRow>,
    },
    /// The answer to a `browse`: the folders found, or why there are none.
    Browsed {
        seq: u64,
        browse_id: String,
        #[serde(default)]
        folders: Vec<String>,
        /// Folders whose names are not UTF-8 (not offered).
        #[serde(default)]
        unnamed: u64,
        #[serde(default)]
        error: Option<WireError>,
    },
    /// Where upgrade `upgrade_id` stands: every step so far, from the agent's upgrade journal
    /// (which outlives the binary it was written by). `done`: nothing more will happen.
    Upgrade {
        seq: u64,
        upgrade_id: String,
        /// The version this agent runs now.
        version: String,
        steps: Vec<UpgradeStep>,
        done: bool,
    },
    /// The agent was told to retire: its runs are stopped and its state directory removed; it
    /// disconnects once this is acknowledged, and does not come back.
    Retired {
        seq: u64,
    },
}

/// One step of an upgrade: `download`, `pre-check`, `verify`, `install`, `post-check`,
/// `rollback`. `code` is None when it went well, else the step's code (AZSM0001-0005), with
/// `cause` the agent-side code under it (8010-8040) when there is one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpgradeStep {
    pub step: String,
    pub at_ms: i64,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    pub message: String,
}

/// What an agent is asked to upgrade to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpgradeOrder {
    pub upgrade_id: String,
    /// The release's download, a path on the control plane (`/v1/releases/{id}/binary`).
    pub url: String,
    pub release: crate::release::Manifest,
    /// May go to an older (or the same-numbered) version.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// The whole upgrade's limit; past it the agent gives up before installing (996).
    pub time_limit_secs: u64,
}

/// Control plane to agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum ToAgent {
    Welcome {
        agent_id: String,
        /// Send a heartbeat at least this often.
        heartbeat_secs: u64,
    },
    Refused {
        code: String,
        name: String,
        message: String,
        remediation: String,
        /// Whether connecting again unchanged may work.
        retry: bool,
    },
    /// Run a command.
    Command(Box<Job>),
    /// Stop, pause or resume the run in progress.
    Control { run_id: String, action: String },
    /// List the folders directly under `location` (one level), at most `limit` of them;
    /// answered with `browsed`.
    Browse {
        browse_id: String,
        location: String,
        limit: u64,
    },
    /// The message `seq` is stored; the agent may forget it.
    Ack { seq: u64 },
    /// A message of the agent could not be used; the connection stays open.
    Error { code: String, message: String },
    /// Replace this agent's binary with a signed release.
    Upgrade(Box<UpgradeOrder>),
    /// Stop every run, remove the state directory, say so, and leave for good.
    Retire,
}

/// One file of a migration's index: what godwit wrote at the target for a source file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexRow {
    /// Its path below the source, as a line ([`crate::paths::encode_line`]).
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    /// Its content's hash in hex, when it was computed; else empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    /// The source file's inode, when known (0).
    #[serde(default)]
    pub ino: u64,
    /// The name it has at the target when that is not its own (`--sanitize`), as a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What an agent needs to run a command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub run_id: String,
    pub migration_id: String,
    pub command: CommandKind,
    /// The source location: endpoint URI joined with the migration's path.
    pub source: String,
    pub target: String,
    pub options: JobOptions,
    /// A work unit of a pool migration's run: its part of the index comes from the control
    /// plane before it runs and goes back to it after (`index` pages).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unit: bool,
}

/// What this agent can be asked besides commands: to upgrade itself, to retire, to list a
/// source's folders.
pub const AGENT_FEATURES: &[&str] = &["upgrade", "retire", "browse"];

/// The commands an agent that does not list its own is taken to run.
pub const FIRST_AGENT_COMMANDS: &[CommandKind] = &[
    CommandKind::Scan,
    CommandKind::Copy,
    CommandKind::Sync,
    CommandKind::EmptyFolders,
];

/// A message from the control plane that the agent could not use.
#[derive(Debug, Clone, PartialEq)]
pub struct Undecodable {
    /// The job run it was about, when it named one: that run fails with `error`.
    pub run_id: Option<String>,
    pub error: JobError,
}

impl ToAgent {
    /// Reads a message. A command godwit does not have is 1050, one whose options or fields the
    /// agent does not know is 1030: never run with a part of it ignored.
    pub fn decode(text: &str) -> Result<ToAgent, Undecodable> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Undecodable {
            run_id: None,
            error: JobError::new(Code::MESSAGE_DECODE_ERROR, &[("reason", &e.to_string())]),
        })?;
        if value["op"] != "command" {
            return serde_json::from_value(value).map_err(|e| Undecodable {
                run_id: None,
                error: JobError::new(Code::MESSAGE_DECODE_ERROR, &[("reason", &e.to_string())]),
            });
        }
        let run_id = value["run_id"].as_str().unwrap_or_default().to_string();
        if let Some(name) = value["command"].as_str()
            && CommandKind::parse(name).is_none()
        {
            return Err(Undecodable {
                run_id: Some(run_id),
                error: JobError::new(Code::INVALID_COMMAND_ERROR, &[("opcode", name)]),
            });
        }
        serde_json::from_value(value).map_err(|e| Undecodable {
            run_id: Some(run_id.clone()),
            error: JobError::new(
                Code::INVALID_COMMAND_DATA_ERROR,
                &[("job_id", &run_id), ("reason", &e.to_string())],
            ),
        })
    }
}

/// A run's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counters {
    pub files: i64,
    pub bytes: i64,
    pub files_failed: i64,
    pub bytes_per_second: f64,
    /// Files per final status code.
    #[serde(default)]
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Files and bytes found to do so far (the walk goes on beside the transfers).
    #[serde(default)]
    pub files_found: i64,
    #[serde(default)]
    pub bytes_found: i64,
    /// A number that grows whenever the run does anything (files seen, bytes read or sent,
    /// files done or failed): unchanged for long, the run is hung (641).
    #[serde(default)]
    pub activity: u64,
}

/// An error as it travels: a catalog code and its parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireError {
    pub code: String,
    pub message: String,
}

/// One copy-log record as it travels.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireRecord {
    /// The record's place in the run's copy log, from 0.
    pub line: i64,
    pub path: String,
    pub code: String,
    pub message: String,
    pub size: i64,
}

/// `base` (an endpoint's URI) joined with a migration's `path` (`/` for the base itself).
pub fn join_location(base: &str, path: &str) -> String {
    let rest = path.trim_matches('/');
    if rest.is_empty() {
        return base.to_string();
    }
    format!("{}/{rest}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_their_op() {
        let m = ToServer::Taken {
            seq: 3,
            run_id: "r".into(),
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"op":"taken","seq":3,"run_id":"r"}"#);
        assert_eq!(serde_json::from_str::<ToServer>(&text).unwrap(), m);
        let hb: ToServer = serde_json::from_str(r#"{"op":"heartbeat"}"#).unwrap();
        assert_eq!(hb, ToServer::Heartbeat);
        assert!(serde_json::from_str::<ToServer>(r#"{"op":"dance"}"#).is_err());
    }

    #[test]
    fn a_command_the_agent_cannot_read_fails_its_run_with_its_code() {
        let job = |command: &str, options: serde_json::Value| {
            serde_json::json!({"op": "command", "run_id": "r1", "migration_id": "m",
                "command": command, "source": "/a", "target": "/b", "options": options})
            .to_string()
        };
        let ok = ToAgent::decode(&job("sync", serde_json::json!({"syncDeletes": true}))).unwrap();
        let ToAgent::Command(j) = ok else {
            panic!("{ok:?}")
        };
        assert!(j.options.sync_deletes);
        let e = ToAgent::decode(&job("dance", serde_json::json!({}))).unwrap_err();
        assert_eq!(e.run_id.as_deref(), Some("r1"));
        assert_eq!(e.error.code, Code::INVALID_COMMAND_ERROR);
        let e = ToAgent::decode(&job("copy", serde_json::json!({"syncDelete": true}))).unwrap_err();
        assert_eq!(e.error.code, Code::INVALID_COMMAND_DATA_ERROR);
        assert!(
            e.error.message.contains("syncDelete"),
            "{}",
            e.error.message
        );
        let e = ToAgent::decode("{").unwrap_err();
        assert_eq!((e.run_id, e.error.code), (None, Code::MESSAGE_DECODE_ERROR));
    }

    #[test]
    fn locations_join_endpoint_and_path() {
        assert_eq!(join_location("/mnt/nas", "/finance"), "/mnt/nas/finance");
        assert_eq!(join_location("s3://b/x", "/"), "s3://b/x");
        assert_eq!(join_location("s3://b/x/", "/a/b/"), "s3://b/x/a/b");
    }
}
