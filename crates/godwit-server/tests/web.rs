//! The dashboard's rules that a browser test does not reach: forms from another origin or
//! without the session's CSRF token are refused, pages and the live stream need a session,
//! the pages' security policy and the assets' caching. On SQLite (the pages read the same
//! store functions the API does, tested on both databases).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use godwit_server::{Role, Secret};

mod support;
use support::{SECRET, answer, issue};

fn form(path: &str, origin: Option<&str>, cookie: Option<&str>, body: &str) -> Request<Body> {
    let mut r = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::HOST, "cp.example:8443")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        r = r.header(header::ORIGIN, o);
    }
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, format!("godwit_session={c}"));
    }
    r.body(Body::from(body.to_string())).unwrap()
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::builder()
        .uri(path)
        .header(header::HOST, "cp.example:8443");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, format!("godwit_session={c}"));
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn forms_from_elsewhere_or_without_the_csrf_token_are_refused() {
    let (store, _url, _dir) = support::store("sqlite").await;
    let token = issue(
        &store,
        "ops",
        Role::Operator,
        None,
        Duration::from_secs(3600),
    )
    .await;
    let app = godwit_server::app(store.clone(), Secret::from_bytes(SECRET));
    let body = format!("token={token}");
    // Signing in from another site's page, or with no origin at all: 403, no cookie.
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let (s, page, h) = answer(&app, form("/signin", origin, None, &body)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{origin:?}");
        assert!(h.get(header::SET_COOKIE).is_none());
        assert!(page.as_str().unwrap().contains("HTTP403"), "{page}");
    }
    // From this origin: the session cookie, HttpOnly and SameSite=Strict.
    let (s, _, h) = answer(
        &app,
        form("/signin", Some("https://cp.example:8443"), None, &body),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let cookie = h.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // The overview names the CSRF token its sign-out form carries.
    let (s, page, h) = answer(&app, get("/", Some(&token))).await;
    assert_eq!(s, StatusCode::OK);
    let csp = h
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let page = page.as_str().unwrap().to_string();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    assert_eq!(csrf.len(), 64, "{csrf}");
    // Signing out with a wrong token, or from elsewhere: refused, the session stays.
    let origin = Some("https://cp.example:8443");
    for (o, t) in [
        (origin, "0".repeat(64)),
        (Some("https://evil.example"), csrf.clone()),
    ] {
        let (s, _, h) = answer(
            &app,
            form("/signout", o, Some(&token), &format!("csrf={t}")),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(h.get(header::SET_COOKIE).is_none());
    }
    let (s, _, h) = answer(
        &app,
        form("/signout", origin, Some(&token), &format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        h.get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // Another session's token is another CSRF token.
    let other = issue(
        &store,
        "ops",
        Role::Operator,
        None,
        Duration::from_secs(3600),
    )
    .await;
    let (_, page, _) = answer(&app, get("/", Some(&other))).await;
    assert!(!page.as_str().unwrap().contains(&csrf));
}

#[tokio::test]
async fn pages_and_the_live_stream_need_a_person_signed_in() {
    let (store, _url, _dir) = support::store("sqlite").await;
    let agent = store
        .create_agent("web-agent", "0.1.0")
        .await
        .map(|a| a.id)
        .unwrap();
    let agent_token = issue(
        &store,
        "agent",
        Role::Agent,
        Some(&agent),
        Duration::from_secs(3600),
    )
    .await;
    let revoked = issue(
        &store,
        "gone",
        Role::Viewer,
        None,
        Duration::from_secs(3600),
    )
    .await;
    let claims = Secret::from_bytes(SECRET).verify(&revoked).unwrap();
    store.revoke_token(&claims.jti, "test").await.unwrap();
    let app = godwit_server::app(store, Secret::from_bytes(SECRET));
    for cookie in [
        None,
        Some("nonsense"),
        Some(agent_token.as_str()),
        Some(revoked.as_str()),
    ] {
        for page in ["/", "/codes", "/codes/9080", "/ui/live"] {
            let (s, _, h) = answer(&app, get(page, cookie)).await;
            assert_eq!(s, StatusCode::SEE_OTHER, "{page} with {cookie:?}");
            assert_eq!(h.get(header::LOCATION).unwrap(), "/signin");
        }
    }
    // The sign-in page itself, and the assets, need none; assets are cached for good.
    let (s, page, _) = answer(&app, get("/signin", None)).await;
    assert_eq!(s, StatusCode::OK);
    let page = page.as_str().unwrap().to_string();
    let css = page
        .split("href=\"/assets/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let (s, _, h) = answer(&app, get(&format!("/assets/{css}"), None)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h.get(header::CACHE_CONTROL)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let (s, _, _) = answer(&app, get("/assets/app-000000000000.css", None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// The overview's migrations, each with its newest run, read in one query on each database.
async fn last_runs_on(backend: &str) {
    use godwit_codes::State;
    use godwit_spec::CommandKind;
    let (store, _url, _dir) = support::store(backend).await;
    let project = store.create_project("p", "").await.unwrap();
    let src = store
        .create_endpoint("src", "local", "/data/src", None)
        .await
        .unwrap();
    let dst = store
        .create_endpoint("dst", "local", "/data/dst", None)
        .await
        .unwrap();
    let options = godwit_server::records::MigrationOptions::default();
    let mut ms = Vec::new();
    for path in ["/a", "/b", "/c"] {
        let m = store
            .create_migration(&project.id, None, (&src.id, path), (&dst.id, "/"), &options)
            .await
            .unwrap();
        ms.push(m.id);
    }
    // a: a scan then a copy, both ended; b: a scan waiting; c: nothing.
    let scan = store
        .create_run(&ms[0], CommandKind::Scan, None)
        .await
        .unwrap();
    store
        .set_run_state(&scan.id, State::Succeeded, None, None)
        .await
        .unwrap();
    let copy = store
        .create_run(&ms[0], CommandKind::Copy, None)
        .await
        .unwrap();
    store
        .set_run_state(&copy.id, State::Succeeded, None, None)
        .await
        .unwrap();
    store
        .create_run(&ms[1], CommandKind::Scan, None)
        .await
        .unwrap();
    let last = store.last_runs(&ms).await.unwrap();
    assert_eq!(last[&ms[0]].id, copy.id);
    assert_eq!(last[&ms[1]].status.code, "937");
    assert!(!last.contains_key(&ms[2]));
    let admin = issue(
        &store,
        "admin",
        Role::Admin,
        None,
        Duration::from_secs(3600),
    )
    .await;
    let app = godwit_server::app(store, Secret::from_bytes(SECRET));
    let (s, page, _) = answer(&app, get("/", Some(&admin))).await;
    assert_eq!(s, StatusCode::OK);
    let page = page.as_str().unwrap();
    let row = |m: &str| {
        page.split(&format!("data-migration=\"{m}\""))
            .nth(1)
            .unwrap()
            .split("</tr>")
            .next()
            .unwrap()
            .to_string()
    };
    assert!(row(&ms[0]).contains("922"), "{}", row(&ms[0]));
    assert!(row(&ms[1]).contains("937"), "{}", row(&ms[1]));
    assert!(row(&ms[2]).contains("none yet"), "{}", row(&ms[2]));
    assert!(!page.contains("rel=\"next\""), "one page only");
}

/// More migrations than a page: the overview pages through them, oldest first (as the API
/// lists them).
#[tokio::test]
async fn the_overview_pages_through_many_migrations() {
    let (store, _url, _dir) = support::store("sqlite").await;
    let project = store.create_project("p", "").await.unwrap();
    let src = store
        .create_endpoint("src", "local", "/data/src", None)
        .await
        .unwrap();
    let dst = store
        .create_endpoint("dst", "local", "/data/dst", None)
        .await
        .unwrap();
    let options = godwit_server::records::MigrationOptions::default();
    for i in 0..53 {
        store
            .create_migration(
                &project.id,
                None,
                (&src.id, &format!("/m{i}")),
                (&dst.id, "/"),
                &options,
            )
            .await
            .unwrap();
    }
    let admin = issue(
        &store,
        "admin",
        Role::Admin,
        None,
        Duration::from_secs(3600),
    )
    .await;
    let app = godwit_server::app(store, Secret::from_bytes(SECRET));
    let rows = |page: &str| page.matches("data-migration=").count();
    let (_, first, _) = answer(&app, get("/", Some(&admin))).await;
    let first = first.as_str().unwrap().to_string();
    assert_eq!(rows(&first), 50);
    assert!(
        first.contains("53 in all, oldest first; 1-50 shown"),
        "{first}"
    );
    assert!(first.contains("href=\"/?offset=50\""), "{first}");
    let (s, second, _) = answer(&app, get("/?offset=50", Some(&admin))).await;
    let second = second.as_str().unwrap().to_string();
    assert_eq!((s, rows(&second)), (StatusCode::OK, 3));
    assert!(
        second.contains("51-53 shown") && second.contains("href=\"/?offset=0\""),
        "{second}"
    );
    assert!(
        first.contains(">/m0<") && second.contains(">/m52<"),
        "{second}"
    );
}

#[tokio::test]
async fn the_overview_shows_each_migrations_last_run_sqlite() {
    last_runs_on("sqlite").await;
}

#[tokio::test]
async fn the_overview_shows_each_migrations_last_run_postgres() {
    last_runs_on("postgres").await;
}

/// A migration with more runs than a page: its page pages through them, newest first, and a
/// link to an older run still shows that run.
#[tokio::test]
async fn a_migrations_page_pages_through_its_runs() {
    use godwit_spec::CommandKind;
    let (store, _url, _dir) = support::store("sqlite").await;
    let project = store.create_project("p", "").await.unwrap();
    let src = store
        .create_endpoint("src", "local", "/data/src", None)
        .await
        .unwrap();
    let dst = store
        .create_endpoint("dst", "local", "/data/dst", None)
        .await
        .unwrap();
    let options = godwit_server::records::MigrationOptions::default();
    let m = store
        .create_migration(&project.id, None, (&src.id, "/a"), (&dst.id, "/"), &options)
        .await
        .unwrap();
    let mut runs = Vec::new();
    for _ in 0..53 {
        let r = store
            .create_run(&m.id, CommandKind::Scan, None)
            .await
            .unwrap();
        store
            .set_run_state(&r.id, godwit_codes::State::Succeeded, None, None)
            .await
            .unwrap();
        runs.push(r.id);
    }
    let admin = issue(
        &store,
        "admin",
        Role::Admin,
        None,
        Duration::from_secs(3600),
    )
    .await;
    let app = godwit_server::app(store, Secret::from_bytes(SECRET));
    let rows = |page: &str| page.matches("<tr data-run=").count();
    let (_, first, _) = answer(&app, get(&format!("/migrations/{}", m.id), Some(&admin))).await;
    let first = first.as_str().unwrap().to_string();
    assert_eq!(rows(&first), 50);
    assert!(
        first.contains("53 runs, newest first; 1-50 shown"),
        "{first}"
    );
    assert!(first.contains("runs_offset=50"), "{first}");
    let (_, second, _) = answer(
        &app,
        get(
            &format!("/migrations/{}?runs_offset=50", m.id),
            Some(&admin),
        ),
    )
    .await;
    let second = second.as_str().unwrap().to_string();
    assert_eq!(rows(&second), 3);
    assert!(second.contains(&runs[0]), "the oldest run on the last page");
    // The oldest run, asked for by a link from the first page's address.
    let (_, chosen, _) = answer(
        &app,
        get(
            &format!("/migrations/{}?run={}", m.id, runs[0]),
            Some(&admin),
        ),
    )
    .await;
    let chosen = chosen.as_str().unwrap();
    assert!(
        chosen.contains(&format!(
            "Files by status code, run <span class=\"code\">{}",
            runs[0]
        )),
        "{chosen}"
    );
}
