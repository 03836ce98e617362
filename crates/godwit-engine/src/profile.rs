//! Target profiles: what a name, a path and a file may be on each kind of target. Checked during
//! scan and before each copy, so that a file the target cannot hold gets its AZSM202x code
//! instead of an error from the store.

use godwit_codes::Code;

/// The rules of one kind of target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetProfile {
    /// `s3`, `azure-blob`, `sftp`, `posix` or `windows`.
    pub name: &'static str,
    /// Names must be valid UTF-8 (object stores and SFTP through OpenDAL address by string).
    utf8: bool,
    /// Characters no name may contain, besides `/` and NUL.
    forbidden: &'static [char],
    /// Control characters (U+0000-U+001F, U+007F) are refused.
    no_control: bool,
    /// Windows rules: no trailing dot or space, no reserved device names.
    windows_names: bool,
    /// A name may not end in a dot (Azure Blob).
    no_trailing_dot: bool,
    /// Longest single name, in bytes.
    pub max_component: usize,
    /// Longest path from the migration root, in bytes.
    pub max_path: usize,
    /// Deepest folder nesting.
    pub max_depth: usize,
    /// Largest file, in bytes.
    pub max_file_size: u64,
}

const TIB: u64 = 1 << 40;

impl TargetProfile {
    /// Every profile, by name.
    pub const ALL: &[TargetProfile] = &[
        TargetProfile {
            name: "s3",
            utf8: true,
            forbidden: &[],
            no_control: true,
            windows_names: false,
            no_trailing_dot: false,
            // An object key is at most 1,024 bytes; a single part of it is bounded only by that.
            max_component: 1024,
            max_path: 1024,
            max_depth: usize::MAX,
            max_file_size: 5 * TIB,
        },
        TargetProfile {
            name: "azure-blob",
            utf8: true,
            forbidden: &['\\'],
            no_control: true,
            windows_names: false,
            no_trailing_dot: true,
            max_component: 1024,
            max_path: 1024,
            // A blob name has at most 254 path segments.
            max_depth: 253,
            max_file_size: 190 * TIB,
        },
        TargetProfile {
            name: "sftp",
            utf8: true,
            forbidden: &[],
            no_control: false,
            windows_names: false,
            no_trailing_dot: false,
            max_component: 255,
            max_path: 4095,
            max_depth: usize::MAX,
            max_file_size: u64::MAX,
        },
        TargetProfile {
            name: "posix",
            utf8: false,
            forbidden: &[],
            no_control: false,
            windows_names: false,
            no_trailing_dot: false,
            max_component: 255,
            max_path: 4095,
            max_depth: usize::MAX,
            max_file_size: u64::MAX,
        },
        TargetProfile {
            name: "windows",
            utf8: true,
            forbidden: &['<', '>', ':', '"', '\\', '|', '?', '*'],
            no_control: true,
            windows_names: true,
            no_trailing_dot: false,
            max_component: 255,
            // The classic MAX_PATH that many Windows tools still enforce.
            max_path: 259,
            max_depth: usize::MAX,
            max_file_size: 16 * TIB,
        },
    ];

    /// The profile called `name`.
    pub fn by_name(name: &str) -> Option<TargetProfile> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The profile for a target location's kind.
    pub fn for_kind(kind: godwit_spec::StoreKind) -> TargetProfile {
        Self::named(godwit_spec::ProfileName::for_kind(kind))
    }

    /// The profile `name` names (every name has one).
    pub fn named(name: godwit_spec::ProfileName) -> TargetProfile {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.name == name.as_str())
            .unwrap_or(Self::ALL[0])
    }

    /// The profile a job's options ask for, else the one of the target's kind.
    pub fn chosen(name: Option<godwit_spec::ProfileName>, kind: godwit_spec::StoreKind) -> Self {
        name.map_or_else(|| Self::for_kind(kind), Self::named)
    }

    /// The first rule `path` (relative, `/`-separated bytes) breaks, with the detail to report.
    /// Checked in the catalog's order: characters, name length, path length, depth. Size is
    /// checked separately with [`TargetProfile::check_size`].
    pub fn check_path(&self, path: &[u8]) -> Option<(Code, Problem)> {
        let text = std::str::from_utf8(path).ok();
        if self.utf8 && text.is_none() {
            return Some((
                Code::AZSM2022,
                Problem::Chars("bytes that are not UTF-8".into()),
            ));
        }
        for component in path.split(|b| *b == b'/') {
            if let Some(bad) = self.bad_chars(component) {
                return Some((Code::AZSM2022, Problem::Chars(bad)));
            }
        }
        if let Some(c) = path
            .split(|b| *b == b'/')
            .find(|c| c.len() > self.max_component)
        {
            return Some((
                Code::AZSM2023,
                Problem::Length {
                    length: c.len(),
                    limit: self.max_component,
                },
            ));
        }
        if path.len() > self.max_path {
            return Some((
                Code::AZSM2024,
                Problem::Length {
                    length: path.len(),
                    limit: self.max_path,
                },
            ));
        }
        let depth = path.iter().filter(|b| **b == b'/').count();
        if depth > self.max_depth {
            return Some((
                Code::AZSM2025,
                Problem::Length {
                    length: depth,
                    limit: self.max_depth,
                },
            ));
        }
        None
    }

    /// AZSM2026 when a file of `size` bytes is larger than the target holds.
    pub fn check_size(&self, size: u64) -> Option<(Code, Problem)> {
        (size > self.max_file_size).then_some((
            Code::AZSM2026,
            Problem::Size {
                size,
                limit: self.max_file_size,
            },
        ))
    }

    fn bad_chars(&self, name: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(name);
        let mut bad: Vec<String> = Vec::new();
        for c in text.chars() {
            let is_bad =
                self.forbidden.contains(&c) || (self.no_control && (c < ' ' || c == '\u{7f}'));
            let shown = if c.is_control() {
                format!("U+{:04X}", c as u32)
            } else {
                c.to_string()
            };
            if is_bad && !bad.contains(&shown) {
                bad.push(shown);
            }
        }
        if !bad.is_empty() {
            return Some(bad.join(" "));
        }
        if self.no_trailing_dot && text.ends_with('.') {
            return Some("a trailing dot".into());
        }
        if self.windows_names {
            if text.ends_with('.') || text.ends_with(' ') {
                return Some("a trailing dot or space".into());
            }
            let stem = text.split('.').next().unwrap_or("").to_ascii_uppercase();
            let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
                || ((stem.starts_with("COM") || stem.starts_with("LPT"))
                    && stem.len() == 4
                    && stem.as_bytes()[3].is_ascii_digit()
                    && stem.as_bytes()[3] != b'0');
            if reserved {
                return Some(format!("the reserved name {stem}"));
            }
        }
        None
    }
}

impl TargetProfile {
    /// `path` with every name this target cannot hold replaced by one it can, or None when the
    /// path is fine as it is. Deterministic: a character the target refuses becomes `_`, bytes
    /// that are not UTF-8 become `_`, a trailing dot or space becomes `_`, a reserved Windows
    /// name gets a leading `_`, and a name too long is shortened keeping its extension. Path
    /// length and depth cannot be fixed by renaming one name, and are left to `check_path`.
    pub fn sanitize_path(&self, path: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(path.len());
        let mut changed = false;
        for (i, component) in path.split(|b| *b == b'/').enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            let clean = self.sanitize_name(component);
            changed |= clean != component;
            out.extend_from_slice(&clean);
        }
        changed.then_some(out)
    }

    /// One name, made acceptable to this target (itself when it already is).
    pub fn sanitize_name(&self, name: &[u8]) -> Vec<u8> {
        if self.bad_chars(name).is_none()
            && name.len() <= self.max_component
            && (!self.utf8 || std::str::from_utf8(name).is_ok())
        {
            return name.to_vec();
        }
        let mut text = String::new();
        for chunk in name.utf8_chunks() {
            for c in chunk.valid().chars() {
                let bad =
                    self.forbidden.contains(&c) || (self.no_control && (c < ' ' || c == '\u{7f}'));
                text.push(if bad { '_' } else { c });
            }
            if !chunk.invalid().is_empty() {
                text.push('_');
            }
        }
        if (self.windows_names || self.no_trailing_dot)
            && (text.ends_with('.') || (self.windows_names && text.ends_with(' ')))
        {
            text.pop();
            text.push('_');
        }
        if self.windows_names && self.bad_chars(text.as_bytes()).is_some() {
            // What is left is a reserved device name.
            text.insert(0, '_');
        }
        shorten(&text, "", self.max_component).into_bytes()
    }

    /// `name` with `tag` added before its extension, shortened to fit: how two names that
    /// sanitize to one are told apart.
    pub fn with_tag(&self, name: &[u8], tag: &str) -> Vec<u8> {
        let text = String::from_utf8_lossy(name);
        shorten(&text, &format!("~{tag}"), self.max_component).into_bytes()
    }
}

/// `name` with `tag` before its extension, cut (at a character boundary, keeping the
/// extension) to at most `max` bytes.
fn shorten(name: &str, tag: &str, max: usize) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 => name.split_at(i),
        _ => (name, ""),
    };
    let room = max.saturating_sub(tag.len() + ext.len());
    let mut cut = stem.len().min(room);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{tag}{ext}", &stem[..cut])
}

/// What exactly broke a rule, for the message of the copy-log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The characters that are not allowed.
    Chars(String),
    /// A length or depth over its limit.
    Length { length: usize, limit: usize },
    /// A size over its limit.
    Size { size: u64, limit: u64 },
}

impl Problem {
    /// The message parameters for the code's template.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            Problem::Chars(c) => vec![("chars", c.clone())],
            Problem::Length { length, limit } => vec![
                ("length", length.to_string()),
                ("depth", length.to_string()),
                ("limit", limit.to_string()),
            ],
            Problem::Size { size, limit } => {
                vec![("size", size.to_string()), ("limit", limit.to_string())]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> TargetProfile {
        TargetProfile::by_name(name).unwrap()
    }

    #[test]
    fn each_rule_has_its_code() {
        assert_eq!(
            p("windows").check_path(b"a/b?.txt").unwrap().0,
            Code::AZSM2022
        );
        assert_eq!(
            p("windows").check_path(b"a/CON.txt").unwrap().0,
            Code::AZSM2022
        );
        assert_eq!(p("windows").check_path(b"a/COM10.txt"), None);
        assert_eq!(p("s3").check_path(b"a/b\xff").unwrap().0, Code::AZSM2022);
        assert_eq!(p("posix").check_path(b"a/b\xff"), None);
        assert_eq!(
            p("s3").check_path(b"line\nbreak").unwrap().0,
            Code::AZSM2022
        );
        assert_eq!(p("posix").check_path(b"line\nbreak"), None);
        let long = vec![b'x'; 256];
        assert_eq!(p("posix").check_path(&long).unwrap().0, Code::AZSM2023);
        let deep = "d/".repeat(300) + "f";
        assert_eq!(
            p("azure-blob").check_path(deep.as_bytes()).unwrap().0,
            Code::AZSM2025
        );
        let path = "abcdefghij/".repeat(120);
        assert_eq!(
            p("s3").check_path(path.as_bytes()).unwrap().0,
            Code::AZSM2024
        );
        assert_eq!(p("s3").check_size(6 * TIB).unwrap().0, Code::AZSM2026);
        assert_eq!(p("s3").check_size(1), None);
    }

    #[test]
    fn sanitized_names_pass_their_profile_and_keep_the_extension() {
        let w = p("windows");
        assert_eq!(w.sanitize_path(b"ok/fine.txt"), None);
        assert_eq!(w.sanitize_path(b"a:b/c?d.txt").unwrap(), b"a_b/c_d.txt");
        assert_eq!(w.sanitize_path(b"CON.txt").unwrap(), b"_CON.txt");
        assert_eq!(w.sanitize_path(b"trailing.").unwrap(), b"trailing_");
        assert_eq!(
            p("s3").sanitize_path(b"bad\xffname.doc").unwrap(),
            b"bad_name.doc"
        );
        assert_eq!(p("s3").sanitize_path(b"tab\there").unwrap(), b"tab_here");
        let long = format!("{}.pdf", "x".repeat(300));
        let short = p("posix").sanitize_path(long.as_bytes()).unwrap();
        assert_eq!(short.len(), 255);
        assert!(short.ends_with(b".pdf"));
        for name in [&b"a:b?.txt"[..], b"CON", b"x.", long.as_bytes()] {
            let clean = w.sanitize_path(name).unwrap_or_else(|| name.to_vec());
            assert_eq!(
                w.check_path(&clean),
                None,
                "{}",
                String::from_utf8_lossy(&clean)
            );
        }
        assert_eq!(w.with_tag(b"a_b.txt", "1f2e3d"), b"a_b~1f2e3d.txt");
    }

    #[test]
    fn problems_fill_the_message() {
        let (code, problem) = p("windows").check_path(b"x|y").unwrap();
        let params = problem.params();
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut all = vec![("path", "x|y")];
        all.extend(params);
        assert_eq!(
            code.render(&all),
            "x|y: the name has characters the target does not allow (|)."
        );
    }
}
