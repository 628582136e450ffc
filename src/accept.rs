//! The server's side of the HTTP upgrade as pure steps: read a request head
//! under a byte limit, check it, and build the answer. The acceptor
//! (`server::acceptor`) does the I/O for every pending socket on one
//! thread; nothing here blocks, holds a lock or logs.
//!
//! Invariants:
//! * A [`HeadReader`] never holds more than [`MAX_HEAD`] + 1 bytes, however
//!   the bytes are split and whatever they contain (no newline at all, one
//!   huge line, many short ones): past the limit it answers 431, or 414 when
//!   the request line alone has not ended.
//! * The end of the head is searched only in bytes not searched before, so a
//!   byte-at-a-time client costs linear time.
//! * A request is upgraded only with exactly one valid `Sec-WebSocket-Key`
//!   (400 otherwise) and exactly one `Sec-WebSocket-Version: 13` (426 with
//!   the supported version otherwise, RFC 6455 §4.2.2).
//! * Origin fails closed: with origins configured, only a single Origin
//!   header of visible ASCII equal to one of them passes (no header at all:
//!   a program, not a browser, passes).

use crate::stream::Transport;
use std::time::Instant;
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::{create_response, write_response, Request};
use tungstenite::http::HeaderMap;

/// Longest request head accepted (431 beyond; 414 for the request line).
pub(crate) const MAX_HEAD: usize = 64 << 10;

/// An HTTP refusal: status, a plain-text reason, and extra header lines
/// (each ending in CRLF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) why: String,
    pub(crate) headers: &'static str,
}

impl Refusal {
    pub(crate) fn new(status: u16, why: impl Into<String>) -> Refusal {
        Refusal { status, why: why.into(), headers: "" }
    }

    /// The complete HTTP answer, which closes the connection.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        http(self.status, "text/plain; charset=utf-8", self.headers, &format!("{}\n", self.why))
    }
}

/// What the server makes of a request.
#[derive(Debug)]
pub(crate) enum Route<T> {
    /// Answer with the built-in page.
    Page(&'static str),
    /// Upgrade to WebSocket; `T` is what the server found for it.
    Upgrade(T),
    /// Refuse with this answer.
    Refuse(Refusal),
}

/// An admitted upgrade on its way to a worker thread, which writes
/// `response` (the 101) by `deadline` and then serves the connection.
pub(crate) struct Upgraded {
    pub(crate) transport: Transport,
    pub(crate) request: Request,
    /// Bytes the client sent after its head.
    pub(crate) leftover: Vec<u8>,
    pub(crate) response: Vec<u8>,
    pub(crate) endpoint: String,
    pub(crate) handler: String,
    pub(crate) deadline: Option<Instant>,
}

/// The result of feeding bytes to a [`HeadReader`].
#[derive(Debug)]
pub(crate) enum Progress {
    /// The head has not ended yet.
    More,
    /// The parsed head and the bytes that followed it.
    Head(Box<Request>, Vec<u8>),
    /// Answer this and close.
    Refuse(Refusal),
}

/// Collects a request head, at most [`MAX_HEAD`] bytes of it.
#[derive(Debug, Default)]
pub(crate) struct HeadReader {
    buf: Vec<u8>,
    /// Bytes already searched for the end of the head.
    scanned: usize,
}

impl HeadReader {
    /// How many more bytes the reader may take: a read asks for no more, so
    /// nothing past the limit is ever buffered. At least 1 until it refuses.
    pub(crate) fn room(&self) -> usize {
        (MAX_HEAD + 1).saturating_sub(self.buf.len())
    }

    /// Adds bytes read from the client (at most [`HeadReader::room`]).
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Progress {
        let take = bytes.len().min(self.room());
        self.buf.extend_from_slice(&bytes[..take]);
        match self.head_end() {
            Some(end) if end <= MAX_HEAD => parse(&mut self.buf, end),
            _ if self.buf.len() <= MAX_HEAD => Progress::More,
            _ => Progress::Refuse(match self.buf.iter().position(|&b| b == b'\n') {
                Some(line_end) if line_end < MAX_HEAD => Refusal::new(431, "the request head is larger than 64 KiB"),
                _ => Refusal::new(414, "the request line is longer than 64 KiB"),
            }),
        }
    }

    /// The end of the head (just past its blank line), searching only bytes
    /// not searched before.
    fn head_end(&mut self) -> Option<usize> {
        let buf = &self.buf;
        let mut i = self.scanned;
        while let Some(at) = buf[i..].iter().position(|&b| b == b'\n') {
            let nl = i + at;
            match (buf.get(nl + 1), buf.get(nl + 2)) {
                (Some(b'\n'), _) => return Some(nl + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(nl + 3),
                (Some(b'\r'), None) | (None, _) => {
                    self.scanned = nl; // decide once the next bytes are here
                    return None;
                }
                _ => i = nl + 1,
            }
        }
        self.scanned = buf.len();
        None
    }
}

/// Parses the complete head `buf[..end]`; the rest of `buf` is what followed.
fn parse(buf: &mut Vec<u8>, end: usize) -> Progress {
    use tungstenite::error::{CapacityError, ProtocolError};
    use tungstenite::Error as E;
    match Request::try_parse(&buf[..end]) {
        Ok(Some((len, request))) => Progress::Head(Box::new(request), buf.split_off(len)),
        Ok(None) => Progress::Refuse(Refusal::new(400, "bad request: the head is incomplete")),
        Err(E::Protocol(ProtocolError::WrongHttpMethod)) => {
            Progress::Refuse(Refusal::new(405, "only GET is served here"))
        }
        Err(E::Capacity(CapacityError::TooManyHeaders)) => {
            Progress::Refuse(Refusal::new(431, "the request has too many header fields"))
        }
        Err(e) => Progress::Refuse(Refusal::new(400, format!("bad request: {e}"))),
    }
}

/// The values of every `name` header, as bytes.
fn all<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a [u8]> {
    headers.get_all(name).iter().map(|v| v.as_bytes()).collect()
}

/// Checks what RFC 6455 §4.2.1 asks of an upgrade request and builds the
/// 101 answer.
///
/// # Errors
/// 426 (with `Sec-WebSocket-Version: 13`) for a missing, repeated or
/// unsupported version; 400 for a missing, repeated, conflicting or
/// malformed key, or missing `Upgrade`/`Connection` headers.
pub(crate) fn upgrade_response(request: &Request) -> Result<Vec<u8>, Refusal> {
    let headers = request.headers();
    let has = |name: &str, token: &str| {
        all(headers, name)
            .iter()
            .any(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())))
    };
    if !has("Upgrade", "websocket") || !has("Connection", "upgrade") {
        return Err(Refusal::new(
            400,
            "not a WebSocket upgrade: Upgrade: websocket and Connection: upgrade are required",
        ));
    }
    if all(headers, "Sec-WebSocket-Version").as_slice() != [b"13"] {
        return Err(Refusal {
            status: 426,
            why: "this server speaks WebSocket version 13 only".into(),
            headers: "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\nConnection: upgrade, close\r\n",
        });
    }
    match all(headers, "Sec-WebSocket-Key").as_slice() {
        [key] if valid_key(key) => {}
        [_] => return Err(Refusal::new(400, "Sec-WebSocket-Key is not 16 bytes in base64")),
        [] => return Err(Refusal::new(400, "Sec-WebSocket-Key is missing")),
        _ => return Err(Refusal::new(400, "Sec-WebSocket-Key is given more than once")),
    }
    let response = create_response(request).map_err(|e| Refusal::new(400, format!("not a WebSocket upgrade: {e}")))?;
    let mut head = Vec::new();
    write_response(&mut head, &response).map_err(|e| Refusal::new(500, format!("cannot answer: {e}")))?;
    Ok(head)
}

/// 16 bytes in base64: 22 characters of the alphabet, then `==`.
fn valid_key(key: &[u8]) -> bool {
    let b64 = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    key.len() == 24 && key[..22].iter().all(b64) && &key[22..] == b"=="
}

/// Whether the request's Origin may connect, given the allowed origins
/// (none: any). See the module's invariants.
pub(crate) fn origin_allowed(request: &Request, allowed: &[String]) -> Result<(), Refusal> {
    if allowed.is_empty() {
        return Ok(());
    }
    match all(request.headers(), "Origin").as_slice() {
        [] => Ok(()),
        [origin] if origin.iter().all(|b| b.is_ascii_graphic()) && allowed.iter().any(|a| a.as_bytes() == *origin) => {
            Ok(())
        }
        [origin] => Err(Refusal::new(403, format!("origin {} is not allowed", String::from_utf8_lossy(origin)))),
        _ => Err(Refusal::new(403, "more than one Origin header")),
    }
}

/// A request's target as a path and query: an absolute-form target
/// (`http://host/path`, RFC 9112 §3.2.2) is routed and logged by its path.
pub(crate) fn target_path(request: &Request) -> &str {
    request.uri().path_and_query().map_or("/", |p| p.as_str())
}

/// A complete HTTP answer that closes the connection.
fn http(status: u16, content_type: &str, extra: &str, body: &str) -> Vec<u8> {
    let reason = tungstenite::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    let connection = if extra.contains("Connection:") { "" } else { "Connection: close\r\n" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\n{connection}{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The built-in page as a complete answer.
pub(crate) fn page(html: &str) -> Vec<u8> {
    http(200, "text/html; charset=utf-8", "", html)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /websockets/v4/service/e HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
                           Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    fn head(text: &str) -> Progress {
        HeadReader::default().feed(text.as_bytes())
    }

    fn request(extra: &str) -> Request {
        match head(&format!("{UPGRADE}{extra}\r\n")) {
            Progress::Head(r, _) => *r,
            other => panic!("{other:?}"),
        }
    }

    fn status(p: Progress) -> u16 {
        match p {
            Progress::Refuse(r) => r.status,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_head_split_anywhere_parses_with_its_leftover() {
        let text = format!("{UPGRADE}Sec-WebSocket-Version: 13\r\n\r\nrest");
        for cut in 0..text.len() {
            let mut r = HeadReader::default();
            let (first, second) = text.as_bytes().split_at(cut);
            let done = match r.feed(first) {
                Progress::More => r.feed(second),
                Progress::Head(request, mut rest) => {
                    rest.extend_from_slice(second);
                    Progress::Head(request, rest)
                }
                other => other,
            };
            match done {
                Progress::Head(_, rest) => assert_eq!(rest, b"rest", "cut at {cut}"),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn limits_count_bytes_however_they_come() {
        let mut r = HeadReader::default();
        let mut line = b"GET /".to_vec();
        line.resize(MAX_HEAD + 10, b'a');
        let mut last = Progress::More;
        for b in line.chunks(1000) {
            last = r.feed(b);
            assert!(r.buf.len() <= MAX_HEAD + 1);
            if !matches!(last, Progress::More) {
                break;
            }
        }
        assert_eq!(status(last), 414);
        let many = format!("GET / HTTP/1.1\r\n{}", "A: b\r\n".repeat(MAX_HEAD / 6 + 1));
        assert_eq!(status(head(&many)), 431);
        let big = format!("GET / HTTP/1.1\r\nA: {}\r\n\r\n", "b".repeat(MAX_HEAD));
        assert_eq!(status(head(&big)), 431);
    }

    #[test]
    fn version_key_and_origin_rules() {
        assert!(upgrade_response(&request("Sec-WebSocket-Version: 13\r\n")).is_ok());
        let old = upgrade_response(&request("Sec-WebSocket-Version: 8\r\n")).unwrap_err();
        assert_eq!(old.status, 426);
        assert!(String::from_utf8(old.to_bytes()).unwrap().contains("Sec-WebSocket-Version: 13\r\n"));
        assert_eq!(upgrade_response(&request("")).unwrap_err().status, 426);
        let twice = "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        assert_eq!(upgrade_response(&request(twice)).unwrap_err().status, 400);
        let allowed = vec!["http://a".to_owned()];
        assert!(origin_allowed(&request("Origin: http://a\r\n"), &allowed).is_ok());
        assert!(origin_allowed(&request(""), &allowed).is_ok());
        assert!(origin_allowed(&request("Origin: http://b\r\n"), &[]).is_ok());
        for bad in ["Origin: http://b\r\n", "Origin: http://a\r\nOrigin: http://a\r\n", "Origin: HTTP://a\r\n"] {
            assert_eq!(origin_allowed(&request(bad), &allowed).unwrap_err().status, 403, "{bad:?}");
        }
    }

    #[test]
    fn valid_keys() {
        assert!(valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZ!=="));
        assert!(!valid_key(b""));
    }
}
