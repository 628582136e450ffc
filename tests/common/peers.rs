//! Independent peers for the interop and load tests: the Python
//! `websockets` and Node `ws` servers of tests/interop (see py_server.py),
//! started from Rust. Each peer exits when the test process does, because
//! its stdin is a pipe this process holds.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Ports {
    pub plain: u16,
    pub good: u16,
    pub wronghost: u16,
    pub expired: u16,
}

pub struct Peer {
    pub name: &'static str,
    pub ports: Ports,
    /// Kept so its stdin stays open: the server exits when this process does.
    _process: Child,
}

impl Peer {
    pub fn ws(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.ports.plain)
    }
}

pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

pub fn certs() -> PathBuf {
    interop_dir().join("certs")
}

pub fn cert(name: &str) -> String {
    certs().join(name).to_str().unwrap().to_owned()
}

/// What is missing for the interop tests, if anything.
pub fn missing() -> Option<String> {
    let dir = interop_dir();
    let need = [
        ("venv/bin/python", "Python websockets venv"),
        ("node_modules/ws/package.json", "Node ws"),
        ("certs/expired.pem", "test certificates"),
    ];
    let absent: Vec<&str> = need.iter().filter(|(p, _)| !dir.join(p).exists()).map(|(_, what)| *what).collect();
    if absent.is_empty() {
        return None;
    }
    Some(format!("{} not installed: run tests/interop/setup.sh", absent.join(", ")))
}

fn port(json: &str, key: &str) -> u16 {
    let at = json.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no '{key}' in {json}"));
    json[at + key.len() + 3..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad port for '{key}' in {json}"))
}

pub fn spawn(name: &'static str, mut cmd: Command) -> Peer {
    cmd.current_dir(interop_dir()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start the {name} server: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(!line.is_empty(), "the {name} server exited before listening");
    let ports = Ports {
        plain: port(&line, "plain"),
        good: port(&line, "good"),
        wronghost: port(&line, "wronghost"),
        expired: port(&line, "expired"),
    };
    Peer { name, ports, _process: child }
}

pub fn start_python() -> Peer {
    let mut py = Command::new(interop_dir().join("venv/bin/python"));
    py.arg("py_server.py").arg(certs()).env("WEBSOCKETS_MAX_FRAGMENTS", "1000000");
    spawn("python-websockets", py)
}

pub fn start_node() -> Peer {
    let mut node = Command::new("node");
    node.arg("node_server.js").arg(certs());
    spawn("node-ws", node)
}

/// A missing prerequisite: a failure when `CI=true`, otherwise a loud skip
/// (straight to stderr: the test harness captures `eprintln!`).
pub fn unavailable(what: &str, why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what}: prerequisite missing with CI=true: {why}");
    }
    let loud = format!("\n*** {what} SKIPPED: {why} ***\n\n");
    let _ = std::io::stderr().write_all(loud.as_bytes());
}
