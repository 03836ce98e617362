//! `godwit plan`: a source cut into jobs under the job limits, and the jobs, copied one by one
//! with their include rules, together copy every file exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{assert_same_tree, dirs, godwit, run, summary, text, write};

/// An uneven tree: files at the top, folders of very different sizes, a deep chain, names a
/// glob would misread, and one folder whose own files exceed the limit.
fn uneven(src: &std::path::Path) -> u64 {
    let mut n = 0u64;
    let mut put = |rel: String, size: usize| {
        write(&src.join(rel), &vec![b'x'; size]);
        n += 1;
    };
    for i in 0..30 {
        put(format!("top{i}.txt"), 10);
    }
    for a in 0..12 {
        for b in 0..(a % 5) {
            for f in 0..(40 + 37 * a + 11 * b) {
                put(format!("dept{a}/team{b}/f{f}"), 100 + f);
            }
        }
        for f in 0..(a * 7) {
            put(format!("dept{a}/loose{f}"), 50);
        }
    }
    for f in 0..50 {
        put(format!("deep/a/b/c/d/e/f{f}"), 5);
    }
    for f in 0..40 {
        put(format!("odd [1]/*star*/f{f}"), 5);
    }
    for f in 0..900 {
        put(format!("flat/f{f}"), 1);
    }
    n
}

#[test]
fn a_plan_splits_the_source_and_its_jobs_copy_every_file_once() {
    let d = dirs();
    let total = uneven(&d.src);
    let out = run(godwit()
        .arg("plan")
        .arg(&d.src)
        .args(["--max-job-files", "700", "--json", "--state-dir"])
        .arg(&d.state));
    let sum = summary(&out);
    // "flat" holds 900 files directly: named, and the run says no split keeps the limits.
    assert_eq!(out.status.code(), Some(1), "{sum}");
    assert_eq!(sum["status"]["code"], "142", "{sum}");
    assert_eq!(sum["job_error"]["code"], "9130", "{sum}");
    let plan = &sum["plan"];
    assert_eq!(plan["files"], total, "{plan}");
    assert_eq!(plan["oversized"][0]["path"], "flat", "{plan}");
    assert_eq!(plan["oversized"][0]["files"], 900, "{plan}");
    let jobs = plan["jobs"].as_array().unwrap();
    assert!(jobs.len() >= 6, "{plan}");
    for job in jobs {
        let alone = job["include"] == serde_json::json!(["flat/*"]);
        assert!(job["files"].as_u64().unwrap() <= 700 || alone, "{job}");
    }

    // Each job copied on its own, with its rules: every file arrives once. Each job is a
    // migration of its own (its include rules are part of its id): two at the same time both
    // run, where one shared migration would refuse the second with its lock.
    let job_cmd = |command: &str, job: &serde_json::Value| {
        let mut cmd = godwit();
        cmd.arg(command).arg(&d.src).arg(&d.dst);
        for rule in job["include"].as_array().unwrap() {
            cmd.args(["--include", rule.as_str().unwrap()]);
        }
        cmd.args(["--json", "--state-dir"]).arg(&d.state);
        cmd
    };
    let together: Vec<_> = jobs[..2]
        .iter()
        .map(|job| {
            job_cmd("copy", job)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outs = together
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect::<Vec<_>>()
        .into_iter();
    let mut copied = 0;
    for (i, job) in jobs.iter().enumerate() {
        let out = if i < 2 {
            outs.next().unwrap()
        } else {
            run(&mut job_cmd("copy", job))
        };
        let sum = summary(&out);
        assert_eq!(out.status.code(), Some(0), "{sum}");
        assert_eq!(
            sum["counts"]["AZSM0000"].as_u64().unwrap_or(0),
            job["files"].as_u64().unwrap(),
            "the job copies what the plan says: {job} {sum}"
        );
        assert!(
            sum["counts"].get("AZSM2041").is_none(),
            "nothing twice: {sum}"
        );
        copied += job["files"].as_u64().unwrap();
    }
    assert_eq!(copied, total);
    assert_same_tree(&d.src, &d.dst);

    // A true-up of the first job finds its own files unchanged from its own index (another
    // job's run did not rewrite it) and deletes nothing of the other jobs' files.
    let out = run(job_cmd("sync", &jobs[0]).arg("--delete"));
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    assert_eq!(
        sum["counts"]["AZSM2041"].as_u64(),
        jobs[0]["files"].as_u64(),
        "{sum}"
    );
    // The rest is the other jobs' files, left out by the rules (AZSM2001), none deleted.
    let codes: Vec<&String> = sum["counts"].as_object().unwrap().keys().collect();
    assert_eq!(codes, ["AZSM2001", "AZSM2041"], "{sum}");
    assert_eq!(sum["true_up"]["deleted"], 0, "{sum}");
    assert_same_tree(&d.src, &d.dst);
    // `godwit runs` finds a job's runs by its rules.
    let mut runs = godwit();
    runs.arg("runs").arg(&d.src).arg(&d.dst);
    for rule in jobs[0]["include"].as_array().unwrap() {
        runs.args(["--include", rule.as_str().unwrap()]);
    }
    let out = run(runs.args(["--json", "--state-dir"]).arg(&d.state));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let commands: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["command"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(commands.len(), 2, "{listed}");
}

#[test]
fn a_source_within_the_limits_is_one_job_and_bad_limits_are_refused() {
    let d = dirs();
    write(&d.src.join("a/one.txt"), b"1");
    write(&d.src.join("b/two.txt"), b"22");
    let out = run(godwit()
        .arg("plan")
        .arg(&d.src)
        .args(["--max-job-size", "1M", "--state-dir"])
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("143 SIMULATE_SCAN : SUCCEEDED"), "{said}");
    assert!(said.contains("1 jobs of at most"), "{said}");
    let out = run(godwit()
        .arg("plan")
        .arg(&d.src)
        .args(["--max-job-size", "0"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("error[724]"),
        "{}",
        text(&out.stderr)
    );
    let out = run(godwit()
        .arg("plan")
        .arg(&d.src)
        .args(["--max-job-files", "0"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // The filters leave out what a copy would leave out.
    let out = run(godwit()
        .arg("plan")
        .arg(&d.src)
        .args(["--exclude", "two*", "--json", "--state-dir"])
        .arg(&d.state));
    let sum = summary(&out);
    assert_eq!(
        (sum["plan"]["files"].clone(), sum["plan"]["bytes"].clone()),
        (1.into(), 1.into()),
        "{sum}"
    );
    // A source that is not there is not a plan of nothing: 9110.
    let out = run(godwit()
        .arg("plan")
        .arg(d.src.join("not-there"))
        .args(["--json", "--state-dir"])
        .arg(&d.state));
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(1), "{sum}");
    assert_eq!(sum["status"]["code"], "142", "{sum}");
    assert_eq!(sum["job_error"]["code"], "9110", "{sum}");
}

#[test]
fn validate_lists_what_would_stop_the_migration_each_with_its_code() {
    use std::os::unix::fs::PermissionsExt;
    let d = dirs();
    write(&d.src.join("ok/a.txt"), b"a");
    write(&d.src.join("bad?.txt"), b"b");
    write(&d.src.join("big.bin"), &[7u8; 4096]);
    // A target nobody may write (the run is as nobody when the tests run as root).
    std::fs::create_dir_all(&d.dst).unwrap();
    std::fs::set_permissions(&d.dst, std::fs::Permissions::from_mode(0o555)).unwrap();
    let validate = |target: &std::path::Path, args: &[&str]| {
        let out = run(support::as_unprivileged(&d.root)
            .arg("validate")
            .arg(&d.src)
            .arg(target)
            .args(args)
            .args(["--json", "--state-dir"])
            .arg(&d.state));
        (out.status.code(), summary(&out))
    };
    let (code, sum) = validate(
        &d.dst,
        &["--target-profile", "windows", "--max-job-files", "1"],
    );
    assert_eq!(code, Some(1), "{sum}");
    assert_eq!(sum["status"]["code"], "161", "{sum}");
    assert_eq!(sum["job_error"]["code"], "9140", "{sum}");
    let findings = sum["validation"]["findings"].as_array().unwrap();
    let codes: Vec<&str> = findings
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["AZSM2022", "722", "629"], "{sum}");
    assert_eq!(findings[0]["examples"][0], "bad?.txt", "{sum}");
    assert!(
        findings[1]["message"]
            .as_str()
            .unwrap()
            .contains("ermission denied"),
        "the reason: {sum}"
    );
    assert_eq!(sum["validation"]["target_writable"], false);
    // Nothing was written at the target.
    assert_eq!(std::fs::read_dir(&d.dst).unwrap().count(), 0);

    // A writable target, the default profile and limits: nothing found.
    let open = d.root.join("open-target");
    let (code, sum) = validate(&open, &[]);
    assert_eq!(code, Some(0), "{sum}");
    assert_eq!(sum["status"]["code"], "162", "{sum}");
    assert_eq!(
        sum["validation"]["findings"],
        serde_json::json!([]),
        "{sum}"
    );
    assert_eq!(sum["validation"]["files"], 3, "{sum}");
    assert!(!open.exists(), "the probe's folder is removed again");
}

#[test]
fn copy_runs_the_migrations_of_a_configuration_file_and_says_what_is_wrong_with_one() {
    let d = dirs();
    write(&d.src.join("a/one.txt"), b"1");
    write(&d.src.join("a/skip.tmp"), b"x");
    write(&d.src.join("b/two.txt"), b"22");
    let file = d.root.join("plan.json");
    let config = |text: String| {
        std::fs::write(&file, text).unwrap();
    };
    config(
        serde_json::json!({"migrations": [
            {"source": d.src.join("a"), "target": d.dst.join("a"),
             "options": {"filters": {"exclude": ["*.tmp"]}}},
            {"source": d.src.join("b"), "target": d.dst.join("b")},
        ]})
        .to_string(),
    );
    let out = run(godwit()
        .args(["copy", "--config"])
        .arg(&file)
        .arg("--state-dir")
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert_eq!(
        said.matches("922 MIGRATE_DATA : SUCCEEDED").count(),
        2,
        "{said}"
    );
    assert_eq!(std::fs::read(d.dst.join("a/one.txt")).unwrap(), b"1");
    assert_eq!(std::fs::read(d.dst.join("b/two.txt")).unwrap(), b"22");
    assert!(
        !d.dst.join("a/skip.tmp").exists(),
        "the file's filters apply"
    );
    // A true-up takes the same file; its --delete adds to the file's options.
    let out = run(godwit()
        .args(["sync", "--delete", "--config"])
        .arg(&file)
        .arg("--state-dir")
        .arg(&d.state));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).matches("952 ").count(), 2);

    // Each way a file is wrong: its code, exit status 2, nothing copied.
    let refused = |extra: &[&str], code: &str, says: &str| {
        let out = run(godwit()
            .args(["copy", "--config"])
            .arg(&file)
            .args(extra)
            .arg("--state-dir")
            .arg(&d.state));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("error[{code}]")), "{err}");
        assert!(err.contains(says), "{err}");
    };
    refused(&["--transfers", "3"], "724", "come from the file");
    config("{\"migrations\": [".into());
    refused(&[], "501", "not JSON");
    config(
        r#"{"migrations": [{"source": "/a", "target": "/b", "options": {"verify": "always"}}]}"#
            .into(),
    );
    refused(&[], "503", "migrations[0].options.verify");
    config(r#"{"migrations": [{"source": "/a"}]}"#.into());
    refused(&[], "504", "migrations[0]");
    config(r#"{"migrations": []}"#.into());
    refused(&[], "508", "no migration configuration");
    config(
        r#"{"migrations": [{"source": {"endpointId": "e", "path": "/"}, "target": "/b"}]}"#.into(),
    );
    refused(&[], "503", "migrations[0].source");
    config(String::new());
    refused(&[], "500", "empty");
    std::fs::remove_file(&file).unwrap();
    refused(&[], "501", "No such file");
}

#[test]
fn a_simulated_scan_that_cannot_keep_its_folder_tree_fails_with_9120() {
    let d = dirs();
    for i in 0..3000 {
        write(&d.src.join(format!("d{}/e{i}/f", i % 30)), b"x");
    }
    // Files of at most 150 KiB for this process (SIGXFSZ ignored, so a write past it fails
    // with EFBIG as on a full disk): the tree outgrows it as the walk goes.
    let out = run(std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 300; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_godwit"))
        .arg("plan")
        .arg(&d.src)
        .args(["--json", "--state-dir"])
        .arg(&d.state));
    let sum = summary(&out);
    assert_eq!(out.status.code(), Some(1), "{sum}");
    assert_eq!(sum["status"]["code"], "142", "{sum}");
    assert_eq!(sum["job_error"]["code"], "9120", "{sum}");
    assert!(
        sum["job_error"]["message"]
            .as_str()
            .unwrap()
            .contains("tree.redb"),
        "{sum}"
    );
}

#[test]
fn validations_of_one_missing_target_at_once_do_not_take_it_for_unwritable() {
    let d = dirs();
    write(&d.src.join("a/one.txt"), b"1");
    write(&d.src.join("b/two.txt"), b"2");
    // A plan's jobs share a target that does not exist yet; each validation makes it for its
    // probe and removes it again when empty: side by side, none may find it gone (722). (An
    // empty folder may be left when their removals cross; a copy makes it anyway.)
    for round in 0..10 {
        let target = d.root.join(format!("missing-{round}"));
        let runs: Vec<_> = ["a/**", "b/**", "/*", "a/*"]
            .iter()
            .map(|rule| {
                godwit()
                    .arg("validate")
                    .arg(&d.src)
                    .arg(&target)
                    .args(["--include", rule, "--json", "--state-dir"])
                    .arg(&d.state)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in runs {
            let out = child.wait_with_output().unwrap();
            let sum = summary(&out);
            assert_eq!(sum["status"]["code"], "162", "round {round}: {sum}");
        }
        // Removed, or (when two removals crossed) left empty: nothing of a probe stays.
        let left: Vec<_> = std::fs::read_dir(&target)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "round {round}: the probes left {left:?}");
    }
}
