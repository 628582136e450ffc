//! The baseline: plain blocking tungstenite, the way a careful program would
//! write it (TCP_NODELAY, one `send` + `read` per round trip, writes batched
//! where a loop allows).
//!
//! It reads through the same 8 KiB buffer wsc uses by default, so a ratio
//! shows what wsc's engine costs (its thread, queues, wake-ups and callbacks),
//! not a buffer setting: tungstenite's own default of 128 KiB zero-fills that
//! much before every `read(2)`, which would flatter wsc on small messages.

use native_tls::TlsConnector;
use std::net::{TcpStream, ToSocketAddrs};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

/// wsc's default `Options::read_buffer_size`.
pub const READ_BUFFER: usize = 8 << 10;

pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

pub fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

/// TCP connect, optional TLS, HTTP upgrade: all blocking.
pub fn connect(url: &str, tls: Option<&TlsConnector>) -> Result<Ws, String> {
    let tcp = tcp(url)?;
    let connector = tls.map_or(Connector::Plain, |c| Connector::NativeTls(c.clone()));
    let request = url.into_client_request().map_err(|e| e.to_string())?;
    tungstenite::client_tls_with_config(request, tcp, Some(config()), Some(connector))
        .map(|(ws, _)| ws)
        .map_err(|e| format!("tungstenite handshake with {url}: {e}"))
}

/// A connected TCP socket to the URL's host and port, with TCP_NODELAY.
pub fn tcp(url: &str) -> Result<TcpStream, String> {
    let request = url.into_client_request().map_err(|e| e.to_string())?;
    let uri = request.uri();
    let host = uri.host().unwrap_or("127.0.0.1");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("wss") { 443 } else { 80 });
    let addrs: Vec<_> = (host, port).to_socket_addrs().map_err(|e| format!("{host}: {e}"))?.collect();
    let tcp = TcpStream::connect(&addrs[..]).map_err(|e| format!("{host}:{port}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(tcp)
}

/// The next text or binary message (control frames are handled inside).
pub fn read_data<S: std::io::Read + std::io::Write>(ws: &mut WebSocket<S>) -> Result<Message, String> {
    loop {
        match ws.read() {
            Ok(m @ (Message::Binary(_) | Message::Text(_))) => return Ok(m),
            Ok(_) => {}
            Err(e) => return Err(format!("tungstenite read: {e}")),
        }
    }
}

/// The closing handshake, waiting for the server to close TCP.
pub fn close<S: std::io::Read + std::io::Write>(mut ws: WebSocket<S>) {
    let _ = ws.close(None);
    while ws.read().is_ok() {}
}
