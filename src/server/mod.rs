//! The endpoint server: Dirigible's `*.websocket` descriptors served at
//! `/websockets/v4/service/<endpoint>`, so one handler model covers both
//! sides of a connection and a browser can talk to a wsc application.
//!
//! A server is routing and bookkeeping around one acceptor thread
//! (`acceptor`), which carries every accepted socket through its TLS
//! handshake, request head and any refusal without a thread of its own.
//! An admitted upgrade gets a worker thread from `lifecycle` that writes the
//! 101 and then runs the same worker loop, gate and close machinery as a
//! client, with an id that every call takes; the named handler of its
//! endpoint gets its events, resolved at each event as for a client. The
//! server keeps the ids of the threads it started and of the connections it
//! registered, so `stop` can close the connections and join every thread.
//!
//! [`echo`] holds test peers built on plain tungstenite, independent of this
//! engine.

pub(crate) mod acceptor;
mod echo;

pub use echo::{echo_messages, EchoServer, Listener};

use crate::accept::{self, Refusal, Route};
use crate::connection::current_worker;
use crate::descriptor::{self, Endpoint};
use crate::error::Error;
use crate::lifecycle;
use crate::registry::registry;
use crate::waker::StopSignal;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tungstenite::handshake::server::Request;

/// The path prefix endpoints are served under.
pub const SERVICE_PREFIX: &str = "/websockets/v4/service/";

/// Sockets waiting for their request head at once, by default.
const DEFAULT_MAX_PENDING: u32 = 1024;

/// The page served at `/` and `/index.html`.
const PAGE: &str = include_str!("page.html");

/// An upgrade the server admits: where it goes and the 101 to answer.
pub(crate) struct Admit {
    pub(crate) endpoint: String,
    pub(crate) handler: String,
    pub(crate) response: Vec<u8>,
}

/// Everything the server's threads share.
pub(crate) struct ServerShared {
    pub(crate) addr: SocketAddr,
    endpoints: RwLock<HashMap<String, String>>,
    origins: RwLock<Vec<String>>,
    max_connections: AtomicUsize,
    max_message_size: AtomicUsize,
    handshake_timeout_ms: AtomicU64,
    /// Sockets accepted and not yet answered (see `set_max_pending`).
    max_pending: AtomicUsize,
    /// wss://: the TLS side of every accepted socket.
    pub(crate) tls: Option<native_tls::TlsAcceptor>,
    pub(crate) stop: StopSignal,
    /// Admitted connections whose thread has not ended (writing the 101 or
    /// registered); pending handshakes are not counted.
    pub(crate) live: AtomicUsize,
    /// Ids of the threads it started and has not joined.
    threads: Mutex<Vec<u64>>,
    /// Ids of its registered connections; locked while registering one,
    /// so `stop` either sees it or it sees `stop`.
    pub(crate) conns: Mutex<HashSet<u64>>,
}

impl ServerShared {
    /// A server's shared state with the default limits, not yet accepting.
    fn new(
        addr: SocketAddr,
        endpoints: HashMap<String, String>,
        tls: Option<native_tls::TlsAcceptor>,
    ) -> Result<ServerShared, Error> {
        let stop = StopSignal::new().map_err(|e| Error::Internal(format!("cannot create eventfd: {e}")))?;
        Ok(ServerShared {
            addr,
            endpoints: RwLock::new(endpoints),
            origins: RwLock::new(Vec::new()),
            max_connections: AtomicUsize::new(1000),
            max_message_size: AtomicUsize::new(64 << 20),
            handshake_timeout_ms: AtomicU64::new(10_000),
            max_pending: AtomicUsize::new(DEFAULT_MAX_PENDING as usize),
            tls,
            stop,
            live: AtomicUsize::new(0),
            threads: Mutex::new(Vec::new()),
            conns: Mutex::new(HashSet::new()),
        })
    }

    /// For the fuzzer's router target: endpoint `e` served by handler
    /// `fuzz/e`, and `http://allowed` the one allowed origin.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn for_fuzzing() -> ServerShared {
        let endpoints = HashMap::from([("e".to_owned(), "fuzz/e".to_owned())]);
        let shared = ServerShared::new(([127, 0, 0, 1], 0).into(), endpoints, None).expect("an eventfd");
        shared.origins.write().push("http://allowed".to_owned());
        shared
    }

    pub(crate) fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn max_pending(&self) -> usize {
        self.max_pending.load(Ordering::Relaxed)
    }

    pub(crate) fn max_message_size(&self) -> usize {
        self.max_message_size.load(Ordering::Relaxed)
    }

    /// Notes a thread it started (forgetting those already joined).
    pub(crate) fn started(&self, id: u64) {
        let mut threads = self.threads.lock();
        threads.retain(|t| !registry().was_joined(*t));
        threads.push(id);
    }

    /// The endpoint and handler a request path names, if any.
    pub(crate) fn endpoint_of(&self, path: &str) -> Option<(String, String)> {
        let name = path.strip_prefix(SERVICE_PREFIX)?;
        self.endpoints.read().get(name).map(|h| (name.to_owned(), h.clone()))
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections.load(Ordering::Relaxed)
    }

    /// What to do with a request, checked in this order: page, endpoint,
    /// a valid upgrade (400, 426), Origin, handler. The connection limit is
    /// the acceptor's. No lock is held across the log line.
    pub(crate) fn route(&self, request: &Request) -> Route<Admit> {
        let path = request.uri().path();
        if path == "/" || path == "/index.html" {
            return Route::Page(PAGE);
        }
        let Some((endpoint, handler)) = self.endpoint_of(path) else {
            return Route::Refuse(Refusal::new(404, format!("no endpoint at {}", accept::target_path(request))));
        };
        let response = match accept::upgrade_response(request) {
            Ok(response) => response,
            Err(refusal) => return Route::Refuse(refusal),
        };
        let origin = accept::origin_allowed(request, &self.origins.read());
        if let Err(refusal) = origin {
            return Route::Refuse(refusal);
        }
        if !crate::handler::is_registered(&handler) {
            crate::logging::wlog!(
                Warn,
                0,
                "server {}: endpoint '{endpoint}': handler '{handler}' is not registered: answered 503",
                self.addr
            );
            return Route::Refuse(Refusal::new(503, format!("endpoint '{endpoint}' has no handler yet")));
        }
        Route::Upgrade(Admit { endpoint, handler, response })
    }

    /// Stops accepting, closes its connections (1001) and joins every thread
    /// it started.
    fn stop(&self) -> Result<(), Error> {
        if let Some(me) = current_worker() {
            if self.threads.lock().contains(&me) {
                return Err(Error::InvalidArgument(
                    "a server cannot be stopped from one of its own handler calls: it would join its own thread".into(),
                ));
            }
        }
        self.stop.raise();
        let first = self.threads.lock().first().copied();
        if let Some(acceptor) = first {
            registry().join(acceptor); // no thread starts after this
        }
        for id in self.conns.lock().iter() {
            if let Some(conn) = registry().get(*id) {
                conn.shutdown_close();
            }
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        for id in threads {
            registry().join(id);
        }
        Ok(())
    }
}

/// A running endpoint server. Stops when dropped (see [`Server::stop`]).
pub struct Server {
    shared: Arc<ServerShared>,
}

/// Sets up a [`Server`]: `Server::bind("127.0.0.1:8080").descriptors(dir).start()`.
pub struct ServerBuilder {
    bind: String,
    descriptor_dir: Option<PathBuf>,
    endpoints: Vec<(String, String)>,
    /// Certificate chain and private key files (PEM) for wss://.
    tls: Option<(PathBuf, PathBuf)>,
}

impl ServerBuilder {
    /// Loads every `*.websocket` descriptor of `dir` at start.
    pub fn descriptors(mut self, dir: impl AsRef<Path>) -> Self {
        self.descriptor_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Serves `endpoint` with the handler registered as `handler`.
    pub fn endpoint(mut self, endpoint: &str, handler: &str) -> Self {
        self.endpoints.push((endpoint.to_owned(), handler.to_owned()));
        self
    }

    /// Serves wss:// with the certificate chain (PEM, the server's
    /// certificate first) and its private key (PKCS#8 PEM) in these files.
    /// The TLS handshake counts against the handshake timeout and the
    /// pending limit like the request head, on the acceptor thread.
    pub fn tls(mut self, cert_chain_pem: impl AsRef<Path>, key_pem: impl AsRef<Path>) -> Self {
        self.tls = Some((cert_chain_pem.as_ref().to_owned(), key_pem.as_ref().to_owned()));
        self
    }

    /// Binds, loads the descriptors and starts accepting.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unparsable address, a missing
    /// descriptor directory, a bad descriptor (the message names the file
    /// and the field), a bad endpoint name or a duplicate endpoint, an
    /// unreadable certificate or key file, or a key that does not fit;
    /// [`Error::Internal`] when the address cannot be bound (the OS error
    /// says why); [`Error::Shutdown`] after [`crate::shutdown`].
    pub fn start(self) -> Result<Server, Error> {
        let addr: SocketAddr = self
            .bind
            .parse()
            .map_err(|_| Error::InvalidArgument(format!("'{}' is not an address such as 127.0.0.1:8080", self.bind)))?;
        let mut endpoints = HashMap::new();
        let loaded = match &self.descriptor_dir {
            Some(dir) => descriptor::load_dir(dir)?,
            None => Vec::new(),
        };
        let added = self.endpoints.into_iter().map(|(name, handler)| Endpoint { name, handler });
        for e in loaded.into_iter().chain(added) {
            descriptor::check_name(&e.name).map_err(Error::InvalidArgument)?;
            if endpoints.insert(e.name.clone(), e.handler).is_some() {
                return Err(Error::InvalidArgument(format!("endpoint '{}' is defined twice", e.name)));
            }
        }
        let tls = self.tls.as_ref().map(|(cert, key)| tls_acceptor(cert, key)).transpose()?;
        let listener = listen(addr).map_err(|e| Error::Internal(format!("cannot listen on {addr}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Error::Internal(format!("cannot listen on {addr}: {e}")))?;
        let shared = Arc::new(ServerShared::new(addr, endpoints, tls)?);
        lifecycle::serve(shared.clone(), listener)?;
        Ok(Server { shared })
    }
}

impl Server {
    /// A server on `bind` (`127.0.0.1:8080`; port 0 picks a free one).
    pub fn bind(bind: &str) -> ServerBuilder {
        ServerBuilder { bind: bind.to_owned(), descriptor_dir: None, endpoints: Vec::new(), tls: None }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `ws://<addr>/websockets/v4/service/<endpoint>` (`wss://` with TLS).
    pub fn url(&self, endpoint: &str) -> String {
        let scheme = if self.shared.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{SERVICE_PREFIX}{endpoint}", self.shared.addr)
    }

    /// Serves `endpoint` with the handler registered as `handler` from the
    /// next connection on. The handler need not be registered yet (503
    /// until it is).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad name or an endpoint already served.
    pub fn add_endpoint(&self, endpoint: &str, handler: &str) -> Result<(), Error> {
        descriptor::check_name(endpoint).map_err(Error::InvalidArgument)?;
        if handler.is_empty() {
            return Err(Error::InvalidArgument("a handler name must not be empty".into()));
        }
        let mut endpoints = self.shared.endpoints.write();
        if endpoints.contains_key(endpoint) {
            return Err(Error::InvalidArgument(format!("endpoint '{endpoint}' is already served")));
        }
        endpoints.insert(endpoint.to_owned(), handler.to_owned());
        Ok(())
    }

    /// Limits for new connections: at most `max_connections` admitted at
    /// once (503 past it; default 1,000; pending handshakes do not count),
    /// incoming messages up to `max_message_size` (default 64 MiB), the TLS
    /// handshake and request head within `handshake_timeout` (default 10 s;
    /// closed past it).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero value.
    pub fn set_limits(
        &self,
        max_connections: u32,
        max_message_size: usize,
        handshake_timeout: Duration,
    ) -> Result<(), Error> {
        if max_connections == 0 || max_message_size == 0 || handshake_timeout.is_zero() {
            return Err(Error::InvalidArgument("server limits must not be 0".into()));
        }
        let ms = u64::try_from(handshake_timeout.as_millis()).unwrap_or(u64::MAX);
        self.shared.max_connections.store(max_connections as usize, Ordering::Relaxed);
        self.shared.max_message_size.store(max_message_size, Ordering::Relaxed);
        self.shared.handshake_timeout_ms.store(ms, Ordering::Relaxed);
        Ok(())
    }

    /// At most `max` accepted sockets waiting for (or sending) their request
    /// head at once (default 1,024); a socket accepted past
    /// it is closed at once, counted, and logged at WARN at most once a
    /// second. Each pending socket is also bounded by the handshake timeout.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0.
    pub fn set_max_pending(&self, max: u32) -> Result<(), Error> {
        if max == 0 {
            return Err(Error::InvalidArgument("the pending-handshake limit must not be 0".into()));
        }
        self.shared.max_pending.store(max as usize, Ordering::Relaxed);
        Ok(())
    }

    /// Accepts browsers from `origin` (e.g. `http://127.0.0.1:8080`). With
    /// none added any Origin is accepted; with some, a request whose Origin
    /// is not among them gets 403 (one without an Origin header, from a
    /// program rather than a browser, is accepted).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty origin.
    pub fn add_allowed_origin(&self, origin: &str) -> Result<(), Error> {
        if origin.is_empty() {
            return Err(Error::InvalidArgument("an origin must not be empty".into()));
        }
        self.shared.origins.write().push(origin.to_owned());
        Ok(())
    }

    /// Stops accepting, closes every connection of this server with 1001
    /// (each bounded by the close timeout) and returns once every thread it
    /// started has been joined, their last handler calls included.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when called from inside one of this
    /// server's own handler calls (it cannot join its own thread).
    pub fn stop(&self) -> Result<(), Error> {
        self.shared.stop()
    }
}

/// Connections the kernel queues for the acceptor: a burst of hundreds of
/// connects (say, silent sockets) must not overflow the queue and cost
/// real clients a SYN retransmit (std listens with 128).
const BACKLOG: i32 = 4096;

/// Listens on `addr` as std does (SO_REUSEADDR), with a deeper queue.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The TLS side of a wss:// server, from PEM files.
fn tls_acceptor(cert: &Path, key: &Path) -> Result<native_tls::TlsAcceptor, Error> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path)
            .map_err(|e| Error::InvalidArgument(format!("cannot read the {what} {}: {e}", path.display())))
    };
    let (chain, key_pem) = (read(cert, "certificate chain")?, read(key, "private key")?);
    key_fits(&chain, &key_pem).map_err(|why| {
        Error::InvalidArgument(format!(
            "the key {} does not fit the certificate {}: {why}",
            key.display(),
            cert.display()
        ))
    })?;
    let identity = native_tls::Identity::from_pkcs8(&chain, &key_pem).map_err(|e| {
        Error::InvalidArgument(format!(
            "the certificate chain {} and the key {} do not make a TLS identity (PEM certificates and a PKCS#8 \
             PEM key are expected): {e}",
            cert.display(),
            key.display()
        ))
    })?;
    // TLS 1.2 at least, whatever the host's OpenSSL defaults. native-tls's
    // OpenSSL acceptor (Mozilla's intermediate profile) does not offer 1.3.
    native_tls::TlsAcceptor::builder(identity)
        .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("TLS server setup failed: {e}")))
}

/// Whether the private key is the one of the chain's first certificate
/// (native-tls would take a wrong key and fail every handshake later).
fn key_fits(chain: &[u8], key: &[u8]) -> Result<(), String> {
    let cert = openssl::x509::X509::from_pem(chain).map_err(|e| format!("no PEM certificate: {e}"))?;
    let key = openssl::pkey::PKey::private_key_from_pem(key).map_err(|e| format!("no PEM private key: {e}"))?;
    let public = cert.public_key().map_err(|e| e.to_string())?;
    if public.public_eq(&key) {
        Ok(())
    } else {
        Err("it is the key of another certificate".into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shared.stop();
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.shared.addr).finish()
    }
}
