//! The C ABI (`include/wsc.h`): a thin translation of the Rust API.
//!
//! Layout follows rustls-ffi: one file per C type, and every exported
//! function body runs inside the panic boundary in `boundary.rs`, because a
//! panic unwinding out of `extern "C"` aborts the host (Rust >= 1.81), and a
//! PBX must never die for a library bug. Pointer and string checks live there
//! too, so every entry point rejects NULL and invalid UTF-8 the same way and
//! leaves a readable `wsc_last_error()`.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod boundary;
mod client_info;
mod connection;
mod event_loop;
mod handler;
mod lifecycle;
mod log;
mod observe;
mod options;
mod server;
mod status;

pub use client_info::*;
pub use connection::*;
pub use event_loop::*;
pub use handler::*;
pub use lifecycle::*;
pub use log::*;
pub use observe::*;
pub use options::*;
pub use server::*;
pub use status::*;

/// A connection id. 0 is never a valid id; ids are never reused in a process.
pub type wsc_id = u64;
