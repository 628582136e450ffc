//! Test peers built on plain blocking tungstenite, independent of wsc's
//! engine, so a test of wsc is not a test of wsc against itself: an echo
//! server (one blocking thread per client, bound to loopback) whose every
//! path echoes each text and binary message back, answers pings and
//! completes the closing handshake.
//!
//! [`Listener`] is the accept loop under it, for servers built by hand (the
//! test peers and the C examples' peers use it too).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::SERVICE_PREFIX;

/// A TCP listener that runs a handler on a thread of its own for every
/// connection it accepts. Stops accepting when dropped (the drop returns
/// once the accept thread has ended); connection threads end when their
/// handler returns.
pub struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Listener {
    /// Listens on `addr` (`127.0.0.1:0` or `[::1]:0` for a free port). Each
    /// accepted connection runs `handler` on a thread named `name`; the
    /// accept loop runs on a thread named `<name>-accept`.
    ///
    /// # Errors
    /// The I/O error of binding `addr` or of starting the accept thread.
    pub fn start<F>(addr: &str, name: &str, handler: F) -> io::Result<Listener>
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handler = Arc::new(handler);
        let conn_name = name.to_owned();
        let accept = std::thread::Builder::new().name(format!("{name}-accept")).spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let h = handler.clone();
                let _ = std::thread::Builder::new().name(conn_name.clone()).spawn(move || h(stream));
            }
        })?;
        Ok(Listener { addr, stop, accept: Some(accept) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// A running echo server; stops accepting when dropped.
pub struct EchoServer {
    listener: Listener,
}

impl EchoServer {
    /// Listens on `addr` (use `127.0.0.1:0` or `[::1]:0` for a free port).
    ///
    /// # Errors
    /// The I/O error of binding `addr` or of starting the accept thread.
    pub fn start(addr: &str) -> io::Result<EchoServer> {
        Ok(EchoServer { listener: Listener::start(addr, "wsc-echo", echo)? })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// `ws://<addr>/websockets/v4/service/<endpoint>`.
    pub fn url(&self, endpoint: &str) -> String {
        format!("ws://{}{SERVICE_PREFIX}{endpoint}", self.addr())
    }
}

fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    if let Ok(ws) = tungstenite::accept(stream) {
        echo_messages(ws);
    }
}

/// The echo loop, for servers built by hand (plain or TLS): every text and
/// binary message goes back with a blocking write, so it stops reading while
/// its own writes are blocked; pings are answered and the closing handshake
/// completed by tungstenite. Returns when the connection ends.
pub fn echo_messages<S: std::io::Read + std::io::Write>(mut ws: tungstenite::WebSocket<S>) {
    loop {
        match ws.read() {
            Ok(m @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}
