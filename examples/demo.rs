//! The main job, with no internet: start the endpoint server with the seed's
//! descriptor (`examples/endpoints/my-endpoint.websocket`), connect a wsc
//! client to it with the seed's handler, exchange text and binary with flow
//! control on, print every event as it happens, and exit cleanly. Then the
//! same exchange in the two other API styles (channel, callbacks).
//!
//!     cargo run --release --example demo
//!     cargo run --release --example demo -- --serve [PORT]   # keep serving (default 8080)
//!     cargo run --release --example demo -- --serve PORT --tls CERT_CHAIN_PEM KEY_PEM   # the same over wss://

use std::time::Duration;
use wsc::{Builder, Connection, Event, Message, Server};

const HANDLER: &str = "my-project/ws-handler";

/// "client #3" or "server my-endpoint #4": which side of which connection.
fn who(conn: &Connection) -> String {
    match conn.endpoint() {
        Some(endpoint) => format!("server {endpoint} #{}", conn.id()),
        None => format!("client #{}", conn.id()),
    }
}

/// An event in words.
fn words(event: &Event) -> String {
    match event {
        Event::Open => "open".into(),
        Event::Message(Message::Text(t)) => format!("text message \"{t}\""),
        Event::Message(Message::Binary(b)) => format!("binary message of {} bytes {:?}", b.len(), &b[..b.len().min(8)]),
        Event::Error(e) => format!("error: {e}"),
        Event::Close { code, reason } if reason.is_empty() => format!("closed with code {code}"),
        Event::Close { code, reason } => format!("closed with code {code} ({reason})"),
        _ => "another event".into(), // Event is non_exhaustive
    }
}

/// The seed's handler, serving both sides: the server side echoes every
/// message; the client side completes each message (flow control) and
/// closes after the second.
fn register_seed_handler(done: crossbeam_channel::Sender<()>) -> Result<(), wsc::Error> {
    wsc::register_handler(HANDLER, move |conn, event| {
        println!("  [{}] {}", who(conn), words(event));
        match (conn.endpoint(), event) {
            (Some(_), Event::Message(m)) => {
                let _ = conn.send_message(m.clone());
            }
            (None, Event::Message(m)) => {
                let _ = conn.message_complete();
                if m.as_text().is_none() {
                    let _ = conn.close();
                }
            }
            (None, e) if e.is_terminal() => {
                let _ = done.send(());
            }
            _ => {}
        }
    })?;
    wsc::register_handler("demo/echo", |conn, event| {
        if let Event::Message(m) = event {
            let _ = conn.send_message(m.clone());
        }
    })
}

fn endpoints_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/endpoints")
}

/// `--tls CERT_CHAIN_PEM KEY_PEM` anywhere in the arguments: serve wss://.
fn tls_files(args: &[String]) -> Result<Option<(String, String)>, String> {
    let Some(at) = args.iter().position(|a| a == "--tls") else { return Ok(None) };
    match (args.get(at + 1), args.get(at + 2)) {
        (Some(cert), Some(key)) => Ok(Some((cert.clone(), key.clone()))),
        _ => Err("--tls needs two files: CERT_CHAIN_PEM KEY_PEM".into()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serve = args.first().map(String::as_str) == Some("--serve");
    let tls = tls_files(&args)?;
    let (done_tx, done) = crossbeam_channel::unbounded();
    register_seed_handler(done_tx)?;
    let bind = match args.get(1) {
        Some(port) if serve && !port.starts_with("--") => format!("127.0.0.1:{port}"),
        _ if serve => "127.0.0.1:8080".into(),
        _ => "127.0.0.1:0".into(),
    };
    let mut builder = Server::bind(&bind).descriptors(endpoints_dir());
    if let Some((cert, key)) = &tls {
        builder = builder.tls(cert, key);
    }
    let server = builder.start()?;
    let port = server.local_addr().port();
    println!("endpoint server on 127.0.0.1:{port}, endpoints from {}", endpoints_dir().display());
    println!("  {}  (handler {HANDLER})", server.url("my-endpoint"));
    println!("  {}  (echo)", server.url("echo"));
    let page = if tls.is_some() { "https" } else { "http" };
    println!("open {page}://127.0.0.1:{port}/ in a browser to talk to them");
    if serve {
        println!("serving until killed");
        loop {
            std::thread::park();
        }
    }

    println!("\n1. createWebsocket(uri, \"{HANDLER}\"): the same handler on both sides, flow control on");
    let mut options = wsc::Options::new();
    options.flow_control(true);
    let ws = wsc::create_websocket(&server.url("my-endpoint"), HANDLER, None, Some(&options))?;
    ws.send("hello")?; // queued until the handshake is done
    ws.send_binary(vec![1u8, 2, 3])?;
    done.recv_timeout(Duration::from_secs(10))?;

    println!("\n2. channel style (plain blocking Rust), to the echo endpoint");
    let (conn, events) = wsc::connect(&server.url("echo"))?;
    conn.send("hello from the channel API")?;
    for event in &events {
        println!("  [{}] {}", who(&conn), words(&event));
        if let Event::Message(_) = event {
            conn.close()?;
        }
    }

    println!("\n3. callback style (the App Services WebsocketClient), to the echo endpoint");
    let (closed_tx, closed) = crossbeam_channel::bounded(1);
    Builder::new(server.url("echo"))
        .on_open(|c| {
            println!("  [{}] open", who(c));
            c.send("hello from the callback API").unwrap();
        })
        .on_message(|c, m| {
            println!("  [{}] {}", who(c), words(&Event::Message(m)));
            c.close().unwrap();
        })
        .on_error(|c, e| println!("  [{}] error: {e}", who(c)))
        .on_close(move |c, code, _| {
            println!("  [{}] closed with code {code}", who(c));
            let _ = closed_tx.send(());
        })
        .connect()?;
    closed.recv_timeout(Duration::from_secs(10))?;

    server.stop()?;
    wsc::shutdown(Duration::from_secs(5))?;
    println!("\ndone: the server stopped and every worker thread has exited");
    Ok(())
}
