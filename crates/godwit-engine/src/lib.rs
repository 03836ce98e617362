//! godwit's engine: walk a source, filter it, check it against the target's rules, copy what is
//! new or changed with verification, and record every file. It knows nothing of HTTP, the
//! control plane or the terminal: callers give a [`job::JobSpec`] and a [`job::Control`] to
//! [`job::run`], and read progress counters and the report.
//!
//! Layers, each using only those above it: `error`, `record` and `state` (a run's outputs and
//! folders); `index`, `profile`, `rate`, `walk`, `features`, `store` and `sftp` (the pieces); `backend` (a side and
//! what it can do); `ctx` (what a copy's threads share); `decide` (does a file need a transfer?);
//! `transfer` (one file's bytes) and `publish` (a local file whole or not at all); `march` (every walk); `recorder` (the copy log and index writer); `copy` (the pool); `backup` (what `--backup-dir` keeps, after `backend`); `sync`, `undo`, `scan`, `sanitize` (the commands' own parts); `job` (the entry point).

pub mod azure;
pub mod backend;
pub mod backup;
pub mod browse;
pub mod copy;
pub mod ctx;
mod decide;
pub mod doctor;
pub mod error;
pub mod features;
pub mod history;
pub mod index;
pub mod job;
mod march;
pub mod metadata;
pub mod perms;
pub mod plan;
pub mod precheck;
pub mod profile;
mod publish;
pub mod rate;
pub mod record;
mod recorder;
pub mod sanitize;
pub mod scan;
pub mod sftp;
pub mod speedtest;
pub mod state;
pub mod store;
pub mod sync;
mod transfer;
pub mod undo;
pub mod unit_index;
pub mod uploads;
pub mod validate;
pub mod verify;
pub mod walk;

pub use godwit_spec::{filter, location};

pub use backend::{Features, Side};
pub use copy::{copy, copy_local};
pub use ctx::{CopyOptions, CopyOutcome, Progress};
pub use error::JobError;
pub use godwit_spec::{Filter, FilterRules, Links, Location, Verify};
pub use job::{Control, JobReport, JobSpec};
pub use profile::TargetProfile;
pub use record::Summary;
pub use scan::{ScanOptions, ScanReport, scan};
pub use state::{Migration, Run};
