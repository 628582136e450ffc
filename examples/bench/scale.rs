//! Scale: thousands of idle connections to the peer's epoll listener.
//!
//! Each measurement runs in a fresh child process (`--scale-child`), because
//! a process that already opened and closed thousands of connections keeps
//! their freed heap and cached thread stacks, and the next RSS delta would
//! come out too small. The child reports one `RESULT` line; the peer
//! libraries' programs (`peers.rs`) report the same line the same way.

use crate::flow::Flow;
use crate::peers::{Peer, Programs};
use crate::raw;
use crate::sys::{other_threads_sched, raise_nofile, Footprint};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::{Bytes, Message};
use wsc::{Builder, Connection, Options};

/// Which client holds the connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// One thread holding every blocking tungstenite socket: the floor.
    Raw,
    /// wsc with default options.
    Wsc,
    /// wsc with `read_buffer_size` 4 KiB and `stack_size` 64 KiB.
    WscSmall,
    /// Another library's program: one event-loop thread for every connection.
    Peer(Peer),
}

impl Client {
    /// The clients `--scale-child` runs.
    pub const ALL: [Client; 3] = [Client::Raw, Client::Wsc, Client::WscSmall];

    pub fn arg(self) -> &'static str {
        match self {
            Client::Raw => "raw",
            Client::Wsc => "wsc",
            Client::WscSmall => "wsc-small",
            Client::Peer(p) => p.name(),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Client::Raw => "tungstenite (1 thread, all sockets)",
            Client::Wsc => "wsc, default options",
            Client::WscSmall => "wsc, read buffer 4 KiB, stack 64 KiB",
            Client::Peer(p) => p.loop_label(),
        }
    }

    fn from_arg(s: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|c| c.arg() == s)
    }
}

/// What one child measured; all per-connection figures are deltas over the
/// process before the first connection, divided by the count.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scale {
    pub open_s: f64,
    pub rss_kib: f64,
    pub threads: f64,
    pub fds: f64,
    pub idle_cpu_ms: f64,
    pub idle_wakeups: f64,
    pub echo_ms: f64,
    pub errors: f64,
}

impl Scale {
    pub fn figures(&self) -> [f64; 8] {
        [
            self.open_s,
            self.rss_kib,
            self.threads,
            self.fds,
            self.idle_cpu_ms,
            self.idle_wakeups,
            self.echo_ms,
            self.errors,
        ]
    }

    pub fn parse(line: &str) -> Option<Scale> {
        let v: Vec<f64> =
            line.strip_prefix("RESULT")?.split_whitespace().map(|x| x.parse().ok()).collect::<Option<_>>()?;
        let [open_s, rss_kib, threads, fds, idle_cpu_ms, idle_wakeups, echo_ms, errors] = v[..] else {
            return None;
        };
        Some(Scale { open_s, rss_kib, threads, fds, idle_cpu_ms, idle_wakeups, echo_ms, errors })
    }
}

/// Runs one child and parses its result.
pub fn measure(client: Client, url: &str, n: usize, idle: Duration, programs: &Programs) -> Result<Scale, String> {
    if let Client::Peer(p) = client {
        let path = programs.peer(p).ok_or(format!("no {} program", p.name()))?;
        return crate::peers::scale(path, url, n, idle);
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(["--scale-child", client.arg(), url, &n.to_string()])
        .arg(idle.as_millis().to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(Scale::parse)
        .ok_or_else(|| format!("scale child {} {n}: {}", client.arg(), String::from_utf8_lossy(&out.stderr).trim()))
}

/// `--scale-child CLIENT URL N IDLE_MS`: prints `RESULT ...`.
pub fn child(args: &[String]) -> Result<(), String> {
    let [client, url, n, idle_ms] = args else {
        return Err("usage: --scale-child raw|wsc|wsc-small URL N IDLE_MS".into());
    };
    let client = Client::from_arg(client).ok_or("unknown client")?;
    let n: usize = n.parse().map_err(|_| "bad N")?;
    let idle = Duration::from_millis(idle_ms.parse().map_err(|_| "bad IDLE_MS")?);
    raise_nofile();
    let s = match client {
        Client::Raw => raw_scale(url, n, idle)?,
        Client::Wsc => wsc_scale(url, n, idle, Options::new())?,
        Client::WscSmall => {
            let mut o = Options::new();
            o.read_buffer_size(4 << 10).and_then(|o| o.stack_size(64 << 10)).map_err(|e| e.to_string())?;
            wsc_scale(url, n, idle, o)?
        }
        Client::Peer(_) => return Err("a peer library runs as its own program".into()),
    };
    let f = s.figures();
    let text: Vec<String> = f.iter().map(|x| format!("{x:.4}")).collect();
    println!("RESULT {}", text.join(" "));
    Ok(())
}

/// Per-connection deltas over `base`.
fn per_conn(base: Footprint, n: usize, s: &mut Scale) {
    let now = Footprint::now();
    let n = n.max(1) as f64;
    s.rss_kib = now.rss_kib.saturating_sub(base.rss_kib) as f64 / n;
    s.threads = now.threads.saturating_sub(base.threads) as f64 / n;
    s.fds = now.fds.saturating_sub(base.fds) as f64 / n;
}

/// What every thread but this one (which only sleeps here) does while the
/// connections idle: CPU time and wake-ups. After a settling pause, so the
/// last workers to open have gone to sleep.
fn idle(idle: Duration, s: &mut Scale) {
    let (cpu0, woken0) = other_threads_sched();
    std::thread::sleep(idle);
    let (cpu1, woken1) = other_threads_sched();
    s.idle_cpu_ms = cpu1.saturating_sub(cpu0) as f64 / 1e6;
    s.idle_wakeups = woken1.saturating_sub(woken0) as f64;
}

/// Lets workers that just delivered `on_open` finish going to sleep (their
/// first read touches the read buffer) before anything is measured.
fn settle(idle: Duration) {
    std::thread::sleep((idle / 20).clamp(Duration::from_millis(20), Duration::from_millis(500)));
}

fn raw_scale(url: &str, n: usize, idle: Duration) -> Result<Scale, String> {
    let mut s = Scale::default();
    let base = Footprint::now();
    let t0 = Instant::now();
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        socks.push(raw::connect(url, None)?);
    }
    s.open_s = t0.elapsed().as_secs_f64();
    settle(idle);
    per_conn(base, n, &mut s);
    self::idle(idle, &mut s);
    let payload = Bytes::from_static(b"0123456789abcdef");
    let t1 = Instant::now();
    for ws in &mut socks {
        ws.send(Message::Binary(payload.clone())).map_err(|e| e.to_string())?;
    }
    for ws in &mut socks {
        raw::read_data(ws)?;
    }
    s.echo_ms = t1.elapsed().as_secs_f64() * 1e3;
    for ws in &mut socks {
        let _ = ws.close(None);
    }
    for mut ws in socks {
        while ws.read().is_ok() {}
    }
    Ok(s)
}

fn wsc_scale(url: &str, n: usize, idle: Duration, options: Options) -> Result<Scale, String> {
    let mut s = Scale::default();
    let (opened, echoed, ended) = (Arc::new(Flow::new()), Arc::new(Flow::new()), Arc::new(Flow::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let base = Footprint::now();
    let t0 = Instant::now();
    let mut conns: Vec<Connection> = Vec::with_capacity(n);
    for _ in 0..n {
        let (o, o2, e, e2, d, d2, err) = (
            opened.clone(),
            opened.clone(),
            echoed.clone(),
            echoed.clone(),
            ended.clone(),
            ended.clone(),
            errors.clone(),
        );
        opened.sent(1);
        ended.sent(1);
        let c = Builder::new(url)
            .options(options.clone())
            .on_open(move |_| o.received())
            .on_message(move |_, _| e.received())
            .on_close(move |_, _, _| d.received())
            .on_error(move |_, _| {
                err.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                o2.fail(); // any failure fails the measurement
                e2.fail();
                d2.received();
            })
            .connect()
            .map_err(|e| e.to_string())?;
        conns.push(c);
    }
    let open_result = opened.wait_all();
    s.open_s = t0.elapsed().as_secs_f64();
    s.errors = errors.load(std::sync::atomic::Ordering::SeqCst) as f64;
    open_result?;
    settle(idle);
    per_conn(base, n, &mut s);
    self::idle(idle, &mut s);
    let t1 = Instant::now();
    for c in &conns {
        echoed.sent(1);
        c.send_binary(Bytes::from_static(b"0123456789abcdef")).map_err(|e| e.to_string())?;
    }
    echoed.wait_all()?;
    s.echo_ms = t1.elapsed().as_secs_f64() * 1e3;
    for c in &conns {
        let _ = c.close();
    }
    ended.wait_all()?;
    Ok(s)
}
