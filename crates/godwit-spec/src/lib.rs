//! What godwit's command line, agent and control plane agree on, and nothing more: locations,
//! filter rules, typed job options, the command kinds, the agent protocol and token claims.
//! It depends only on the catalog and small parsing crates, so the control plane does not link
//! the engine and the agent does not link the control plane.

pub mod claims;
pub mod command;
pub mod config;
pub mod env;
pub mod error;
pub mod filter;
pub mod location;
pub mod options;
pub mod paths;
pub mod permissions;
pub mod protocol;
pub mod release;
pub mod split;

pub use claims::{Claims, Role};
pub use command::CommandKind;
pub use error::JobError;
pub use filter::{Filter, FilterRules};
pub use location::{Location, StoreKind};
pub use options::{
    Bandwidth, Compare, JobOptions, Links, MaxDelete, ProfileName, SanitizeMode, Verify,
};
