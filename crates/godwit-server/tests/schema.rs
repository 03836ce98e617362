//! The store's schema brought up to date over a database an earlier godwit made: nothing lost,
//! the references between tables intact; and the store's guards for control planes sharing a
//! database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use godwit_server::Store;
use sqlx::Connection;

/// A database at schema version 9 (before migrations had a scope) holding a migration with a
/// run and a copy-log record, as godwit 9 sessions ago left them.
async fn at_version_9(url: &str) {
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let early = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let version: u32 = name[..4].parse().unwrap();
        if version <= 9 {
            std::fs::copy(&path, early.path().join(&name)).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    let m = sqlx::migrate::Migrator::new(early.path()).await.unwrap();
    m.run(&mut c).await.unwrap();
    for q in [
        "INSERT INTO projects (id, name, description, created_ms, updated_ms) \
         VALUES ('p1', 'old', '', 1, 1)",
        "INSERT INTO endpoints (id, name, kind, uri, credential_ref, created_ms) \
         VALUES ('e1', 'nas', 'local', '/nas', NULL, 1)",
        "INSERT INTO endpoints (id, name, kind, uri, credential_ref, created_ms) \
         VALUES ('e2', 'bucket', 's3', 's3://b', NULL, 1)",
        "INSERT INTO migrations (id, project_id, agent_id, source_endpoint, source_path, \
         target_endpoint, target_path, options, created_ms, given_options) \
         VALUES ('m1', 'p1', NULL, 'e1', '/share', 'e2', '/share', '{}', 1, '{}')",
        "INSERT INTO job_runs (id, migration_id, command, state, status_code, files, bytes, \
         files_failed, created_ms, updated_ms) \
         VALUES ('r1', 'm1', 'copy', 'SUCCEEDED', '922', 3, 30, 0, 1, 2)",
        "INSERT INTO copylog (run_id, attempt, line, path, code, message, size) \
         VALUES ('r1', 'a', 0, 'x.txt', 'AZSM0000', 'copied', 10)",
    ] {
        sqlx::query(q).execute(&mut c).await.unwrap();
    }
    c.close().await.unwrap();
}

async fn upgrades_keeping_everything(backend: &str) {
    let (url, _dir) = match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("cp.db").display());
            (url, Some(dir))
        }
        _ => (support::fresh_pg_url().await, None),
    };
    at_version_9(&url).await;
    let store = Store::open(&url).await.unwrap();
    let m = store.get_migration("m1").await.unwrap();
    assert_eq!(
        (m.source_path.as_str(), m.target_path.as_str()),
        ("/share", "/share")
    );
    let run = store.get_run("r1").await.unwrap();
    assert_eq!((run.migration_id.as_str(), run.files), ("m1", 3));
    // The references still hold: a run of a migration that does not exist is refused.
    let orphan = sqlx::query(
        "INSERT INTO job_runs (id, migration_id, command, state, status_code, files, bytes, \
         files_failed, created_ms, updated_ms) \
         VALUES ('r2', 'nope', 'copy', 'QUEUED', '927', 0, 0, 0, 1, 1)",
    )
    .execute(&mut sqlx::AnyConnection::connect(&url).await.unwrap())
    .await;
    assert!(orphan.is_err(), "a dangling run was accepted");
    // The same source and target: refused without include rules, taken with other ones.
    let with = |include: &[&str]| {
        let mut o = godwit_spec::JobOptions::default();
        o.filters.include = include.iter().map(|s| s.to_string()).collect();
        o
    };
    let e = store
        .create_migration("p1", None, ("e1", "/share"), ("e2", "/share"), &with(&[]))
        .await
        .unwrap_err();
    assert_eq!(e.code.id(), "505");
    let a = store
        .create_migration(
            "p1",
            None,
            ("e1", "/share"),
            ("e2", "/share"),
            &with(&["a/**", "/*"]),
        )
        .await
        .unwrap();
    let e = store
        .create_migration(
            "p1",
            None,
            ("e1", "/share"),
            ("e2", "/share"),
            &with(&["/*", "a/**"]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code.id(), "505", "the same rules in another order");
    let found = store
        .find_migration(("e1", "/share"), ("e2", "/share"), "/*\na/**")
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.id), Some(a.id));
    // Opening again changes nothing.
    drop(store);
    let store = Store::open(&url).await.unwrap();
    assert!(store.get_migration("m1").await.is_ok());
}

#[tokio::test]
async fn an_old_sqlite_store_is_brought_up_to_date_keeping_everything() {
    upgrades_keeping_everything("sqlite").await;
}

#[tokio::test]
async fn an_old_postgres_store_is_brought_up_to_date_keeping_everything() {
    upgrades_keeping_everything("postgres").await;
}

/// A schedule's start is taken once: of two control planes that both saw it due, the one
/// whose move to the next start lands first makes it; the other's move finds it moved.
#[tokio::test]
async fn a_schedules_start_is_taken_by_one_control_plane() {
    for backend in ["sqlite", "postgres"] {
        let (store, _url, _dir) = support::store(backend).await;
        let m = support::a_migration(&store).await;
        let s = store
            .create_schedule(&m.id, godwit_spec::CommandKind::Scan, "hourly", 3, 1_000)
            .await
            .unwrap();
        let due = (s.start_ms, s.repeat);
        let first = store
            .advance_schedule(&s.id, due, 3_601_000, 2)
            .await
            .unwrap();
        let second = store
            .advance_schedule(&s.id, due, 3_601_000, 2)
            .await
            .unwrap();
        assert_eq!((first, second), (true, false), "{backend}");
        let left = store.list_schedules(&m.id).await.unwrap();
        assert_eq!(
            (left[0].start_ms, left[0].repeat),
            (3_601_000, 2),
            "{backend}"
        );
    }
}

/// Work units are leased one agent at a time: the next free unit in order, a unit whose lease
/// ended goes to another agent (which learns who held it), a renewed lease holds, a unit given
/// back is free again, and an agent's reports on a unit it no longer holds change nothing.
#[tokio::test]
async fn work_units_are_leased_once_and_taken_over_when_a_lease_ends() {
    use godwit_server::store::NewUnit;
    for backend in ["sqlite", "postgres"] {
        let (store, _url, _dir) = support::store(backend).await;
        let m = support::a_migration(&store).await;
        let run = store
            .create_run_if_idle(&m.id, godwit_spec::CommandKind::Copy, None)
            .await
            .unwrap()
            .unwrap();
        let unit = |n: i64| NewUnit {
            kind: "copy",
            include: vec![format!("d{n}/**")],
            files: n,
            bytes: n * 10,
        };
        store
            .add_units(&run.id, 1, &[unit(1), unit(2), unit(3)])
            .await
            .unwrap();
        let far = i64::MAX / 2;
        let (u1, before) = store.lease_unit(&run.id, "a", far).await.unwrap().unwrap();
        assert_eq!(
            (u1.seq, u1.state.as_str(), before),
            (1, "LEASED", None),
            "{backend}"
        );
        assert_eq!(u1.include, ["d1/**"], "{backend}");
        // One unit at a time an agent.
        assert!(
            store.lease_unit(&run.id, "a", far).await.unwrap().is_none(),
            "{backend}"
        );
        let (u2, _) = store.lease_unit(&run.id, "b", far).await.unwrap().unwrap();
        assert_eq!(u2.seq, 2, "{backend}");
        let (u3, _) = store.lease_unit(&run.id, "c", far).await.unwrap().unwrap();
        assert_eq!(u3.seq, 3, "{backend}");
        assert!(
            store.lease_unit(&run.id, "e", far).await.unwrap().is_none(),
            "{backend}"
        );
        // b's lease ends (its expiry in the past): e takes its unit, and hears b held it.
        assert!(store.unit_taken(&u2.id, "b").await.unwrap(), "{backend}");
        store.renew_leases("b", 0).await.unwrap();
        let (again, before) = store.lease_unit(&run.id, "e", far).await.unwrap().unwrap();
        assert_eq!(
            (again.id.as_str(), again.attempts),
            (u2.id.as_str(), 2),
            "{backend}"
        );
        assert_eq!(before.as_deref(), Some("b"), "{backend}");
        // b's late reports find the unit is not its own any more.
        let counts = serde_json::json!({});
        let done = godwit_server::store::UnitEnd {
            state: "SUCCEEDED",
            totals: (2, 20, 0),
            counts: &counts,
            error: None,
            report: None,
        };
        assert!(!store.unit_taken(&u2.id, "b").await.unwrap(), "{backend}");
        assert!(
            !store
                .unit_progress(&u2.id, "b", (1, 1, 0), 1.0, &counts)
                .await
                .unwrap(),
            "{backend}"
        );
        assert!(
            !store.unit_ended(&u2.id, "b", &done).await.unwrap(),
            "{backend}"
        );
        // a's lease, renewed, holds; given back, its unit is free again.
        store.renew_leases("a", far).await.unwrap();
        assert!(
            store.lease_unit(&run.id, "d", far).await.unwrap().is_none(),
            "{backend}"
        );
        store.release_unit(&u1.id, "a").await.unwrap();
        let (u1b, before) = store.lease_unit(&run.id, "d", far).await.unwrap().unwrap();
        assert_eq!((u1b.id, before), (u1.id.clone(), None), "{backend}");
        assert!(
            store.unit_ended(&u2.id, "e", &done).await.unwrap(),
            "{backend}"
        );
        let all = store.run_units(&run.id).await.unwrap();
        assert_eq!(all[1].state, "SUCCEEDED", "{backend}");
        assert_eq!(
            (all[1].files, all[1].holder.as_deref()),
            (2, Some("e")),
            "{backend}"
        );
        assert_eq!(store.units_held("d").await.unwrap().len(), 1, "{backend}");
        // Deleting the migration takes its units with it.
        store.delete_migration(&m.id).await.unwrap();
        assert!(
            store.get_unit(&u1.id).await.unwrap_err().is_not_found(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_pool_index_keeps_each_units_part_apart() {
    use godwit_spec::protocol::IndexRow;
    use godwit_spec::{Filter, FilterRules};
    let part = |include: &[&str]| {
        Filter::new(&FilterRules {
            include: include.iter().map(|s| s.to_string()).collect(),
            scoped: true,
            ..Default::default()
        })
        .unwrap()
    };
    let row = |path: &str, size: u64| IndexRow {
        path: path.to_string(),
        size,
        mtime_ns: -1,
        hash: String::new(),
        ino: u64::MAX,
        target: None,
    };
    // Every row of a part, following the cursor page after page.
    async fn all(store: &Store, m: &str, part: &Filter) -> Vec<IndexRow> {
        let (mut out, mut at) = (Vec::new(), None);
        loop {
            let (rows, next) = store.index_part(m, part, at).await.unwrap();
            out.extend(rows);
            match next {
                Some(n) => at = Some(n),
                None => return out,
            }
        }
    }
    let paths = |rows: &[IndexRow]| rows.iter().map(|r| r.path.clone()).collect::<Vec<_>>();
    for backend in ["sqlite", "postgres"] {
        let (store, _url, _dir) = support::store(backend).await;
        let m = support::a_migration(&store).await.id;
        let d1 = part(&["d1/**"]);
        let d2 = part(&["d2/*"]);
        let whole = part(&["**"]);
        // Rows outside the part sending them are left out.
        let added = store
            .add_index_rows(&m, &d1, &[row("d1/a", 1), row("d1/b/c", 2), row("d2/x", 3)])
            .await
            .unwrap();
        assert_eq!(added, 2, "{backend}");
        let added = store
            .add_index_rows(&m, &d2, &[row("d2/x", 3), row("d2/sub/y", 4)])
            .await
            .unwrap();
        assert_eq!(added, 1, "{backend}");
        // A name that is not UTF-8, a neighbour of d1 by its bytes, and the most a field holds.
        store
            .add_index_rows(
                &m,
                &whole,
                &[row("d3/\\xFF", 5), row("d1x/z", 6), row("d10/w", 7)],
            )
            .await
            .unwrap();
        assert_eq!(
            paths(&all(&store, &m, &d1).await),
            ["d1/a", "d1/b/c"],
            "{backend}"
        );
        assert_eq!(paths(&all(&store, &m, &d2).await), ["d2/x"], "{backend}");
        let odd = all(&store, &m, &part(&["d3/**"])).await;
        assert_eq!(paths(&odd), ["d3/\\xFF"], "{backend}");
        assert_eq!((odd[0].ino, odd[0].mtime_ns), (u64::MAX, -1), "{backend}");
        assert_eq!(store.index_files(&m).await.unwrap(), 6, "{backend}");
        // A unit sending its part afresh replaces that part only.
        assert_eq!(
            store.clear_index_part(&m, &d1).await.unwrap(),
            2,
            "{backend}"
        );
        store
            .add_index_rows(&m, &d1, &[row("d1/new", 8)])
            .await
            .unwrap();
        assert_eq!(
            paths(&all(&store, &m, &whole).await),
            ["d1/new", "d10/w", "d1x/z", "d2/x", "d3/\\xFF"],
            "{backend}"
        );
        // A large part comes a page at a time, in path order.
        let many: Vec<IndexRow> = (0..2500).map(|i| row(&format!("d4/f{i:05}"), i)).collect();
        store
            .add_index_rows(&m, &part(&["d4/**"]), &many)
            .await
            .unwrap();
        let (first, next) = store.index_part(&m, &part(&["d4/**"]), None).await.unwrap();
        assert_eq!(first.len(), 1000, "{backend}");
        assert!(next.is_some(), "{backend}");
        let back = all(&store, &m, &part(&["d4/**"])).await;
        assert_eq!(back, many, "{backend}");
        // A path sent twice in one page is one row: the last one sent.
        let added = store
            .add_index_rows(&m, &whole, &[row("d5/a", 1), row("d5/a", 2)])
            .await
            .unwrap();
        assert_eq!(added, 1, "{backend}");
        let d5 = all(&store, &m, &part(&["d5/**"])).await;
        assert_eq!((d5.len(), d5[0].size), (1, 2), "{backend}");
        assert_eq!(
            store.clear_index_part(&m, &part(&["d4/**"])).await.unwrap(),
            2500,
            "{backend}"
        );
        // Deleting the migration deletes its index.
        store.delete_migration(&m).await.unwrap();
        assert_eq!(store.index_files(&m).await.unwrap(), 0, "{backend}");
    }
}
