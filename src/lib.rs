//! wsc: a WebSocket client for C, C++ and blocking Rust.
//!
//! Every connection owns one worker thread that drives a non-blocking
//! [`tungstenite`] socket and runs that connection's callbacks; applications
//! call in from any thread through a cheap [`Connection`] handle. Three ways in,
//! one engine underneath:
//!
//! * callbacks, mirroring the App Services `WebsocketClient` API: [`Builder`];
//! * a channel of [`Event`]s for plain blocking Rust: [`Builder::connect_channel`];
//! * named handlers and a client registry, mirroring Dirigible's
//!   `createWebsocket(uri, handler, engine)`: [`create_websocket`];
//!
//! and the C ABI in [`ffi`] (`include/wsc.h`), a thin translation of these.
//!
//! This file only re-exports: find behaviour in the module named for it.

mod accept;
mod builder;
mod connection;
mod descriptor;
mod dial;
mod error;
mod event;
mod frames;
mod gate;
mod handler;
mod lifecycle;
mod options;
mod registry;
mod stream;
mod target;
mod tls;
mod waker;
mod worker;

pub mod ffi;
pub mod server;

pub use builder::{connect, Builder};
pub use connection::{Connection, State};
pub use error::{ConnectionError, Error, ErrorKind};
pub use event::{Event, Message};
pub use handler::{
    client, client_by_handler, clients, create_websocket, register_handler, unregister_handler, ClientInfo, Handler,
    ENGINES,
};
pub use lifecycle::{init, shutdown};
pub use options::Options;
pub use server::{Server, ServerBuilder};
pub use tungstenite::{Bytes, Utf8Bytes};
