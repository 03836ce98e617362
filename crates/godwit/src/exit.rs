//! godwit's exit statuses, in one place. Scripts depend on these numbers: never renumber.

use std::process::ExitCode;

/// How a `godwit` invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Every file succeeded or was skipped on purpose.
    Success = 0,
    /// The job failed as a whole.
    JobFailed = 1,
    /// The command line or configuration is wrong; nothing was done.
    Usage = 2,
    /// Finished, but some files failed or are unsupported by the target.
    PartialFailure = 3,
    /// Paused for review (a true-up's delete guard); see the message for how to confirm.
    PausedForReview = 4,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        ExitCode::from(s as u8)
    }
}
