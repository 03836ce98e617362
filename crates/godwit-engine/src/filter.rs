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

/// The rules of a run, compiled. Invalid rules are refused when building, before any work.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    exclude_files: Option<GlobSet>,
    exclude_dirs: Option<GlobSet>,
    include: Option<GlobSet>,
    exclude_regex: Option<RegexSet>,
    min_size: Option<u64>,
    max_size: Option<u64>,
}

/// What a user asked for, before compiling.
#[derive(Debug, Clone, Default)]
pub struct FilterRules {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub exclude_regex: Vec<String>,
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
}

impl Filter {
    /// Compiles the rules; the first invalid one is a 635 (glob) or 636 (regex) error naming the
    /// pattern and the parser's reason.
    pub fn new(rules: &FilterRules) -> Result<Self, JobError> {
        let mut files = GlobSetBuilder::new();
        let mut dirs = GlobSetBuilder::new();
        let (mut n_files, mut n_dirs) = (0, 0);
        for pattern in &rules.exclude {
            let (glob, dir_only) = compile_glob(pattern)?;
            if !dir_only {
                files.add(glob.clone());
                n_files += 1;
            }
            dirs.add(glob);
            n_dirs += 1;
        }
        let mut include = GlobSetBuilder::new();
        for pattern in &rules.include {
            include.add(compile_glob(pattern)?.0);
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
            RegexSet::new(&rules.exclude_regex).ok()
        };
        Ok(Filter {
            exclude_files: build(files, n_files),
            exclude_dirs: build(dirs, n_dirs),
            include: build(include, rules.include.len()),
            exclude_regex,
            min_size: rules.min_size,
            max_size: rules.max_size,
        })
    }

    /// Whether the folder at `path` (relative, `/`-separated) is excluded, and so not walked.
    pub fn excludes_dir(&self, path: &[u8]) -> bool {
        self.excluded_by_pattern(&self.exclude_dirs, path)
    }

    /// Whether the file at `path` of `size` bytes is left out.
    pub fn excludes_file(&self, path: &[u8], size: u64) -> bool {
        let text = String::from_utf8_lossy(path);
        self.excluded_by_pattern(&self.exclude_files, path)
            || self
                .include
                .as_ref()
                .is_some_and(|s| !s.is_match(text.as_ref()))
            || self.min_size.is_some_and(|min| size < min)
            || self.max_size.is_some_and(|max| size > max)
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

/// A user's glob as a globset glob, and whether it matches folders only.
fn compile_glob(pattern: &str) -> Result<(globset::Glob, bool), JobError> {
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
        .build()
        .map_err(|e| invalid(&e.kind().to_string()))?;
    Ok((glob, dir_only))
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
        assert!(f.excludes_file(b"a.tmp", 1));
        assert!(f.excludes_file(b"x/y/a.tmp", 1));
        assert!(!f.excludes_file(b"x/a.tmpx", 1));
        assert!(f.excludes_dir(b"x/node_modules"));
        assert!(!f.excludes_dir(b"x/node_modules_old"));
    }

    #[test]
    fn anchored_patterns_match_from_the_root() {
        let f = filter(&["/build", "docs/*.md"]);
        assert!(f.excludes_dir(b"build"));
        assert!(!f.excludes_dir(b"src/build"));
        assert!(f.excludes_file(b"docs/a.md", 1));
        assert!(
            !f.excludes_file(b"docs/sub/a.md", 1),
            "* does not cross folders"
        );
        assert!(!f.excludes_file(b"x/docs/a.md", 1));
    }

    #[test]
    fn double_star_and_folder_only_patterns() {
        let f = filter(&["**/cache/**", "logs/"]);
        assert!(f.excludes_file(b"a/cache/b/c", 1));
        assert!(f.excludes_dir(b"logs"));
        assert!(f.excludes_dir(b"x/logs"));
        assert!(!f.excludes_file(b"logs", 1), "a file called logs is kept");
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
        assert!(!f.excludes_file(b"a/b.jpg", 10));
        assert!(f.excludes_file(b"a/b.png", 10));
        assert!(f.excludes_file(b"a/b.jpg", 9));
        assert!(f.excludes_file(b"private/b.jpg", 100));
        assert!(f.excludes_dir(b"private/x"));
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
}
