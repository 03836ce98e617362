//! The commands a job runs, and the states a job run goes through, as words on the wire.

use godwit_codes::{Command, State};
use serde::{Deserialize, Serialize};

/// A command, as the command line, the API and the agent name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum CommandKind {
    /// Inventory of the source and what the target will make of it (930-937).
    Scan,
    /// Copy what is new or changed (920-927).
    Copy,
    /// The true-up: a copy that also finds, and with deletes on removes, what is gone (950-958).
    Sync,
    /// Carry out the reviewed deletions of a paused true-up (a true-up's statuses).
    Confirm,
    /// Rename names the target cannot hold, on the source (970-977).
    Sanitize,
    /// Make the folders that hold no file exist at the target (120-127).
    EmptyFolders,
    /// Carry owners, modes, ACLs and extended attributes (960-967).
    Permissions,
    /// Report what migrating permissions would do (130-137).
    SimulatePermissions,
    /// Measure throughput to the target (210-215).
    SpeedTest,
    /// Compare the whole target with the whole source, file by file, writing nothing
    /// (240-247).
    Verify,
    /// Put back at the target what a true-up with a backup folder deleted or replaced (a
    /// true-up's statuses).
    Undo,
    /// Walk the source into a folder tree and propose jobs that each stay under the job
    /// limits (141-144).
    SimulateScan,
    /// Close a migration after its cut-over: its index and run folders' working files go,
    /// its summaries and copy logs stay, and nothing more runs on it (980-987).
    Finalize,
    /// Check before a migration runs what would stop it: the source readable, the target
    /// writable, names and sizes the profile holds, the job limits (160-165).
    Validate,
}

impl CommandKind {
    /// Every command, in the order people meet them.
    pub const ALL: &[CommandKind] = &[
        CommandKind::Scan,
        CommandKind::Copy,
        CommandKind::Sync,
        CommandKind::Confirm,
        CommandKind::Sanitize,
        CommandKind::EmptyFolders,
        CommandKind::Permissions,
        CommandKind::SimulatePermissions,
        CommandKind::SpeedTest,
        CommandKind::Verify,
        CommandKind::Undo,
        CommandKind::SimulateScan,
        CommandKind::Finalize,
        CommandKind::Validate,
    ];

    /// The commands a person can start through the API (confirming a paused true-up is
    /// resuming it).
    pub const API: &[CommandKind] = &[
        CommandKind::Scan,
        CommandKind::Copy,
        CommandKind::Sync,
        CommandKind::Sanitize,
        CommandKind::EmptyFolders,
        CommandKind::Permissions,
        CommandKind::SimulatePermissions,
        CommandKind::SpeedTest,
        CommandKind::Verify,
        CommandKind::Undo,
        CommandKind::Finalize,
    ];

    /// The commands this version of godwit has a runner for: what its agents run. The engine
    /// checks its own list against this one in a test.
    pub const RUNNABLE: &[CommandKind] = &[
        CommandKind::Scan,
        CommandKind::Copy,
        CommandKind::Sync,
        CommandKind::Confirm,
        CommandKind::Sanitize,
        CommandKind::EmptyFolders,
        CommandKind::Permissions,
        CommandKind::SimulatePermissions,
        CommandKind::SpeedTest,
        CommandKind::Verify,
        CommandKind::Undo,
        CommandKind::SimulateScan,
        CommandKind::Finalize,
        CommandKind::Validate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Scan => "scan",
            CommandKind::Copy => "copy",
            CommandKind::Sync => "sync",
            CommandKind::Confirm => "confirm",
            CommandKind::Sanitize => "sanitize",
            CommandKind::EmptyFolders => "empty-folders",
            CommandKind::Permissions => "permissions",
            CommandKind::SimulatePermissions => "simulate-permissions",
            CommandKind::SpeedTest => "speed-test",
            CommandKind::Verify => "verify",
            CommandKind::Undo => "undo",
            CommandKind::SimulateScan => "simulate-scan",
            CommandKind::Finalize => "finalize",
            CommandKind::Validate => "validate",
        }
    }

    /// The command called `name`, if godwit has it.
    pub fn parse(name: &str) -> Option<CommandKind> {
        Self::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// The catalog's command, whose statuses a run of this one takes.
    pub fn catalog(self) -> Command {
        match self {
            CommandKind::Scan => Command::Scan,
            CommandKind::Copy => Command::MigrateData,
            CommandKind::Sync | CommandKind::Confirm | CommandKind::Undo => Command::TrueUp,
            CommandKind::Sanitize => Command::Sanitize,
            CommandKind::EmptyFolders => Command::CreateEmptyFolders,
            CommandKind::Permissions => Command::MigratePermissions,
            CommandKind::SimulatePermissions => Command::SimulatePermissions,
            CommandKind::SpeedTest => Command::SpeedTest,
            CommandKind::Verify => Command::Verify,
            CommandKind::SimulateScan => Command::SimulateScan,
            CommandKind::Finalize => Command::FinalizeMigration,
            CommandKind::Validate => Command::ValidateProject,
        }
    }

    /// Whether the command works on a target (and so needs one).
    pub fn needs_target(self) -> bool {
        !matches!(
            self,
            CommandKind::Scan | CommandKind::Sanitize | CommandKind::SimulateScan
        )
    }
}

impl std::fmt::Display for CommandKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job run's state as the API and the agent write it: `QUEUED`, `RUNNING`, ...
pub fn state_text(state: State) -> &'static str {
    match state {
        State::Created => "CREATED",
        State::Queued => "QUEUED",
        State::Running => "RUNNING",
        State::Stopping => "STOPPING",
        State::Stopped => "STOPPED",
        State::Paused => "PAUSED",
        State::Suspended => "SUSPENDED",
        State::Succeeded => "SUCCEEDED",
        State::Failed => "FAILED",
        State::Skipped => "SKIPPED",
    }
}

/// The state `text` names.
pub fn state_of(text: &str) -> Option<State> {
    [
        State::Created,
        State::Queued,
        State::Running,
        State::Stopping,
        State::Stopped,
        State::Paused,
        State::Suspended,
        State::Succeeded,
        State::Failed,
        State::Skipped,
    ]
    .into_iter()
    .find(|s| state_text(*s) == text)
}

/// States on the wire, as their words.
pub mod state_serde {
    use super::*;

    pub fn serialize<S: serde::Serializer>(state: &State, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(state_text(*state))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        let text = String::deserialize(d)?;
        state_of(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown state {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_its_word_and_catalog_statuses() {
        for c in CommandKind::ALL {
            assert_eq!(CommandKind::parse(c.as_str()), Some(*c));
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert!(godwit_codes::Code::command_status(c.catalog(), State::Succeeded).is_some());
        }
        assert_eq!(CommandKind::parse("dance"), None);
        for s in ["QUEUED", "RUNNING", "FAILED", "SKIPPED"] {
            assert_eq!(state_text(state_of(s).unwrap()), s);
        }
    }
}
