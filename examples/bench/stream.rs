//! Bulk transfer. Streaming: `m` messages pipelined to the batching echo,
//! at most [`WINDOW`] bytes unanswered, timed until the last echo is in.
//! Receive only: the peer pushes `n` messages and the client only counts.
//!
//! The tungstenite baseline streams with two threads, a writer and a reader,
//! each with its own `WebSocket` over a clone of the socket: a single
//! blocking loop cannot read and write at once, and the best it could do
//! would be a slower, deadlock-prone alternation. The peer libraries
//! (`peers.rs`) stream from their one event-loop thread, their natural way.

use crate::flow::{Flow, PATIENCE};
use crate::open::open;
use crate::peers::{Peer, Programs};
use crate::raw;
use crate::stats::Transfer;
use crate::sys::cpu_time;
use crossbeam_channel::bounded;
use std::sync::Arc;
use std::time::Instant;
use tungstenite::protocol::Role;
use tungstenite::{Bytes, Message, WebSocket};
use wsc::{Builder, Options};

/// Bytes allowed in flight (sent, echo not yet counted); at least 2 messages.
pub const WINDOW: usize = 4 << 20;

fn window(size: usize) -> u64 {
    (WINDOW / size.max(1)).max(2) as u64
}

/// Who streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Raw,
    Wsc,
    Peer(Peer),
}

impl Client {
    pub fn label(self) -> &'static str {
        match self {
            Client::Raw => "tungstenite",
            Client::Wsc => "wsc",
            Client::Peer(p) => p.loop_label(),
        }
    }
}

pub fn stream(c: Client, url: &str, size: usize, m: u64, programs: &Programs) -> Result<Transfer, String> {
    match c {
        Client::Raw => raw_stream(url, size, m),
        Client::Wsc => wsc_stream(url, size, m),
        Client::Peer(p) => {
            let path = programs.peer(p).ok_or(format!("no {} program", p.name()))?;
            crate::peers::stream(path, url, size, m)
        }
    }
}

fn raw_stream(url: &str, size: usize, m: u64) -> Result<Transfer, String> {
    let mut reader = raw::connect(url, None)?;
    let tungstenite::stream::MaybeTlsStream::Plain(tcp) = reader.get_ref() else {
        return Err("streaming needs ws://".into());
    };
    let clone = tcp.try_clone().map_err(|e| e.to_string())?;
    let mut writer = WebSocket::from_raw_socket(clone, Role::Client, Some(raw::config()));
    let payload = Bytes::from(vec![0x61; size]);
    let flow = Flow::new();
    let w = window(size);
    let one = |ws: &mut WebSocket<_>| ws.send(Message::Binary(payload.clone()));
    flow.sent(1);
    one(&mut writer).map_err(|e| e.to_string())?;
    raw::read_data(&mut reader)?;
    flow.received();
    let (t0, c0) = (Instant::now(), cpu_time());
    std::thread::scope(|s| -> Result<(), String> {
        let writing = s.spawn(|| -> Result<(), String> {
            for _ in 0..m {
                if flow.in_flight() >= w {
                    writer.flush().map_err(|e| e.to_string())?;
                    flow.wait_until_at_most(w / 2)?;
                }
                flow.sent(1);
                writer.write(Message::Binary(payload.clone())).map_err(|e| e.to_string())?;
            }
            writer.flush().map_err(|e| e.to_string())
        });
        for _ in 0..m {
            if let Err(e) = raw::read_data(&mut reader) {
                flow.fail();
                return Err(e);
            }
            flow.received();
        }
        writing.join().map_err(|_| "writer panicked".to_owned())?
    })?;
    let result = Transfer::new(m, size, t0.elapsed(), cpu_time() - c0);
    raw::close(reader);
    Ok(result)
}

fn wsc_stream(url: &str, size: usize, m: u64) -> Result<Transfer, String> {
    let flow = Arc::new(Flow::new());
    let f = flow.clone();
    let b = Builder::new(url).on_message(move |_, _| f.received());
    let opened = open(b, Some(flow.clone()))?;
    let payload = Bytes::from(vec![0x61; size]);
    let send = || -> Result<(), String> {
        flow.sent(1);
        opened.conn.send_binary(payload.clone()).map_err(|e| e.to_string())
    };
    send()?;
    flow.wait_all()?;
    let w = window(size);
    let (t0, c0) = (Instant::now(), cpu_time());
    for _ in 0..m {
        if flow.in_flight() >= w {
            flow.wait_until_at_most(w / 2)?;
        }
        send()?;
    }
    flow.wait_all()?;
    let result = Transfer::new(m, size, t0.elapsed(), cpu_time() - c0);
    opened.close();
    Ok(result)
}

fn push_url(base: &str, size: usize, n: u64) -> String {
    format!("{base}/push?n={n}&size={size}")
}

pub fn raw_push(base: &str, size: usize, n: u64) -> Result<Transfer, String> {
    let mut ws = raw::connect(&push_url(base, size, n), None)?;
    let (t0, c0) = (Instant::now(), cpu_time());
    ws.send(Message::text("go")).map_err(|e| e.to_string())?;
    for _ in 0..n {
        raw::read_data(&mut ws)?;
    }
    let result = Transfer::new(n, size, t0.elapsed(), cpu_time() - c0);
    raw::close(ws);
    Ok(result)
}

/// With `flow_control`, each message is completed inside its callback.
pub fn wsc_push(base: &str, size: usize, n: u64, flow_control: bool) -> Result<Transfer, String> {
    let (tx, rx) = bounded(1);
    let mut count = 0u64;
    let mut options = Options::new();
    options.flow_control(flow_control);
    let b = Builder::new(push_url(base, size, n)).options(options).on_message(move |c, _| {
        count += 1;
        if flow_control {
            let _ = c.message_complete();
        }
        if count == n {
            let _ = tx.send((Instant::now(), cpu_time()));
        }
    });
    let opened = open(b, None)?;
    let (t0, c0) = (Instant::now(), cpu_time());
    opened.conn.send("go").map_err(|e| e.to_string())?;
    let (t1, c1) = rx.recv_timeout(PATIENCE).map_err(|_| "wsc push: not every message arrived".to_owned())?;
    let result = Transfer::new(n, size, t1 - t0, c1 - c0);
    opened.close();
    Ok(result)
}
