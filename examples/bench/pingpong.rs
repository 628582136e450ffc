//! Ping-pong: one message out, wait for its echo, again. Every variant does
//! one unmeasured round trip first, then `n` measured ones; latency is send
//! to echo-in-hand, CPU is the client process's over the measured part.
//! Messages are binary, except in the text pair (tungstenite text against
//! the C ABI's text), which shows what text costs on top.

use crate::flow::{Flow, PATIENCE};
use crate::open::open;
use crate::peers::{Peer, Programs};
use crate::raw;
use crate::stats::PingPong;
use crate::sys::cpu_time;
use crossbeam_channel::{bounded, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::{Bytes, Message};
use wsc::{Builder, Event};

/// Who sends the next message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Plain blocking tungstenite: `send`, then `read`.
    Raw,
    /// (a) wsc: from inside `on_message`.
    Callback,
    /// (b) wsc: an application thread that waits for the echo.
    Thread,
    /// (c) wsc: the channel API.
    Channel,
    /// (d) wsc through the C ABI, sending from inside `on_message`.
    CAbi,
    /// (e) wsc with event-loop delivery: from inside a dispatched `on_message`.
    Loop,
    /// Plain blocking tungstenite sending text: the baseline of `CAbiText`.
    RawText,
    /// (d) with text messages (`wsc_send_text`).
    CAbiText,
    /// Another library (its program in its own process); true: sends from
    /// its receive callback, false: from an application thread.
    Peer(Peer, bool),
}

impl Variant {
    pub fn label(self) -> &'static str {
        match self {
            Variant::Raw => "tungstenite",
            Variant::Callback => "(a) in on_message",
            Variant::Thread => "(b) app thread",
            Variant::Channel => "(c) channel API",
            Variant::CAbi => "(d) C ABI, in on_message",
            Variant::Loop => "(e) event loop, in dispatch",
            Variant::RawText => "tungstenite, text",
            Variant::CAbiText => "(d) C ABI text, in on_message",
            Variant::Peer(p, in_callback) => p.pingpong_label(in_callback),
        }
    }

    /// Sends from the thread that receives (so no thread hand-off)?
    pub fn in_callback(self) -> bool {
        matches!(self, Variant::Callback | Variant::CAbi | Variant::Loop | Variant::CAbiText | Variant::Peer(_, true))
    }

    /// wsc's own rows, the ones the targets apply to.
    pub fn is_wsc(self) -> bool {
        !matches!(self, Variant::Raw | Variant::RawText | Variant::Peer(..))
    }
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

pub fn run(v: Variant, url: &str, size: usize, n: usize, programs: &Programs) -> Result<PingPong, String> {
    let payload = Bytes::from(vec![0x61; size]);
    match v {
        Variant::Raw => raw_loop(url, Message::Binary(payload), n),
        Variant::RawText => raw_loop(url, Message::text("a".repeat(size)), n),
        Variant::Callback => in_callback(url, payload, n),
        Variant::Thread => app_thread(url, payload, n),
        Variant::Channel => channel(url, payload, n),
        Variant::Loop => in_loop(url, payload, n),
        Variant::CAbi | Variant::CAbiText => {
            let text = v == Variant::CAbiText;
            match &programs.c_twin {
                Some(path) => crate::cabi::run_c_twin(path, url, size, n, text),
                None => crate::cabi::run_from_rust(url, payload, n, text),
            }
        }
        Variant::Peer(p, in_callback) => {
            let path = programs.peer(p).ok_or(format!("no {} program", p.name()))?;
            crate::peers::pingpong(path, in_callback, url, size, n)
        }
    }
}

/// `message` is sent again and again (a clone shares its bytes).
fn raw_loop(url: &str, message: Message, n: usize) -> Result<PingPong, String> {
    let mut ws = raw::connect(url, None)?;
    let rt = |ws: &mut raw::Ws| -> Result<(), String> {
        ws.send(message.clone()).map_err(|e| format!("tungstenite send: {e}"))?;
        raw::read_data(ws).map(drop)
    };
    rt(&mut ws)?;
    let mut lat = Vec::with_capacity(n);
    let (t0, c0) = (Instant::now(), cpu_time());
    for _ in 0..n {
        let t = Instant::now();
        rt(&mut ws)?;
        lat.push(ns(t.elapsed()));
    }
    let result = PingPong::from_samples(lat, t0.elapsed(), cpu_time() - c0);
    raw::close(ws);
    Ok(result)
}

/// The callback's own state: it times each echo and sends the next message.
pub struct Relay {
    n: usize,
    lat: Vec<u64>,
    sent_at: Instant,
    start: Option<(Instant, Duration)>,
    done: Sender<PingPong>,
}

impl Relay {
    pub fn new(n: usize, done: Sender<PingPong>) -> Relay {
        Relay { n, lat: Vec::with_capacity(n), sent_at: Instant::now(), start: None, done }
    }

    /// An echo arrived: true if the next message should go out now.
    pub fn echo(&mut self) -> bool {
        let now = Instant::now();
        match self.start {
            None => self.start = Some((now, cpu_time())),
            Some(_) => self.lat.push(ns(now - self.sent_at)),
        }
        if self.lat.len() < self.n {
            self.sent_at = Instant::now();
            return true;
        }
        let (t0, c0) = self.start.expect("set on the first echo");
        let lat = std::mem::take(&mut self.lat);
        let _ = self.done.send(PingPong::from_samples(lat, now - t0, cpu_time() - c0));
        false
    }
}

fn in_callback(url: &str, payload: Bytes, n: usize) -> Result<PingPong, String> {
    let (tx, rx) = bounded(1);
    let mut relay = Relay::new(n, tx);
    let p = payload.clone();
    let b = Builder::new(url).on_message(move |c, _| {
        if relay.echo() {
            let _ = c.send_binary(p.clone());
        }
    });
    let opened = open(b, None)?;
    opened.conn.send_binary(payload).map_err(|e| e.to_string())?;
    let result = rx.recv_timeout(PATIENCE).map_err(|_| "wsc (a): no result within the patience limit".to_owned());
    opened.close();
    result
}

/// (e): the connection delivers through an event loop that this thread
/// polls and dispatches, and the next message goes out from the dispatched
/// `on_message`.
fn in_loop(url: &str, payload: Bytes, n: usize) -> Result<PingPong, String> {
    let lp = wsc::Loop::new().map_err(|e| e.to_string())?;
    let (tx, rx) = bounded(1);
    let mut relay = Relay::new(n, tx);
    let (first, next) = (payload.clone(), payload);
    let mut options = wsc::Options::new();
    options.event_loop(&lp);
    let conn = Builder::new(url)
        .options(options)
        .on_open(move |c| {
            let _ = c.send_binary(first.clone());
        })
        .on_message(move |c, _| {
            if relay.echo() {
                let _ = c.send_binary(next.clone());
            }
        })
        .connect()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + PATIENCE;
    let dispatch = || -> Result<(), String> {
        let mut p = libc::pollfd { fd: lp.fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the call.
        unsafe { libc::poll(&mut p, 1, 1000) };
        lp.dispatch(0).map(drop).map_err(|e| e.to_string())
    };
    let result = loop {
        if let Ok(r) = rx.try_recv() {
            break Ok(r);
        }
        if Instant::now() > deadline {
            break Err("wsc (e): no result within the patience limit".to_owned());
        }
        dispatch()?;
    };
    let _ = conn.close();
    while conn.state().is_ok() && Instant::now() < deadline {
        dispatch()?;
    }
    result
}

fn app_thread(url: &str, payload: Bytes, n: usize) -> Result<PingPong, String> {
    let flow = Arc::new(Flow::new());
    let f = flow.clone();
    let b = Builder::new(url).on_message(move |_, _| f.received());
    let opened = open(b, Some(flow.clone()))?;
    let rt = || -> Result<(), String> {
        flow.sent(1);
        opened.conn.send_binary(payload.clone()).map_err(|e| e.to_string())?;
        flow.wait_all()
    };
    rt()?;
    let mut lat = Vec::with_capacity(n);
    let (t0, c0) = (Instant::now(), cpu_time());
    for _ in 0..n {
        let t = Instant::now();
        rt()?;
        lat.push(ns(t.elapsed()));
    }
    let result = PingPong::from_samples(lat, t0.elapsed(), cpu_time() - c0);
    opened.close();
    Ok(result)
}

fn channel(url: &str, payload: Bytes, n: usize) -> Result<PingPong, String> {
    let (conn, events) = Builder::new(url).connect_channel().map_err(|e| e.to_string())?;
    let next = || -> Result<Event, String> {
        events.recv_timeout(PATIENCE).map_err(|_| "wsc (c): no event within the patience limit".to_owned())
    };
    match next()? {
        Event::Open => {}
        other => return Err(format!("wsc (c): {other:?}")),
    }
    let rt = || -> Result<(), String> {
        conn.send_binary(payload.clone()).map_err(|e| e.to_string())?;
        match next()? {
            Event::Message(_) => Ok(()),
            other => Err(format!("wsc (c): {other:?}")),
        }
    };
    rt()?;
    let mut lat = Vec::with_capacity(n);
    let (t0, c0) = (Instant::now(), cpu_time());
    for _ in 0..n {
        let t = Instant::now();
        rt()?;
        lat.push(ns(t.elapsed()));
    }
    let result = PingPong::from_samples(lat, t0.elapsed(), cpu_time() - c0);
    let _ = conn.close();
    while let Ok(ev) = events.recv_timeout(PATIENCE) {
        if ev.is_terminal() {
            break;
        }
    }
    Ok(result)
}
