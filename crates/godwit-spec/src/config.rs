//! A migration configuration file ("advanced mode"): one JSON document that gives one or more
//! migrations with every option, read the same way by `godwit copy --config FILE` and by the
//! control plane (`POST /v1/agents/{id}/config`).
//!
//! ```json
//! {
//!   "agentId": "01a2...",
//!   "migrations": [
//!     {"source": "/mnt/nas/finance", "target": "s3://bucket/finance",
//!      "options": {"filters": {"exclude": ["*.tmp"]}, "bwlimit": "50M"}},
//!     {"id": "01a3...", "options": {"syncDeletes": true}}
//!   ]
//! }
//! ```
//!
//! A side is a location (`/mnt/nas`, `s3://bucket/prefix`: the command line's form) or an
//! endpoint and a path (`{"endpointId": "...", "path": "/finance"}`: the control plane's). An
//! entry with an `id` changes that migration (control plane); one without gives a source and a
//! target. `options` are a migration's job options, exactly as the API takes them.

use godwit_codes::Code;
use serde::Deserialize;

use crate::error::JobError;
use crate::options::JobOptions;

/// The whole file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigFile {
    /// The agent the file is for (the control plane checks it against the agent it is sent
    /// to: 502).
    #[serde(default)]
    pub agent_id: Option<String>,
    pub migrations: Vec<ConfigMigration>,
}

/// One migration of the file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigMigration {
    /// An existing migration to change (control plane).
    #[serde(default)]
    pub id: Option<String>,
    /// The project a new migration goes in (control plane).
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub source: Option<ConfigSide>,
    #[serde(default)]
    pub target: Option<ConfigSide>,
    /// The job options as given (what a migration leaves out, its project's settings decide).
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// One side of a migration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ConfigSide {
    /// A location, as the command line takes it.
    Location(String),
    /// An endpoint and a folder under it, as the control plane takes it.
    Endpoint(EndpointSide),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointSide {
    pub endpoint_id: String,
    pub path: String,
}

impl ConfigMigration {
    /// The entry's options, typed: 503 naming the field of entry `i` that does not fit.
    pub fn job_options(&self, i: usize) -> Result<JobOptions, JobError> {
        let value = serde_json::Value::Object(self.options.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let field = match e.path().to_string() {
                p if p == "." => format!("migrations[{i}].options"),
                p => format!("migrations[{i}].options.{p}"),
            };
            invalid(&field, &e.inner().to_string())
        })
    }
}

fn invalid(field: &str, why: &str) -> JobError {
    JobError::new(
        Code::ERR_CONFIG_VALIDATION,
        &[("reason", &format!("{field}: {}", why.trim_end_matches('.')))],
    )
}

/// Reads a configuration file: 500 for an empty one, 501 for one that is not JSON (or not
/// UTF-8), 503 naming the field of the wrong shape, 508 for one without migrations, 504 for an
/// entry with neither an id nor a source and a target. Every entry's options are checked too.
pub fn parse(bytes: &[u8]) -> Result<ConfigFile, JobError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(JobError::new(
            Code::ERR_POST_CONFIG_FILE_GET,
            &[("reason", "it is empty")],
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        JobError::new(
            Code::ERR_CONFIG_FILE_OPEN,
            &[("reason", &format!("it is not UTF-8 text ({e})"))],
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        JobError::new(
            Code::ERR_CONFIG_FILE_OPEN,
            &[("reason", &format!("it is not JSON: {e}"))],
        )
    })?;
    let file: ConfigFile = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "the file".into() } else { path };
        invalid(&field, &e.inner().to_string())
    })?;
    if file.migrations.is_empty() {
        return Err(JobError::new(Code::ERR_MIGRATION_CONFIG_REQUIRED, &[]));
    }
    for (i, m) in file.migrations.iter().enumerate() {
        if m.id.is_none() && (m.source.is_none() || m.target.is_none()) {
            let mut e = JobError::new(Code::ERR_EMPTY_MIGRATION_ID_AND_PATHS, &[]);
            e.message = format!("{} (migrations[{i}])", e.message.trim_end_matches('.'));
            return Err(e);
        }
        m.job_options(i)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> (String, String) {
        let e = parse(text.as_bytes()).unwrap_err();
        (e.code.id().to_string(), e.message)
    }

    #[test]
    fn a_file_reads_with_both_forms_of_sides_and_its_options_typed() {
        let f = parse(
            br#"{"agentId": "a1", "migrations": [
                {"source": "/mnt/nas", "target": "s3://b/x", "options": {"syncDeletes": true}},
                {"id": "m2", "source": {"endpointId": "e1", "path": "/x"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(f.agent_id.as_deref(), Some("a1"));
        assert_eq!(
            f.migrations[0].source,
            Some(ConfigSide::Location("/mnt/nas".into()))
        );
        assert!(f.migrations[0].job_options(0).unwrap().sync_deletes);
        assert_eq!(
            f.migrations[1].source,
            Some(ConfigSide::Endpoint(EndpointSide {
                endpoint_id: "e1".into(),
                path: "/x".into()
            }))
        );
    }

    #[test]
    fn each_way_a_file_is_wrong_has_its_code_and_names_the_field() {
        assert_eq!(code("  \n").0, "500");
        assert_eq!(code("{\"migrations\": [").0, "501");
        assert_eq!(code("name = 'toml'").0, "501");
        let e = parse(&[b'"', 0xff, b'"']).unwrap_err();
        assert_eq!(e.code.id(), "501");
        let (c, m) = code(r#"{"migrations": [{"source": "/a", "target": "/b", "sorce": 1}]}"#);
        assert_eq!(c, "503");
        assert!(m.contains("migrations[0]") && m.contains("sorce"), "{m}");
        let (c, m) = code(
            r#"{"migrations": [{"source": "/a", "target": "/b"},
                {"source": "/a", "target": "/c", "options": {"transfers": "many"}}]}"#,
        );
        assert_eq!(c, "503");
        assert!(m.contains("migrations[1].options.transfers"), "{m}");
        let (c, m) = code(r#"{"agentId": 7, "migrations": []}"#);
        assert_eq!(c, "503");
        assert!(m.contains("agentId"), "{m}");
        assert_eq!(code(r#"{"migrations": []}"#).0, "508");
        let (c, m) = code(r#"{"migrations": [{"source": "/a"}]}"#);
        assert_eq!(c, "504");
        assert!(m.contains("migrations[0]"), "{m}");
    }
}
