//! A fault-injecting HTTP proxy on loopback, put between godwit and a test server.
//!
//! It forwards each request to the server on a fresh connection (`Connection: close` both
//! ways) and, on a schedule the test chooses, answers instead with a 503, a 429 with
//! Retry-After, drops the connection, or stalls before answering. It counts requests by method.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// 503 Slow Down, as S3 answers under load.
    Unavailable,
    /// 429 with `Retry-After: 1`.
    RateLimited,
    /// Close the connection without an answer.
    Drop,
    /// Wait this long, then forward.
    Stall(Duration),
    /// Forward with one byte of the body changed, as a faulty network or middlebox would.
    Corrupt,
}

/// Decides the fault for the n-th request (from 0), its method and its path.
pub type Rule = dyn Fn(u64, &str, &str) -> Fault + Send + Sync;

pub struct Proxy {
    pub url: String,
    pub counts: Arc<Mutex<BTreeMap<String, u64>>>,
    pub faults: Arc<Mutex<BTreeMap<String, u64>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) on a free loopback port.
    pub fn start(upstream: &str, rule: Box<Rule>) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let faults = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let seq = Arc::new(AtomicU64::new(0));
        let rule: Arc<Rule> = Arc::from(rule);
        {
            let (counts, faults, stop) = (counts.clone(), faults.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (upstream, rule, seq) = (upstream.clone(), rule.clone(), seq.clone());
                    let (counts, faults) = (counts.clone(), faults.clone());
                    std::thread::spawn(move || {
                        let _ = handle(conn, &upstream, &*rule, &seq, &counts, &faults);
                    });
                }
            });
        }
        Proxy {
            url,
            counts,
            faults,
            stop,
        }
    }

    /// Requests seen with `method`.
    pub fn count(&self, method: &str) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// Faults injected of each kind.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.faults.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// Reads one request: head and body (by Content-Length, or chunked as sent).
fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            body.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    }
    Ok(Some((head, body)))
}

fn with_connection_close(head: &str) -> String {
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        if line.is_empty() {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
        if i == 0 {
            out.push_str("Connection: close\r\n");
        }
    }
    out.push_str("\r\n");
    out
}

fn handle(
    client: TcpStream,
    upstream: &str,
    rule: &Rule,
    seq: &AtomicU64,
    counts: &Mutex<BTreeMap<String, u64>>,
    faults: &Mutex<BTreeMap<String, u64>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let Some((head, body)) = read_request(&mut reader)? else {
        return Ok(());
    };
    let mut parts = head.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    *counts.lock().unwrap().entry(method.clone()).or_default() += 1;
    let n = seq.fetch_add(1, Ordering::Relaxed);
    let fault = rule(n, &method, &path);
    if fault != Fault::Pass {
        let name = match fault {
            Fault::Stall(_) => "stall".to_string(),
            f => format!("{f:?}").to_lowercase(),
        };
        *faults.lock().unwrap().entry(name).or_default() += 1;
    }
    let answer = |status: &str, extra: &str, code: &str| {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
        );
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match fault {
        Fault::Unavailable => {
            client.write_all(answer("503 Service Unavailable", "", "SlowDown").as_bytes())?;
            return Ok(());
        }
        Fault::RateLimited => {
            client.write_all(
                answer(
                    "429 Too Many Requests",
                    "Retry-After: 1\r\n",
                    "TooManyRequests",
                )
                .as_bytes(),
            )?;
            return Ok(());
        }
        Fault::Drop => {
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Fault::Stall(d) => std::thread::sleep(d),
        Fault::Pass | Fault::Corrupt => {}
    }
    let mut body = body;
    if fault == Fault::Corrupt
        && let Some(b) = body.iter_mut().rev().find(|b| b.is_ascii_alphanumeric())
    {
        // A byte of content (not of chunk framing): the length stays, the data changes.
        *b ^= 0x01;
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(with_connection_close(&head).as_bytes())?;
    up.write_all(&body)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    // Tell the client this connection ends with this answer.
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    client.write_all(with_connection_close(&head).as_bytes())?;
    client.write_all(&response[split..])?;
    Ok(())
}
