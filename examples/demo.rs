//! The main job: start the embedded local server, exchange messages with it
//! in each API style, close cleanly. No internet needed.
//!
//!     cargo run --example demo
//!     cargo run --example demo -- --serve [PORT]   # only the local demo server
//!                                                  # (default port 8080), until killed

use std::time::Duration;
use wsc::{Builder, Event, Message};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let port = args.get(1).map_or("8080", String::as_str);
        let server = wsc::server::EchoServer::start(&format!("127.0.0.1:{port}"))?;
        println!("local demo server: {}", server.url("my-endpoint"));
        loop {
            std::thread::park();
        }
    }
    let server = wsc::server::EchoServer::start("127.0.0.1:0")?;
    let url = server.url("demo");
    println!("embedded echo server at {url}");

    // 1. Channel style: plain blocking Rust.
    let (conn, events) = wsc::connect(&url)?;
    conn.send("hello from the channel API")?; // queued until the handshake is done
    conn.send_binary(vec![1u8, 2, 3])?;
    let mut echoes = 0;
    for ev in &events {
        match &ev {
            Event::Open => println!("[channel] open, protocol {:?}", conn.protocol()),
            Event::Message(Message::Text(t)) => println!("[channel] text: {t}"),
            Event::Message(Message::Binary(b)) => println!("[channel] binary: {:?}", &b[..]),
            Event::Error(e) => println!("[channel] error: {e}"),
            Event::Close { code, reason } => println!("[channel] closed {code} {reason:?}"),
            other => println!("[channel] {other:?}"), // Event is #[non_exhaustive]
        }
        if matches!(ev, Event::Message(_)) {
            echoes += 1;
            if echoes == 2 {
                conn.close()?;
            }
        }
    }

    // 2. Callback style, as the App Services WebsocketClient, with flow control.
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let conn = Builder::new(url.as_str())
        .on_open(|c| {
            c.set_flow_control(true).unwrap();
            for i in 1..=3 {
                c.send(format!("message {i}")).unwrap();
            }
        })
        .on_message(|c, msg| {
            println!("[callback] {}", msg.as_text().unwrap_or("<binary>"));
            c.message_complete().unwrap();
            if msg.as_text() == Some("message 3") {
                c.close().unwrap();
            }
        })
        .on_close(move |_, code, _| {
            println!("[callback] closed {code}");
            let _ = done_tx.send(());
        })
        .on_error(|_, e| println!("[callback] error: {e}"))
        .connect()?;
    done_rx.recv_timeout(Duration::from_secs(10))?;
    assert!(conn.state().is_err(), "finished connections are forgotten");

    // 3. Named handler, as Dirigible's createWebsocket(uri, handler).
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    wsc::register_handler("my-project/ws-handler", move |conn, ev| {
        println!("[handler] {} {:?}", ev.method(), ev);
        match ev {
            Event::Message(_) => {
                let c = wsc::client_by_handler("my-project/ws-handler").unwrap();
                assert_eq!(&c, conn);
                c.close().unwrap();
            }
            ev if ev.is_terminal() => {
                let _ = done_tx.send(());
            }
            _ => {}
        }
    })?;
    let ws = wsc::create_websocket(&url, "my-project/ws-handler", None, None)?;
    ws.send("hello")?;
    done_rx.recv_timeout(Duration::from_secs(10))?;

    wsc::shutdown(Duration::from_secs(5))?;
    println!("done: every worker thread has exited");
    Ok(())
}
