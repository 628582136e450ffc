//! Loopback peers for the C examples and C tests, shared (through `#[path]`)
//! by `tests/c_examples.rs` and `examples/echo_server.rs`, so the Rust test
//! and `check.sh` exercise the C programs against the same servers.
//!
//! Besides wsc's own echo server, the C tests need peers that the echo
//! server cannot play: one that agrees to a subprotocol (for
//! `wsc_get_protocol`) and two that vanish without a Close frame (for
//! `on_error` and for SIGPIPE in a C host). One listener serves them by path:
//!
//! * `/proto`: accepts the first subprotocol offered, then echoes;
//! * `/drop`: completes the handshake, then closes TCP (FIN) with no Close;
//! * `/reset`: completes the handshake, reads one message, then resets (RST).

use std::net::TcpStream;
use std::time::Duration;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::HeaderValue;
use wsc::server::{EchoServer, Listener};

/// The echo server plus the misbehaving peer; both stop when dropped.
pub struct Servers {
    pub echo: EchoServer,
    extra: Listener,
}

impl Servers {
    /// Starts both on `127.0.0.1`, on free ports.
    pub fn start() -> std::io::Result<Servers> {
        let echo = EchoServer::start("127.0.0.1:0")?;
        let extra = Listener::start("127.0.0.1:0", "c-test-peer", serve)?;
        Ok(Servers { echo, extra })
    }

    /// The echo server's URL.
    pub fn echo_url(&self) -> String {
        self.echo.url("echo")
    }

    /// `ws://127.0.0.1:<port>`: append `/proto`, `/drop` or `/reset`.
    pub fn extra_base(&self) -> String {
        format!("ws://{}", self.extra.addr())
    }
}

// tungstenite's handshake callback type returns its large ErrorResponse.
#[allow(clippy::result_large_err)]
fn serve(stream: TcpStream) {
    let mut path = String::new();
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        path = req.uri().path().to_owned();
        let offered = req.headers().get("Sec-WebSocket-Protocol");
        let first = offered.and_then(|v| v.to_str().ok()?.split(',').next().map(str::trim));
        if let (Some(p), true) = (first, req.uri().path() == "/proto") {
            if let Ok(value) = HeaderValue::from_str(p) {
                resp.headers_mut().insert("Sec-WebSocket-Protocol", value);
            }
        }
        Ok(resp)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, callback) else {
        return;
    };
    match path.as_str() {
        "/drop" => {}
        "/reset" => {
            let _ = ws.read();
            let _ = socket2::SockRef::from(ws.get_ref()).set_linger(Some(Duration::ZERO));
        }
        _ => wsc::server::echo_messages(ws),
    }
}
