//! Settings read from the environment. A value that is set but unusable (not a number, zero,
//! `inf`, larger than makes sense) is a usage error (724) naming the variable, never a panic and
//! never silently replaced by the default.

use std::time::Duration;

use crate::error::JobError;

/// The longest duration a setting may give: ten years, in seconds.
const MAX_SECONDS: f64 = 10.0 * 365.0 * 86400.0;

/// What a configuration file sets: for each variable it stands for, the value and where it was
/// written (`serve.toml: serve.heartbeat_window_secs`).
static FROM_FILE: std::sync::OnceLock<std::collections::BTreeMap<String, (String, String)>> =
    std::sync::OnceLock::new();

/// Gives the settings a configuration file holds, by the variable each stands for: they are
/// used where the environment sets none (the environment wins). Set once, at start.
pub fn set_from_file(values: std::collections::BTreeMap<String, (String, String)>) {
    let _ = FROM_FILE.set(values);
}

/// The variable's value and how to name it in a message: the environment's, else the file's.
fn lookup(name: &str) -> Option<(String, String)> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        Some(v) => Some((v, name.to_string())),
        None => FROM_FILE
            .get()?
            .get(name)
            .map(|(v, at)| (v.clone(), at.clone())),
    }
}

fn value(name: &str) -> Option<String> {
    lookup(name).map(|(v, _)| v)
}

fn refused(name: &str, text: &str, what: &str) -> JobError {
    let shown = lookup(name).map_or_else(|| name.to_string(), |(_, at)| at);
    JobError::config(&format!("{shown}={text}: {what}"))
}

/// `name` as a number of seconds (fractions allowed), or `default` when it is not set.
pub fn seconds(name: &str, default: f64) -> Result<Duration, JobError> {
    parse_seconds(name, value(name).as_deref(), default)
}

/// `name` as a number greater than 0 (a rate), or `default` when it is not set.
pub fn positive(name: &str, default: f64) -> Result<f64, JobError> {
    parse_positive(name, value(name).as_deref(), default)
}

/// `name` as a whole number of at least 1, or `default` when it is not set.
pub fn count(name: &str, default: i64) -> Result<i64, JobError> {
    parse_count(name, value(name).as_deref(), default)
}

/// Checks `text` as [`seconds`] reads it; `name`: where it was written, for the message.
pub fn check_seconds(name: &str, text: &str) -> Result<(), JobError> {
    parse_seconds(name, Some(text), 1.0).map(|_| ())
}

/// Checks `text` as [`positive`] reads it.
pub fn check_positive(name: &str, text: &str) -> Result<(), JobError> {
    parse_positive(name, Some(text), 1.0).map(|_| ())
}

/// Checks `text` as [`count`] reads it.
pub fn check_count(name: &str, text: &str) -> Result<(), JobError> {
    parse_count(name, Some(text), 1).map(|_| ())
}

fn parse_seconds(name: &str, text: Option<&str>, default: f64) -> Result<Duration, JobError> {
    let Some(text) = text else {
        return Ok(Duration::from_secs_f64(default));
    };
    let what = "give a number of seconds greater than 0, at most ten years (315360000)";
    let secs: f64 = text.trim().parse().map_err(|_| refused(name, text, what))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= MAX_SECONDS) {
        return Err(refused(name, text, what));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_positive(name: &str, text: Option<&str>, default: f64) -> Result<f64, JobError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let what = "give a number greater than 0";
    let n: f64 = text.trim().parse().map_err(|_| refused(name, text, what))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(refused(name, text, what));
    }
    Ok(n)
}

fn parse_count(name: &str, text: Option<&str>, default: i64) -> Result<i64, JobError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let what = "give a whole number of at least 1";
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(refused(name, text, what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_values_are_refused_with_724_naming_the_variable() {
        for bad in ["inf", "1e30", "-3", "0", "NaN", "soon"] {
            let e = parse_seconds("GODWIT_X", Some(bad), 5.0).unwrap_err();
            assert_eq!(
                e.code,
                godwit_codes::Code::INCORRECT_MIGRATION_CONFIG,
                "{bad}"
            );
            assert!(
                e.message.contains(&format!("GODWIT_X={bad}")),
                "{}",
                e.message
            );
            assert!(e.is_usage());
        }
        assert_eq!(
            parse_seconds("GODWIT_X", Some("2.5"), 5.0).unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(
            parse_seconds("GODWIT_X", None, 5.0).unwrap(),
            Duration::from_secs(5)
        );
        assert!(parse_count("GODWIT_X", Some("0"), 3).is_err());
        assert!(parse_count("GODWIT_X", Some("1.5"), 3).is_err());
        assert_eq!(parse_count("GODWIT_X", Some("7"), 3).unwrap(), 7);
        assert!(parse_positive("GODWIT_X", Some("inf"), 3.0).is_err());
        assert_eq!(parse_positive("GODWIT_X", Some("0.5"), 3.0).unwrap(), 0.5);
    }
}
