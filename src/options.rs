//! Per-connection settings. Defaults are what a libcurl or IXWebSocket user
//! expects; every limit is configurable. Fallible setters validate at once so
//! a bad value is reported where it was written, not later on a worker thread.

use crate::error::Error;
use crate::proxy::ProxySetting;
use crate::tls::TlsOptions;
use std::time::Duration;

const WRITE_BUFFER: usize = 64 << 10;

/// Settings for one connection. Cheap to clone; not retained after connect.
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) subprotocols: Vec<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) max_frame_size: usize,
    pub(crate) max_buffered_bytes: usize,
    pub(crate) flow_control: bool,
    pub(crate) read_buffer_size: usize,
    pub(crate) stack_size: usize,
    pub(crate) tls: TlsOptions,
    /// `None`: not set (the environment may name one); its `Debug` hides credentials.
    pub(crate) proxy: Option<ProxySetting>,
    pub(crate) proxy_from_env: bool,
    pub(crate) reconnect: Option<crate::reconnect::Reconnect>,
    pub(crate) event_loop: Option<LoopRef>,
    pub(crate) loop_max_pending: (usize, usize),
    /// Deliver `Event::Pong`.
    pub(crate) pongs: bool,
    /// The C `on_pong` (set through `wsc_options_set_on_pong`).
    pub(crate) c_on_pong: crate::ffi::wsc_on_pong_fn,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            headers: Vec::new(),
            subprotocols: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            ping_interval: None,
            pong_timeout: Duration::from_secs(10),
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            max_buffered_bytes: 64 << 20,
            flow_control: false,
            reconnect: None,
            event_loop: None,
            loop_max_pending: (1000, 16 << 20),
            read_buffer_size: 8 << 10,
            stack_size: 256 << 10,
            tls: TlsOptions::default(),
            proxy: None,
            proxy_from_env: false,
            pongs: false,
            c_on_pong: None,
        }
    }
}

/// The loop named by options: weak, so freeing the loop detaches it.
#[derive(Clone)]
pub(crate) struct LoopRef(pub(crate) std::sync::Weak<crate::event_loop::LoopShared>);

impl std::fmt::Debug for LoopRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.strong_count() > 0 { "Loop" } else { "Loop (freed)" })
    }
}

impl Options {
    /// The defaults: 10 s connect timeout, 5 s close timeout, no pings,
    /// 64 MiB max message, 16 MiB max frame, 64 MiB send queue, flow control off,
    /// system CA roots with host name verification.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header to the HTTP upgrade request. Unless one named
    /// `User-Agent` is added, the request carries `User-Agent: wsc/<version>`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `name` is not a valid HTTP header name
    /// or `value` not a valid header value (nothing is added).
    pub fn add_header(&mut self, name: &str, value: &str) -> Result<&mut Self, Error> {
        tungstenite::http::HeaderName::try_from(name)
            .map_err(|_| Error::InvalidArgument(format!("'{name}' is not a valid header name")))?;
        tungstenite::http::HeaderValue::try_from(value)
            .map_err(|_| Error::InvalidArgument(format!("the value of header '{name}' is not valid")))?;
        self.headers.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`); the server's choice is
    /// [`crate::Connection::protocol`] once open.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `protocol` is not an HTTP token.
    pub fn add_subprotocol(&mut self, protocol: &str) -> Result<&mut Self, Error> {
        let token = !protocol.is_empty()
            && protocol.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !token {
            return Err(Error::InvalidArgument(format!("'{protocol}' is not a valid subprotocol token")));
        }
        self.subprotocols.push(protocol.to_owned());
        Ok(self)
    }

    /// Bounds DNS, TCP, a proxy's handshake, TLS and the HTTP upgrade together. Default 10 s.
    /// Any value works; one too large to add to the current time (such as
    /// `Duration::MAX`) means no timeout, as for every duration here.
    pub fn connect_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for the peer's Close after sending ours. Default 5 s.
    pub fn close_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.close_timeout = timeout;
        self
    }

    /// Sends a ping this often; `None` (the default) turns keepalive off.
    /// Each keepalive ping carries an 8-byte big-endian sequence number
    /// (1, 2, ...), so its pong gives the round-trip time even when the
    /// peer answers slower than the interval.
    pub fn ping_interval(&mut self, interval: Option<Duration>) -> &mut Self {
        self.ping_interval = interval.filter(|d| !d.is_zero());
        self
    }

    /// With keepalive on: nothing received this long after a ping ends the
    /// connection with a timeout error. Suspended while the flow gate is shut.
    pub fn pong_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.pong_timeout = timeout;
        self
    }

    /// Largest incoming message; a bigger one ends the connection (close 1009).
    /// Frames are limited to the smaller of this and 16 MiB.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0.
    pub fn max_message_size(&mut self, bytes: usize) -> Result<&mut Self, Error> {
        if bytes == 0 {
            return Err(Error::InvalidArgument("max_message_size must be at least 1".into()));
        }
        self.max_message_size = bytes;
        Ok(self)
    }

    /// Largest incoming frame (default 16 MiB).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0.
    pub fn max_frame_size(&mut self, bytes: usize) -> Result<&mut Self, Error> {
        if bytes == 0 {
            return Err(Error::InvalidArgument("max_frame_size must be at least 1".into()));
        }
        self.max_frame_size = bytes;
        Ok(self)
    }

    /// Limit on bytes accepted by `send` but not yet written; past it `send`
    /// returns [`Error::QueueFull`]. Default 64 MiB.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0.
    pub fn max_buffered_bytes(&mut self, bytes: usize) -> Result<&mut Self, Error> {
        if bytes == 0 {
            return Err(Error::InvalidArgument("max_buffered_bytes must be at least 1".into()));
        }
        self.max_buffered_bytes = bytes;
        Ok(self)
    }

    /// Reconnects after an unexpected loss, keeping the connection's id:
    /// `on_reconnecting` announces each retry, `on_open` runs again on
    /// success, and the one terminal event comes only when wsc gives up or
    /// the application closes. Off by default. What is retried, the backoff
    /// and what happens to queued messages: see the README. A zero
    /// `min_delay` means 100 ms (capped by `max_delay`): the delays always grow.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `max_delay` is zero or smaller than
    /// `min_delay`.
    pub fn reconnect(&mut self, settings: crate::Reconnect) -> Result<&mut Self, Error> {
        if settings.max_delay.is_zero() || settings.max_delay < settings.min_delay {
            return Err(Error::InvalidArgument("reconnect: max_delay must be positive and at least min_delay".into()));
        }
        self.reconnect = Some(settings);
        Ok(self)
    }

    /// Delivers every callback of the connection only inside
    /// [`crate::Loop::dispatch`], on the thread that calls it (I/O stays on
    /// the worker thread). See the README, "Event-loop delivery".
    pub fn event_loop(&mut self, lp: &crate::Loop) -> &mut Self {
        self.event_loop = Some(LoopRef(std::sync::Arc::downgrade(&lp.shared)));
        self
    }

    /// With an event loop: at most `messages` undispatched messages of at
    /// most `bytes` bytes in all (defaults 1,000 and 16 MiB); at the cap the
    /// worker stops reading its socket until the loop dispatches.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0.
    pub fn loop_max_pending(&mut self, messages: usize, bytes: usize) -> Result<&mut Self, Error> {
        if messages == 0 || bytes == 0 {
            return Err(Error::InvalidArgument("loop_max_pending: limits must be at least 1".into()));
        }
        self.loop_max_pending = (messages, bytes);
        Ok(self)
    }

    /// Starts the connection with flow control on (see [`crate::Connection::set_flow_control`]).
    pub fn flow_control(&mut self, enabled: bool) -> &mut Self {
        self.flow_control = enabled;
        self
    }

    /// Bytes read from the socket per system call (default 8 KiB, which keeps
    /// an idle connection under 40 KiB of memory). Larger favours big
    /// messages (64–128 KiB for streams of megabyte messages), smaller favours
    /// many idle connections.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] outside 1 KiB to 64 MiB.
    pub fn read_buffer_size(&mut self, bytes: usize) -> Result<&mut Self, Error> {
        if !(1024..=(64 << 20)).contains(&bytes) {
            return Err(Error::InvalidArgument("read_buffer_size must be 1 KiB to 64 MiB".into()));
        }
        self.read_buffer_size = bytes;
        Ok(self)
    }

    /// Stack size of the worker thread, which also runs the callbacks
    /// (default 256 KiB; only touched pages use memory).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] below 64 KiB.
    pub fn stack_size(&mut self, bytes: usize) -> Result<&mut Self, Error> {
        if bytes < (64 << 10) {
            return Err(Error::InvalidArgument("stack_size must be at least 64 KiB".into()));
        }
        self.stack_size = bytes;
        Ok(self)
    }

    /// Trusts the certificates in this PEM file in addition to the system roots.
    /// The file is read now.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the file cannot be read or holds no
    /// certificate.
    pub fn ca_file(&mut self, pem_path: &str) -> Result<&mut Self, Error> {
        self.tls.add_ca_file(pem_path)?;
        Ok(self)
    }

    /// Presents a client certificate: PEM certificate chain and PKCS#8 PEM key.
    /// Both files are read now.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a file cannot be read or the pair is
    /// not a usable identity.
    pub fn client_certificate(&mut self, cert_pem_path: &str, key_pem_path: &str) -> Result<&mut Self, Error> {
        self.tls.set_identity(cert_pem_path, key_pem_path)?;
        Ok(self)
    }

    /// DANGER, for tests only: accept any server certificate and host name.
    pub fn danger_accept_invalid_certs(&mut self, accept: bool) -> &mut Self {
        self.tls.danger_accept_invalid_certs(accept);
        self
    }

    /// Tunnels the connection through a proxy (the README's "Proxies" section
    /// has every rule):
    /// `http://[user:password@]host[:port]` sends `CONNECT host:port` (for
    /// `ws://` and `wss://` alike) with `Proxy-Authorization: Basic` when
    /// credentials are given; `socks5://...` is SOCKS5 with user name and
    /// password authentication (RFC 1929) when given, the target name
    /// resolved here; `socks5h://...` lets the proxy resolve it. No scheme
    /// means `http://`, no port means 1080; credentials are percent-decoded.
    /// `""` connects directly, even when [`Options::proxy_from_env`] is on and
    /// the environment names a proxy. TLS still verifies the `wss://` host.
    /// Credentials never appear in messages or in this type's `Debug` output.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for another scheme, no host, a bad port,
    /// a path, invalid percent-encoding, or (SOCKS5) a user name or password
    /// outside 1–255 bytes. Nothing is changed then.
    pub fn proxy(&mut self, uri: &str) -> Result<&mut Self, Error> {
        self.proxy = Some(ProxySetting::parse(uri)?);
        Ok(self)
    }

    /// Off by default. When on and no [`Options::proxy`] was set, each connect
    /// reads the environment as libcurl does: `no_proxy` / `NO_PROXY` first
    /// (`*`, host names and domain suffixes, IP addresses and CIDR ranges,
    /// optional `:port`), then for `ws://` `ws_proxy`, `WS_PROXY`,
    /// `http_proxy` (never `HTTP_PROXY`), for `wss://` `wss_proxy`,
    /// `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`, then `all_proxy`,
    /// `ALL_PROXY`; the first one set and not empty is used. A value that
    /// does not parse ends the connection with an error of kind `Proxy`.
    pub fn proxy_from_env(&mut self, enabled: bool) -> &mut Self {
        self.proxy_from_env = enabled;
        self
    }

    /// tungstenite's configuration. Frames collect in a write buffer of up to
    /// 64 KiB and the worker flushes after each batch of queued messages, so
    /// a burst of small sends becomes a few large `send(2)` calls.
    /// Delivers [`crate::Event::Pong`] for every pong received, with the
    /// round-trip time of the ping it answers (off by default, so channel
    /// and handler users see no new events unless they ask).
    /// [`crate::Builder::on_pong`] turns it on.
    pub fn deliver_pongs(&mut self, enabled: bool) -> &mut Self {
        self.pongs = enabled;
        self
    }

    pub(crate) fn websocket_config(&self) -> tungstenite::protocol::WebSocketConfig {
        tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(WRITE_BUFFER)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size.min(self.max_message_size)))
    }
}
