//! Include and exclude rules, shared by scan and copy.
//!
//! Globs follow what rclone and .gitignore users expect: a pattern without a `/` matches a name
//! at any depth (`*.tmp`, `node_modules`), a pattern with a `/` is anchored at the migration's
//! root (`/build`, `docs/*.md`), `**` crosses folders, and a trailing `/` matches folders only.
//! An excluded folder is not walked at all.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use godwit_codes::Code;
use regex::bytes::RegexSet;

use crate::error::JobError;
use serde::{Deserialize, Serialize};

/// The rules of a run, compiled. Invalid rules are refused when building, before any work.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    exclude_files: Option<GlobSet>,
    exclude_dirs: Option<GlobSet>,
    include: Option<GlobSet>,
    /// The include rules are the run's part of the source (`FilterRules::scoped`).
    scoped: bool,
    /// With `scoped`: what of the tree the include rules can reach (see
    /// [`Filter::out_of_scope_dir`]); None: any folder may hold a file they select.
    scope: Option<Vec<ScopeRule>>,
    exclude_regex: Option<RegexSet>,
    min_size: Option<u64>,
    max_size: Option<u64>,
    /// Files modified after this (ns since the epoch) are too young (`--min-age`).
    newest_ns: Option<i64>,
    /// Files modified before this are too old (`--max-age`).
    oldest_ns: Option<i64>,
}

/// What a user asked for, before compiling. On the wire sizes and ages are the text people
/// write (`"10M"`, `"30d"`), so the API takes what the command line takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilterRules {
    /// Only files matching one of these globs.
    #[serde(default)]
    pub include: Vec<String>,
    /// Files and folders matching one of these globs are left out (`*.tmp`, `node_modules/`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Paths matching one of these regular expressions are left out.
    #[serde(default)]
    pub exclude_regex: Vec<String>,
    /// Only files of at least this size: `100`, `10K`, `1.5M`.
    #[serde(
        default,
        with = "crate::options::size_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 32))]
    pub min_size: Option<u64>,
    /// Only files of at most this size.
    #[serde(
        default,
        with = "crate::options::size_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 32))]
    pub max_size: Option<u64>,
    /// Only files at least this old (by modification time): `90s`, `12h`, `7d`.
    #[serde(
        default,
        with = "crate::options::age_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 32))]
    pub min_age: Option<std::time::Duration>,
    /// Only files at most this old.
    #[serde(
        default,
        with = "crate::options::age_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 32))]
    pub max_age: Option<std::time::Duration>,
    /// Globs and regular expressions match without regard to case.
    #[serde(default)]
    pub ignore_case: bool,
    /// The include rules are this run's part of the source (a work unit of a pool's copy):
    /// folders they cannot reach are not walked, and files outside them are none of the run's
    /// business rather than left out (AZSM2001).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scoped: bool,
}

/// What one anchored include rule can reach: the folders of its literal beginning, and how
/// deep below them (None: any depth, the rule has `**`).
#[derive(Debug, Clone)]
struct ScopeRule {
    prefix: Vec<Vec<u8>>,
    depth: Option<usize>,
}

impl ScopeRule {
    /// None for a rule that may match at any place (unanchored, or a glob from its start).
    fn of(pattern: &str) -> Option<ScopeRule> {
        let body = pattern.trim_end_matches('/');
        if !(body.starts_with('/') || body.contains('/')) {
            return None;
        }
        let parts: Vec<&str> = body.trim_start_matches('/').split('/').collect();
        let mut prefix = Vec::new();
        // The last part names the files; the folders before it, while they are literal.
        while prefix.len() + 1 < parts.len() {
            match literal(parts[prefix.len()]) {
                Some(name) => prefix.push(name),
                None => break,
            }
        }
        let rest = &parts[prefix.len()..];
        let depth = if rest.iter().any(|p| p.contains("**")) {
            None
        } else {
            Some(rest.len() - 1)
        };
        Some(ScopeRule { prefix, depth })
    }

    /// Whether a file the rule matches may be in or below folder `dir` (its parts).
    fn may_hold(&self, dir: &[&[u8]]) -> bool {
        let n = self.prefix.len();
        if dir.len() <= n {
            return dir
                .iter()
                .zip(&self.prefix)
                .all(|(a, b)| *a == b.as_slice());
        }
        dir[..n]
            .iter()
            .zip(&self.prefix)
            .all(|(a, b)| *a == b.as_slice())
            && self.depth.is_none_or(|k| dir.len() - n <= k)
    }
}

/// The name a glob's part stands for, if it is literal (no unescaped `*`, `?`, `[`, `{`).
fn literal(part: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(part.len());
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let mut buf = [0; 4];
                out.extend_from_slice(chars.next()?.encode_utf8(&mut buf).as_bytes());
            }
            '*' | '?' | '[' | '{' => return None,
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Some(out)
}

impl FilterRules {
    /// Adds the exclude globs of `path`, one a line; blank lines and lines starting with `#`
    /// are left out (the format of rclone's `--exclude-from` and of .gitignore).
    pub fn exclude_from(&mut self, path: &std::path::Path) -> Result<(), JobError> {
        let shown = path.display().to_string();
        let text = std::fs::read(path).map_err(|e| {
            JobError::new(
                Code::ERR_FILTER_PATTERN,
                &[
                    ("pattern", &format!("--exclude-from {shown}")),
                    ("reason", &crate::error::reason(&e)),
                ],
            )
        })?;
        let text = String::from_utf8(text).map_err(|_| {
            JobError::new(
                Code::ERR_FILTER_PATTERN,
                &[
                    ("pattern", &format!("--exclude-from {shown}")),
                    ("reason", "the file is not UTF-8 text"),
                ],
            )
        })?;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            self.exclude.push(line.to_string());
        }
        Ok(())
    }
}

/// A size as people write it: `100`, `10K`, `1.5M`, `2G`, `1T` (powers of 1024, an optional
/// trailing `B` or `iB`). Errors are 634 with the reason.
pub fn parse_size(option: &str, text: &str) -> Result<u64, JobError> {
    let invalid = |reason: &str| {
        JobError::new(
            Code::ERR_FILTER_PATTERN,
            &[("pattern", &format!("{option} {text}")), ("reason", reason)],
        )
    };
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        "P" => 1 << 50,
        _ => return Err(invalid("the unit must be K, M, G, T or P")),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| invalid("not a number of bytes such as 100, 10K or 1.5M"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(invalid("the size must be zero or more"));
    }
    Ok((value * scale as f64).round() as u64)
}

/// An age as people write it: `90s`, `30m`, `12h`, `7d`, `2w`, `1y`, or combined (`1d 12h`).
pub fn parse_age(option: &str, text: &str) -> Result<std::time::Duration, JobError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        JobError::new(
            Code::ERR_FILTER_PATTERN,
            &[
                ("pattern", &format!("{option} {text}")),
                (
                    "reason",
                    &format!("{e} (write it as 90s, 30m, 12h, 7d or 2w)"),
                ),
            ],
        )
    })
}

impl Filter {
    /// Compiles the rules; the first invalid one is a 635 (glob) or 636 (regex) error naming the
    /// pattern and the parser's reason.
    pub fn new(rules: &FilterRules) -> Result<Self, JobError> {
        let mut files = GlobSetBuilder::new();
        let mut dirs = GlobSetBuilder::new();
        let (mut n_files, mut n_dirs) = (0, 0);
        for pattern in &rules.exclude {
            let (glob, dir_only) = compile_glob(pattern, rules.ignore_case)?;
            if !dir_only {
                files.add(glob.clone());
                n_files += 1;
            }
            dirs.add(glob);
            n_dirs += 1;
        }
        let mut include = GlobSetBuilder::new();
        for pattern in &rules.include {
            include.add(compile_glob(pattern, rules.ignore_case)?.0);
        }
        let build = |b: GlobSetBuilder, n: usize| -> Option<GlobSet> {
            // Building a set of valid globs does not fail.
            (n > 0).then(|| b.build().ok()).flatten()
        };
        let exclude_regex = if rules.exclude_regex.is_empty() {
            None
        } else {
            for pattern in &rules.exclude_regex {
                if let Err(e) = regex::bytes::Regex::new(pattern) {
                    let reason = e.to_string().replace('\n', " ");
                    return Err(JobError::new(
                        Code::ERR_FILTER_PATTERN_REGEX,
                        &[("pattern", pattern), ("reason", reason.trim())],
                    ));
                }
            }
            regex::bytes::RegexSetBuilder::new(&rules.exclude_regex)
                .case_insensitive(rules.ignore_case)
                .build()
                .ok()
        };
        // Folders are pruned by literal names: not when names match without regard to case.
        let scope = (rules.scoped && !rules.include.is_empty() && !rules.ignore_case)
            .then(|| rules.include.iter().map(|p| ScopeRule::of(p)).collect())
            .flatten();
        Ok(Filter {
            exclude_files: build(files, n_files),
            exclude_dirs: build(dirs, n_dirs),
            include: build(include, rules.include.len()),
            scoped: rules.scoped && !rules.include.is_empty(),
            scope,
            exclude_regex,
            min_size: rules.min_size,
            max_size: rules.max_size,
            newest_ns: rules.min_age.map(|age| now_ns().saturating_sub(nanos(age))),
            oldest_ns: rules.max_age.map(|age| now_ns().saturating_sub(nanos(age))),
        })
    }

    /// Only the run's part of the tree (its scoped include rules; everything when it has
    /// none), for listing the target: the other rules judge the source's files.
    pub fn scope_only(&self) -> Filter {
        if !self.scoped {
            return Filter::default();
        }
        Filter {
            include: self.include.clone(),
            scoped: true,
            scope: self.scope.clone(),
            ..Filter::default()
        }
    }

    /// With `scoped` include rules: the folders their files are all below (each as a path
    /// with a trailing `/`; empty: the whole tree). None when a rule may match anywhere (not
    /// scoped, or unanchored): the whole tree.
    pub fn scope_prefixes(&self) -> Option<Vec<Vec<u8>>> {
        let rules = self.scope.as_ref()?;
        Some(
            rules
                .iter()
                .map(|r| {
                    let mut p = r.prefix.join(&b'/');
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p
                })
                .collect(),
        )
    }

    /// With `scoped` include rules: whether the file at `path` is outside them, none of this
    /// run's business (not recorded at all).
    pub fn out_of_scope_file(&self, path: &[u8]) -> bool {
        self.scoped
            && self
                .include
                .as_ref()
                .is_some_and(|s| !s.is_match(String::from_utf8_lossy(path).as_ref()))
    }

    /// With `scoped` include rules: whether no file they select can be in or below the folder
    /// at `path`, so it is not walked (and not reported as excluded).
    pub fn out_of_scope_dir(&self, path: &[u8]) -> bool {
        let Some(rules) = &self.scope else {
            return false;
        };
        let parts: Vec<&[u8]> = if path.is_empty() {
            Vec::new()
        } else {
            path.split(|b| *b == b'/').collect()
        };
        !rules.iter().any(|r| r.may_hold(&parts))
    }

    /// Whether the folder at `path` (relative, `/`-separated) is excluded, and so not walked.
    pub fn excludes_dir(&self, path: &[u8]) -> bool {
        self.excluded_by_pattern(&self.exclude_dirs, path)
    }

    /// Whether the file at `path` of `size` bytes, modified at `mtime_ns`, is left out.
    pub fn excludes_file(&self, path: &[u8], size: u64, mtime_ns: i64) -> bool {
        let text = String::from_utf8_lossy(path);
        self.excluded_by_pattern(&self.exclude_files, path)
            || self
                .include
                .as_ref()
                .is_some_and(|s| !s.is_match(text.as_ref()))
            || self.min_size.is_some_and(|min| size < min)
            || self.max_size.is_some_and(|max| size > max)
            || self.newest_ns.is_some_and(|newest| mtime_ns > newest)
            || self.oldest_ns.is_some_and(|oldest| mtime_ns < oldest)
    }

    /// `globs` or any exclude regex matches `path`.
    fn excluded_by_pattern(&self, globs: &Option<GlobSet>, path: &[u8]) -> bool {
        globs
            .as_ref()
            .is_some_and(|s| s.is_match(String::from_utf8_lossy(path).as_ref()))
            || self
                .exclude_regex
                .as_ref()
                .is_some_and(|r| r.is_match(path))
    }
}

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, nanos)
}

/// A user's glob as a globset glob, and whether it matches folders only.
fn compile_glob(pattern: &str, ignore_case: bool) -> Result<(globset::Glob, bool), JobError> {
    let invalid = |reason: &str| {
        JobError::new(
            Code::ERR_FILTER_PATTERN_GLOB,
            &[("pattern", pattern), ("reason", reason)],
        )
    };
    let dir_only = pattern.ends_with('/');
    let body = pattern.trim_end_matches('/');
    if body.is_empty() || body == "/" {
        return Err(invalid("it matches nothing"));
    }
    let anchored = body.starts_with('/') || body.contains('/');
    let body = body.trim_start_matches('/');
    let full = if anchored || body.starts_with("**") {
        body.to_string()
    } else {
        format!("**/{body}")
    };
    let glob = GlobBuilder::new(&full)
        .literal_separator(true)
        .backslash_escape(true)
        .empty_alternates(true)
        .case_insensitive(ignore_case)
        .build()
        .map_err(|e| invalid(&e.kind().to_string()))?;
    Ok((glob, dir_only))
}

/// A job's include rules as one text, whatever their order: sorted, each once, one a line;
/// empty when there are none. A plan's jobs share their source and target and differ in these
/// rules, so the engine puts them in a migration's id and the control plane in what makes a
/// migration unique.
pub fn scope_of(include: &[String]) -> String {
    let mut rules: Vec<&str> = include.iter().map(String::as_str).collect();
    rules.sort_unstable();
    rules.dedup();
    rules.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(exclude: &[&str]) -> Filter {
        Filter::new(&FilterRules {
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn unanchored_patterns_match_at_any_depth() {
        let f = filter(&["*.tmp", "node_modules"]);
        assert!(f.excludes_file(b"a.tmp", 1, 0));
        assert!(f.excludes_file(b"x/y/a.tmp", 1, 0));
        assert!(!f.excludes_file(b"x/a.tmpx", 1, 0));
        assert!(f.excludes_dir(b"x/node_modules"));
        assert!(!f.excludes_dir(b"x/node_modules_old"));
    }

    #[test]
    fn anchored_patterns_match_from_the_root() {
        let f = filter(&["/build", "docs/*.md"]);
        assert!(f.excludes_dir(b"build"));
        assert!(!f.excludes_dir(b"src/build"));
        assert!(f.excludes_file(b"docs/a.md", 1, 0));
        assert!(
            !f.excludes_file(b"docs/sub/a.md", 1, 0),
            "* does not cross folders"
        );
        assert!(!f.excludes_file(b"x/docs/a.md", 1, 0));
    }

    #[test]
    fn double_star_and_folder_only_patterns() {
        let f = filter(&["**/cache/**", "logs/"]);
        assert!(f.excludes_file(b"a/cache/b/c", 1, 0));
        assert!(f.excludes_dir(b"logs"));
        assert!(f.excludes_dir(b"x/logs"));
        assert!(
            !f.excludes_file(b"logs", 1, 0),
            "a file called logs is kept"
        );
    }

    #[test]
    fn includes_sizes_and_regexes() {
        let f = Filter::new(&FilterRules {
            include: vec!["*.jpg".into()],
            exclude_regex: vec!["^private/".into()],
            min_size: Some(10),
            ..Default::default()
        })
        .unwrap();
        assert!(!f.excludes_file(b"a/b.jpg", 10, 0));
        assert!(f.excludes_file(b"a/b.png", 10, 0));
        assert!(f.excludes_file(b"a/b.jpg", 9, 0));
        assert!(f.excludes_file(b"private/b.jpg", 100, 0));
        assert!(f.excludes_dir(b"private/x"));
    }

    #[test]
    fn case_matters_unless_told_otherwise() {
        let f = filter(&["*.JPG", "/Build/"]);
        assert!(f.excludes_file(b"a/b.JPG", 1, 0));
        assert!(!f.excludes_file(b"a/b.jpg", 1, 0));
        assert!(!f.excludes_dir(b"build"));
        let f = Filter::new(&FilterRules {
            exclude: vec!["*.JPG".into(), "/Build/".into()],
            exclude_regex: vec!["^TMP/".into()],
            ignore_case: true,
            ..Default::default()
        })
        .unwrap();
        assert!(f.excludes_file(b"a/b.jpg", 1, 0));
        assert!(f.excludes_dir(b"build"));
        assert!(f.excludes_file(b"tmp/x", 1, 0));
    }

    #[test]
    fn a_folder_pattern_leaves_files_of_that_name_and_the_others_take_both() {
        let f = filter(&["cache/", "*.bak", "docs/**"]);
        assert!(f.excludes_dir(b"x/cache"));
        assert!(!f.excludes_file(b"x/cache", 1, 0));
        assert!(
            f.excludes_dir(b"old.bak"),
            "a folder named like a file pattern is left out"
        );
        assert!(f.excludes_file(b"old.bak", 1, 0));
        assert!(f.excludes_file(b"docs/a/b.txt", 1, 0));
        assert!(
            !f.excludes_file(b"x/docs/a.txt", 1, 0),
            "anchored: only at the root"
        );
        // `**` in the middle matches zero or more folders.
        let f = filter(&["src/**/gen/*.rs"]);
        assert!(f.excludes_file(b"src/gen/a.rs", 1, 0));
        assert!(f.excludes_file(b"src/x/y/gen/a.rs", 1, 0));
        assert!(!f.excludes_file(b"src/x/gen/sub/a.rs", 1, 0));
    }

    #[test]
    fn ages_compare_modification_times() {
        let hour = std::time::Duration::from_secs(3600);
        let f = Filter::new(&FilterRules {
            min_age: Some(hour),
            max_age: Some(hour * 48),
            ..Default::default()
        })
        .unwrap();
        let now = now_ns();
        let h = 3_600_000_000_000i64;
        assert!(f.excludes_file(b"new", 1, now - h / 2), "too young");
        assert!(!f.excludes_file(b"ok", 1, now - 2 * h));
        assert!(f.excludes_file(b"old", 1, now - 72 * h), "too old");
    }

    #[test]
    fn sizes_and_ages_parse_as_people_write_them() {
        assert_eq!(parse_size("--min-size", "100").unwrap(), 100);
        assert_eq!(parse_size("--min-size", "10K").unwrap(), 10 << 10);
        assert_eq!(parse_size("--min-size", "1.5M").unwrap(), 3 << 19);
        assert_eq!(parse_size("--min-size", "2GiB").unwrap(), 2 << 30);
        let e = parse_size("--max-size", "ten").unwrap_err();
        assert_eq!(e.code, Code::ERR_FILTER_PATTERN);
        assert!(e.message.contains("--max-size ten"), "{}", e.message);
        assert_eq!(parse_age("--min-age", "7d").unwrap().as_secs(), 7 * 86400);
        assert_eq!(
            parse_age("--min-age", "1d 12h").unwrap().as_secs(),
            36 * 3600
        );
        assert_eq!(
            parse_age("--max-age", "soon").unwrap_err().code,
            Code::ERR_FILTER_PATTERN
        );
    }

    #[test]
    fn exclude_from_reads_globs_and_skips_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules");
        std::fs::write(&path, "# build output\n\n*.o\r\nnode_modules/\n").unwrap();
        let mut rules = FilterRules::default();
        rules.exclude_from(&path).unwrap();
        assert_eq!(rules.exclude, ["*.o", "node_modules/"]);
        let e = rules.exclude_from(&dir.path().join("missing")).unwrap_err();
        assert_eq!(e.code, Code::ERR_FILTER_PATTERN);
    }

    #[test]
    fn invalid_patterns_are_refused_with_their_code_and_reason() {
        let e = Filter::new(&FilterRules {
            exclude: vec!["a[b".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.code, Code::ERR_FILTER_PATTERN_GLOB);
        assert!(
            e.message.contains("a[b") && e.message.contains("unclosed"),
            "{}",
            e.message
        );
        let e = Filter::new(&FilterRules {
            exclude_regex: vec!["(x".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.code, Code::ERR_FILTER_PATTERN_REGEX);
        assert!(e.message.contains("(x"), "{}", e.message);
    }

    #[test]
    fn scoped_include_rules_prune_the_folders_they_cannot_reach() {
        let scoped = |include: &[&str]| {
            Filter::new(&FilterRules {
                include: include.iter().map(|s| s.to_string()).collect(),
                scoped: true,
                ..Default::default()
            })
            .unwrap()
        };
        // A unit of two folder trees and the files directly in a third.
        let f = scoped(&["a/b/**", "c/**", "d/*"]);
        for walked in ["", "a", "a/b", "a/b/x/y", "c", "c/z", "d"] {
            assert!(!f.out_of_scope_dir(walked.as_bytes()), "{walked}");
        }
        for pruned in ["a/other", "b", "d/sub", "e", "ab"] {
            assert!(f.out_of_scope_dir(pruned.as_bytes()), "{pruned}");
        }
        assert!(!f.out_of_scope_file(b"a/b/x/file"));
        assert!(!f.out_of_scope_file(b"d/file"));
        assert!(f.out_of_scope_file(b"d/sub/file"));
        assert!(f.out_of_scope_file(b"top-level-file"));
        // Where a unit's rows of the index are: below these folders.
        let prefixes: Vec<&[u8]> = vec![b"a/b/", b"c/", b"d/"];
        assert_eq!(f.scope_prefixes().unwrap(), prefixes);
        assert_eq!(
            scoped(&["/*"]).scope_prefixes().unwrap(),
            vec![Vec::<u8>::new()]
        );
        assert_eq!(scoped(&["**"]).scope_prefixes(), None);
        // The files at the source folder only (split::include_rule's "/*").
        let top = scoped(&["/*"]);
        assert!(!top.out_of_scope_dir(b""));
        assert!(top.out_of_scope_dir(b"a"));
        assert!(!top.out_of_scope_file(b"file"));
        // Escaped names are literal: a folder named "x*" is walked, "xy" is not.
        let escaped = scoped(&[&crate::split::include_rule(
            "x*",
            crate::split::Piece::Tree(0),
        )]);
        assert!(!escaped.out_of_scope_dir(b"x*"));
        assert!(escaped.out_of_scope_dir(b"xy"));
        // Unanchored rules may match anywhere: nothing is pruned; unscoped rules prune nothing.
        assert!(!scoped(&["*.txt"]).out_of_scope_dir(b"any/where"));
        let plain = Filter::new(&FilterRules {
            include: vec!["a/**".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(!plain.out_of_scope_dir(b"b"));
        assert!(!plain.out_of_scope_file(b"b/file"));
    }
}
