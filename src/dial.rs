//! Getting from a URI to an open WebSocket: DNS, TCP, a proxy's tunnel
//! (`proxy.rs`) when one is used, TLS, HTTP upgrade.
//!
//! Every step, DNS included (c-ares, `resolve.rs`), is non-blocking and
//! waits in `poll(2)` together with the worker's eventfd, so `close()`
//! abandons a dial at once (even one stuck on a silent name server or
//! server) and one deadline bounds the whole sequence. Addresses are raced
//! as RFC 8305 describes (`eyeballs.rs`).

use crate::error::{ConnectionError, ErrorKind};
use crate::eyeballs::Race;
use crate::logging::{header_value, wlog};
use crate::options::Options;
use crate::response::HandshakeResponse;
use crate::stats::{ConnectPhases, Stats};
use crate::stream::{raw_fd, Stream, Tcp, Transport};
use crate::target::Target;
use crate::waker::{Interest, Waker};
use native_tls::HandshakeError as TlsHandshakeError;
use std::cell::Cell;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tungstenite::handshake::HandshakeError;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{ClientRequestBuilder, WebSocket};

/// Why no WebSocket came out of the dial.
pub(crate) enum DialError {
    /// The application closed the connection while it was connecting.
    Aborted,
    Failed(ConnectionError),
}

impl From<ConnectionError> for DialError {
    fn from(e: ConnectionError) -> Self {
        DialError::Failed(e)
    }
}

pub(crate) struct Dial<'a> {
    pub(crate) target: &'a Target,
    pub(crate) options: &'a Options,
    pub(crate) waker: &'a Waker,
    pub(crate) aborted: &'a dyn Fn() -> bool,
    /// `None`: no connect timeout (one too large to represent).
    pub(crate) deadline: Option<Instant>,
    /// The connection's id, for log lines.
    pub(crate) id: u64,
    pub(crate) stats: &'a Arc<Stats>,
    /// Where the upgrade response is kept, accepted or refused.
    pub(crate) response: &'a OnceLock<HandshakeResponse>,
    /// Time spent in each phase so far.
    pub(crate) phases: Cell<ConnectPhases>,
}

/// Sent in the upgrade request unless the application sets its own
/// `User-Agent` header: servers and firewalls log or refuse requests without one.
pub(crate) const USER_AGENT: &str = concat!("wsc/", env!("CARGO_PKG_VERSION"));

impl Dial<'_> {
    /// Returns the open socket and the negotiated subprotocol; records the
    /// phases' durations in the statistics.
    pub(crate) fn establish(&self) -> Result<(WebSocket<Stream>, Option<String>), DialError> {
        let (id, target) = (self.id, self.target);
        let tcp = match crate::proxy::choose(self.options, target)? {
            Some(proxy) => {
                wlog!(Info, id, "connecting to {}:{} through proxy {proxy}", target.host, target.port);
                let started = Instant::now();
                let before = self.phases.get();
                let tunnel = proxy.tunnel(self)?;
                let mut p = self.phases.get();
                let inner = (p.dns - before.dns) + (p.tcp - before.tcp);
                p.proxy = started.elapsed().saturating_sub(inner);
                self.phases.set(p);
                wlog!(Debug, id, "proxy {proxy} opened the tunnel in {} us", p.proxy.as_micros());
                Tcp::new(tunnel)
            }
            None => {
                wlog!(Info, id, "connecting to {}:{}", target.host, target.port);
                Tcp::new(self.direct()?)
            }
        };
        let transport = if target.tls { self.tls(tcp)? } else { MaybeTlsStream::Plain(tcp) };
        let open = self.upgrade(Stream::new(transport, self.stats.clone()))?;
        self.stats.set_phases(&self.phases.get());
        Ok(open)
    }

    /// Adds the time since `started` to one phase.
    pub(crate) fn timed(&self, started: Instant, phase: impl FnOnce(&mut ConnectPhases) -> &mut Duration) {
        let mut p = self.phases.get();
        *phase(&mut p) += started.elapsed();
        self.phases.set(p);
    }

    /// Looks the name up and connects in one race: the first address
    /// answered is tried while the other family's answer is on its way.
    fn direct(&self) -> Result<TcpStream, DialError> {
        let (host, port) = (self.target.host.as_str(), self.target.port);
        let race = match ip_literal(host) {
            Some(ip) => Race::known(self, host, port, &[SocketAddr::new(ip, port)]),
            None => Race::resolving(self, host, port)?,
        };
        Ok(race.connect()?.0)
    }

    pub(crate) fn check(&self, stage: &str) -> Result<(), DialError> {
        if (self.aborted)() {
            return Err(DialError::Aborted);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            let ms = self.options.connect_timeout.as_millis();
            return Err(ConnectionError::new(
                ErrorKind::Timeout,
                format!("connect timeout: {ms} ms passed while {stage}"),
            )
            .into());
        }
        Ok(())
    }

    /// Waits until `fd` is ready, the application aborts, or the deadline passes.
    pub(crate) fn wait(&self, fd: RawFd, interest: Interest, stage: &str) -> Result<(), DialError> {
        self.check(stage)?;
        self.waker.wait(fd, interest, self.deadline);
        self.check(stage)
    }

    /// Resolves `host` (AAAA and A at once, see `resolve.rs`) within the
    /// deadline; an IP literal takes no time and counts as no DNS.
    /// Addresses come families alternating, IPv6 first.
    pub(crate) fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DialError> {
        if let Some(ip) = ip_literal(host) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        Race::resolving(self, host, port)?.addresses()
    }

    /// Connects to one of `addrs`, racing them as RFC 8305 describes
    /// (`eyeballs.rs`); reports the last failure.
    pub(crate) fn tcp(&self, addrs: &[SocketAddr]) -> Result<TcpStream, DialError> {
        Ok(Race::known(self, "", 0, addrs).connect()?.0)
    }

    fn tls(&self, tcp: Tcp) -> Result<Transport, DialError> {
        let fd = tcp.as_raw_fd();
        let host = self.target.host.as_str();
        let connector = self.options.tls.connector()?;
        let started = Instant::now();
        let mut attempt = connector.connect(host, tcp);
        loop {
            match attempt {
                Ok(tls) => {
                    self.timed(started, |p| &mut p.tls);
                    // native-tls 0.2 does not expose the negotiated protocol version.
                    wlog!(Info, self.id, "TLS established with '{host}' in {} us", started.elapsed().as_micros());
                    return Ok(MaybeTlsStream::NativeTls(tls));
                }
                Err(TlsHandshakeError::WouldBlock(mid)) => {
                    self.wait(fd, mid.get_ref().blocked_on(), "in the TLS handshake")?;
                    attempt = mid.handshake();
                }
                Err(TlsHandshakeError::Failure(e)) => {
                    let why = tls_failure(&e.to_string());
                    return Err(ConnectionError::new(
                        ErrorKind::Tls,
                        format!("TLS handshake with '{host}' failed: {why} [{e}]"),
                    )
                    .into());
                }
            }
        }
    }

    fn upgrade(&self, stream: Stream) -> Result<(WebSocket<Stream>, Option<String>), DialError> {
        let fd = raw_fd(&stream);
        let mut request = ClientRequestBuilder::new(self.target.uri.clone());
        for (name, value) in &self.options.headers {
            request = request.with_header(name.as_str(), value.as_str());
        }
        if !self.options.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("user-agent")) {
            request = request.with_header("User-Agent", USER_AGENT);
        }
        for p in &self.options.subprotocols {
            request = request.with_sub_protocol(p.as_str());
        }
        if crate::logging::enabled(log::Level::Trace) {
            for (name, value) in &self.options.headers {
                wlog!(Trace, self.id, "upgrade request header {name}: {}", header_value(name, value));
            }
        }
        let started = Instant::now();
        let mut attempt =
            tungstenite::client::client_with_config(request, stream, Some(self.options.websocket_config()));
        loop {
            match attempt {
                Ok((ws, response)) => {
                    self.timed(started, |p| &mut p.upgrade);
                    let protocol = response
                        .headers()
                        .get("Sec-WebSocket-Protocol")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    self.keep_response(HandshakeResponse::from_http(&response));
                    wlog!(
                        Info,
                        self.id,
                        "upgraded: HTTP {} in {} us, subprotocol {}",
                        response.status().as_u16(),
                        started.elapsed().as_micros(),
                        protocol.as_deref().unwrap_or("none")
                    );
                    return Ok((ws, protocol));
                }
                Err(HandshakeError::Interrupted(mid)) => {
                    let blocked = mid.get_ref().get_ref().tcp().blocked_on();
                    let stage = if blocked.write {
                        "sending the HTTP upgrade request"
                    } else {
                        "waiting for the HTTP upgrade response"
                    };
                    self.wait(fd, blocked, stage)?;
                    attempt = mid.handshake();
                }
                Err(HandshakeError::Failure(e)) => {
                    if let tungstenite::Error::Http(response) = &e {
                        self.keep_response(HandshakeResponse::from_http(response));
                    }
                    return Err(upgrade_error(e).into());
                }
            }
        }
    }

    /// Keeps the upgrade response for the application (and logs its headers
    /// at TRACE, credentials redacted).
    fn keep_response(&self, response: HandshakeResponse) {
        if crate::logging::enabled(log::Level::Trace) {
            for (name, value) in response.headers() {
                wlog!(Trace, self.id, "upgrade response header {name}: {}", header_value(name, value));
            }
        }
        let _ = self.response.set(response);
    }
}

/// `host` as an IP address, brackets around IPv6 allowed: no DNS for it.
fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// A plain phrase for OpenSSL's verification result, which it buries at the
/// end of a long error string.
fn tls_failure(openssl: &str) -> &'static str {
    const CAUSES: &[(&str, &str)] = &[
        ("hostname mismatch", "the certificate is for another host name"),
        ("IP address mismatch", "the certificate is for another IP address"),
        ("certificate has expired", "the certificate has expired"),
        ("certificate is not yet valid", "the certificate is not yet valid"),
        ("unable to get local issuer certificate", "the certificate is not trusted (unknown issuer)"),
        ("self-signed certificate", "the certificate is not trusted (self-signed)"),
        ("certificate verify failed", "the certificate could not be verified"),
        ("wrong version number", "the server does not speak TLS on this port"),
    ];
    CAUSES.iter().find(|(needle, _)| openssl.contains(needle)).map_or("TLS negotiation failed", |(_, why)| why)
}

pub(crate) fn upgrade_error(e: tungstenite::Error) -> ConnectionError {
    use tungstenite::Error as E;
    match e {
        E::Http(response) => {
            let status = response.status();
            // Retry-After in seconds (an HTTP date is rare here and ignored).
            let retry_after = response
                .headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map(std::time::Duration::from_secs);
            ConnectionError::new(
                ErrorKind::Handshake { status: Some(status.as_u16()) },
                format!(
                    "the server refused the WebSocket upgrade: HTTP {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ),
            )
            .with_retry_after(retry_after)
        }
        E::Io(io) => ConnectionError::new(
            ErrorKind::ConnectionLost,
            format!("the connection failed during the HTTP upgrade: {io}"),
        ),
        E::AttackAttempt => ConnectionError::new(
            ErrorKind::Handshake { status: None },
            "the server sent its upgrade response too slowly or too large (more than 64 reads of under 128 bytes \
             on average, or over 64 KiB): refused as a slowloris attack",
        ),
        E::Protocol(p) => ConnectionError::new(
            ErrorKind::Handshake { status: None },
            format!("invalid WebSocket upgrade response: {p}"),
        ),
        other => {
            ConnectionError::new(ErrorKind::Handshake { status: None }, format!("WebSocket upgrade failed: {other}"))
        }
    }
}
