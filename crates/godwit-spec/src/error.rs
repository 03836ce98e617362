//! A job's failure: a catalog code and its rendered message. Per-file problems are not errors:
//! they are records in the copy log.

use godwit_codes::Code;

/// A failure that stops a command as a whole, with the code that names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    /// The catalog code, decided where the failure was seen.
    pub code: Code,
    /// The code's message with its parameters filled in.
    pub message: String,
}

impl JobError {
    /// The error for `code`, its message rendered with `params`.
    pub fn new(code: Code, params: &[(&str, &str)]) -> Self {
        Self {
            code,
            message: code.render(params),
        }
    }

    /// A configuration error (724) with `reason`.
    pub fn config(reason: &str) -> Self {
        Self::new(Code::INCORRECT_MIGRATION_CONFIG, &[("reason", reason)])
    }

    /// Whether the same command may work if simply run again.
    pub fn retryable(&self) -> bool {
        self.code.info().retryable
    }

    /// Whether the command line or the configuration is at fault (exit status 2), rather than
    /// the job (exit status 1).
    pub fn is_usage(&self) -> bool {
        [
            Code::ERR_URL_PARSE,
            Code::ENDPOINT_CREDENTIAL_IN_URI,
            Code::ERR_FILTER_PATTERN,
            Code::ERR_FILTER_PATTERN_GLOB,
            Code::ERR_FILTER_PATTERN_REGEX,
            Code::SCAN_INVALID_EXCLUDE_RULE_ERROR,
            Code::SCAN_FAILURE_PRE_CHECK,
            Code::MIGRATION_INVALID_SOURCE_PATH_ERROR,
            Code::MIGRATION_INVALID_SOURCE_TYPE_ERROR,
            Code::MIGRATION_INVALID_SOURCE_ABS_ERROR,
            Code::MIGRATION_INVALID_DESTINATION_PATH_ERROR,
            Code::INCORRECT_MIGRATION_CONFIG,
            // A configuration file (`--config`) that cannot be used.
            Code::ERR_POST_CONFIG_FILE_GET,
            Code::ERR_CONFIG_FILE_OPEN,
            Code::ERR_CONFIG_VALIDATION,
            Code::ERR_EMPTY_MIGRATION_ID_AND_PATHS,
            Code::ERR_MIGRATION_CONFIG_REQUIRED,
            // A run id (confirm, undo, --from-scan) that names no run.
            Code::DB_ERR_GET_DOC_NOT_FOUND,
        ]
        .contains(&self.code)
    }
}

/// `e` as the text a person reads in a message: "permission denied" rather than a debug dump.
pub fn reason(e: &std::io::Error) -> String {
    let mut s = e.to_string();
    // "Permission denied (os error 13)" -> "permission denied (os error 13)"
    if let Some(first) = s.get(..1) {
        let lower = first.to_lowercase();
        s.replace_range(..1, &lower);
    }
    s
}
