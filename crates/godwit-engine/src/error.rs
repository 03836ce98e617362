//! The engine's errors. A job's failure is the spec's [`JobError`] (a catalog code and its
//! message), shared with the agent and the control plane. Per-file problems are not errors:
//! they are records in the copy log.

pub use godwit_spec::JobError;
pub(crate) use godwit_spec::error::reason;
