//! Finding a code from what a person typed: `9080`, `azsm2023`, `http 404`,
//! `file_synchronise_review_true_up_error`, `Scan : Running`.

use std::fmt;

use crate::fold::fold;
use crate::{Code, Namespace};

/// A code that is not in the catalog, with the nearest ones that are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    /// What was asked for, as given.
    pub query: String,
    /// The closest codes, best first; empty when nothing is close.
    pub suggestions: Vec<Suggestion>,
}

/// A code close to an unknown query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suggestion {
    /// The code.
    pub code: Code,
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a code in godwit's catalog", self.query)?;
        if !self.suggestions.is_empty() {
            let near: Vec<String> = self
                .suggestions
                .iter()
                .map(|s| format!("{} {}", s.code.id(), s.code.name()))
                .collect();
            write!(f, "; nearest: {}", near.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for LookupError {}

/// `http 404`, `HTTP:404`, `azsm-2023` -> (namespace, digits).
fn split_id(folded: &str) -> Option<(Namespace, &str)> {
    let (ns, rest) = if let Some(r) = folded.strip_prefix("AZSM") {
        (Namespace::Azsm, r)
    } else if let Some(r) = folded.strip_prefix("HTTP") {
        (Namespace::Http, r)
    } else {
        (Namespace::App, folded)
    };
    let digits = rest.trim_start_matches('_');
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some((ns, digits))
}

impl Code {
    /// The code a person means by `query`: an id in any case (`9080`, `azsm2023`, `HTTP404`,
    /// `http:404`) or a name (`FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR`, `scan : running`),
    /// including the other spellings the seeds use. A bare number is an application code; HTTP
    /// statuses are asked for with their `HTTP` prefix.
    pub fn lookup(query: &str) -> Result<Code, LookupError> {
        let folded = fold(query);
        let found = match split_id(&folded) {
            Some((ns, digits)) => {
                let number = digits.parse::<u32>().ok();
                Code::all().find(|c| {
                    let i = c.info();
                    i.namespace == ns && Some(i.number) == number
                })
            }
            None => Code::all()
                .find(|c| c.info().duplicate_of.is_none() && fold(c.name()) == folded)
                .or_else(|| {
                    Code::all().find(|c| c.info().aliases.iter().any(|a| fold(a) == folded))
                }),
        };
        found.ok_or_else(|| LookupError {
            query: query.to_string(),
            suggestions: nearest(&folded),
        })
    }

    /// The HTTP status entry with the same number, when a bare number is also an HTTP status
    /// (`500`): worth telling a person who may have meant that.
    pub fn http_twin(self) -> Option<Code> {
        let i = self.info();
        (i.namespace == Namespace::App)
            .then(|| {
                Code::all()
                    .find(|c| c.info().namespace == Namespace::Http && c.info().number == i.number)
            })
            .flatten()
    }
}

/// Up to five codes whose id or name is close to `folded`: for an id, ids of the same
/// namespace one or two edits away, numerically nearest first; for a name, similar names.
fn nearest(folded: &str) -> Vec<Suggestion> {
    if folded.is_empty() {
        return Vec::new();
    }
    let candidates = Code::all().filter(|c| c.info().duplicate_of.is_none());
    let mut scored: Vec<(f64, u64, Code)> = match split_id(folded) {
        Some((ns, digits)) => {
            let wanted: u64 = digits.parse().unwrap_or(u64::MAX);
            let digits = digits.trim_start_matches('0');
            candidates
                .filter(|c| c.info().namespace == ns)
                .filter_map(|c| {
                    let number = c.info().number.to_string();
                    let score = strsim::normalized_damerau_levenshtein(digits, &number);
                    let distance = wanted.abs_diff(u64::from(c.info().number));
                    (score >= 0.6).then_some((score, distance, c))
                })
                .collect()
        }
        None => candidates
            .filter_map(|c| {
                let i = c.info();
                let score = std::iter::once(i.name)
                    .chain(i.aliases.iter().copied())
                    .map(|n| {
                        let n = fold(n);
                        // A query that is part of a name ("TRUE_UP") is close to it.
                        if folded.len() >= 4 && n.contains(folded) {
                            0.95
                        } else {
                            strsim::jaro_winkler(folded, &n)
                        }
                    })
                    .fold(0.0, f64::max);
                (score >= 0.85).then_some((score, 0, c))
            })
            .collect(),
    };
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    scored.truncate(5);
    scored
        .into_iter()
        .map(|(_, _, code)| Suggestion { code })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CATALOG;

    #[test]
    fn ids_in_any_case_and_spelling() {
        assert_eq!(
            Code::lookup("9080").unwrap().name(),
            "FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR"
        );
        for q in ["azsm2023", "AZSM2023", " Azsm-2023 "] {
            assert_eq!(Code::lookup(q).unwrap(), Code::AZSM2023, "{q}");
        }
        for q in ["HTTP404", "http:404", "http 404"] {
            assert_eq!(Code::lookup(q).unwrap(), Code::HTTP_NOT_FOUND, "{q}");
        }
    }

    #[test]
    fn names_in_any_case_and_spacing() {
        assert_eq!(
            Code::lookup("file_synchronise_review_true_up_error")
                .unwrap()
                .id(),
            "9080"
        );
        assert_eq!(Code::lookup("scan:running").unwrap().id(), "930");
        assert_eq!(Code::lookup("SCAN : RUNNING").unwrap().id(), "930");
    }

    #[test]
    fn a_bare_number_is_the_application_code_and_names_its_http_twin() {
        let c = Code::lookup("500").unwrap();
        assert_eq!(c.name(), "ERR_POST_CONFIG_FILE_GET");
        assert_eq!(c.http_twin(), Some(Code::HTTP_INTERNAL_SERVER_ERROR));
        assert_eq!(Code::lookup("652").unwrap().http_twin(), None);
    }

    #[test]
    fn seed_spellings_are_aliases() {
        // The seed writes 120 without the separator.
        assert_eq!(
            Code::lookup("CREATE_EMPTY_FOLDERSRUNNING").unwrap().id(),
            "120"
        );
        // Code 0 has two names in the seed.
        assert_eq!(Code::lookup("BLANKERRORCODE").unwrap().id(), "0");
        assert_eq!(Code::lookup("NOERRORCODE").unwrap().id(), "0");
        // 233's seed name is 215's: the name goes to 215, the number still finds 233.
        assert_eq!(Code::lookup("SPEED_TEST : PAUSED").unwrap().id(), "215");
        assert_eq!(Code::lookup("233").unwrap().name(), "SCAN_SOURCE : PAUSED");
        // 693 and 694 share a name; the name finds 693, the one godwit emits.
        assert_eq!(
            Code::lookup("FAILED_TO_SEND_MESSAGE_TO_AGENT")
                .unwrap()
                .id(),
            "693"
        );
    }

    #[test]
    fn unknown_codes_suggest_the_nearest() {
        let e = Code::lookup("9081").unwrap_err();
        assert_eq!(e.suggestions[0].code.id(), "9080");
        let e = Code::lookup("azsm2027").unwrap_err();
        assert!(
            e.suggestions
                .iter()
                .all(|s| s.code.id().starts_with("AZSM"))
        );
        assert_eq!(e.suggestions[0].code.id(), "AZSM2026");

        let e = Code::lookup("FILE_SYNCHRONIZE_REVIEW_TRUE_UP_ERROR").unwrap_err();
        assert_eq!(e.suggestions[0].code.id(), "9080");
        assert!(e.to_string().contains("nearest: 9080"));

        let e = Code::lookup("").unwrap_err();
        assert!(e.suggestions.is_empty());
        assert!(Code::lookup("AZSM9999").is_err());
        assert!(Code::lookup("http").is_err());
    }

    #[test]
    fn every_catalog_id_and_name_finds_itself() {
        for c in Code::all() {
            assert_eq!(Code::lookup(c.id()), Ok(c));
            if c.info().duplicate_of.is_none() {
                assert_eq!(Code::lookup(c.name()), Ok(c), "{}", c.name());
            }
        }
        assert_eq!(Code::all().len(), CATALOG.len());
    }
}
