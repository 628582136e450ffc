//! wsc next to plain blocking tungstenite, in one run, on one machine.
//!
//!     cargo run --release --example bench -- [--quick] [--url ws://...]
//!         [--c-bench PATH] [--lws PATH] [--wspp PATH] [--reps N]
//!         [--only pingpong,stream,push,setup,scale] [--sizes 16,1024,...]
//!         [--idle SECS] [--no-pin]
//!
//! Users choose a library on numbers, and absolute numbers on a shared
//! 2-core machine move by 5× from one minute to the next. So every row is a
//! pair measured alternately (tungstenite, wsc, tungstenite, wsc, ...), each
//! figure is a median, and the ratio is the median of the paired ratios.
//! The peer is this program started again in its own process, pinned to
//! another core, so the client's `getrusage` is the client's alone.
//! The libraries users weigh wsc against (libwebsockets, websocketpp) are
//! rows of the same tables, measured in the same rounds (`peers.rs`).
//! `scripts/bench.sh` builds everything (the C twin and the peer clients
//! too) and runs it.

mod cabi;
mod flow;
mod open;
mod peer;
mod peers;
mod pingpong;
mod raw;
mod report;
mod scale;
mod setup;
mod stats;
mod stream;
mod sys;

use peer::Ports;
use peers::{Peer, Programs};
use pingpong::Variant;
use report::Report;
use stats::Series;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Message counts and repetitions; `--quick` only checks that it all works.
struct Plan {
    reps: usize,
    scale_reps: usize,
    pingpong: Vec<(usize, usize)>,
    /// Ping-pong of text through the C ABI, for the sizes where checking
    /// UTF-8 could show.
    pingpong_text: Vec<(usize, usize)>,
    stream: Vec<(usize, u64)>,
    push: Vec<(usize, u64)>,
    setup: (u64, u64),
    scale: Vec<usize>,
    idle: Duration,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            reps: 5,
            scale_reps: 3,
            pingpong: vec![(16, 20_000), (1 << 10, 20_000), (64 << 10, 5_000)],
            pingpong_text: vec![(64 << 10, 5_000), (1 << 20, 500)],
            stream: vec![(16, 300_000), (1 << 10, 200_000), (64 << 10, 10_000), (1 << 20, 500)],
            push: vec![(16, 1_000_000), (64 << 10, 20_000)],
            setup: (2_000, 100),
            scale: vec![1_000, 5_000, 8_000],
            idle: Duration::from_secs(10),
        }
    }

    /// `--sizes`: only these message sizes (or scale counts).
    fn keep_sizes(&mut self, sizes: &[usize]) {
        self.pingpong.retain(|(s, _)| sizes.contains(s));
        self.pingpong_text.retain(|(s, _)| sizes.contains(s));
        self.stream.retain(|(s, _)| sizes.contains(s));
        self.push.retain(|(s, _)| sizes.contains(s));
        self.scale.retain(|n| sizes.contains(n));
    }

    fn quick() -> Plan {
        Plan {
            reps: 1,
            scale_reps: 1,
            pingpong: vec![(16, 200), (1 << 10, 200), (64 << 10, 50)],
            pingpong_text: vec![(64 << 10, 50), (1 << 20, 5)],
            stream: vec![(16, 2_000), (1 << 10, 1_000), (64 << 10, 100), (1 << 20, 8)],
            push: vec![(16, 5_000), (64 << 10, 100)],
            setup: (20, 10),
            scale: vec![20, 50, 100],
            idle: Duration::from_millis(200),
        }
    }
}

struct Args {
    quick: bool,
    url: Option<String>,
    c_bench: Option<String>,
    lws: Option<String>,
    wspp: Option<String>,
    reps: Option<usize>,
    only: Option<Vec<String>>,
    sizes: Option<Vec<usize>>,
    idle: Option<f64>,
    pin: bool,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        quick: false,
        url: None,
        c_bench: None,
        lws: None,
        wspp: None,
        reps: None,
        only: None,
        sizes: None,
        idle: None,
        pin: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--no-pin" => a.pin = false,
            "--url" => a.url = Some(value()?),
            "--c-bench" => a.c_bench = Some(value()?),
            "--lws" => a.lws = Some(value()?),
            "--wspp" => a.wspp = Some(value()?),
            "--reps" => a.reps = Some(value()?.parse().map_err(|_| "bad --reps")?),
            "--only" => a.only = Some(value()?.split(',').map(str::to_owned).collect()),
            "--idle" => a.idle = Some(value()?.parse().map_err(|_| "bad --idle")?),
            "--sizes" => {
                let v = value()?;
                let sizes = v.split(',').map(|s| s.parse().map_err(|_| format!("bad size {s}")));
                a.sizes = Some(sizes.collect::<Result<_, _>>()?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--peer") => peer_main(&args[1..]),
        Some("--scale-child") => scale::child(&args[1..]),
        _ => parse_args(&args).and_then(bench),
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// `--peer [--cpu N] [--tls CERT KEY]`
fn peer_main(args: &[String]) -> Result<(), String> {
    let mut tls = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cpu" => {
                let cpu = it.next().and_then(|c| c.parse().ok()).ok_or("bad --cpu")?;
                sys::pin_to(cpu);
            }
            "--tls" => {
                let (Some(c), Some(k)) = (it.next(), it.next()) else {
                    return Err("--tls needs CERT KEY".into());
                };
                tls = Some((c.clone(), k.clone()));
            }
            other => return Err(format!("unknown peer argument {other}")),
        }
    }
    peer::main(tls)
}

/// The running peer process; it exits when its stdin (held here) closes.
struct PeerProcess {
    child: Child,
    ports: Ports,
}

impl PeerProcess {
    fn start(cpu: Option<usize>, ca: Option<&setup::TestCa>) -> Result<PeerProcess, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.arg("--peer");
        if let Some(cpu) = cpu {
            cmd.args(["--cpu", &cpu.to_string()]);
        }
        if let Some(ca) = ca {
            cmd.arg("--tls").arg(ca.cert()).arg(ca.key());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the peer: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("peer stdout")?;
        std::io::BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
        let ports = Ports::parse(&line).ok_or(format!("peer said {line:?}"))?;
        Ok(PeerProcess { child, ports })
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Where each kind of row connects.
struct Targets {
    echo: String,
    stream: String,
    push_base: Option<String>,
    wss: Option<String>,
    scale: String,
}

fn bench(a: Args) -> Result<(), String> {
    let mut plan = if a.quick { Plan::quick() } else { Plan::full() };
    if let Some(r) = a.reps {
        plan.reps = r.max(1);
        plan.scale_reps = r.max(1);
    }
    if let Some(sizes) = &a.sizes {
        plan.keep_sizes(sizes);
    }
    if let Some(secs) = a.idle {
        plan.idle = Duration::from_secs_f64(secs.max(0.0));
    }
    let machine = sys::machine();
    let cpus = sys::allowed_cpus();
    let pinned = a.pin && cpus.len() >= 2;
    if pinned {
        sys::pin_to(cpus[1]);
    }
    sys::raise_nofile();
    let ca = match a.url {
        Some(_) => None,
        None => setup::TestCa::make().map_err(|e| eprintln!("no wss rows: {e}")).ok(),
    };
    let peer = match a.url {
        Some(_) => None,
        None => Some(PeerProcess::start(pinned.then(|| cpus[0]), ca.as_ref())?),
    };
    let targets = match (&a.url, &peer) {
        (Some(u), _) => Targets { echo: u.clone(), stream: u.clone(), push_base: None, wss: None, scale: u.clone() },
        (None, Some(p)) => {
            let base = format!("ws://127.0.0.1:{}", p.ports.plain);
            Targets {
                echo: format!("{base}/echo"),
                stream: format!("{base}/stream"),
                push_base: Some(base),
                wss: (p.ports.tls != 0).then(|| format!("wss://127.0.0.1:{}/echo", p.ports.tls)),
                scale: format!("ws://127.0.0.1:{}/", p.ports.scale),
            }
        }
        (None, None) => unreachable!("a peer is started when no --url is given"),
    };
    let mut report = Report::new(machine, pinned, a.quick, plan.reps, plan.scale_reps);
    let mut programs = Programs { c_twin: a.c_bench.clone(), lws: a.lws.clone(), wspp: a.wspp.clone() };
    if a.url.as_deref().is_some_and(|u| u.starts_with("wss:")) {
        // The peer clients are built for ws:// only.
        (programs.lws, programs.wspp) = (None, None);
    }
    for p in Peer::ALL {
        if programs.peer(p).is_none() {
            let flag = if p == Peer::Lws { "--lws" } else { "--wspp" };
            report.note(&format!("{} rows skipped: no {flag} PATH (scripts/bench.sh builds it).", p.name()));
        }
    }
    let wants = |s: &str| a.only.as_ref().map_or(true, |o| o.iter().any(|x| x == s));
    if wants("pingpong") {
        run_pingpong(&plan, &targets, &programs, &mut report);
    }
    if wants("stream") {
        run_stream(&plan, &targets, &programs, &mut report);
    }
    if wants("push") {
        run_push(&plan, &targets, &mut report);
    }
    if wants("setup") {
        run_setup(&plan, &targets, ca.as_ref(), &mut report);
    }
    if wants("scale") {
        run_scale(&plan, &targets, &programs, &mut report);
    }
    drop(peer);
    report.print(a.c_bench.is_some());
    match FAILURES.load(Ordering::SeqCst) {
        0 => Ok(()),
        n => Err(format!("{n} measurement(s) failed (see the table); targets never fail the run")),
    }
}

/// Measurements that could not be taken: the exit status reports them, so CI
/// notices a benchmark that stopped working (missed targets are not failures).
static FAILURES: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` for each variant, `reps` times round-robin, after one unrecorded
/// warm-up round; failures are kept as the row's note.
fn alternate<V: Copy + std::fmt::Debug>(
    what: &str,
    variants: &[V],
    reps: usize,
    warm_up: bool,
    mut f: impl FnMut(V, bool) -> Result<Vec<f64>, String>,
) -> Vec<Result<Series, String>> {
    let mut out: Vec<Result<Series, String>> = variants.iter().map(|_| Ok(Series::default())).collect();
    if warm_up {
        for v in variants {
            let _ = f(*v, true);
        }
    }
    for rep in 0..reps {
        eprintln!("  {what}: repetition {}/{reps}", rep + 1);
        for (i, v) in variants.iter().enumerate() {
            let Ok(series) = &mut out[i] else { continue };
            match f(*v, false) {
                Ok(figures) => series.push(&figures),
                Err(e) => {
                    eprintln!("  {what} {v:?}: {e}");
                    FAILURES.fetch_add(1, Ordering::SeqCst);
                    out[i] = Err(e);
                }
            }
        }
    }
    out
}

fn run_pingpong(plan: &Plan, t: &Targets, programs: &Programs, report: &mut Report) {
    use Variant::*;
    let mut variants = vec![Raw, Callback, Thread, Channel, CAbi, Loop];
    for p in programs.peers() {
        variants.extend([Peer(p, true), Peer(p, false)]);
    }
    let text = [RawText, CAbiText];
    let runs =
        plan.pingpong.iter().map(|r| (r, &variants[..])).chain(plan.pingpong_text.iter().map(|r| (r, &text[..])));
    for (&(size, n), variants) in runs {
        let kind = if variants[0] == RawText { "text" } else { "binary" };
        eprintln!("ping-pong {size} B {kind}, {n} round trips");
        let res = alternate("ping-pong", variants, plan.reps, !report.quick, |v, warm| {
            let n = if warm { (n / 10).max(10) } else { n };
            let r = pingpong::run(v, &t.echo, size, n, programs)?;
            Ok(vec![r.per_sec, r.p50_us, r.p99_us, r.cpu_us])
        });
        report.pingpong(size, variants, res);
    }
}

fn run_stream(plan: &Plan, t: &Targets, programs: &Programs, report: &mut Report) {
    let mut clients = vec![stream::Client::Raw, stream::Client::Wsc];
    clients.extend(programs.peers().into_iter().map(stream::Client::Peer));
    for &(size, m) in &plan.stream {
        eprintln!("streaming {size} B, {m} messages");
        let res = alternate("streaming", &clients, plan.reps, !report.quick, |c, warm| {
            let m = if warm { (m / 10).max(2) } else { m };
            let r = stream::stream(c, &t.stream, size, m, programs)?;
            Ok(vec![r.per_sec, r.mb_per_sec, r.cpu_us])
        });
        report.stream(size, &clients, res);
    }
}

fn run_push(plan: &Plan, t: &Targets, report: &mut Report) {
    let Some(base) = &t.push_base else {
        report.note("Receive-only rows skipped: they need the benchmark's own peer (no --url).");
        return;
    };
    // None: tungstenite; Some(flow control).
    let variants = [None, Some(false), Some(true)];
    for &(size, n) in &plan.push {
        eprintln!("receive only {size} B, {n} messages");
        let res = alternate("receive-only", &variants, plan.reps, !report.quick, |v, warm| {
            let n = if warm { (n / 10).max(2) } else { n };
            let r = match v {
                None => stream::raw_push(base, size, n)?,
                Some(fc) => stream::wsc_push(base, size, n, fc)?,
            };
            Ok(vec![r.per_sec, r.mb_per_sec, r.cpu_us])
        });
        report.push(size, res);
    }
}

fn run_setup(plan: &Plan, t: &Targets, ca: Option<&setup::TestCa>, report: &mut Report) {
    let (k_ws, k_wss) = plan.setup;
    eprintln!("connection setup, ws, {k_ws} connections");
    let res = alternate("setup ws", &[false, true], plan.reps, !report.quick, |is_wsc, warm| {
        let k = if warm { (k_ws / 10).max(2) } else { k_ws };
        let r = if is_wsc { setup::wsc_setup(&t.echo, k, None)? } else { setup::raw_setup(&t.echo, k, None)? };
        Ok(vec![r.per_sec, r.cpu_us])
    });
    report.setup("ws", res);
    let (Some(url), Some(ca)) = (&t.wss, ca) else {
        report.note("wss setup row skipped: no local test CA (openssl missing?) or --url given.");
        return;
    };
    let connector = match setup::raw_connector(&ca.ca()) {
        Ok(c) => c,
        Err(e) => return report.note(&format!("wss setup row skipped: {e}")),
    };
    eprintln!("connection setup, wss, {k_wss} connections");
    let res = alternate("setup wss", &[false, true], plan.reps, !report.quick, |is_wsc, warm| {
        let k = if warm { (k_wss / 10).max(2) } else { k_wss };
        let r = if is_wsc {
            setup::wsc_setup(url, k, Some(&ca.ca()))?
        } else {
            setup::raw_setup(url, k, Some(&connector))?
        };
        Ok(vec![r.per_sec, r.cpu_us])
    });
    report.setup("wss", res);
}

fn run_scale(plan: &Plan, t: &Targets, programs: &Programs, report: &mut Report) {
    let mut clients = scale::Client::ALL.to_vec();
    clients.extend(programs.peers().into_iter().map(scale::Client::Peer));
    for &n in &plan.scale {
        eprintln!("scale: {n} idle connections");
        let res = alternate("scale", &clients, plan.scale_reps, false, |c, _| {
            Ok(scale::measure(c, &t.scale, n, plan.idle, programs)?.figures().to_vec())
        });
        report.scale(n, plan.idle, &clients, res);
    }
}
