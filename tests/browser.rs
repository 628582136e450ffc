//! A real browser: Debian's headless Chromium opens the server's built-in
//! page with `?endpoint=echo&send=...`; the page connects to
//! `/websockets/v4/service/echo`, sends the text, and logs what comes back
//! into `<div id="log">`. The test reads the DOM Chromium dumps and the
//! events the wsc handler saw.
//!
//! Chromium only talks to 127.0.0.1: every other host name resolves to
//! nothing (`--host-resolver-rules`), and its background services
//! (component updates, sync, QUIC, first-run) are off.
//!
//! `scripts/test.sh` installs `chromium` with apt. Without it this test
//! fails when `CI=true` and otherwise says loudly that it was skipped.
//!
//! The README's screenshot is made by the ignored test `screenshot`:
//!
//!     cargo test --release --test browser -- --ignored screenshot
//!
//! which writes `docs/browser.png`.

mod common;

use common::peers;
use crossbeam_channel::{unbounded, Receiver};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wsc::{Connection, Event, Message, Server};

const DEADLINE: Duration = Duration::from_secs(90);
const TEXT: &str = "hello from chromium";

/// The Chromium binary, if installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// A fresh, empty directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("wsc-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Registers `name` as a handler that echoes every message on the server
/// side and reports every server-side event.
fn echo_handler(name: &str) -> Receiver<(String, Event)> {
    let (tx, rx) = unbounded();
    wsc::register_handler(name, move |conn: &Connection, event: &Event| {
        let Some(endpoint) = conn.endpoint() else { return };
        if let Event::Message(m) = event {
            let _ = conn.send_message(m.clone());
        }
        let _ = tx.send((endpoint.to_owned(), event.clone()));
    })
    .unwrap();
    rx
}

/// The page's URL: connect to `echo` and send [`TEXT`].
fn page_url(server: &Server) -> String {
    format!("http://{}/?endpoint=echo&send={}", server.local_addr(), TEXT.replace(' ', "%20"))
}

/// Runs headless Chromium on `url` with `extra` flags; its stdout. Virtual
/// time lets the page run for up to 5 s of its own time, but advances only
/// while nothing is loading, so the WebSocket round trip completes first.
fn run_chromium(chromium: &Path, url: &str, extra: &[String]) -> String {
    let profile = TempDir::new("chromium-profile");
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-breakpad",
        "--disable-domain-reliability",
        "--disable-features=MediaRouter,OptimizationHints,Translate",
        // Any host but the loopback address resolves to nothing.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.0.display()))
    .args(extra)
    .arg(url)
    .env("HOME", &profile.0)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium still running after {DEADLINE:?}: {}", err.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "chromium: {status}\n{err}");
    out
}

/// The server and its handler's events, or `None` (loudly) without Chromium.
fn setup(handler: &str) -> Option<(PathBuf, Server, Receiver<(String, Event)>)> {
    let Some(chromium) = chromium() else {
        peers::unavailable("BROWSER TEST", "chromium is not installed (apt-get install chromium)");
        return None;
    };
    let seen = echo_handler(handler);
    let server = Server::bind("127.0.0.1:0").endpoint("echo", handler).start().unwrap();
    Some((chromium, server, seen))
}

#[test]
fn chromium_talks_to_a_wsc_endpoint() {
    let Some((chromium, server, seen)) = setup("browser-test/echo") else { return };
    let dom = run_chromium(&chromium, &page_url(&server), &["--dump-dom".into()]);
    let log = dom.split("<div id=\"log\">").nth(1).unwrap_or_else(|| panic!("no log in the page:\n{dom}"));
    let log = &log[..log.find("</div>\n").unwrap_or(log.len())];
    let url = server.url("echo");
    for line in [format!("connecting to {url}"), "open".into(), format!("sent: {TEXT}"), format!("received: {TEXT}")] {
        assert!(log.contains(&format!(">{line}</div>")), "'{line}' not in the page's log:\n{log}");
    }
    // The wsc handler saw the browser's connection on `echo` and its message.
    let events: Vec<(String, Event)> = {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut events = Vec::new();
        while let Ok(e) = seen.recv_deadline(deadline) {
            let terminal = e.1.is_terminal();
            events.push(e);
            if terminal {
                break;
            }
        }
        events
    };
    assert!(events.iter().all(|(endpoint, _)| endpoint == "echo"), "{events:?}");
    assert!(matches!(events.first(), Some((_, Event::Open))), "{events:?}");
    assert!(events.iter().any(|(_, e)| *e == Event::Message(Message::Text(TEXT.into()))), "{events:?}");
    server.stop().unwrap();
}

/// Writes the README's screenshot, `docs/browser.png` (900×600).
#[test]
#[ignore = "writes docs/browser.png: run with --ignored screenshot"]
fn screenshot() {
    let Some((chromium, server, _seen)) = setup("browser-test/screenshot") else { return };
    let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/browser.png");
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&png);
    run_chromium(
        &chromium,
        &page_url(&server),
        &[format!("--screenshot={}", png.display()), "--window-size=900,600".into(), "--hide-scrollbars".into()],
    );
    let bytes = std::fs::read(&png).expect("chromium wrote no screenshot");
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    eprintln!("wrote {} ({} bytes)", png.display(), bytes.len());
    server.stop().unwrap();
}
