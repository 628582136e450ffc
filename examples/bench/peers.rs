//! The libraries users weigh wsc against, measured as rows of this benchmark:
//! libwebsockets (C, `c-examples/bench_lws.c`) and websocketpp (C++ over
//! standalone asio, `c-examples/bench_wspp.cpp`).
//!
//! A ratio to raw tungstenite only compares libraries when every client does
//! the same work against the same peer in the same run, so the peer clients
//! are programs this benchmark starts (`scripts/bench.sh` builds them and
//! passes `--lws PATH` / `--wspp PATH`), alternately with the other rows, at
//! the same sizes and counts. Each runs in its own process, so its
//! `getrusage` is its own, and inherits this process's CPU pinning, like the
//! C twin. They measure the way the Rust rows do (`c-examples/benchutil.h`)
//! and print one `RESULT` line in the format this side already parses.
//!
//! Each library is used in its natural shape: one event-loop thread serving
//! every connection. "In callback" sends from its receive callback (for
//! libwebsockets: asks for `WRITEABLE` there, its rule for writes); "app
//! thread" sends from a second thread that waits for each echo.

use crate::scale::Scale;
use crate::stats::{PingPong, Transfer};
use std::process::Command;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Lws,
    Wspp,
}

impl Peer {
    pub const ALL: [Peer; 2] = [Peer::Lws, Peer::Wspp];

    pub fn name(self) -> &'static str {
        match self {
            Peer::Lws => "libwebsockets",
            Peer::Wspp => "websocketpp",
        }
    }

    /// The ping-pong row: who sends the next message.
    pub fn pingpong_label(self, in_callback: bool) -> &'static str {
        match (self, in_callback) {
            (Peer::Lws, true) => "libwebsockets, in callback (1 service thread)",
            (Peer::Lws, false) => "libwebsockets, app thread (+ 1 service thread)",
            (Peer::Wspp, true) => "websocketpp, in handler (1 asio thread)",
            (Peer::Wspp, false) => "websocketpp, app thread (+ 1 asio thread)",
        }
    }

    /// The streaming and scale rows: one event loop for everything.
    pub fn loop_label(self) -> &'static str {
        match self {
            Peer::Lws => "libwebsockets (1 service thread, all sockets)",
            Peer::Wspp => "websocketpp (1 asio thread, all sockets)",
        }
    }
}

/// The client programs `scripts/bench.sh` built; rows whose program is
/// missing are left out (and the report says so).
#[derive(Default)]
pub struct Programs {
    /// `c-examples/bench.c`, for rows (d).
    pub c_twin: Option<String>,
    pub lws: Option<String>,
    pub wspp: Option<String>,
}

impl Programs {
    pub fn peer(&self, p: Peer) -> Option<&str> {
        match p {
            Peer::Lws => self.lws.as_deref(),
            Peer::Wspp => self.wspp.as_deref(),
        }
    }

    /// The peers that can run here.
    pub fn peers(&self) -> Vec<Peer> {
        Peer::ALL.into_iter().filter(|p| self.peer(*p).is_some()).collect()
    }
}

/// Runs `path args...` to the end and returns its `RESULT` line.
pub fn result_line(path: &str, args: &[String]) -> Result<String, String> {
    let out = Command::new(path).args(args).output().map_err(|e| format!("{path}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find(|l| l.starts_with("RESULT")) {
        Some(line) if out.status.success() => Ok(line.to_owned()),
        _ => Err(format!(
            "{path} {} printed no RESULT line (exit {:?}): {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn run<T>(path: &str, mode: &str, url: &str, size: usize, n: u64, parse: fn(&str) -> Option<T>) -> Result<T, String> {
    run_with(path, &[mode.to_owned(), url.to_owned(), size.to_string(), n.to_string()], parse)
}

fn run_with<T>(path: &str, args: &[String], parse: fn(&str) -> Option<T>) -> Result<T, String> {
    let line = result_line(path, args)?;
    parse(&line).ok_or_else(|| format!("{path}: cannot read {line:?}"))
}

pub fn pingpong(path: &str, in_callback: bool, url: &str, size: usize, n: usize) -> Result<PingPong, String> {
    let mode = if in_callback { "pingpong" } else { "pingpong-thread" };
    run(path, mode, url, size, n as u64, PingPong::parse)
}

pub fn stream(path: &str, url: &str, size: usize, m: u64) -> Result<Transfer, String> {
    run(path, "stream", url, size, m, Transfer::parse)
}

/// `n` idle connections; the echo after the idle period is 16 bytes each,
/// as in the Rust scale rows.
pub fn scale(path: &str, url: &str, n: usize, idle: Duration) -> Result<Scale, String> {
    let args = ["scale".to_owned(), url.to_owned(), "16".into(), n.to_string(), idle.as_millis().to_string()];
    run_with(path, &args, Scale::parse)
}
