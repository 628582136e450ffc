//! Proxies: which one a connection goes through (its option, or the
//! environment read the way libcurl reads it) and the tunnel through it
//! (HTTP `CONNECT`, SOCKS5 with RFC 1929 user name and password).
//!
//! The tunnel is opened on the dial's non-blocking socket and every wait goes
//! through [`Dial::wait`], so the connect timeout bounds it and `close()`
//! abandons it at once. Nothing past the proxy's own reply is consumed: the
//! `CONNECT` reply is peeked and only its head is read, SOCKS replies have a
//! known length, so bytes the target sends in the same segment stay in the
//! socket for TLS or the upgrade. Interim 1xx heads before the final reply
//! are skipped (RFC 9110 §15.2; a 101 is no tunnel and fails, as in curl);
//! all the heads together count against [`MAX_REPLY_HEAD`], counted in bytes
//! whatever they hold, and no more than that is ever held.
//!
//! Credentials never leave this file except on the wire to the proxy: a
//! proxy is shown (messages, `Debug`) as `scheme://host:port`, with `***@`
//! when it has credentials, and a URI that does not parse is quoted with its
//! user information replaced by `***`.

use crate::dial::{Dial, DialError};
use crate::error::{ConnectionError, Error, ErrorKind};
use crate::options::Options;
use crate::target::Target;
use crate::waker::Interest;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;

const READ: Interest = Interest { read: true, write: false };
const WRITE: Interest = Interest { read: false, write: true };

/// libcurl's default proxy port, for every scheme.
const DEFAULT_PORT: u16 = 1080;
/// A `CONNECT` reply longer than this (its interim 1xx heads and the final
/// head together) is not a proxy talking.
const MAX_REPLY_HEAD: usize = 16 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// HTTP `CONNECT host:port`.
    Http,
    /// SOCKS5; the client resolves the target name.
    Socks5,
    /// SOCKS5; the proxy resolves the target name.
    Socks5h,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Socks5 => "socks5",
            Scheme::Socks5h => "socks5h",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    user: Vec<u8>,
    password: Vec<u8>,
}

/// A proxy to tunnel through. `Debug` and `Display` never show credentials.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    scheme: Scheme,
    /// Host name or address, without IPv6 brackets.
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

/// What an application set with [`Options::proxy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProxySetting {
    /// `""`: connect directly, whatever the environment says.
    Direct,
    Via(Proxy),
}

impl ProxySetting {
    /// Parses the value given to `Options::proxy`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for another scheme, no host, a bad port,
    /// bad percent-encoding, or credentials SOCKS5 cannot carry.
    pub(crate) fn parse(uri: &str) -> Result<ProxySetting, Error> {
        if uri.trim().is_empty() {
            return Ok(ProxySetting::Direct);
        }
        Proxy::parse(uri).map(ProxySetting::Via).map_err(Error::InvalidArgument)
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.name(), authority(&self.host, self.port))
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.credentials.is_some() { "***@" } else { "" };
        write!(f, "Proxy(\"{}://{secret}{}\")", self.scheme.name(), authority(&self.host, self.port))
    }
}

/// `host:port`, with brackets around an IPv6 address.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The URI as it may be shown: everything before the last `@` of the
/// authority (the credentials, even with unescaped `/` or `@` in them) is `***`.
fn redact(uri: &str) -> String {
    let start = uri.find("://").map_or(0, |i| i + 3);
    match uri.rfind('@') {
        Some(at) if at >= start => format!("{}***{}", &uri[..start], &uri[at..]),
        _ => uri.to_owned(),
    }
}

impl Proxy {
    /// Parses `[scheme://][user[:password]@]host[:port][/]`; no scheme means
    /// `http://`, no port means 1080. The error never repeats credentials.
    fn parse(uri: &str) -> Result<Proxy, String> {
        let uri = uri.trim();
        let bad = |why: &str| format!("proxy URI '{}' {why}", redact(uri));
        let (scheme, rest) = match uri.find("://") {
            Some(i) => (&uri[..i], &uri[i + 3..]),
            None => ("http", uri),
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "socks5" => Scheme::Socks5,
            "socks5h" => Scheme::Socks5h,
            _ => return Err(bad("has an unsupported scheme: use http://, socks5:// or socks5h://")),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !(tail.is_empty() || tail == "/") {
            return Err(bad("has a path or query: write scheme://[user:password@]host[:port]"));
        }
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let credentials = match userinfo.filter(|u| !u.is_empty()) {
            None => None,
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                let decode = |s: &str| percent_decode(s).ok_or_else(|| bad("has invalid percent-encoding"));
                Some(Credentials { user: decode(user)?, password: decode(password)? })
            }
        };
        let (host, port) = split_host_port(hostport).map_err(&bad)?;
        if let (Scheme::Socks5 | Scheme::Socks5h, Some(c)) = (scheme, &credentials) {
            if c.user.is_empty() || c.user.len() > 255 || c.password.len() > 255 {
                return Err(bad("has a user name or password SOCKS5 cannot carry (1 to 255 bytes each)"));
            }
        }
        Ok(Proxy { scheme, host, port, credentials })
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(s: &str) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or("has an unclosed '['")?;
        addr.parse::<std::net::Ipv6Addr>().map_err(|_| "has an invalid IPv6 address")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("has text after the IPv6 address")?),
        };
        (addr, port)
    } else {
        match s.split_once(':') {
            Some((_, p)) if p.contains(':') => return Err("has an IPv6 address without brackets"),
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    let name_ok = host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !s.starts_with('[') && !name_ok {
        return Err("has an invalid host name");
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err("has a bad port (1 to 65535)"),
        },
    };
    Ok((host.to_owned(), port))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ------------------------------------------------------------ environment

/// The proxy for this connection: the option when set (`""` is direct), else
/// the environment when `proxy_from_env` is on, else none.
///
/// # Errors
/// A proxy variable whose value does not parse ends the connection (kind
/// `Proxy`) rather than silently going direct.
pub(crate) fn choose(options: &Options, target: &Target) -> Result<Option<Proxy>, ConnectionError> {
    match &options.proxy {
        Some(ProxySetting::Direct) => Ok(None),
        Some(ProxySetting::Via(p)) => Ok(Some(p.clone())),
        None if options.proxy_from_env => from_env(target, |name| {
            std::env::var_os(name).map(|v| v.to_string_lossy().trim().to_owned()).filter(|v| !v.is_empty())
        }),
        None => Ok(None),
    }
}

/// libcurl's order: `no_proxy`/`NO_PROXY` first; then for `ws://`
/// `ws_proxy`, `WS_PROXY`, `http_proxy` (never `HTTP_PROXY`); for `wss://`
/// `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`; then `all_proxy`,
/// `ALL_PROXY`. The first one set and not empty wins.
pub(crate) fn from_env(
    target: &Target,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, ConnectionError> {
    if let Some(list) = env("no_proxy").or_else(|| env("NO_PROXY")) {
        if no_proxy_matches(&list, &target.host, target.port) {
            return Ok(None);
        }
    }
    let names: &[&str] = if target.tls {
        &["wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["ws_proxy", "WS_PROXY", "http_proxy", "all_proxy", "ALL_PROXY"]
    };
    let Some((name, value)) = names.iter().find_map(|n| env(n).map(|v| (n, v))) else {
        return Ok(None);
    };
    Proxy::parse(&value).map(Some).map_err(|why| {
        ConnectionError::new(ErrorKind::Proxy { status: None }, format!("environment variable {name}: {why}"))
    })
}

/// Whether `no_proxy` exempts `host`: entries separated by commas or
/// spaces; `*` matches everything; a name matches itself and its
/// subdomains (a leading dot changes nothing); an IP address or CIDR range
/// matches IP-literal hosts in it; `entry:port` (`[v6]:port`) only that port.
pub(crate) fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    list.split(|c: char| c == ',' || c.is_whitespace()).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        if let Some(net) = Cidr::parse(entry) {
            return ip.is_some_and(|ip| net.contains(ip));
        }
        let (name, entry_port) = if let Some(inner) = entry.strip_prefix('[') {
            let Some((addr, after)) = inner.split_once(']') else { return false };
            (addr, after.strip_prefix(':'))
        } else {
            match entry.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (entry, None),
            }
        };
        if entry_port.is_some_and(|p| p.parse::<u16>().ok() != Some(port)) {
            return false;
        }
        if let Some(net) = Cidr::parse(name) {
            return ip.is_some_and(|ip| net.contains(ip));
        }
        let name = name.trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
        !name.is_empty() && ip.is_none() && (host == name || host.ends_with(&format!(".{name}")))
    })
}

/// An address and prefix length: `10.0.0.0/8`, `::1/128`, or one address.
struct Cidr {
    addr: IpAddr,
    bits: u32,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { addr, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.bits).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.bits).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

// ----------------------------------------------------------------- tunnel

fn proxy_error(message: impl Into<String>) -> DialError {
    ConnectionError::new(ErrorKind::Proxy { status: None }, message).into()
}

impl Proxy {
    /// Connects to the proxy and has it open a tunnel to the target; returns
    /// the socket, positioned at the target's first byte.
    ///
    /// # Errors
    /// Every failure while reaching or talking to the proxy (resolution,
    /// refused, timeout, refused `CONNECT`, SOCKS error) is kind `Proxy`,
    /// its message starting with the proxy; [`DialError::Aborted`] on close().
    pub(crate) fn tunnel(&self, dial: &Dial) -> Result<TcpStream, DialError> {
        let target = dial.target;
        // socks5:// resolves the target here, before the proxy is contacted.
        let resolved = match self.scheme {
            Scheme::Socks5 => {
                let addrs = dial.resolve(&target.host, target.port)?;
                dial.check("resolving the host name")?;
                Some(addrs[0])
            }
            Scheme::Http | Scheme::Socks5h => None,
        };
        self.handshake(dial, resolved).map_err(|e| self.blame(e))
    }

    fn handshake(&self, dial: &Dial, resolved: Option<SocketAddr>) -> Result<TcpStream, DialError> {
        let addrs = dial.resolve(&self.host, self.port)?;
        dial.check("resolving the proxy's host name")?;
        let mut stream = dial.tcp(&addrs)?;
        let mut io = ProxyIo { dial, stream: &mut stream };
        match self.scheme {
            Scheme::Http => self.http_connect(&mut io)?,
            Scheme::Socks5 | Scheme::Socks5h => self.socks5(&mut io, resolved)?,
        }
        Ok(stream)
    }

    /// Makes a failure say it happened at this proxy, as kind `Proxy`.
    fn blame(&self, e: DialError) -> DialError {
        match e {
            DialError::Aborted => DialError::Aborted,
            DialError::Failed(e) => {
                let status = e.http_status().filter(|_| matches!(e.kind(), ErrorKind::Proxy { .. }));
                ConnectionError::new(ErrorKind::Proxy { status }, format!("proxy {self}: {}", e.message())).into()
            }
        }
    }

    fn http_connect(&self, io: &mut ProxyIo) -> Result<(), DialError> {
        let target = authority(&io.dial.target.host, io.dial.target.port);
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(c) = &self.credentials {
            let token = base64(&[&c.user[..], b":", &c.password[..]].concat());
            request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        request.push_str("\r\n");
        io.write_all(request.as_bytes(), "sending CONNECT")?;
        let (status, reason) = io.final_reply(&target)?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let reason = reason.as_str();
        let reason = if reason.trim().is_empty() {
            tungstenite::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
        } else {
            reason.trim()
        };
        let hint = match (status, &self.credentials) {
            (401 | 407, None) => " (it wants a user name and password: put them in the proxy URI)",
            (401 | 407, Some(_)) => " (it did not accept the user name and password)",
            _ => "",
        };
        Err(ConnectionError::new(
            ErrorKind::Proxy { status: Some(status) },
            format!("refused CONNECT to {target}: HTTP {status} {}{hint}", printable(reason)),
        )
        .into())
    }

    fn socks5(&self, io: &mut ProxyIo, resolved: Option<SocketAddr>) -> Result<(), DialError> {
        // Greeting: offer "no authentication", and user/password when we have them.
        let greeting: &[u8] = if self.credentials.is_some() { &[5, 2, 0x00, 0x02] } else { &[5, 1, 0x00] };
        io.write_all(greeting, "sending the SOCKS5 greeting")?;
        let mut reply = [0u8; 2];
        io.read_exact(&mut reply, "waiting for the SOCKS5 greeting reply")?;
        if reply[0] != 5 {
            return Err(proxy_error(format!("is not a SOCKS5 proxy (it answered with version {})", reply[0])));
        }
        match (reply[1], &self.credentials) {
            (0x00, _) => {}
            (0x02, Some(c)) => {
                let mut auth = vec![1, c.user.len() as u8];
                auth.extend_from_slice(&c.user);
                auth.push(c.password.len() as u8);
                auth.extend_from_slice(&c.password);
                io.write_all(&auth, "sending the SOCKS5 user name and password")?;
                io.read_exact(&mut reply, "waiting for the SOCKS5 authentication reply")?;
                if reply[1] != 0 {
                    return Err(proxy_error(format!(
                        "refused the user name and password (RFC 1929 status {})",
                        reply[1]
                    )));
                }
            }
            (0xFF, None) => {
                return Err(proxy_error(
                    "requires authentication (no acceptable method without a user name and password: put them in the proxy URI)",
                ))
            }
            (0xFF, Some(_)) => return Err(proxy_error("accepts none of the offered authentication methods")),
            (m, _) => return Err(proxy_error(format!("chose authentication method {m}, which was not offered"))),
        }
        let target = io.dial.target;
        let mut request = vec![5, 1, 0];
        let ip = resolved.map(|a| a.ip()).or_else(|| target.host.parse::<IpAddr>().ok());
        match ip {
            Some(IpAddr::V4(a)) => {
                request.push(1);
                request.extend_from_slice(&a.octets());
            }
            Some(IpAddr::V6(a)) => {
                request.push(4);
                request.extend_from_slice(&a.octets());
            }
            None => {
                let name = target.host.as_bytes();
                let len = u8::try_from(name.len())
                    .map_err(|_| proxy_error("cannot carry a host name longer than 255 bytes"))?;
                request.push(3);
                request.push(len);
                request.extend_from_slice(name);
            }
        }
        request.extend_from_slice(&target.port.to_be_bytes());
        io.write_all(&request, "sending the SOCKS5 CONNECT request")?;
        io.read_exact(&mut reply, "waiting for the SOCKS5 CONNECT reply")?;
        if reply[0] != 5 {
            return Err(proxy_error(format!("sent an invalid SOCKS5 reply (version {})", reply[0])));
        }
        if reply[1] != 0 {
            let shown = match ip {
                Some(ip) => authority(&ip.to_string(), target.port),
                None => authority(&target.host, target.port),
            };
            return Err(proxy_error(format!(
                "could not connect to {shown}: {} (SOCKS5 reply {})",
                socks_reply(reply[1]),
                reply[1]
            )));
        }
        // The bound address: RSV, ATYP, then an address of ATYP's size, and a port.
        io.read_exact(&mut reply, "waiting for the SOCKS5 CONNECT reply")?;
        let rest = match reply[1] {
            1 => 4 + 2,
            4 => 16 + 2,
            3 => {
                let mut len = [0u8; 1];
                io.read_exact(&mut len, "waiting for the SOCKS5 CONNECT reply")?;
                usize::from(len[0]) + 2
            }
            t => return Err(proxy_error(format!("sent an invalid SOCKS5 reply (address type {t})"))),
        };
        let mut skip = vec![0u8; rest];
        io.read_exact(&mut skip, "waiting for the SOCKS5 CONNECT reply")
    }
}

/// The status code and reason phrase of a reply head's first line.
///
/// # Errors
/// A line that is not `HTTP/1.x NNN …`.
fn status_line(head: &[u8]) -> Result<(u16, String), DialError> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().splitn(3, ' ');
    let (version, code, reason) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
    let status = code.filter(|c| c.len() == 3).and_then(|c| c.parse::<u16>().ok());
    match (status, version.is_some_and(|v| v.starts_with("HTTP/1."))) {
        (Some(status), true) => Ok((status, reason.to_owned())),
        _ => Err(proxy_error(format!("answered CONNECT with something that is not HTTP: '{}'", printable(&line)))),
    }
}

/// RFC 1928's reply codes, in words.
fn socks_reply(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

/// Text from the proxy, made safe to show: printable ASCII, at most 100 characters.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).take(100).collect()
}

/// Non-blocking reads and writes on the proxy socket, waiting through the dial.
struct ProxyIo<'a, 'd> {
    dial: &'a Dial<'d>,
    stream: &'a mut TcpStream,
}

impl ProxyIo<'_, '_> {
    fn failed(&self, e: &io::Error, stage: &str) -> DialError {
        proxy_error(format!("the connection to the proxy failed while {stage}: {e}"))
    }

    fn closed(stage: &str) -> DialError {
        proxy_error(format!("the proxy closed the connection while {stage}"))
    }

    fn write_all(&mut self, mut buf: &[u8], stage: &str) -> Result<(), DialError> {
        while !buf.is_empty() {
            match self.stream.write(buf) {
                Ok(0) => return Err(Self::closed(stage)),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.dial.wait(self.stream.as_raw_fd(), WRITE, stage)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.failed(&e, stage)),
            }
        }
        Ok(())
    }

    fn read_exact(&mut self, mut buf: &mut [u8], stage: &str) -> Result<(), DialError> {
        while !buf.is_empty() {
            match self.stream.read(buf) {
                Ok(0) => return Err(Self::closed(stage)),
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.dial.wait(self.stream.as_raw_fd(), READ, stage)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.failed(&e, stage)),
            }
        }
        Ok(())
    }

    /// The status and reason of the final reply to `CONNECT`. Interim (1xx)
    /// replies come before it and are skipped (RFC 9110 §15.2); every head
    /// counts against one budget of [`MAX_REPLY_HEAD`], so a proxy sending
    /// endless `100 Continue` heads hits the limit.
    ///
    /// # Errors
    /// A head past the budget or not HTTP; a 101, which opens no tunnel.
    fn final_reply(&mut self, target: &str) -> Result<(u16, String), DialError> {
        let mut budget = MAX_REPLY_HEAD;
        loop {
            let head = self.read_reply_head(&mut budget)?;
            match status_line(&head)? {
                (101, _) => {
                    return Err(ConnectionError::new(
                        ErrorKind::Proxy { status: Some(101) },
                        format!(
                            "answered CONNECT to {target} with HTTP 101 Switching Protocols, which opens no tunnel \
                             (a CONNECT asks for no protocol switch; only a 2xx opens the tunnel, RFC 9110 §9.3.6)"
                        ),
                    )
                    .into())
                }
                (100..=199, _) => continue,
                last => return Ok(last),
            }
        }
    }

    /// Reads one head of the `CONNECT` reply and not one byte more: peeks,
    /// then reads only up to the blank line, so whatever the target sent
    /// in the same segment stays in the socket. Fails as soon as the bytes
    /// cannot be an HTTP reply, or once the head would take more than
    /// `budget` bytes (whatever they are: no newline, one long line, many
    /// short ones); never holds more than `budget` bytes. The head's length
    /// is taken off `budget`.
    fn read_reply_head(&mut self, budget: &mut usize) -> Result<Vec<u8>, DialError> {
        const STAGE: &str = "waiting for its reply to CONNECT";
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            let room = (*budget - head.len()).min(buf.len());
            if room == 0 {
                return Err(proxy_error(format!(
                    "sent a reply to CONNECT longer than {MAX_REPLY_HEAD} bytes (interim 1xx heads included)"
                )));
            }
            let n = match self.stream.peek(&mut buf[..room]) {
                Ok(0) => return Err(Self::closed(STAGE)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.dial.wait(self.stream.as_raw_fd(), READ, STAGE)?;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.failed(&e, STAGE)),
            };
            let before = head.len();
            head.extend_from_slice(&buf[..n]);
            let end = head_end(&head, before.saturating_sub(2));
            let take = end.map_or(n, |end| end - before);
            head.truncate(before + take);
            self.stream.read_exact(&mut buf[..take]).map_err(|e| self.failed(&e, STAGE))?;
            let prefix = &head[..head.len().min(5)];
            if !b"HTTP/".starts_with(prefix) {
                let line = String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or_default());
                return Err(proxy_error(format!(
                    "answered CONNECT with something that is not HTTP: '{}'",
                    printable(line.trim_end())
                )));
            }
            if end.is_some() {
                *budget -= head.len();
                return Ok(head);
            }
        }
    }
}

/// The end of an HTTP head (just past `\n\r\n` or `\n\n`), searching from `from`.
pub(crate) fn head_end(head: &[u8], from: usize) -> Option<usize> {
    (from..head.len()).find_map(|i| match &head[i..] {
        [b'\n', b'\n', ..] => Some(i + 2),
        [b'\n', b'\r', b'\n', ..] => Some(i + 3),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Target {
        Target::parse(uri).unwrap()
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    fn shown(uri: &str, vars: &[(&str, &str)]) -> Option<String> {
        from_env(&target(uri), env(vars)).unwrap().map(|p| p.to_string())
    }

    #[test]
    fn parses_the_three_schemes_with_defaults() {
        let p = Proxy::parse("http://proxy.example:3128").unwrap();
        assert_eq!(
            (p.scheme, p.host.as_str(), p.port, p.credentials.is_none()),
            (Scheme::Http, "proxy.example", 3128, true)
        );
        assert_eq!(Proxy::parse("socks5://10.0.0.1").unwrap().port, 1080);
        assert_eq!(Proxy::parse("SOCKS5H://[::1]:9050/").unwrap().to_string(), "socks5h://[::1]:9050");
        assert_eq!(Proxy::parse("proxy:8080").unwrap().to_string(), "http://proxy:8080");
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let p = Proxy::parse("http://us%65r:p%40ss:w%3Ard@h:1").unwrap();
        let c = p.credentials.unwrap();
        assert_eq!((c.user.as_slice(), c.password.as_slice()), (&b"user"[..], &b"p@ss:w:rd"[..]));
        let c = Proxy::parse("socks5://only@h").unwrap().credentials.unwrap();
        assert_eq!((c.user.as_slice(), c.password.as_slice()), (&b"only"[..], &b""[..]));
    }

    #[test]
    fn rejects_bad_uris_without_repeating_credentials() {
        for bad in [
            "https://h:1",
            "socks4://h",
            "http://",
            "http://user:secret@",
            "http://h:0",
            "http://h:65536",
            "http://h:x",
            "http://h:",
            "http://::1:80",
            "http://[::1",
            "http://h/path",
            "http://user:sec/ret@h:1",
            "http://user:%zzsecret@h",
            "socks5://:secret@h",
            "http://h st",
        ] {
            let e = Proxy::parse(bad).expect_err(bad);
            assert!(!e.contains("secret") && !e.contains("ret@"), "{bad}: {e}");
        }
        assert_eq!(ProxySetting::parse("").unwrap(), ProxySetting::Direct);
    }

    #[test]
    fn debug_and_display_hide_credentials() {
        let p = Proxy::parse("socks5h://alice:secret@h:1").unwrap();
        assert_eq!(format!("{p:?}"), "Proxy(\"socks5h://***@h:1\")");
        assert_eq!(p.to_string(), "socks5h://h:1");
        assert_eq!(redact("http://a:b@c@h:1"), "http://***@h:1");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn environment_order_follows_libcurl() {
        let all = [
            ("ws_proxy", "ws:1"),
            ("WS_PROXY", "WS:1"),
            ("http_proxy", "http:1"),
            ("HTTP_PROXY", "HTTP:1"),
            ("wss_proxy", "wss:1"),
            ("WSS_PROXY", "WSS:1"),
            ("https_proxy", "https:1"),
            ("HTTPS_PROXY", "HTTPS:1"),
            ("all_proxy", "all:1"),
            ("ALL_PROXY", "ALL:1"),
        ];
        let mut ws = vec!["ws", "WS", "http", "all", "ALL"];
        let mut wss = vec!["wss", "WSS", "https", "HTTPS", "all", "ALL"];
        for (uri, order) in [("ws://t/", &mut ws), ("wss://t/", &mut wss)] {
            let mut vars = all.to_vec();
            while let Some(expected) = order.first() {
                assert_eq!(shown(uri, &vars), Some(format!("http://{expected}:1")), "{uri} {vars:?}");
                vars.retain(|(_, v)| *v != format!("{expected}:1"));
                order.remove(0);
            }
            assert_eq!(shown(uri, &vars), None, "{uri}: only HTTP_PROXY is left, and it is never used: {vars:?}");
        }
        assert_eq!(shown("ws://t/", &[("http_proxy", "socks5://s")]), Some("socks5://s:1080".into()));
    }

    #[test]
    fn an_invalid_environment_value_fails_the_connection() {
        let e = from_env(&target("ws://t/"), env(&[("http_proxy", "ftp://u:secret@p")])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Proxy { status: None });
        assert!(e.message().contains("http_proxy") && !e.message().contains("secret"), "{e}");
    }

    #[test]
    fn no_proxy_rules() {
        let yes = |list: &str, host: &str, port: u16| no_proxy_matches(list, host, port);
        assert!(yes("*", "anything", 80));
        assert!(yes("example.com", "example.com", 80));
        assert!(yes("example.com", "a.b.Example.COM", 80));
        assert!(yes(".example.com", "example.com", 80));
        assert!(yes(".example.com", "www.example.com.", 80));
        assert!(!yes("example.com", "notexample.com", 80));
        assert!(!yes("example.com", "example.com.evil", 80));
        assert!(yes("other, example.com:8080", "example.com", 8080));
        assert!(!yes("example.com:8080", "example.com", 80));
        assert!(yes("127.0.0.0/8", "127.1.2.3", 80));
        assert!(!yes("127.0.0.0/8", "128.0.0.1", 80));
        assert!(!yes("127.0.0.0/8", "localhost", 80));
        assert!(yes("10.1.2.3", "10.1.2.3", 80));
        assert!(yes("::1/128", "::1", 80));
        assert!(yes("::1", "::1", 80));
        assert!(yes("[::1]:9001", "::1", 9001));
        assert!(!yes("[::1]:9001", "::1", 9002));
        assert!(yes("fd00::/8", "fd12::5", 80));
        assert!(!yes("fd00::/8", "fe80::1", 80));
        assert!(yes("0.0.0.0/0", "1.2.3.4", 80));
        assert!(!yes("10.0.0.0/8", "::ffff:10.0.0.1", 80));
        assert!(!yes("", "example.com", 80));
        assert!(yes("a b\tc.d", "x.c.d", 80));
    }

    #[test]
    fn no_proxy_exempts_before_any_proxy_variable() {
        let vars = [("http_proxy", "p:1"), ("no_proxy", "127.0.0.0/8"), ("NO_PROXY", "*")];
        assert_eq!(shown("ws://127.0.0.1:5/", &vars), None);
        assert_eq!(shown("ws://example.com/", &vars), Some("http://p:1".into()), "lower-case no_proxy wins");
    }

    #[test]
    fn head_end_finds_crlf_and_lf_endings() {
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nxyz", 0), Some(19));
        assert_eq!(head_end(b"HTTP/1.0 200\n\nxyz", 0), Some(14));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n", 0), None);
    }
}
