//! Reads `codes.toml`, checks it, and writes the Rust catalog into `$OUT_DIR/catalog.rs`.
//!
//! Every rule a catalog entry must obey is checked here, at build time, so that a typo in the
//! data file is a compile error with the entry named rather than a surprise at run time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Deserialize;

#[path = "src/fold.rs"]
mod fold;
use fold::fold as normalise;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalog {
    command: Vec<Command>,
    code: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Command {
    key: String,
    seed: String,
    title: String,
    cli: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    code: String,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    scope: String,
    kind: String,
    command: Option<String>,
    state: Option<String>,
    http: Option<u16>,
    #[serde(default)]
    retryable: bool,
    #[serde(default)]
    reserved: bool,
    duplicate_of: Option<String>,
    origin: Option<String>,
    message: String,
    description: String,
    remediation: String,
}

const SCOPES: &[(&str, &str)] = &[
    ("agent", "Agent"),
    ("job", "Job"),
    ("file", "File"),
    ("control-plane", "ControlPlane"),
    ("api", "Api"),
];
const KINDS: &[(&str, &str)] = &[
    ("status", "Status"),
    ("error", "Error"),
    ("success", "Success"),
];
const STATES: &[(&str, &str)] = &[
    ("CREATED", "Created"),
    ("QUEUED", "Queued"),
    ("RUNNING", "Running"),
    ("STOPPING", "Stopping"),
    ("STOPPED", "Stopped"),
    ("PAUSED", "Paused"),
    ("SUSPENDED", "Suspended"),
    ("SUCCEEDED", "Succeeded"),
    ("FAILED", "Failed"),
    ("SKIPPED", "Skipped"),
];
const ORIGINS: &[(&str, &str)] = &[
    ("seed-000", "Seed000"),
    ("seed-001", "Seed001"),
    ("seed-004", "Seed004"),
    ("godwit", "Godwit"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let source = manifest.join("codes.toml");
    println!("cargo::rerun-if-changed={}", source.display());
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/fold.rs");

    let text = std::fs::read_to_string(&source).expect("read codes.toml");
    let catalog: Catalog = match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => fail(&format!("codes.toml does not parse: {e}")),
    };
    let rust = generate(&catalog);
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("catalog.rs");
    std::fs::write(out, rust).expect("write catalog.rs");
}

fn fail(msg: &str) -> ! {
    // `cargo::error` shows the message without a backtrace of the build script.
    println!("cargo::error=codes.toml: {msg}");
    std::process::exit(1)
}

/// The namespace and number of a code as written in the data file.
fn parse_id(id: &str) -> Option<(&'static str, &'static str, u32)> {
    let digits = |s: &str, len: Option<usize>| {
        (!s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && len.is_none_or(|l| s.len() == l)
            && (s == "0" || !s.starts_with('0')))
        .then(|| s.parse::<u32>().ok())
        .flatten()
    };
    if let Some(rest) = id.strip_prefix("AZSM") {
        // AZSM codes keep their leading zeros: AZSM0001.
        (rest.len() == 4 && rest.bytes().all(|b| b.is_ascii_digit()))
            .then(|| ("azsm", "Azsm", rest.parse().expect("four digits")))
    } else if let Some(rest) = id.strip_prefix("HTTP") {
        digits(rest, Some(3)).map(|n| ("http", "Http", n))
    } else {
        digits(id, None).map(|n| ("app", "App", n))
    }
}

fn variant<'a>(table: &'a [(&str, &'a str)], value: &str, what: &str, code: &str) -> &'a str {
    table
        .iter()
        .find(|(k, _)| *k == value)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| {
            let allowed: Vec<_> = table.iter().map(|(k, _)| *k).collect();
            fail(&format!(
                "{code}: {what} `{value}` is not one of {allowed:?}"
            ))
        })
}

/// The `{name}` parameters of a message template, in order of first appearance.
fn template_params(code: &str, template: &str) -> Vec<String> {
    let mut params = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            fail(&format!("{code}: message has a `}}` without its `{{`"));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .unwrap_or_else(|| fail(&format!("{code}: message has a `{{` without its `}}`")));
        let name = &after[..close];
        let valid = !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            fail(&format!(
                "{code}: message parameter `{{{name}}}` must be snake_case"
            ));
        }
        if !params.iter().any(|p| p == name) {
            params.push(name.to_string());
        }
        rest = &after[close + 1..];
    }
    params
}

fn check_prose(code: &str, field: &str, text: &str, min_len: usize) {
    let t = text.trim();
    if t.len() < min_len {
        fail(&format!(
            "{code}: {field} is missing or too short to help anyone"
        ));
    }
    if !t.ends_with(['.', ')', '`']) {
        fail(&format!(
            "{code}: {field} should be whole sentences ending in a full stop"
        ));
    }
}

fn generate(catalog: &Catalog) -> String {
    let mut commands = BTreeMap::new();
    for c in &catalog.command {
        if commands.insert(c.key.as_str(), c).is_some() {
            fail(&format!("command `{}` is listed twice", c.key));
        }
    }

    let mut ids = BTreeSet::new();
    let mut primary_names: BTreeMap<String, &str> = BTreeMap::new();
    let mut idents: BTreeMap<String, &str> = BTreeMap::new();
    let mut command_states = BTreeSet::new();
    let mut consts = String::new();
    let mut table = String::new();

    for (index, e) in catalog.code.iter().enumerate() {
        let code = e.code.as_str();
        let Some((ns, ns_variant, number)) = parse_id(code) else {
            fail(&format!(
                "`{code}` is not a code: write 652, AZSM2023 or HTTP404 (no leading zeros)"
            ))
        };
        if !ids.insert(code) {
            fail(&format!("{code} is listed twice"));
        }
        let normal = normalise(&e.name);
        let name_ok = e
            .name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '_' | ' ' | ':'));
        if normal.is_empty() || !name_ok {
            fail(&format!(
                "{code}: name `{}` must be upper case letters, digits, `_`, ` : `",
                e.name
            ));
        }
        match &e.duplicate_of {
            Some(other) => {
                let Some(orig) = catalog.code.iter().find(|o| &o.code == other) else {
                    fail(&format!(
                        "{code}: duplicate_of names {other}, which is not in the catalog"
                    ))
                };
                if orig.name != e.name {
                    fail(&format!(
                        "{code}: duplicate_of {other} but the names differ"
                    ));
                }
            }
            None => {
                if let Some(prev) = primary_names.insert(normal.clone(), code) {
                    fail(&format!(
                        "{code} and {prev} share the name `{}`: mark one duplicate_of the other",
                        e.name
                    ));
                }
            }
        }
        for alias in &e.aliases {
            if normalise(alias) == normal {
                fail(&format!("{code}: alias `{alias}` is the name itself"));
            }
        }

        let scope = variant(SCOPES, &e.scope, "scope", code);
        let kind = variant(KINDS, &e.kind, "kind", code);
        let origin_key = e.origin.as_deref().unwrap_or(match ns {
            "app" => "seed-000",
            "azsm" => "seed-001",
            _ => "seed-004",
        });
        let origin = variant(ORIGINS, origin_key, "origin", code);

        let (command, state) = match (&e.command, &e.state) {
            (None, None) => ("None".to_string(), "None".to_string()),
            (Some(c), Some(s)) => {
                if !commands.contains_key(c.as_str()) {
                    fail(&format!(
                        "{code}: command `{c}` is not in the [[command]] list"
                    ));
                }
                let st = variant(STATES, s, "state", code);
                if !command_states.insert((c.clone(), s.clone())) {
                    fail(&format!("{code}: a second code for {c} {s}"));
                }
                let expect_kind = if s == "SUCCEEDED" {
                    "success"
                } else {
                    "status"
                };
                if e.kind != expect_kind {
                    fail(&format!(
                        "{code}: a {s} command status has kind `{expect_kind}`"
                    ));
                }
                (
                    format!("Some(Command::{})", camel(c)),
                    format!("Some(State::{st})"),
                )
            }
            _ => fail(&format!("{code}: command and state go together")),
        };

        if let Some(status) = e.http
            && !(100..=599).contains(&status)
        {
            fail(&format!("{code}: http {status} is not an HTTP status"));
        }
        if ns == "http" && e.http != Some(number as u16) {
            fail(&format!(
                "{code}: an HTTP namespace entry has http = its own number"
            ));
        }
        let params = template_params(code, &e.message);
        check_prose(code, "message", &e.message, 3);
        check_prose(code, "description", &e.description, 24);
        check_prose(code, "remediation", &e.remediation, 12);
        if e.description.trim() == e.remediation.trim() {
            fail(&format!(
                "{code}: the remediation only repeats the description"
            ));
        }

        if e.duplicate_of.is_none() {
            let mut names = vec![match ns {
                "http" => format!("HTTP_{normal}"),
                _ => normal.clone(),
            }];
            if ns == "azsm" {
                names.push(code.to_string());
            }
            for ident in names {
                if let Some(prev) = idents.insert(ident.clone(), code) {
                    fail(&format!(
                        "{code} and {prev} would both be called Code::{ident}"
                    ));
                }
                let _ = writeln!(
                    consts,
                    "    #[doc = {doc:?}]\n    pub const {ident}: Code = Code({index});",
                    doc = format!("`{code}` {}", e.name)
                );
            }
        }

        let strs = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("&[{}]", items.join(", "))
        };
        let opt_str = |v: &Option<String>| match v {
            Some(s) => format!("Some({s:?})"),
            None => "None".to_string(),
        };
        let _ = writeln!(
            table,
            "    CodeInfo {{ id: {code:?}, namespace: Namespace::{ns_variant}, number: {number}, \
             name: {name:?}, aliases: {aliases}, scope: Scope::{scope}, kind: Kind::{kind}, \
             command: {command}, state: {state}, http_status: {http}, retryable: {retryable}, \
             reserved: {reserved}, duplicate_of: {dup}, origin: Origin::{origin}, \
             message: {message:?}, params: {params}, description: {description:?}, \
             remediation: {remediation:?} }},",
            name = e.name,
            aliases = strs(&e.aliases),
            http = e.http.map_or("None".into(), |h| format!("Some({h})")),
            retryable = e.retryable,
            reserved = e.reserved,
            dup = opt_str(&e.duplicate_of),
            message = e.message.trim(),
            params = strs(&params),
            description = normalise_space(&e.description),
            remediation = normalise_space(&e.remediation),
        );
    }

    let mut out = String::new();
    out.push_str("// @generated by build.rs from codes.toml. Edit codes.toml, not this.\n\n");
    out.push_str(
        "/// A command that has status codes of its own, as the catalog lists them.\n\
         #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n\
         #[non_exhaustive]\npub enum Command {\n",
    );
    for c in &catalog.command {
        let _ = writeln!(out, "    /// {}\n    {},", c.title, camel(&c.key));
    }
    out.push_str("}\n\nimpl Command {\n    /// Every command, in catalog order.\n    pub const ALL: &[Command] = &[");
    for c in &catalog.command {
        let _ = write!(out, "Command::{}, ", camel(&c.key));
    }
    out.push_str("];\n\n    /// The command's key, as in `codes.toml` and JSON output.\n    pub const fn key(self) -> &'static str {\n        match self {\n");
    for c in &catalog.command {
        let _ = writeln!(
            out,
            "            Command::{} => {:?},",
            camel(&c.key),
            c.key
        );
    }
    out.push_str("        }\n    }\n\n    /// The name the seed documents give the command.\n    pub const fn seed_name(self) -> &'static str {\n        match self {\n");
    for c in &catalog.command {
        let _ = writeln!(
            out,
            "            Command::{} => {:?},",
            camel(&c.key),
            c.seed
        );
    }
    out.push_str("        }\n    }\n\n    /// A title for people.\n    pub const fn title(self) -> &'static str {\n        match self {\n");
    for c in &catalog.command {
        let _ = writeln!(
            out,
            "            Command::{} => {:?},",
            camel(&c.key),
            c.title
        );
    }
    out.push_str("        }\n    }\n\n    /// The `godwit` subcommand that runs it, where there is one.\n    pub const fn cli(self) -> Option<&'static str> {\n        match self {\n");
    for c in &catalog.command {
        let cli = c
            .cli
            .as_ref()
            .map_or("None".into(), |s| format!("Some({s:?})"));
        let _ = writeln!(out, "            Command::{} => {cli},", camel(&c.key));
    }
    out.push_str("        }\n    }\n}\n\n");
    out.push_str("/// Every entry of the catalog, in the order of `codes.toml`.\npub static CATALOG: &[CodeInfo] = &[\n");
    out.push_str(&table);
    out.push_str("];\n\n#[allow(missing_docs)]\nimpl Code {\n");
    out.push_str(&consts);
    out.push_str("}\n");
    out
}

fn normalise_space(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn camel(key: &str) -> String {
    key.split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or(String::new(), |f| {
                f.to_ascii_uppercase().to_string() + c.as_str()
            })
        })
        .collect()
}
