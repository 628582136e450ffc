//! The loopback peers the C examples run against, as a standalone process
//! for scripts (`c-examples/check.sh`) and for trying the examples by hand:
//!
//!     cargo run --release --example echo_server
//!     echo ws://127.0.0.1:PORT/websockets/v4/service/echo
//!     extra ws://127.0.0.1:PORT
//!
//! The first line is wsc's embedded echo server; the second the base URL of
//! the peers that misbehave on purpose (see `c-examples/servers.rs`).
//! Runs until killed.

#[path = "../c-examples/servers.rs"]
mod servers;

use std::io::Write;

fn main() -> std::io::Result<()> {
    let servers = servers::Servers::start()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "echo {}", servers.echo_url())?;
    writeln!(out, "extra {}", servers.extra_base())?;
    out.flush()?;
    drop(out);
    loop {
        std::thread::park();
    }
}
