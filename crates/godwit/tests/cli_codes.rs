//! `godwit explain`, `godwit codes`, `godwit completions` and `--help`, run as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn godwit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_godwit"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run godwit")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

#[test]
fn explain_9080() {
    let out = godwit(&["explain", "9080"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn explain_azsm2023_in_lower_case() {
    let out = godwit(&["explain", "azsm2023"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn explain_a_name_and_a_seed_alias() {
    let out = godwit(&["explain", "file_synchronise_review_true_up_error"]);
    assert!(stdout(&out).starts_with("9080  FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR\n"));
    let out = godwit(&["explain", "CREATE_EMPTY_FOLDERSRUNNING"]);
    assert!(stdout(&out).starts_with("120  CREATE_EMPTY_FOLDERS : RUNNING\n"));
    assert!(stdout(&out).contains("also written CREATE_EMPTY_FOLDERSRUNNING"));
}

#[test]
fn explain_500_points_at_the_http_status() {
    let out = godwit(&["explain", "500"]);
    let text = stdout(&out);
    assert!(text.starts_with("500  ERR_POST_CONFIG_FILE_GET"), "{text}");
    assert!(text.contains("godwit explain HTTP500"), "{text}");
    let out = godwit(&["explain", "http500"]);
    assert!(stdout(&out).starts_with("HTTP500  INTERNAL_SERVER_ERROR"));
}

#[test]
fn explain_an_unknown_code_exits_2_with_the_nearest() {
    let out = godwit(&["explain", "9081"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    insta::assert_snapshot!(stderr(&out));
}

#[test]
fn explain_json_is_the_catalog_entry() {
    let out = godwit(&["explain", "652", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "652");
    assert_eq!(v["name"], "COPY_INPROGRESS_ERR");
    assert_eq!(v["http_status"], 409);
    assert_eq!(v["retryable"], true);
}

#[test]
fn codes_scope_file_json_lists_the_per_file_statuses() {
    let out = godwit(&["codes", "--scope", "file", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v.iter().map(|e| e["code"].as_str().unwrap()).collect();
    // AZSM2001, 2021-2026, 2041-2042, 2061-2070 from the seed, and godwit's own AZSM2043-2048
    // and AZSM2071-2080.
    assert_eq!(ids.len(), 35, "{ids:?}");
    assert!(ids.iter().all(|id| id.starts_with("AZSM2")), "{ids:?}");
    for e in &v {
        assert_eq!(e["scope"], "file");
        assert!(e["remediation"].as_str().unwrap().len() > 10);
    }
}

#[test]
fn codes_filters_combine_and_bad_values_are_usage_errors() {
    let out = godwit(&["codes", "--command", "scan"]);
    let text = stdout(&out);
    for id in ["930", "931", "932", "933", "934", "935", "936", "937"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id} in\n{text}"
        );
    }
    assert!(text.contains("\n8 codes."), "{text}");

    let out = godwit(&["codes", "--command", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("migrate-data"));

    let out = godwit(&["codes", "--scope", "planet"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn codes_markdown_is_docs_codes_md() {
    let out = godwit(&["codes", "--markdown"]);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/codes.md"))
        .unwrap();
    assert!(
        stdout(&out) == doc,
        "docs/codes.md differs from `godwit codes --markdown`"
    );
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = godwit(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = stdout(&out);
        assert!(
            text.contains("explain") && text.contains("codes"),
            "{shell}: {text}"
        );
    }
    assert_eq!(godwit(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn help_and_version_on_every_subcommand() {
    let out = godwit(&["--version"]);
    assert_eq!(
        stdout(&out),
        format!("godwit {}\n", env!("CARGO_PKG_VERSION"))
    );
    let top = stdout(&godwit(&["--help"]));
    for sub in ["explain", "codes", "completions"] {
        assert!(top.contains(sub), "{sub} in top-level help");
        let out = godwit(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{sub} --help");
        assert!(
            stdout(&out).contains("Examples:"),
            "{sub} --help has examples"
        );
    }
    assert_eq!(godwit(&[]).status.code(), Some(2));
}

#[test]
fn regression_every_help_reads_as_text_without_stray_runs_of_spaces() {
    for sub in [
        "scan",
        "copy",
        "sync",
        "confirm",
        "sanitize",
        "empty-folders",
        "verify",
        "speed-test",
        "runs",
        "report",
        "serve",
        "agent",
        "explain",
        "codes",
        "completions",
    ] {
        let out = godwit(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{sub}");
        let help = stdout(&out);
        assert!(help.contains("Example"), "{sub} --help has examples");
        for line in help.lines() {
            let mut text = line.trim_start();
            if text.starts_with('-') || text.starts_with('[') || text.starts_with('<') {
                // An option or argument: its name, the column gap clap aligns, its words.
                text = text
                    .split_once("  ")
                    .map_or("", |(_, words)| words.trim_start());
            }
            assert!(
                !text.contains("        "),
                "{sub} --help: a run of spaces inside a line: {line:?}"
            );
        }
    }
}
