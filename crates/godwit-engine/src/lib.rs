//! godwit's engine: walk a source, filter it, check it against the target's rules, copy what is
//! new or changed with verification, and record every file. It knows nothing of HTTP, the
//! control plane or the terminal: callers pass a stop flag and read progress counters.

pub mod copy;
pub mod error;
pub mod filter;
pub mod index;
pub mod location;
pub mod profile;
pub mod rate;
pub mod run;
pub mod sanitize;
pub mod scan;
pub mod store;
pub mod sync;
mod transfer;
pub mod walk;

pub use copy::{CopyOptions, CopyOutcome, Links, Progress, Side, Verify, copy, copy_local};
pub use error::JobError;
pub use filter::{Filter, FilterRules};
pub use location::Location;
pub use profile::TargetProfile;
pub use run::{Migration, Run, Summary};
pub use scan::{ScanOptions, ScanReport, scan};
