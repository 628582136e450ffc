//! Entry points for the coverage-guided fuzzer (`fuzz/`, AFL++ through
//! `cargo afl`); built only with the `fuzzing` feature and not part of the API.
//!
//! Each function takes the fuzzer's bytes, drives one group of the
//! crate-private parsers that read bytes from the network or from files, and
//! asserts what must hold for every input, not only that nothing panics: a
//! panic is the fuzzer's "crash". Where the bytes arrive in pieces on a real
//! socket, the input names how to split them (see [`Chunks`]) and the result
//! must not depend on the split.
//!
//! Invariants checked, by target:
//! * `request_head`: the same answer however the head is split; a parsed head
//!   is at most 64 KiB and the bytes read past it are kept exactly; nothing
//!   waits past 64 KiB; the router upgrades only with one key and no Origin
//!   but the allowed one, and every refusal is a whole HTTP answer (426
//!   naming version 13).
//! * `frames`: the tracker agrees with a plain reference parser and with
//!   itself fed byte by byte, after every piece.
//! * `upgrade_response`: the client handshake never panics; when it succeeds
//!   the frame tracker ends the head exactly where the HTTP parser did; a
//!   refusal's Retry-After is the header's number of seconds or nothing.
//! * `proxy_reply`: a tunnel through a loopback proxy that answers these bytes
//!   leaves every byte after the proxy's reply unread in the socket; the
//!   reply head search finds the same end however the head is split.
//! * `uris`: connect URIs, proxy URIs, `no_proxy` and the proxy environment:
//!   round trips, and no credential in any message.
//! * `descriptor`: a descriptor is accepted only with valid names, and any
//!   error names the file.

use std::io::{self, Read, Write};

/// Refuses inputs this long or longer: the limits under test are 64 KiB.
const MAX_INPUT: usize = 80 << 10;

/// How an input is cut into the reads a socket would deliver: the first byte
/// is the piece size (0: all at once), the rest is the data.
#[derive(Clone, Copy)]
pub struct Chunks {
    size: usize,
}

impl Chunks {
    /// The piece size and the data of an input; `None` for an empty one.
    pub fn split(data: &[u8]) -> Option<(Chunks, &[u8])> {
        let (&first, rest) = data.split_first()?;
        let size = if first == 0 { usize::MAX } else { usize::from(first) };
        Some((Chunks { size }, rest))
    }

    /// The pieces of `data`, in order.
    pub fn of(self, data: &[u8]) -> impl Iterator<Item = &[u8]> {
        data.chunks(self.size.min(data.len().max(1)))
    }
}

// ------------------------------------------------------------ request_head

/// What the server's request reader made of the bytes.
#[derive(Debug, PartialEq, Eq)]
enum HeadOutcome {
    /// A head of this length was parsed.
    Parsed(usize),
    /// Refused with this HTTP status.
    Refused(u16),
    /// The client sent too little: the reader would still be waiting.
    Waiting,
}

/// Feeds the pieces to the server's request-head reader as the acceptor
/// does (no read larger than the reader's room): the outcome and the bytes
/// it kept past the head.
fn read_head<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> (HeadOutcome, Vec<u8>) {
    use crate::accept::{HeadReader, Progress};
    let mut reader = HeadReader::default();
    let mut fed = 0;
    for mut piece in pieces {
        while !piece.is_empty() {
            let n = piece.len().min(reader.room());
            assert!(n > 0, "the reader has no room and has not answered");
            fed += n;
            match reader.feed(&piece[..n]) {
                Progress::More => {}
                Progress::Head(_, leftover) => return (HeadOutcome::Parsed(fed - leftover.len()), leftover),
                Progress::Refuse(refusal) => return (HeadOutcome::Refused(refusal.status), Vec::new()),
            }
            piece = &piece[n..];
        }
    }
    (HeadOutcome::Waiting, Vec::new())
}

/// The server's request-head reader and router. Input: [`Chunks`] then the
/// bytes a client sends.
pub fn request_head(data: &[u8]) {
    use crate::accept::{HeadReader, Progress, Route, MAX_HEAD};
    use std::sync::OnceLock;
    static SERVER: OnceLock<crate::server::ServerShared> = OnceLock::new();
    let Some((chunks, bytes)) = Chunks::split(data) else { return };
    if bytes.len() >= MAX_INPUT {
        return;
    }
    let (outcome, leftover) = read_head(chunks.of(bytes));
    let (whole, _) = read_head(std::iter::once(bytes));
    assert_eq!(outcome, whole, "the answer depends on how the head was split");
    match outcome {
        HeadOutcome::Parsed(len) => {
            assert!(len <= MAX_HEAD, "a head of {len} bytes was accepted (limit {MAX_HEAD})");
            assert!(bytes[len..].starts_with(&leftover), "the bytes read past the head were not kept exactly");
        }
        HeadOutcome::Waiting => assert!(bytes.len() <= MAX_HEAD, "{} bytes and still waiting", bytes.len()),
        HeadOutcome::Refused(status) => assert!([400, 405, 414, 431].contains(&status), "status {status}"),
    }
    let Progress::Head(request, _) = HeadReader::default().feed(bytes) else { return };
    let server = SERVER.get_or_init(|| {
        crate::register_handler("fuzz/e", |_, _| {}).expect("a new handler name");
        crate::server::ServerShared::for_fuzzing()
    });
    match server.route(&request) {
        Route::Page(_) => assert!(matches!(request.uri().path(), "/" | "/index.html")),
        Route::Upgrade(admit) => {
            assert_eq!(admit.endpoint, "e");
            assert!(admit.response.starts_with(b"HTTP/1.1 101"));
            let origins: Vec<_> = request.headers().get_all("Origin").iter().collect();
            assert!(origins.len() <= 1 && origins.iter().all(|o| o.as_bytes() == b"http://allowed"), "{origins:?}");
            let keys = request.headers().get_all("Sec-WebSocket-Key").iter().count();
            assert_eq!(keys, 1, "upgraded with {keys} keys");
        }
        Route::Refuse(refusal) => {
            assert!([400, 403, 404, 426, 503].contains(&refusal.status), "{refusal:?}");
            let answer = refusal.to_bytes();
            let text = String::from_utf8(answer).expect("answers are UTF-8");
            assert!(text.contains("\r\nContent-Length: "), "{text}");
            if refusal.status == 426 {
                assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
            }
        }
    }
}

// ------------------------------------------------------------------ frames

/// The frame tracker. Input: [`Chunks`], a flag byte (bit 0: a server's
/// tracker, which starts after the head), then the bytes read.
pub fn frames(data: &[u8]) {
    use crate::frames::Frames;
    let Some((chunks, rest)) = Chunks::split(data) else { return };
    let Some((&flags, bytes)) = rest.split_first() else { return };
    let after_head = flags & 1 != 0;
    let new = || if after_head { Frames::after_head() } else { Frames::default() };
    let (mut pieces, mut bytewise) = (new(), new());
    let mut at = 0;
    for piece in chunks.of(bytes) {
        pieces.feed(piece);
        for b in piece {
            bytewise.feed(std::slice::from_ref(b));
        }
        at += piece.len();
        let state = |f: &Frames| (f.count(), f.payload_left(), f.at_message_boundary());
        assert_eq!(state(&pieces), state(&bytewise), "after {at} bytes, split or byte by byte");
        let (count, boundary) = reference_frames(&bytes[..at], after_head);
        assert_eq!((pieces.count(), pieces.at_message_boundary()), (count, boundary), "after {at} bytes");
    }
}

/// Frames begun and whether every byte belongs to whole messages, by a plain
/// parse of all the bytes at once.
fn reference_frames(bytes: &[u8], after_head: bool) -> (u64, bool) {
    let mut i = if after_head {
        0
    } else {
        // httparse's reading: empty lines before the status line are
        // skipped; an empty line (`\n\n` or `\n\r\n`) ends the head.
        let start = bytes.iter().position(|b| !b"\r\n".contains(b)).unwrap_or(bytes.len());
        let end = (start..bytes.len()).find_map(|i| match &bytes[i..] {
            [b'\n', b'\n', ..] => Some(i + 2),
            [b'\n', b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        });
        match end {
            Some(end) => end,
            None => return (0, false),
        }
    };
    let (mut count, mut in_message) = (0u64, false);
    loop {
        if i == bytes.len() {
            return (count, !in_message);
        }
        let Some(&[b0, b1]) = bytes.get(i..i + 2) else { return (count, false) };
        let ext = match b1 & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header = 2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 };
        let Some(h) = bytes.get(i..i + header) else { return (count, false) };
        let payload = match ext {
            0 => u128::from(b1 & 0x7F),
            _ => h[2..2 + ext].iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b)),
        };
        count += 1;
        if b0 & 0x0F < 8 {
            in_message = b0 & 0x80 == 0;
        }
        let end = (i + header) as u128 + payload;
        if end > bytes.len() as u128 {
            return (count, false);
        }
        i = end as usize;
    }
}

// -------------------------------------------------------- upgrade_response

/// Stands in for the socket under tungstenite's client handshake: keeps what
/// is written, delivers the input in pieces, and after the request has been
/// written replaces each `@@` of the input by the right Sec-WebSocket-Accept.
struct Scripted {
    input: Vec<u8>,
    at: usize,
    piece: usize,
    written: Vec<u8>,
    keyed: bool,
    /// What the client read, in its reads, fed to the stream's frame tracker.
    tracker: crate::frames::Frames,
}

impl Scripted {
    fn key_in(&mut self) {
        if self.keyed {
            return;
        }
        self.keyed = true;
        let text = String::from_utf8_lossy(&self.written).into_owned();
        let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap_or("").trim();
        self.input =
            replace_all(&self.input, b"@@", tungstenite::handshake::derive_accept_key(key.as_bytes()).as_bytes());
    }
}

fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.key_in();
        let n = buf.len().min(self.piece).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        self.tracker.feed(&buf[..n]);
        Ok(n)
    }
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The client's handling of the upgrade response: tungstenite's handshake,
/// the response kept for the application, Retry-After, then the frames that
/// follow. Input: [`Chunks`], a flag byte (bit 0: ask for a subprotocol),
/// then the server's bytes, where `@@` stands for the right accept key.
pub fn upgrade_response(data: &[u8]) {
    use crate::response::HandshakeResponse;
    use tungstenite::handshake::machine::TryParse;
    use tungstenite::handshake::HandshakeError;
    let Some((chunks, rest)) = Chunks::split(data) else { return };
    let Some((&flags, bytes)) = rest.split_first() else { return };
    if bytes.len() >= MAX_INPUT {
        return;
    }
    let mut request = tungstenite::ClientRequestBuilder::new("ws://wsc.test/fuzz".parse().expect("a valid URI"));
    if flags & 1 != 0 {
        request = request.with_sub_protocol("chat");
    }
    let stream = Scripted {
        input: bytes.to_vec(),
        at: 0,
        piece: chunks.size,
        written: Vec::new(),
        keyed: false,
        tracker: crate::frames::Frames::default(),
    };
    let config = crate::Options::new().websocket_config();
    match tungstenite::client::client_with_config(request, stream, Some(config)) {
        Ok((mut ws, response)) => {
            let kept = HandshakeResponse::from_http(&response);
            assert_eq!(kept.status(), 101);
            let input = ws.get_ref().input.clone();
            let (len, _) = tungstenite::handshake::client::Response::try_parse(&input)
                .ok()
                .flatten()
                .expect("an accepted response parses");
            let mut tracker = crate::frames::Frames::default();
            tracker.feed(&input[..len - 1]);
            assert!(!tracker.at_message_boundary(), "the tracker ended the head before the HTTP parser did");
            tracker.feed(&input[len - 1..len]);
            assert!(tracker.at_message_boundary(), "the tracker did not end the head where the HTTP parser did");
            for _ in 0..64 {
                if ws.read().is_err() {
                    break;
                }
            }
        }
        Err(HandshakeError::Failure(e)) => {
            let header = match &e {
                tungstenite::Error::Http(r) => {
                    let kept = HandshakeResponse::from_http(r);
                    assert_eq!(kept.headers().len(), r.headers().len());
                    Some(kept.header("Retry-After").map(str::to_owned))
                }
                _ => None,
            };
            let error = crate::dial::upgrade_error(e);
            if let Some(header) = header {
                let seconds = header.and_then(|v| v.trim().parse::<u64>().ok());
                assert_eq!(error.retry_after().map(|d| d.as_secs()), seconds, "Retry-After");
                assert!(error.http_status().is_some(), "a refusal keeps its status");
            }
        }
        Err(HandshakeError::Interrupted(_)) => unreachable!("the scripted stream never blocks"),
    }
}

// ------------------------------------------------------------- proxy_reply

/// HTTP `CONNECT` and SOCKS5 reply parsing, through a real tunnel on
/// loopback: a proxy thread answers the input's bytes and closes. Input:
/// [`Chunks`] (for the head search), a flag byte (bits 0-1: `http`,
/// `socks5h` with a target name, `socks5` with an IPv6 target, `socks5h`
/// with credentials), then the proxy's bytes.
pub fn proxy_reply(data: &[u8]) {
    let Some((chunks, rest)) = Chunks::split(data) else { return };
    let Some((&flags, bytes)) = rest.split_first() else { return };
    if bytes.len() >= MAX_INPUT {
        return;
    }
    head_end_any_split(chunks, bytes);
    let kind = flags & 3;
    let proxy = loopback_proxy();
    let scheme = ["http://", "socks5h://", "socks5://", "socks5h://user:secret@"][usize::from(kind)];
    let uri = format!("{scheme}{}", proxy.addr);
    let Ok(crate::proxy::ProxySetting::Via(via)) = crate::proxy::ProxySetting::parse(&uri) else {
        unreachable!("{uri} parses")
    };
    let target = crate::target::Target::parse(if kind == 2 { "ws://[::1]:9/" } else { "ws://wsc.test:9/" })
        .expect("a valid target");
    proxy.answer.send(bytes.to_vec()).expect("the proxy thread runs");
    let waker = crate::waker::Waker::new().expect("an eventfd");
    let options = crate::Options::new();
    let stats = std::sync::Arc::new(crate::stats::Stats::default());
    let response = std::sync::OnceLock::new();
    let dial = crate::dial::Dial {
        target: &target,
        options: &options,
        waker: &waker,
        aborted: &|| false,
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(5)),
        id: 0,
        stats: &stats,
        response: &response,
        phases: Default::default(),
    };
    match via.tunnel(&dial) {
        Ok(mut stream) => {
            stream.set_nonblocking(false).expect("blocking mode");
            let mut after = Vec::new();
            let _ = stream.read_to_end(&mut after);
            assert!(bytes.ends_with(&after), "bytes after the reply were consumed or altered");
            let reply = &bytes[..bytes.len() - after.len()];
            if kind == 0 {
                http_reply_heads(reply);
            } else {
                assert_eq!(reply.first(), Some(&5), "accepted a reply that is not SOCKS5");
            }
        }
        Err(crate::dial::DialError::Failed(e)) => {
            assert!(e.message().starts_with("proxy "), "the error names the proxy: {e}");
            // The proxy's own text is quoted: "secret" may come from it.
            let quoted = bytes.windows(6).any(|w| w == b"secret");
            assert!(quoted || !e.message().contains("secret"), "a credential leaked: {e}");
        }
        Err(crate::dial::DialError::Aborted) => unreachable!("never aborted"),
    }
    proxy.done.lock().expect("not poisoned").recv().expect("the proxy thread finishes each answer");
}

/// An accepted `CONNECT` reply is whole heads, HTTP/1.x, interim (1xx)
/// ones if any, then one 2xx: the tunnel starts right after its blank line.
fn http_reply_heads(reply: &[u8]) {
    let mut at = 0;
    let mut statuses = Vec::new();
    while at < reply.len() {
        let end = crate::proxy::head_end(reply, at).expect("the tunnel starts right after a reply head");
        let head = &reply[at..end];
        assert!(head.starts_with(b"HTTP/1."), "accepted a reply that is not HTTP/1.x: {head:?}");
        let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
        let code = line.split(|&b| b == b' ').nth(1).unwrap_or_default();
        statuses.push(std::str::from_utf8(code).ok().and_then(|c| c.trim().parse::<u16>().ok()));
        at = end;
    }
    let (last, interim) = statuses.split_last().expect("a reply");
    assert!(last.is_some_and(|s| (200..300).contains(&s)), "accepted status {last:?}");
    assert!(interim.iter().all(|s| s.is_some_and(|s| (100..200).contains(&s))), "before it: {interim:?}");
}

/// The reply-head search as the tunnel runs it over pieces (searching each
/// new piece from two bytes back) finds what one search of all finds.
fn head_end_any_split(chunks: Chunks, bytes: &[u8]) {
    let whole = crate::proxy::head_end(bytes, 0);
    let mut seen = 0;
    for piece in chunks.of(bytes) {
        let before = seen;
        seen += piece.len();
        if let Some(end) = crate::proxy::head_end(&bytes[..seen], before.saturating_sub(2)) {
            assert_eq!(Some(end), whole, "split after {before} bytes");
            return;
        }
    }
    assert_eq!(whole, None, "the split search missed the end");
}

struct LoopbackProxy {
    addr: std::net::SocketAddr,
    answer: std::sync::mpsc::Sender<Vec<u8>>,
    done: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

/// One listener and thread for the whole run: for each answer it accepts
/// one connection, writes the answer, closes its sending side and drains
/// until the client hangs up.
fn loopback_proxy() -> &'static LoopbackProxy {
    use std::sync::{mpsc, OnceLock};
    static PROXY: OnceLock<&'static LoopbackProxy> = OnceLock::new();
    PROXY.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let (answer, answers) = mpsc::channel::<Vec<u8>>();
        let (finished, done) = mpsc::channel();
        std::thread::spawn(move || {
            for bytes in answers {
                if let Ok((mut peer, _)) = listener.accept() {
                    let _ = peer.write_all(&bytes);
                    let _ = peer.shutdown(std::net::Shutdown::Write);
                    let _ = io::copy(&mut peer, &mut io::sink());
                }
                let _ = finished.send(());
            }
        });
        Box::leak(Box::new(LoopbackProxy { addr, answer, done: std::sync::Mutex::new(done) }))
    })
}

// -------------------------------------------------------------------- uris

/// Connect URIs, proxy URIs, `no_proxy` and the proxy environment. Input: a
/// selector byte, then text whose fields are separated by NUL bytes.
pub fn uris(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let fields: Vec<&str> = text.split('\0').collect();
    match which % 4 {
        0 => connect_uri(fields[0]),
        1 => proxy_uri(fields[0]),
        2 => no_proxy(fields[0], fields.get(1).copied().unwrap_or(""), fields.get(2).copied().unwrap_or("")),
        _ => proxy_environment(&fields),
    }
}

fn connect_uri(uri: &str) {
    let Ok(t) = crate::target::Target::parse(uri) else { return };
    let pq = t.uri.path_and_query().map_or("", |p| p.as_str());
    assert!(pq.starts_with('/'), "{uri:?}: request target {pq:?}");
    assert!(!t.host.is_empty(), "{uri:?}: no host");
    let again = crate::target::Target::parse(&t.uri.to_string()).expect("a parsed target's URI parses again");
    assert_eq!((&again.host, again.port, again.tls), (&t.host, t.port, t.tls), "{uri:?} round trip");
}

/// The text before the last `@` of the authority, if it could be a secret.
fn secret_of(uri: &str) -> Option<&str> {
    let start = uri.find("://").map_or(0, |i| i + 3);
    let at = uri.rfind('@').filter(|&at| at >= start)?;
    let secret = &uri[start..at];
    let shown = [&uri[..start], &uri[at..]];
    (secret.len() >= 8
        && !shown.iter().any(|s| s.contains(secret))
        && secret.chars().all(|c| c.is_ascii_alphanumeric()))
    .then_some(secret)
}

fn proxy_uri(uri: &str) {
    use crate::proxy::ProxySetting;
    match ProxySetting::parse(uri) {
        Ok(ProxySetting::Direct) => assert!(uri.trim().is_empty()),
        Ok(ProxySetting::Via(p)) => {
            let (shown, debug) = (p.to_string(), format!("{p:?}"));
            let Ok(ProxySetting::Via(again)) = ProxySetting::parse(&shown) else {
                panic!("{uri:?} is shown as {shown:?}, which does not parse")
            };
            assert_eq!(again.to_string(), shown, "{uri:?} round trip");
            if let Some(secret) = secret_of(uri.trim()) {
                assert!(!shown.contains(secret) && !debug.contains(secret), "{uri:?} shown with its secret");
            }
        }
        Err(e) => {
            if let Some(secret) = secret_of(uri.trim()) {
                assert!(!e.to_string().contains(secret), "{uri:?}: the error repeats the secret: {e}");
            }
        }
    }
}

fn no_proxy(list: &str, host: &str, port: &str) {
    use crate::proxy::no_proxy_matches as matches;
    let port = port.parse::<u16>().unwrap_or(80);
    let result = matches(list, host, port);
    assert!(!matches("", host, port), "an empty list exempts nothing");
    assert!(matches(&format!("{list},*"), host, port), "'*' exempts everything");
    if result {
        assert!(matches(&format!("{list},other.test"), host, port), "adding an entry took an exemption away");
    }
    let plain_name = !host.is_empty()
        && host.parse::<std::net::IpAddr>().is_err()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with('.')
        && !host.ends_with('.');
    if plain_name {
        assert!(matches(&format!("{list} {host}"), host, port), "{host:?} is not exempted by its own name");
        assert!(matches(&format!("{list},.{host}"), &format!("a.{host}"), port), "subdomain of {host:?}");
    }
}

fn proxy_environment(fields: &[&str]) {
    let Ok(target) = crate::target::Target::parse(fields[0]) else { return };
    let vars: Vec<(&str, &str)> = fields[1..].iter().filter_map(|f| f.split_once('=')).collect();
    let env = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.trim().to_owned());
    match crate::proxy::from_env(&target, env) {
        Ok(_) => {}
        Err(e) => {
            let name = e.message().strip_prefix("environment variable ").and_then(|m| m.split(':').next());
            let name = name.expect("the error names the variable");
            if let Some(secret) = env(name).as_deref().and_then(secret_of) {
                assert!(!e.message().contains(secret), "the error repeats the secret of {name}: {e}");
            }
        }
    }
}

// -------------------------------------------------------------- descriptor

/// One descriptor file's text (`*.websocket`), and endpoint names.
pub fn descriptor(data: &[u8]) {
    use crate::descriptor::{check_name, parse};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let name_ok = |n: &str| {
        !n.is_empty() && n != "." && n != ".." && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    assert_eq!(check_name(text).is_ok(), name_ok(text), "check_name({text:?})");
    match parse("f.websocket", text) {
        Ok(e) => {
            assert!(name_ok(&e.name) && !e.handler.is_empty(), "accepted {e:?}");
            let json = serde_json::json!({ "handler": e.handler, "endpoint": e.name }).to_string();
            assert_eq!(parse("f.websocket", &json).expect("a written descriptor parses"), e);
        }
        Err(e) => assert!(e.to_string().contains("descriptor f.websocket: "), "{e}"),
    }
}
