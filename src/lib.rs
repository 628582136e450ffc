//! wsc: a WebSocket client for C, C++ and blocking Rust.
//!
//! Every connection owns one worker thread that drives a non-blocking
//! [`tungstenite`] socket and runs that connection's callbacks; applications
//! call in from any thread through a cheap [`Connection`] handle. Three ways in,
//! one engine underneath:
//!
//! * callbacks, mirroring the App Services `WebsocketClient` API: [`Builder`];
//! * a channel of [`Event`]s for plain blocking Rust: [`connect`] /
//!   [`Builder::connect_channel`];
//! * named handlers and a client registry, mirroring Dirigible's
//!   `createWebsocket(uri, handler, engine)`: [`create_websocket`];
//!
//! and the C ABI in [`ffi`] (`include/wsc.h`, with `include/wsc.hpp` for
//! C++17), a thin translation of these.
//!
//! Every call returns at once: connecting, sending and closing are queued for
//! the worker. A refused call is an [`Error`]; why a connection ended arrives
//! once, as its last event ([`Event::Error`] with a [`ConnectionError`], or
//! [`Event::Close`]). The examples below run against the embedded loopback
//! echo server, [`server::EchoServer`].
//!
//! # Channel style
//!
//! ```
//! # let server = wsc::server::EchoServer::start("127.0.0.1:0")?;
//! # let url = server.url("echo");
//! let (conn, events) = wsc::connect(&url)?;
//! conn.send("hello")?;                       // queued until the handshake is done
//! for event in events {                      // ends after the terminal event
//!     match event {
//!         wsc::Event::Open => {}
//!         wsc::Event::Message(m) => {
//!             assert_eq!(m.as_text(), Some("hello"));
//!             conn.close()?;
//!         }
//!         wsc::Event::Error(e) => panic!("failed: {e}"),
//!         wsc::Event::Close { code, .. } => assert_eq!(code, 1000),
//!         _ => {}                            // #[non_exhaustive]: later versions add events
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Callback style
//!
//! Callbacks run on the connection's worker thread, one at a time, in order;
//! they may call anything on the connection, including `close`.
//!
//! ```
//! # let server = wsc::server::EchoServer::start("127.0.0.1:0")?;
//! # let url = server.url("echo");
//! use std::time::Duration;
//!
//! let mut options = wsc::Options::new();
//! options.flow_control(true).add_header("Authorization", "Bearer t")?;
//! let conn = wsc::Builder::new(url)
//!     .options(options)
//!     .on_open(|c| c.send("hello").unwrap())
//!     .on_message(|c, msg| {
//!         println!("got {:?}", msg.as_text());
//!         c.message_complete().unwrap();     // flow control: ready for the next one
//!         c.close().unwrap();
//!     })
//!     .on_error(|_, err| eprintln!("connection error: {err}"))
//!     .on_close(|_, code, reason| println!("closed {code} {reason}"))
//!     .connect()?;                           // returns at once
//! conn.wait(Duration::from_secs(10))?;       // the terminal callback has returned
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Named handlers
//!
//! A handler is registered under a name and receives every event of the
//! connections created with that name; [`clients`], [`client`] and
//! [`client_by_handler`] list them.
//!
//! ```
//! # let server = wsc::server::EchoServer::start("127.0.0.1:0")?;
//! # let url = server.url("echo");
//! wsc::register_handler("my-project/ws-handler", |conn, event| {
//!     println!("[{}] {}", conn.id(), event.method()); // "onopen", "onmessage", ...
//!     if let wsc::Event::Message(_) = event {
//!         conn.close().unwrap();
//!     }
//! })?;
//! let ws = wsc::create_websocket(&url, "my-project/ws-handler", None, None)?;
//! ws.send("hello")?;
//! assert_eq!(wsc::client_by_handler("my-project/ws-handler").map(|c| c.id()), Some(ws.id()));
//! ws.wait(std::time::Duration::from_secs(10))?;
//! assert!(wsc::client(ws.id()).is_none());   // finished connections leave the registry
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! This file only re-exports: find behaviour in the module named for it.

#![warn(missing_docs)]

mod accept;
mod builder;
mod connection;
mod descriptor;
mod dial;
mod error;
mod event;
mod event_loop;
mod eyeballs;
mod frames;
mod gate;
mod handler;
mod lifecycle;
mod logging;
mod options;
mod outbox;
mod proxy;
mod reconnect;
mod registry;
mod resolve;
mod response;
mod scratch;
mod stack;
mod stats;
mod stream;
mod target;
mod tls;
mod waker;
mod wire;
mod worker;

pub mod ffi;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod server;

pub use builder::{connect, Builder};
pub use connection::{Connection, State};
pub use error::{ConnectionError, Error, ErrorKind};
pub use event::{Event, Message};
pub use event_loop::Loop;
pub use handler::{
    client, client_by_handler, clients, create_websocket, register_handler, unregister_handler, ClientInfo, Handler,
    ENGINES,
};
pub use lifecycle::{init, shutdown};
pub use options::Options;
pub use reconnect::Reconnect;
pub use response::HandshakeResponse;
pub use server::{Server, ServerBuilder};
pub use stats::{ConnectPhases, ConnectionStats};
pub use tungstenite::{Bytes, Utf8Bytes};
