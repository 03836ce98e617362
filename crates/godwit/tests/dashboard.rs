//! The web dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by scripts/servers.sh), driven over WebDriver, against a real `godwit serve` and
//! agent. Each test saves a screenshot of the page when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt as _;
use serde_json::{Value, json};
use support::world::*;

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver: run `bash scripts/test.sh`, which installs Debian's chromium-driver",
        );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-default-apps"]
        }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session with Chromium")
}

/// Runs `steps` in a browser; on failure saves a screenshot (target/dashboard-NAME.png)
/// before the test fails.
async fn in_browser<F, Fut>(name: &str, steps: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let driver = driver();
    let client = browser(&driver).await;
    let outcome = std::panic::AssertUnwindSafe(steps(client.clone()))
        .catch_unwind()
        .await;
    if let Err(panic) = outcome {
        if let Ok(png) = client.screenshot().await {
            let path = screenshot_dir().join(format!("dashboard-{name}.png"));
            let _ = std::fs::write(&path, png);
            eprintln!("screenshot of the failing page: {}", path.display());
        }
        let _ = client.close().await;
        std::panic::resume_unwind(panic);
    }
    let _ = client.close().await;
}

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The path of the page the browser shows.
async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

/// Waits (10 s at most) until the browser shows the page at `want`: a click's navigation
/// ends after the click returns.
async fn wait_path(c: &Client, want: &str) {
    let start = Instant::now();
    loop {
        let now = path(c).await;
        if now == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the browser shows {now}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The element `css` names, once the page shows it (10 s at most).
async fn element(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
}

/// The text of the element `css` names, once the page shows it.
async fn text_of(c: &Client, css: &str) -> String {
    element(c, css).await.text().await.unwrap()
}

/// Clicks `css` and waits (10 s at most) until the browser shows the page that loads.
async fn click_and_load(c: &Client, css: &str) {
    c.execute("window.godwitOldPage = true", vec![])
        .await
        .unwrap();
    element(c, css).await.click().await.unwrap();
    let start = Instant::now();
    loop {
        let old = c
            .execute("return window.godwitOldPage === true", vec![])
            .await
            .map(|v| v == Value::Bool(true))
            .unwrap_or(true);
        let ready = c
            .execute("return document.readyState", vec![])
            .await
            .map(|v| v == "complete" || v == "interactive")
            .unwrap_or(false);
        if !old && ready {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "clicking {css} loaded no page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/signin")).await.unwrap();
    c.find(Locator::Css("textarea#token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    click_and_load(c, "main form button[type=submit]").await;
}

/// Every resource the page loaded, and every address it names, is this server's.
async fn nothing_from_elsewhere(c: &Client, base: &str) {
    let loaded = c
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .unwrap();
    for url in loaded.as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(url.starts_with(base), "the page loaded {url}");
    }
    let named = c
        .execute(
            "return Array.from(document.querySelectorAll('[src],[href],[action]'))\
             .map(e => new URL(e.getAttribute('src') || e.getAttribute('href') \
                               || e.getAttribute('action'), document.baseURI).href)",
            vec![],
        )
        .await
        .unwrap();
    for url in named.as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(url.starts_with(base), "the page names {url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_look_around_and_sign_out() {
    let mut w = tokio::task::block_in_place(|| {
        let mut w = World::new();
        w.start_agent_and_wait();
        w
    });
    let base = w.url();
    let (admin, agent_token) = (w.admin.clone(), w.agent_token.clone());
    let state_dir = w.root.clone();
    in_browser("sign-in", |c| async move {
        // Not signed in: every page sends to the sign-in form.
        for page in ["/", "/codes", "/codes/9080", "/agents"] {
            c.goto(&format!("{base}{page}")).await.unwrap();
            assert_eq!(path(&c).await, "/signin", "{page} without a session");
        }
        // A token that is not one: the API's code and words, and still no session.
        sign_in(&c, &base, "not-a-token").await;
        let alert = element(&c, "[role=alert]").await;
        let code = alert
            .find(Locator::Css("a.code"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(code.starts_with("70"), "the refusal's code: {code}");
        // An agent's token signs nobody in.
        sign_in(&c, &base, &agent_token).await;
        let alert = c
            .find(Locator::Css("[role=alert]"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(alert.contains("agent"), "{alert}");
        // The admin's: the overview with the agent, its state and version.
        sign_in(&c, &base, &admin).await;
        wait_path(&c, "/").await;
        let row = text_of(&c, "tr[data-agent]").await;
        assert!(row.contains("agent-e2e") && row.contains("901"), "{row}");
        nothing_from_elsewhere(&c, &base).await;
        // The catalog: search by number, open the code, read what to do.
        c.find(Locator::LinkText("Codes"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_path(&c, "/codes").await;
        let q = element(&c, "input#q").await;
        q.send_keys("9080").await.unwrap();
        c.find(Locator::Css("form[role=search] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let start = Instant::now();
        while c.current_url().await.unwrap().query() != Some("q=9080") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the search did not load"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let listed = text_of(&c, "main table tbody").await;
        assert_eq!(listed.lines().count(), 1, "searching 9080 lists: {listed}");
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::LinkText("9080"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_path(&c, "/codes/9080").await;
        let text = text_of(&c, "main").await;
        let info = godwit_codes::Code::lookup("9080").unwrap().info();
        assert!(text.contains(info.name), "{text}");
        assert!(text.contains(info.remediation), "{text}");
        nothing_from_elsewhere(&c, &base).await;
        // By name, in lower case.
        c.goto(&format!("{base}/codes?q=copy_inprogress"))
            .await
            .unwrap();
        let found = c
            .find(Locator::Css("main table tbody"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(found.contains("COPY_INPROGRESS"), "{found}");
        // Register an agent: its token shown once, with the command that starts it; started
        // with them, it becomes active; deactivated, then deleted.
        c.goto(&format!("{base}/agents")).await.unwrap();
        element(&c, "input#name")
            .await
            .send_keys("from-the-browser")
            .await
            .unwrap();
        click_and_load(&c, "main form.stack button").await;
        let notice = element(&c, "[data-registered]").await;
        let id = notice.attr("data-registered").await.unwrap().unwrap();
        let token = element(&c, "textarea#agent-token")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        let command = text_of(&c, "pre[data-command]").await;
        assert!(
            command.starts_with(&format!(
                "GODWIT_AGENT_TOKEN={token} godwit agent --server {base}"
            )),
            "{command}"
        );
        let started = tokio::task::block_in_place(|| {
            let mut agent = support::godwit();
            agent
                .args(["agent", "--server", &base, "--state-dir"])
                .arg(state_dir.join("browser-agent"))
                .env("GODWIT_AGENT_TOKEN", &token)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            Proc(agent.spawn().unwrap())
        });
        let row = format!("tr[data-agent='{id}']");
        let start = Instant::now();
        loop {
            c.goto(&format!("{base}/agents")).await.unwrap();
            let text = text_of(&c, &row).await;
            if text.contains("901") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "never active: {text}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        drop(started);
        click_and_load(&c, &format!("{row} form[action$='/deactivate'] button")).await;
        let text = text_of(&c, &row).await;
        assert!(text.contains("902"), "not deactivated: {text}");
        click_and_load(&c, &format!("{row} form[action$='/delete'] button")).await;
        assert!(c.find(Locator::Css(&row)).await.is_err(), "not deleted");
        nothing_from_elsewhere(&c, &base).await;
        // Sign out: the pages refuse again.
        c.find(Locator::Css("header form button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_path(&c, "/signin").await;
        for page in ["/", "/codes", "/agents"] {
            c.goto(&format!("{base}{page}")).await.unwrap();
            assert_eq!(path(&c).await, "/signin", "{page} after signing out");
        }
    })
    .await;
    drop(w.agent.take());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_follows_a_running_copy_by_itself() {
    let (w, m) = tokio::task::block_in_place(|| {
        let mut w = World::new();
        w.start_agent_and_wait();
        // 30 files of 200 kB at 400 kB/s, one at a time (files end one by one, not eight
        // together): about 15 s, several updates of the page.
        let src = source(&w.root, 30, 200_000);
        let m = w.migration(&src, json!({"bwlimit": "400K", "transfers": 1}));
        w.scanned(&m);
        (w, m)
    });
    let base = w.url();
    let admin = w.admin.clone();
    let w = std::sync::Arc::new(w);
    let world = w.clone();
    in_browser("live", |c| async move {
        sign_in(&c, &base, &admin).await;
        wait_path(&c, "/").await;
        element(&c, "table[data-live]").await;
        let run = tokio::task::block_in_place(|| world.start(&m, "copy", "927"));
        // The page is not reloaded: its script follows the run's progress.
        let row = format!("tr[data-run='{run}']");
        let mut seen_files = Vec::new();
        let mut bar = Vec::new();
        let mut observed: Vec<String> = Vec::new();
        let start = Instant::now();
        loop {
            // Read in one go: the script replaces the rows every two seconds.
            let cells = c
                .execute(
                    "const r = document.querySelector(arguments[0]); \
                     if (!r) { return null; } \
                     const p = r.querySelector('progress'); \
                     return Array.from(r.cells).map(c => c.textContent) \
                       .concat([p ? p.value / p.max : -1])",
                    vec![json!(row)],
                )
                .await
                .unwrap();
            if let Some(cells) = cells.as_array().filter(|c| c.len() == 9) {
                let shown = format!("{cells:?}");
                if observed.last() != Some(&shown) {
                    observed.push(shown);
                }
                let status = cells[2].as_str().unwrap_or("");
                let files: i64 = cells[3].as_str().unwrap_or("").parse().unwrap_or(-1);
                let filled = cells[8].as_f64().unwrap_or(-1.0);
                if status.contains("922") {
                    // It ended, and stays a while with how: its bar full.
                    assert_eq!(filled, 1.0, "{observed:#?}");
                    assert_eq!(cells[7], "ended", "{observed:#?}");
                    break;
                }
                if status.contains("RUNNING") && bar.last() != Some(&filled) && filled >= 0.0 {
                    bar.push(filled);
                }
                if status.contains("RUNNING") && seen_files.last() != Some(&files) {
                    seen_files.push(files);
                    // The README's picture of the overview: a copy under way.
                    if seen_files.len() == 2
                        && std::env::var_os("GODWIT_UPDATE_SCREENSHOTS").is_some()
                    {
                        let png = c.screenshot().await.unwrap();
                        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs");
                        std::fs::write(docs.join("dashboard-overview.png"), png).unwrap();
                    }
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the live table never showed the copy end: {seen_files:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(
            seen_files.len() >= 3,
            "the progress did not move on the page: {seen_files:?} {observed:#?}"
        );
        assert!(
            bar.len() >= 3 && bar.windows(2).all(|w| w[0] < w[1]),
            "the bar did not move forward: {bar:?} {observed:#?}"
        );
        // Against the scan's total from the start, not what the copy's walk had found.
        assert!(bar[0] < 0.5, "{bar:?} {observed:#?}");
        let ended: Value = tokio::task::block_in_place(|| world.wait_end(&run, "922"));
        assert_eq!(ended["files"], 30, "{ended}");
        assert_eq!(
            (ended["files_found"].clone(), ended["bytes_found"].clone()),
            (json!(30), json!(6_000_000)),
            "{ended}"
        );
        // The migrations' table says so once the page is loaded again.
        c.refresh().await.unwrap();
        let last = text_of(&c, &format!("tr[data-migration='{m}']")).await;
        assert!(last.contains("922"), "{last}");
        // The migration's page: its runs, the copy's files by code, its copy log.
        c.find(Locator::LinkText(&m))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_path(&c, &format!("/migrations/{m}")).await;
        let runs = text_of(&c, "main table tbody").await;
        assert!(runs.contains("922") && runs.contains("932"), "{runs}");
        // The copy's throughput over its 15 s or so, drawn from the progress it reported.
        let points = element(&c, "figure.chart svg")
            .await
            .attr("data-points")
            .await
            .unwrap()
            .unwrap();
        assert!(points.parse::<u32>().unwrap() >= 2, "{points} points");
        let counts = text_of(&c, "table[data-counts]").await;
        assert!(
            counts.contains("AZSM0000") && counts.contains("30"),
            "{counts}"
        );
        let total = |c: Client| async move {
            element(&c, "[data-total]")
                .await
                .attr("data-total")
                .await
                .unwrap()
                .unwrap()
        };
        assert_eq!(total(c.clone()).await, "30");
        // Filtered by path: the ten files under d1/.
        element(&c, "input#path")
            .await
            .send_keys("d1/")
            .await
            .unwrap();
        c.find(Locator::Css("form[role=search] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let start = Instant::now();
        while !c
            .current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .contains("path=d1")
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the filter did not load"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(total(c.clone()).await, "10");
        let rows = text_of(&c, "table[data-copylog] tbody").await;
        assert!(rows.lines().all(|l| l.starts_with("d1/")), "{rows}");
        // The same records as CSV, downloaded by the page's link.
        let href = c
            .find(Locator::LinkText("Download as CSV"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        let csv = c
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 fetch(arguments[0]).then(r => r.text()).then(done)",
                vec![json!(href)],
            )
            .await
            .unwrap();
        let csv = csv.as_str().unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "path,code,status,message,size");
        assert_eq!(lines.len(), 11, "{csv}");
        assert!(
            lines[1..]
                .iter()
                .all(|l| l.starts_with("d1/") && l.contains(",AZSM0000,SUCCESS,")),
            "{csv}"
        );
        nothing_from_elsewhere(&c, &base).await;
        // A copy started from the page's button: the page shows its run; it ends (922) with
        // nothing new to copy.
        c.goto(&format!("{base}/migrations/{m}")).await.unwrap();
        click_and_load(&c, "button[data-command='copy']").await;
        let query = c
            .current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .to_string();
        let again = query
            .strip_prefix("run=")
            .unwrap_or_else(|| panic!("no run in {query}"))
            .to_string();
        assert_ne!(again, run);
        let ended: Value = tokio::task::block_in_place(|| world.wait_end(&again, "922"));
        assert_eq!(ended["command"], "copy", "{ended}");
        c.refresh().await.unwrap();
        let row = text_of(&c, &format!("tr[data-run='{again}']")).await;
        assert!(row.contains("922"), "{row}");
    })
    .await;
    drop(w);
}

/// The regular files under `root`, as paths relative to it.
fn files_under(root: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                todo.push(e.path());
            } else if kind.is_file() {
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_deletion_is_reviewed_and_confirmed_on_the_page() {
    let (w, m, src, scan_run) = tokio::task::block_in_place(|| {
        let mut w = World::new();
        w.start_agent_and_wait();
        let src = source(&w.root, 30, 1000);
        // Something a scan reports as not copyable as it is, with its path.
        std::os::unix::fs::symlink("d0/f0.bin", src.join("link-to-f0")).unwrap();
        let m = w.migration(&src, json!({"syncDeletes": true}));
        let scan = w.start(&m, "scan", "937");
        w.wait_end(&scan, "932");
        let copy = w.start(&m, "copy", "927");
        w.wait_end(&copy, "922");
        (w, m, src, scan)
    });
    let base = w.url();
    let admin = w.admin.clone();
    let w = std::sync::Arc::new(w);
    let world = w.clone();
    in_browser("review", |c| async move {
        sign_in(&c, &base, &admin).await;
        wait_path(&c, "/").await;
        // The scan's report: sizes, and the link it found, named by its code with its path.
        c.goto(&format!("{base}/migrations/{m}?run={scan_run}"))
            .await
            .unwrap();
        let report = text_of(&c, "section[data-scan-report]").await;
        assert!(report.contains("30 files in 3 folders"), "{report}");
        let histogram = text_of(&c, "table[data-histogram] tbody").await;
        assert!(histogram.contains("4 KiB 30"), "{histogram}");
        let problems = text_of(&c, "table[data-problems]").await;
        assert!(
            problems.contains("AZSM2021") && problems.contains("link-to-f0"),
            "{problems}"
        );
        // A mass deletion at the source: the folder d1 (10 files) and two more.
        let mut gone: Vec<String> = (0..30)
            .filter(|i| i % 3 == 1)
            .map(|i| format!("d1/f{i}.bin"))
            .collect();
        gone.extend(["d0/f3.bin".to_string(), "d2/f5.bin".to_string()]);
        std::fs::remove_dir_all(src.join("d1")).unwrap();
        std::fs::remove_file(src.join("d0/f3.bin")).unwrap();
        std::fs::remove_file(src.join("d2/f5.bin")).unwrap();
        // A true-up started by its button pauses before deleting anything (9080).
        c.goto(&format!("{base}/migrations/{m}")).await.unwrap();
        click_and_load(&c, "button[data-command='sync']").await;
        let query = c
            .current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .to_string();
        let sync = query.strip_prefix("run=").unwrap().to_string();
        let r = tokio::task::block_in_place(|| world.wait_end(&sync, "955"));
        assert_eq!(r["error"]["code"], "9080", "{r}");
        c.goto(&format!("{base}/migrations/{m}")).await.unwrap();
        let section = element(&c, &format!("section[data-review='{sync}']")).await;
        let text = section.text().await.unwrap();
        assert!(text.contains("9080"), "{text}");
        // The list shown is exactly what went from the source.
        let listed = c
            .execute(
                "return Array.from(document.querySelectorAll('[data-deletes-list] li'))\
                 .map(l => l.textContent)",
                vec![],
            )
            .await
            .unwrap();
        let mut listed: Vec<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        listed.sort();
        gone.sort();
        assert_eq!(listed, gone);
        // Nothing is deleted yet; resume is not offered: the confirmation is.
        let before = tokio::task::block_in_place(|| files_under(&world.target_tree()));
        assert_eq!(before.len(), 30, "{before:?}");
        assert!(
            c.find(Locator::Css("button[data-action='resume']"))
                .await
                .is_err()
        );
        // Another command meanwhile is refused, in the API's code and words.
        click_and_load(&c, "button[data-command='copy']").await;
        let alert = element(&c, "[role=alert]").await;
        let code = alert
            .find(Locator::Css("a.code"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let refusal = alert.text().await.unwrap();
        assert_eq!(code, "671", "{refusal}");
        assert!(
            refusal.contains(&format!("Stop the true-up on migration {m} first")),
            "{refusal}"
        );
        // Confirmed: exactly those files go at the target, and the run ends (952).
        let confirm = element(&c, "button[data-confirm]").await;
        assert_eq!(
            confirm.text().await.unwrap(),
            "Delete these 12 files at the target"
        );
        click_and_load(&c, "button[data-confirm]").await;
        let r = tokio::task::block_in_place(|| world.wait_end(&sync, "952"));
        assert!(r["error"].is_null(), "{r}");
        let after = tokio::task::block_in_place(|| files_under(&world.target_tree()));
        let went: Vec<String> = before.difference(&after).cloned().collect();
        assert_eq!(went, gone, "what went at the target");
        assert_eq!(
            after,
            files_under(&src),
            "the target holds the source's files"
        );
        c.goto(&format!("{base}/migrations/{m}")).await.unwrap();
        assert!(
            c.find(Locator::Css("section[data-review]")).await.is_err(),
            "still offered for review after the confirmation"
        );
        // The audit log says who did what from the page, as for the API: the true-up started,
        // the copy refused (671), the deletions confirmed.
        let (_, audit) =
            tokio::task::block_in_place(|| world.api("GET", "/v1/audit?limit=20", None));
        let done: Vec<(String, String, String)> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["target"] == format!("/migrations/{m}/command"))
            .map(|e| {
                let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (text("subject"), text("action"), text("outcome"))
            })
            .collect();
        let cli = || "cli".to_string();
        assert_eq!(
            done,
            [
                (
                    cli(),
                    "deletions.confirm".to_string(),
                    "HTTP303".to_string()
                ),
                (cli(), "command.start copy".to_string(), "671".to_string()),
                (
                    cli(),
                    "command.start sync".to_string(),
                    "HTTP303".to_string()
                ),
            ],
            "{audit}"
        );
        nothing_from_elsewhere(&c, &base).await;
    })
    .await;
    drop(w);
}

/// Chooses `value` in the select `css`.
async fn choose(c: &Client, css: &str, value: &str) {
    element(c, &format!("{css} option[value='{value}']"))
        .await
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_a_migration_are_made_on_the_pages_with_the_folder_picker() {
    let (w, src) = tokio::task::block_in_place(|| {
        let mut w = World::new();
        w.start_agent_and_wait();
        let src = source(&w.root, 30, 500);
        std::fs::create_dir_all(src.join("d1/nested")).unwrap();
        (w, src)
    });
    let base = w.url();
    let admin = w.admin.clone();
    let agent = w.agent_id.clone();
    let bucket = w.bucket.clone();
    let w = std::sync::Arc::new(w);
    let world = w.clone();
    in_browser("create", |c| async move {
        sign_in(&c, &base, &admin).await;
        wait_path(&c, "/").await;
        // Two endpoints from the endpoints page; a bad URI is refused with the API's words.
        c.goto(&format!("{base}/endpoints")).await.unwrap();
        let add = |name: &'static str, kind: &'static str, uri: String| {
            let c = c.clone();
            async move {
                element(&c, "input#endpoint-name")
                    .await
                    .send_keys(name)
                    .await
                    .unwrap();
                choose(&c, "select#endpoint-kind", kind).await;
                element(&c, "input#endpoint-uri")
                    .await
                    .send_keys(&uri)
                    .await
                    .unwrap();
                click_and_load(&c, "form[action='/endpoints'] button").await;
            }
        };
        add("not-absolute", "local", "share/relative".into()).await;
        let alert = text_of(&c, "[role=alert]").await;
        assert!(alert.starts_with("605 "), "{alert}");
        c.goto(&format!("{base}/endpoints")).await.unwrap();
        add("the-share", "local", src.display().to_string()).await;
        add("the-bucket", "s3", format!("s3://{bucket}/share")).await;
        let listed = text_of(&c, "main table tbody").await;
        assert!(
            listed.contains("the-share") && listed.contains("the-bucket"),
            "{listed}"
        );
        let (_, eps) = tokio::task::block_in_place(|| world.api("GET", "/v1/endpoints", None));
        let id_of = |name: &str| {
            eps["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == name)
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (share, target) = (id_of("the-share"), id_of("the-bucket"));
        // A new migration: a project made on the page, the source browsed through the agent.
        c.find(Locator::LinkText("New migration"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_path(&c, "/migrations/new").await;
        element(&c, "input#project-name")
            .await
            .send_keys("from-the-browser")
            .await
            .unwrap();
        click_and_load(&c, "button[data-new-project]").await;
        choose(&c, "select#agent", &agent).await;
        choose(&c, "select#source", &share).await;
        click_and_load(&c, "button[data-browse]").await;
        let shown = text_of(&c, "section[data-folders]").await;
        assert!(shown.contains("232"), "{shown}");
        let folders = c
            .execute(
                "return Array.from(document.querySelectorAll('[data-folder]'))\
                 .map(a => a.dataset.folder)",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(folders, json!(["d0", "d1", "d2"]));
        click_and_load(&c, "a[data-folder='d1']").await;
        let folders = text_of(&c, "section[data-folders]").await;
        assert!(folders.contains("nested/"), "{folders}");
        let path = element(&c, "input#path").await.prop("value").await.unwrap();
        assert_eq!(path.as_deref(), Some("/d1"));
        nothing_from_elsewhere(&c, &base).await;
        choose(&c, "select#target", &target).await;
        click_and_load(&c, "button[data-create]").await;
        let at = path_of(&c).await;
        let m = at
            .strip_prefix("/migrations/")
            .unwrap_or_else(|| panic!("{at}"))
            .to_string();
        let (_, made) =
            tokio::task::block_in_place(|| world.api("GET", &format!("/v1/migrations/{m}"), None));
        assert_eq!(
            (
                made["source_path"].clone(),
                made["target_path"].clone(),
                made["agent_id"].clone()
            ),
            (json!("/d1"), json!("/"), json!(agent)),
            "{made}"
        );
        // It runs: scanned and copied from its page's buttons, the target holds d1's files.
        click_and_load(&c, "button[data-command='scan']").await;
        let scan = run_of(&c).await;
        tokio::task::block_in_place(|| world.wait_end(&scan, "932"));
        click_and_load(&c, "button[data-command='copy']").await;
        let copy = run_of(&c).await;
        let ended = tokio::task::block_in_place(|| world.wait_end(&copy, "922"));
        assert_eq!(ended["files"], 10, "{ended}");
        let copied = tokio::task::block_in_place(|| files_under(&world.target_tree()));
        let want: std::collections::BTreeSet<String> = (0..30)
            .filter(|i| i % 3 == 1)
            .map(|i| format!("f{i}.bin"))
            .collect();
        assert_eq!(copied, want);
    })
    .await;
    drop(w);
}

async fn path_of(c: &Client) -> String {
    path(c).await
}

/// The run a command button started: the page it loads names it.
async fn run_of(c: &Client) -> String {
    let query = c
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or("")
        .to_string();
    query
        .strip_prefix("run=")
        .unwrap_or_else(|| panic!("no run in {query}"))
        .to_string()
}

/// WebDriver's keys (the W3C spec's code points).
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_fit_a_phone_and_work_from_the_keyboard() {
    let (w, m, src) = tokio::task::block_in_place(|| {
        let mut w = World::new();
        w.start_agent_and_wait();
        let src = source(&w.root, 6, 100);
        let m = w.migration(&src, json!({}));
        w.scanned(&m);
        (w, m, src)
    });
    let base = w.url();
    let admin = w.admin.clone();
    let agent = w.agent_id.clone();
    in_browser("phone", |c| async move {
        sign_in(&c, &base, &admin).await;
        wait_path(&c, "/").await;
        // A phone's width: no page is wider than the screen (wide tables scroll inside).
        c.set_window_size(390, 844).await.unwrap();
        for page in [
            "/".to_string(),
            "/agents".into(),
            "/endpoints".into(),
            "/migrations/new".into(),
            format!("/migrations/{m}"),
            "/codes".into(),
            "/codes/9080".into(),
        ] {
            c.goto(&format!("{base}{page}")).await.unwrap();
            element(&c, "main h1").await;
            let (wide, screen) = (
                c.execute("return document.documentElement.scrollWidth", vec![])
                    .await
                    .unwrap(),
                c.execute("return window.innerWidth", vec![]).await.unwrap(),
            );
            assert!(
                wide.as_i64().unwrap() <= screen.as_i64().unwrap(),
                "{page} is {wide} px wide on a {screen} px screen"
            );
        }
        // The keyboard alone: from the top of the new-migration page, Tab reaches the button
        // that lists the source's folders, and Enter presses it.
        let (_, eps) = tokio::task::block_in_place(|| {
            api_call(&base, &admin, "GET", "/v1/endpoints", None, None)
        });
        let share = eps["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["uri"] == src.to_str().unwrap())
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        c.goto(&format!("{base}/migrations/new?agent={agent}&source={share}"))
            .await
            .unwrap();
        element(&c, "main h1").await;
        c.execute("window.godwitOldPage = true", vec![]).await.unwrap();
        let mut presses = 0;
        loop {
            let on = c
                .execute(
                    "return document.activeElement && document.activeElement.hasAttribute('data-browse')",
                    vec![],
                )
                .await
                .unwrap();
            if on == Value::Bool(true) {
                break;
            }
            presses += 1;
            assert!(presses < 40, "Tab never reached the folders button");
            c.active_element().await.unwrap().send_keys(TAB).await.unwrap();
        }
        c.active_element().await.unwrap().send_keys(ENTER).await.unwrap();
        let folders = text_of(&c, "section[data-folders]").await;
        assert!(folders.contains("d0/") && folders.contains("d2/"), "{folders}");
    })
    .await;
    drop(w);
}
