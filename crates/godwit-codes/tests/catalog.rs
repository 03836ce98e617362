//! The catalog against the seeds, against its generated documentation, and against its own rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use godwit_codes::{CATALOG, Code, Command, Kind, Namespace, Origin, Scope, State};

/// (code, name) pairs of the fixture; name is None where the seed gives none.
fn seed_pairs() -> Vec<(String, Option<String>)> {
    let text = include_str!("fixtures/seed_codes.tsv");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('\t') {
            Some((code, name)) => (code.to_string(), Some(name.to_string())),
            None => (l.trim().to_string(), None),
        })
        .collect()
}

fn names_of(code: Code) -> Vec<&'static str> {
    let info = code.info();
    std::iter::once(info.name)
        .chain(info.aliases.iter().copied())
        .collect()
}

#[test]
fn every_seed_code_is_in_the_catalog_with_its_seed_name() {
    let pairs = seed_pairs();
    assert!(pairs.len() > 400, "the fixture lost lines: {}", pairs.len());
    let mut missing = Vec::new();
    for (code, name) in &pairs {
        let Some(entry) = Code::all().find(|c| c.id() == code) else {
            missing.push(format!("{code} is not in the catalog"));
            continue;
        };
        if let Some(name) = name
            && !names_of(entry).contains(&name.as_str())
        {
            missing.push(format!(
                "{code}: seed name {name:?} is neither its name nor an alias"
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn every_seed_catalog_entry_is_in_the_seeds() {
    let pairs = seed_pairs();
    let by_code: BTreeMap<&str, Vec<Option<&str>>> =
        pairs.iter().fold(BTreeMap::new(), |mut m, (c, n)| {
            m.entry(c.as_str()).or_default().push(n.as_deref());
            m
        });
    let mut extra = Vec::new();
    for code in Code::all() {
        let info = code.info();
        let from_seed_000_or_001 = matches!(info.origin, Origin::Seed000 | Origin::Seed001);
        if !from_seed_000_or_001 {
            continue;
        }
        match by_code.get(info.id) {
            None => extra.push(format!(
                "{} {} is not in seed 000 or 001",
                info.id, info.name
            )),
            Some(seed_names) => {
                // Every name and alias of the entry is one the seed uses, except a name we
                // corrected, which must then keep the seed's spelling as an alias.
                let seed_names: BTreeSet<&str> = seed_names.iter().flatten().copied().collect();
                if !seed_names.is_empty() && !names_of(code).iter().any(|n| seed_names.contains(n))
                {
                    extra.push(format!(
                        "{}: no name of {:?} is the seed's",
                        info.id,
                        names_of(code)
                    ));
                }
                for alias in info.aliases {
                    if !seed_names.contains(alias) {
                        extra.push(format!("{}: alias {alias} is not a seed spelling", info.id));
                    }
                }
            }
        }
    }
    assert!(extra.is_empty(), "{}", extra.join("\n"));
}

#[test]
fn the_seed_defects_are_decided_as_recorded() {
    // Code 0: one entry, two names.
    assert_eq!(
        Code::lookup("0").unwrap().info().aliases,
        &["BLANKERRORCODE"]
    );
    assert_eq!(Code::lookup("0").unwrap().info().kind, Kind::Success);
    // 693/694: one meaning, 694 never emitted and not nameable from code.
    assert_eq!(
        Code::lookup("694").unwrap().info().duplicate_of,
        Some("693")
    );
    assert_eq!(Code::FAILED_TO_SEND_MESSAGE_TO_AGENT.id(), "693");
    // 500 in two namespaces.
    assert_eq!(Code::ERR_POST_CONFIG_FILE_GET.id(), "500");
    assert_eq!(Code::HTTP_INTERNAL_SERVER_ERROR.id(), "HTTP500");
    // 233 belongs to SCAN_SOURCE; 120 has its separator.
    assert_eq!(Code::SCAN_SOURCE_PAUSED.id(), "233");
    assert_eq!(Code::CREATE_EMPTY_FOLDERS_RUNNING.id(), "120");
    // AZSM1020 is the source's catch-all, AZSM1040 the target's.
    assert_eq!(Code::AZSM1020.name(), "XDM_JLSTATUS_SRC_UNKNOWN");
    assert_ne!(
        Code::AZSM1020.info().description,
        Code::AZSM1040.info().description
    );
}

#[test]
fn the_commands_of_the_design_have_their_status_codes() {
    let expect = [
        (Command::Scan, State::Running, "930"),
        (Command::Scan, State::Succeeded, "932"),
        (Command::MigrateData, State::Running, "920"),
        (Command::MigrateData, State::Stopping, "923"),
        (Command::MigrateData, State::Stopped, "924"),
        (Command::TrueUp, State::Paused, "955"),
        (Command::TrueUp, State::Suspended, "958"),
        (Command::DataUpload, State::Suspended, "948"),
        (Command::Sanitize, State::Queued, "977"),
        (Command::CreateEmptyFolders, State::Running, "120"),
        (Command::SpeedTest, State::Failed, "211"),
    ];
    for (command, state, id) in expect {
        let code = Code::command_status(command, state).expect("status exists");
        assert_eq!(code.id(), id, "{command} {state:?}");
        assert_eq!(code.info().command, Some(command));
    }
    // Seed 000 gives the speed test no QUEUED status; godwit's own 217 fills the gap, because the
    // control plane stores every command QUEUED until its agent takes it.
    let queued = Code::command_status(Command::SpeedTest, State::Queued).expect("217");
    assert_eq!(queued.id(), "217");
    assert_eq!(queued.info().origin, godwit_codes::Origin::Godwit);
    assert_eq!(
        Code::command_status(Command::SpeedTest, State::Skipped),
        None
    );
    assert_eq!(Command::MigrateData.cli(), Some("copy"));
    assert_eq!(Command::TrueUp.seed_name(), "DATA_SYNC");
}

#[test]
fn state_validation_errors_answer_409_and_store_errors_never_500_unless_a_bug() {
    for code in Code::all() {
        let i = code.info();
        if i.namespace == Namespace::App && (650..=699).contains(&i.number) {
            assert_eq!(i.http_status, Some(409), "{code:?}");
            assert_eq!(i.scope, Scope::Api, "{code:?}");
        }
        if i.http_status == Some(500) {
            // 500 means a bug of ours: it must say so, and it is never worth an automatic retry.
            assert!(!i.retryable, "{code:?}");
        }
        if i.scope == Scope::File {
            assert_eq!(i.namespace, Namespace::Azsm, "{code:?}");
        }
    }
}

#[test]
fn no_two_entries_say_the_same_thing() {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for i in CATALOG.iter().filter(|i| i.duplicate_of.is_none()) {
        if let Some(prev) = seen.insert(i.description, i.id) {
            panic!(
                "{} and {} have the same description: {}",
                prev, i.id, i.description
            );
        }
    }
}

#[test]
fn render_fills_parameters_and_keeps_missing_ones_visible() {
    let code = Code::FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR;
    assert_eq!(code.info().params, &["count", "limit"]);
    let text = code.render(&[("count", "1200"), ("limit", "1000")]);
    assert!(
        text.starts_with("The true-up would delete 1200 files"),
        "{text}"
    );
    assert!(!text.contains('{'), "{text}");
    assert!(code.render(&[]).contains("{count}"));
}

#[test]
fn codes_serialise_as_their_id_and_parse_back() {
    let json = serde_json::to_string(&Code::AZSM2062).unwrap();
    assert_eq!(json, "\"AZSM2062\"");
    let back: Code = serde_json::from_str("\"azsm2062\"").unwrap();
    assert_eq!(back, Code::AZSM2062);
    assert!(serde_json::from_str::<Code>("\"AZSM2999\"").is_err());
    let entry = serde_json::to_value(Code::COPY_INPROGRESS_ERR.info()).unwrap();
    assert_eq!(entry["code"], "652");
    assert_eq!(entry["http_status"], 409);
    assert_eq!(entry["scope"], "api");
}

/// docs/codes.md is generated; this fails when it is out of date. Regenerate with
/// `cargo run -q -- codes --markdown > docs/codes.md`, or run this test with GODWIT_BLESS=1.
#[test]
fn docs_codes_md_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/codes.md");
    let want = godwit_codes::markdown();
    if std::env::var_os("GODWIT_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/codes.md is out of date with codes.toml: run \
         `cargo run -q -- codes --markdown > docs/codes.md` (or GODWIT_BLESS=1 cargo test -p godwit-codes)"
    );
    // Every entry is on the page exactly once.
    for i in CATALOG {
        let anchor = format!("<a id=\"{}\"></a>", i.id);
        assert_eq!(want.matches(&anchor).count(), 1, "{} on the page", i.id);
    }
}
