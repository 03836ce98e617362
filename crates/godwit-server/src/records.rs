//! What the store keeps about agents, migrations, job runs and schedules, as the API shows it.
//! The SQL is in `store/`, one file a resource.

use godwit_codes::{Code, State};
use godwit_spec::CommandKind;
use serde::{Deserialize, Serialize};

/// An agent: the process next to the data that runs commands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub version: String,
    /// 900 inactive, 901 active, 902 deactivated, 903 deleted.
    pub state: CodeName,
    /// Whether it takes scheduled jobs.
    pub scheduling: bool,
    pub last_seen_ms: Option<i64>,
    pub created_ms: i64,
    /// The commands it runs, as it said when it last connected; until then, those every agent
    /// runs. A command it does not run is refused when started (9150).
    pub commands: Vec<CommandKind>,
    /// The platform it runs on (`linux-x86_64`), as it said when it last connected.
    pub platform: Option<String>,
    /// What it can be asked besides commands (`upgrade`, `retire`), as it said when it last
    /// connected; an agent of a godwit before these has none (9150 when asked).
    pub features: Vec<String>,
    /// Its retirement, once asked for: 193 going on, 194 done, 195 it came back, 196 timed out.
    pub retire: Option<Retirement>,
}

/// Where an agent's retirement stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Retirement {
    pub status: CodeName,
    /// When it was asked for.
    pub since_ms: i64,
    /// When the agent said it had removed its state and was leaving.
    pub left_ms: Option<i64>,
}

/// An agent release: a signed godwit binary for one platform.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Release {
    pub id: String,
    pub version: String,
    pub platform: String,
    /// The binary's SHA-256 (hex).
    pub sha256: String,
    pub size: i64,
    /// The Ed25519 signature of the release, base64, as `godwit release sign` made it.
    pub signature: String,
    pub created_ms: i64,
}

impl Release {
    pub fn manifest(&self) -> godwit_spec::release::Manifest {
        godwit_spec::release::Manifest {
            version: self.version.clone(),
            platform: self.platform.clone(),
            sha256: self.sha256.clone(),
            size: u64::try_from(self.size).unwrap_or(0),
            signature: self.signature.clone(),
        }
    }
}

/// One agent's upgrade to a release, with every step the agent reported.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Upgrade {
    pub id: String,
    pub agent_id: String,
    pub release_id: String,
    pub from_version: String,
    pub to_version: String,
    /// QUEUED (waiting for the agent's commands to end), RUNNING, SUCCEEDED, FAILED
    pub state: String,
    /// 993 while it goes on; 994 succeeded, 995 failed (the old version runs), 996 timed out.
    pub status: CodeName,
    /// The failing step's code (AZSM0001-0005, 8010-8040) and what the agent said.
    pub error: Option<RunError>,
    /// What the agent did, step by step, as it reported it.
    pub steps: Vec<godwit_spec::protocol::UpgradeStep>,
    /// Waits for the agent's commands to end instead of refusing (680).
    pub drain: bool,
    pub allow_downgrade: bool,
    pub time_limit_ms: i64,
    /// A scheduled upgrade is not sent before this time.
    pub start_ms: Option<i64>,
    pub created_ms: i64,
    /// When the agent was told.
    pub sent_ms: Option<i64>,
    pub ended_ms: Option<i64>,
}

/// A code with its name, as the API shows statuses.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodeName {
    pub code: String,
    pub name: String,
}

impl CodeName {
    pub fn of(code: Code) -> Self {
        CodeName {
            code: code.id().to_string(),
            name: code.name().to_string(),
        }
    }
}

/// A migration's options: the job options every command of it runs with.
pub type MigrationOptions = godwit_spec::JobOptions;

/// A migration: a source path to a target path, run by an agent, in a project.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Migration {
    pub id: String,
    pub project_id: String,
    pub agent_id: Option<String>,
    pub source_endpoint: String,
    pub source_path: String,
    pub target_endpoint: String,
    pub target_path: String,
    pub options: MigrationOptions,
    pub created_ms: i64,
    /// The options as given when it was made (None: all of `options` are its own).
    #[serde(skip)]
    pub given_options: Option<serde_json::Map<String, serde_json::Value>>,
    /// The agents its copies are spread over (a pool); empty: its agent runs everything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pool: Vec<String>,
}

/// One run of a command on a migration.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobRun {
    pub id: String,
    pub migration_id: String,
    pub command: CommandKind,
    /// QUEUED, RUNNING, STOPPING, STOPPED, PAUSED, SUSPENDED, SUCCEEDED, FAILED
    #[serde(with = "godwit_spec::command::state_serde")]
    #[schema(value_type = String)]
    pub state: State,
    /// The status code of the command in that state (937 SCAN : QUEUED ...).
    pub status: CodeName,
    /// What made it fail or pause, with its parameters.
    pub error: Option<RunError>,
    pub files: i64,
    pub bytes: i64,
    pub files_failed: i64,
    /// Files and bytes the run has found to do so far, as its agent last reported them (the
    /// walk goes on beside the transfers, so these grow until it ends); 0 before a report.
    pub files_found: i64,
    pub bytes_found: i64,
    /// The transfer rate the agent last reported.
    pub bytes_per_second: f64,
    /// Files per status code, as the agent last reported them.
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
    /// The options the run was started with, when its command request changed some of the
    /// migration's; absent: the migration's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<MigrationOptions>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub updated_ms: i64,
}

/// One run of a project's own command: its simulated scan (on one agent), its validation (a
/// run on each migration).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProjectRun {
    pub id: String,
    pub project_id: String,
    /// The agent that runs it (none for a validation, which runs on each migration's agent).
    pub agent_id: Option<String>,
    pub command: CommandKind,
    /// What it was asked: the source (endpoint and path), the job limits, the options; for a
    /// validation, the job run on each migration (`runs`).
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    /// QUEUED, RUNNING, SUCCEEDED, FAILED
    #[serde(with = "godwit_spec::command::state_serde")]
    #[schema(value_type = String)]
    pub state: State,
    /// The status code of the command in that state (141 SIMULATE_SCAN : RUNNING ...; while
    /// QUEUED, the RUNNING status: the seed gives it no QUEUED one).
    pub status: CodeName,
    /// What made it fail, with its parameters (720 when its time limit passed).
    pub error: Option<RunError>,
    /// Files and bytes walked so far.
    pub files: i64,
    pub bytes: i64,
    /// What it found: `GET /v1/projects/{id}/runs/{run_id}/report`, and for a simulated scan
    /// `GET /v1/projects/{id}/recommendation`.
    #[serde(skip)]
    pub report: Option<serde_json::Value>,
    #[serde(skip)]
    pub format: i64,
    /// Still going on at this time, it fails with its time-out code.
    pub deadline_ms: i64,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub updated_ms: i64,
}

/// A job run's error.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunError {
    pub code: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
}

/// A schedule: a command started at a time, repeated.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Schedule {
    pub id: String,
    pub migration_id: String,
    pub command: CommandKind,
    pub frequency: String,
    pub repeat: i64,
    pub start_ms: i64,
    pub created_ms: i64,
}

pub use godwit_spec::command::{state_of, state_text};

/// Whether a run in `state` still holds its migration (one command at a time).
pub fn is_active(state: State) -> bool {
    matches!(
        state,
        State::Queued | State::Running | State::Stopping | State::Paused | State::Suspended
    )
}

/// What the control plane tells an agent about a run it should run.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub run: JobRun,
    pub migration: Migration,
    pub source_uri: String,
    pub target_uri: String,
}
