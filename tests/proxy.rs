//! Proxies (issue 11), on loopback only, against real proxies the test
//! starts itself -- tinyproxy (HTTP CONNECT with BasicAuth) and microsocks
//! (SOCKS5 with user name and password) -- and against small raw proxies
//! written here: forwarding ones that record exactly what wsc asked for, and
//! hostile ones (one byte at a time, `HTTP/1.0 200` with no reason, the
//! target's bytes in the same segment as the `200`, garbage, closing
//! mid-reply, silence, SOCKS error codes).
//!
//! The environment is process-wide: the environment test holds the write
//! side of `ENV` and every other test its read side, so no connection is
//! being made while variables change.
//!
//! Without tinyproxy or microsocks installed (scripts/test.sh installs
//! them) their tests fail when `CI=true` and otherwise say loudly that they
//! were skipped.

mod common;

use common::*;
use crossbeam_channel::{unbounded, Receiver};
use native_tls::{Identity, TlsAcceptor};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};
use wsc::{ConnectionError, Error, ErrorKind, Event, Options};

/// tinyproxy's BasicAuth takes `[-a-z0-9._]` only.
const HTTP_USER: &str = "alice";
const HTTP_PASSWORD: &str = "s3cret-pw";
/// microsocks takes anything; the URI carries it percent-encoded.
const SOCKS_USER: &str = "bob";
const SOCKS_PASSWORD: &str = "p@ss:w/rd";
const SOCKS_PASSWORD_ENCODED: &str = "p%40ss%3Aw%2Frd";

static ENV: RwLock<()> = RwLock::new(());

/// Every test but the environment test holds this: no variable changes meanwhile.
fn env_unchanged() -> RwLockReadGuard<'static, ()> {
    ENV.read().unwrap_or_else(|e| e.into_inner())
}

fn with_proxy(proxy: &str, mut options: Options) -> Options {
    options.proxy(proxy).expect("a valid proxy URI");
    options
}

fn proxied(proxy: &str) -> Options {
    with_proxy(proxy, Options::new())
}

/// Connects, exchanges a message, closes cleanly.
fn exchange(url: &str, options: Options) {
    round_trip(url, options, "through the proxy");
}

/// Connects and expects an error of kind `Proxy` (any status) that never opened.
fn proxy_failure(url: &str, options: Options) -> ConnectionError {
    let (_conn, rx) = open_channel(url, options);
    let (before, last) = finish(&rx);
    assert!(before.is_empty(), "never opened: {before:?}");
    match last {
        Event::Error(e) if matches!(e.kind(), ErrorKind::Proxy { .. }) => e,
        other => panic!("expected an error of kind Proxy, got {other:?}"),
    }
}

fn assert_says(e: &ConnectionError, words: &[&str]) {
    for w in words {
        assert!(e.message().contains(w), "'{w}' not in: {e}");
    }
}

/// The secret, in every form it could leak in: as given, percent-encoded,
/// and inside a Basic token.
fn assert_no_secret(text: &str, user: &str, password: &str) {
    let token = basic(user, password);
    for secret in [password, token.as_str()] {
        assert!(!text.contains(secret), "a secret leaked: {text}");
    }
    assert!(!text.contains(SOCKS_PASSWORD_ENCODED) && !text.contains("%73%33cret"), "a secret leaked: {text}");
}

fn basic(user: &str, password: &str) -> String {
    // RFC 4648, written out so the test does not share wsc's encoder.
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

// ------------------------------------------------------------- TLS targets

fn trusting_ca(mut options: Options) -> Options {
    options.ca_file(&test_cert("ca.pem")).unwrap();
    options
}

/// A wss echo server on `bind` presenting certificate `name`.
fn tls_echo_on(bind: &str, name: &str) -> TcpServer {
    let cert = std::fs::read(test_cert(&format!("{name}.pem"))).unwrap();
    let key = std::fs::read(test_cert(&format!("{name}.key"))).unwrap();
    let acceptor = Arc::new(TlsAcceptor::new(Identity::from_pkcs8(&cert, &key).unwrap()).unwrap());
    TcpServer::start(bind, move |tcp| {
        let Ok(tls) = acceptor.accept(tcp) else { return };
        if let Ok(ws) = tungstenite::accept(tls) {
            echo(ws)
        }
    })
}

fn ws_echo_on(bind: &str) -> TcpServer {
    TcpServer::start(bind, |stream| {
        let _ = stream.set_nodelay(true);
        if let Ok(ws) = tungstenite::accept(stream) {
            echo(ws)
        }
    })
}

/// The same server on 127.0.0.1 and [::1] with one port, so `localhost`
/// reaches it whichever address a resolver puts first.
fn on_both_loopbacks(start: impl Fn(&str) -> TcpServer) -> (TcpServer, TcpServer) {
    for _ in 0..50 {
        let v4 = start("127.0.0.1:0");
        let port = v4.addr().port();
        if TcpListener::bind(("::1", port)).is_ok() {
            return (v4, start(&format!("[::1]:{port}")));
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

// --------------------------------------------------------- real proxies

/// A proxy process started by this test; killed and reaped when dropped.
struct Daemon {
    child: Child,
    port: u16,
    _config: Option<TempFile>,
}

impl Daemon {
    /// `scheme://[credentials@]127.0.0.1:port`.
    fn uri(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("{scheme}://{user}:{password}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn installed(binary: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(binary).is_file()))
}

/// A missing proxy fails the test under CI and is a loud skip elsewhere.
fn available(binary: &str) -> bool {
    if installed(binary) {
        return true;
    }
    let why = format!("'{binary}' is not installed (apt-get install {binary}; scripts/test.sh does it)");
    peers::unavailable("PROXY TEST", &why);
    false
}

/// tinyproxy on 127.0.0.1 with BasicAuth, tunnelling only to `connect_ports`.
/// Ready once it logs that it accepts connections.
fn tinyproxy(connect_ports: &[u16]) -> Option<Daemon> {
    if !available("tinyproxy") {
        return None;
    }
    let port = closed_port();
    let mut conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nAllow 127.0.0.1\n\
         BasicAuth {HTTP_USER} {HTTP_PASSWORD}\nLogLevel Info\n"
    );
    for p in connect_ports {
        conf.push_str(&format!("ConnectPort {p}\n"));
    }
    let path = std::env::temp_dir().join(format!("wsc-tinyproxy-{}-{port}.conf", std::process::id()));
    std::fs::write(&path, conf).unwrap();
    let mut child = Command::new("tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tinyproxy");
    let (lines, ready) = unbounded();
    for out in [Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())]
    {
        let lines = lines.clone();
        // Keeps draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || BufReader::new(out).lines().map_while(Result::ok).for_each(|l| drop(lines.send(l))));
    }
    drop(lines);
    let daemon = Daemon { child, port, _config: Some(TempFile(path)) };
    let mut log = Vec::new();
    loop {
        match ready.recv_timeout(DEADLINE) {
            Ok(line) if line.contains("Accepting connections") => return Some(daemon),
            Ok(line) => log.push(line),
            Err(e) => panic!("tinyproxy did not start ({e:?}):\n{}", log.join("\n")),
        }
    }
}

/// microsocks on 127.0.0.1 requiring SOCKS_USER / SOCKS_PASSWORD. It logs
/// nothing, so it is ready once its port accepts.
fn microsocks() -> Option<Daemon> {
    if !available("microsocks") {
        return None;
    }
    let port = closed_port();
    let child = Command::new("microsocks")
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-u", SOCKS_USER, "-P", SOCKS_PASSWORD])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start microsocks");
    let daemon = Daemon { child, port, _config: None };
    assert!(eventually(DEADLINE, || TcpStream::connect(("127.0.0.1", port)).is_ok()), "microsocks did not start");
    Some(daemon)
}

// ------------------------------------------------------------ raw proxies

/// The address part of a SOCKS5 CONNECT request: ATYP and address.
#[derive(Debug, PartialEq)]
enum SocksAddr {
    Ip(std::net::IpAddr),
    Name(String),
}

fn read_n(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    s.read_exact(&mut b)?;
    Ok(b)
}

/// Reads a no-auth SOCKS5 greeting and CONNECT request; returns the target.
fn socks_accept(s: &mut TcpStream) -> std::io::Result<(SocksAddr, u16)> {
    let head = read_n(s, 2)?;
    read_n(s, usize::from(head[1]))?;
    s.write_all(&[5, 0])?;
    let req = read_n(s, 4)?;
    let addr = match req[3] {
        1 => SocksAddr::Ip(<[u8; 4]>::try_from(read_n(s, 4)?).unwrap().into()),
        4 => SocksAddr::Ip(<[u8; 16]>::try_from(read_n(s, 16)?).unwrap().into()),
        _ => {
            let len = read_n(s, 1)?[0];
            SocksAddr::Name(String::from_utf8(read_n(s, usize::from(len))?).unwrap())
        }
    };
    let port = read_n(s, 2)?;
    Ok((addr, u16::from_be_bytes([port[0], port[1]])))
}

/// A SOCKS5 proxy written here (no authentication): reports each target as
/// asked for, connects to it and relays.
fn forwarding_socks_proxy() -> (TcpServer, Receiver<(SocksAddr, u16)>) {
    let (tx, rx) = unbounded();
    let server = TcpServer::local(move |mut client| {
        let Ok((addr, port)) = socks_accept(&mut client) else { return };
        let upstream = match &addr {
            SocksAddr::Ip(ip) => TcpStream::connect((*ip, port)),
            SocksAddr::Name(name) => TcpStream::connect((name.as_str(), port)),
        };
        let _ = tx.send((addr, port));
        match upstream {
            Ok(upstream) => {
                let _ = client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]);
                relay(client, upstream)
            }
            Err(_) => drop(client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])),
        }
    });
    (server, rx)
}

/// A raw HTTP proxy that reads the CONNECT and then does `f`.
fn raw_http_proxy(f: impl Fn(TcpStream) + Send + Sync + 'static) -> TcpServer {
    TcpServer::local(move |mut s| {
        let _ = s.set_nodelay(true);
        if read_request(&mut s).is_ok() {
            f(s)
        }
    })
}

/// Writes `bytes` one at a time, each its own segment.
fn dribble(s: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    for b in bytes {
        s.write_all(&[*b])?;
        std::thread::sleep(Duration::from_millis(2)); // pacing the hostile peer, not synchronisation
    }
    Ok(())
}

// ======================================================= tinyproxy (HTTP)

#[test]
fn tinyproxy_ws_with_percent_encoded_credentials() {
    let _env = env_unchanged();
    let echo = echo_server();
    let Some(proxy) = tinyproxy(&[echo.addr().port()]) else { return };
    // "%73%33cret-pw" is "s3cret-pw": tinyproxy accepts it only decoded.
    let uri = proxy.uri("http", Some((HTTP_USER, "%73%33cret-pw")));
    exchange(&echo.url(), proxied(&uri));
}

#[test]
fn tinyproxy_wss_verified_against_the_target() {
    let _env = env_unchanged();
    let tls = tls_echo_on("127.0.0.1:0", "good");
    let Some(proxy) = tinyproxy(&[tls.addr().port()]) else { return };
    let uri = proxy.uri("http", Some((HTTP_USER, HTTP_PASSWORD)));
    exchange(&tls.wss_url(), trusting_ca(proxied(&uri)));
}

#[test]
fn tinyproxy_wrong_password_is_401_in_on_error() {
    let _env = env_unchanged();
    let echo = echo_server();
    let Some(proxy) = tinyproxy(&[echo.addr().port()]) else { return };
    let uri = proxy.uri("http", Some((HTTP_USER, "wrong-s3cret")));
    let (tx, rx) = unbounded();
    let _conn = wsc::Builder::new(echo.url())
        .options(proxied(&uri))
        .on_error(move |_, e| drop(tx.send(e.clone())))
        .connect()
        .unwrap();
    let e = rx.recv_timeout(DEADLINE).expect("on_error");
    assert_eq!(e.kind(), ErrorKind::Proxy { status: Some(401) }, "{e}");
    assert_eq!(e.http_status(), Some(401));
    assert_says(&e, &["401", &format!("proxy http://127.0.0.1:{}", proxy.port), "did not accept"]);
    assert!(!e.message().contains("wrong-s3cret") && !e.message().contains(&basic(HTTP_USER, "wrong-s3cret")), "{e}");
}

#[test]
fn tinyproxy_missing_credentials_is_407() {
    let _env = env_unchanged();
    let echo = echo_server();
    let Some(proxy) = tinyproxy(&[echo.addr().port()]) else { return };
    let e = proxy_failure(&echo.url(), proxied(&proxy.uri("http", None)));
    assert_eq!(e.kind(), ErrorKind::Proxy { status: Some(407) }, "{e}");
    assert_says(&e, &["HTTP 407 Proxy Authentication Required", "user name and password"]);
}

#[test]
fn tinyproxy_refuses_a_port_outside_connect_port_with_403() {
    let _env = env_unchanged();
    let echo = echo_server();
    let Some(proxy) = tinyproxy(&[closed_port()]) else { return };
    let uri = proxy.uri("http", Some((HTTP_USER, HTTP_PASSWORD)));
    let e = proxy_failure(&echo.url(), proxied(&uri));
    assert_eq!(e.http_status(), Some(403), "{e}");
    assert_says(&e, &["refused CONNECT to 127.0.0.1:", "HTTP 403"]);
}

// ====================================================== microsocks (SOCKS5)

fn socks_uri(proxy: &Daemon, scheme: &str) -> String {
    proxy.uri(scheme, Some((SOCKS_USER, SOCKS_PASSWORD_ENCODED)))
}

#[test]
fn microsocks_socks5_ws_and_wss() {
    let _env = env_unchanged();
    let Some(proxy) = microsocks() else { return };
    let (echo, tls) = (echo_server(), tls_echo_on("127.0.0.1:0", "good"));
    for scheme in ["socks5", "socks5h"] {
        exchange(&echo.url(), proxied(&socks_uri(&proxy, scheme)));
        exchange(&tls.wss_url(), trusting_ca(proxied(&socks_uri(&proxy, scheme))));
    }
}

#[test]
fn microsocks_socks5h_resolves_localhost_at_the_proxy() {
    let _env = env_unchanged();
    let Some(proxy) = microsocks() else { return };
    let ws = on_both_loopbacks(ws_echo_on);
    let wss = on_both_loopbacks(|bind| tls_echo_on(bind, "good"));
    for scheme in ["socks5", "socks5h"] {
        exchange(&format!("ws://localhost:{}/", ws.0.addr().port()), proxied(&socks_uri(&proxy, scheme)));
        let url = format!("wss://localhost:{}/", wss.0.addr().port());
        exchange(&url, trusting_ca(proxied(&socks_uri(&proxy, scheme))));
    }
}

#[test]
fn microsocks_wrong_password_and_no_credentials() {
    let _env = env_unchanged();
    let Some(proxy) = microsocks() else { return };
    let echo = echo_server();
    let wrong = proxy.uri("socks5", Some((SOCKS_USER, "not-the-s3cret")));
    let e = proxy_failure(&echo.url(), proxied(&wrong));
    assert_eq!(e.kind(), ErrorKind::Proxy { status: None });
    assert_says(&e, &["refused the user name and password", &format!("socks5://127.0.0.1:{}", proxy.port)]);
    assert!(!e.message().contains("not-the-s3cret"), "{e}");
    let e = proxy_failure(&echo.url(), proxied(&proxy.uri("socks5h", None)));
    assert_says(&e, &["requires authentication"]);
}

// ============================================ what goes on the wire, exactly

#[test]
fn http_connect_request_names_the_target_and_carries_basic_auth() {
    let _env = env_unchanged();
    let echo = ws_echo_on("[::1]:0");
    let tls = tls_echo_on("127.0.0.1:0", "good");
    let (proxy, heads) = forwarding_http_proxy("[::1]:0");
    let uri = format!("http://{HTTP_USER}:{HTTP_PASSWORD}@[::1]:{}", proxy.addr().port());
    exchange(&echo.url(), proxied(&uri));
    let head = heads.try_recv().unwrap();
    let port = echo.addr().port();
    assert!(head.starts_with(&format!("CONNECT [::1]:{port} HTTP/1.1\r\n")), "{head}");
    assert!(head.contains(&format!("\r\nHost: [::1]:{port}\r\n")), "{head}");
    assert!(
        head.contains(&format!("\r\nProxy-Authorization: Basic {}\r\n", basic(HTTP_USER, HTTP_PASSWORD))),
        "{head}"
    );
    // wss:// is tunnelled the same way (never a forwarded GET); no credentials, no header.
    exchange(&tls.wss_url(), trusting_ca(proxied(&format!("http://[::1]:{}/", proxy.addr().port()))));
    let head = heads.try_recv().unwrap();
    assert!(head.starts_with(&format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n", tls.addr().port())), "{head}");
    assert!(!head.to_ascii_lowercase().contains("proxy-authorization"), "{head}");
}

#[test]
fn socks5_sends_an_address_and_socks5h_sends_the_name() {
    let _env = env_unchanged();
    let ws = on_both_loopbacks(ws_echo_on);
    let port = ws.0.addr().port();
    let (proxy, asked) = forwarding_socks_proxy();
    let url = format!("ws://localhost:{port}/");
    exchange(&url, proxied(&format!("socks5://{}", proxy.addr())));
    match asked.try_recv().unwrap() {
        (SocksAddr::Ip(ip), p) => assert!(ip.is_loopback() && p == port, "{ip} {p}"),
        other => panic!("socks5:// must send an address: {other:?}"),
    }
    exchange(&url, proxied(&format!("socks5h://{}", proxy.addr())));
    assert_eq!(asked.try_recv().unwrap(), (SocksAddr::Name("localhost".into()), port));
    // An IP-literal target goes as an address under socks5h too.
    let v4 = &ws.0;
    exchange(&v4.url(), proxied(&format!("socks5h://{}", proxy.addr())));
    assert_eq!(asked.try_recv().unwrap(), (SocksAddr::Ip(v4.addr().ip()), port));
}

#[test]
fn tls_through_a_proxy_verifies_the_target_host() {
    let _env = env_unchanged();
    let (proxy, _heads) = forwarding_http_proxy("127.0.0.1:0");
    let via = format!("http://{}", proxy.addr());
    // localhost is in the certificate: verified by name through the tunnel.
    let good = tls_echo_on("127.0.0.1:0", "good");
    exchange(&format!("wss://localhost:{}/", good.addr().port()), trusting_ca(proxied(&via)));
    // A certificate for another name fails exactly as it would directly.
    let wrong = tls_echo_on("127.0.0.1:0", "wronghost");
    let (_conn, rx) = open_channel(&format!("wss://localhost:{}/", wrong.addr().port()), trusting_ca(proxied(&via)));
    let e = expect_error(&rx, ErrorKind::Tls);
    assert_says(&e, &["hostname mismatch"]);
}

#[test]
fn named_handlers_use_the_proxy_through_their_options() {
    let _env = env_unchanged();
    let echo = echo_server();
    let (proxy, heads) = forwarding_http_proxy("127.0.0.1:0");
    let (tx, rx) = unbounded();
    wsc::register_handler("proxy-test/handler", move |conn, event| {
        if let Event::Open = event {
            conn.send("via handler").unwrap();
        }
        let _ = tx.send(event.clone());
    })
    .unwrap();
    let options = proxied(&format!("http://{}", proxy.addr()));
    let conn = wsc::create_websocket(&echo.url(), "proxy-test/handler", None, Some(&options)).unwrap();
    assert!(matches!(next_event(&rx, "open"), Event::Open));
    assert_eq!(expect_text(&rx), "via handler");
    conn.close().unwrap();
    // The handler stays registered, so its channel never ends: no finish().
    match next_event(&rx, "close") {
        Event::Close { code: 1000, .. } => {}
        other => panic!("expected Close 1000, got {other:?}"),
    }
    assert!(heads.try_recv().unwrap().starts_with("CONNECT 127.0.0.1:"));
    wsc::unregister_handler("proxy-test/handler").unwrap();
}

// ========================================================== hostile proxies

#[test]
fn proxy_answering_one_byte_at_a_time() {
    let _env = env_unchanged();
    let healthy = Healthy::open();
    let echo = echo_server();
    let target = echo.addr();
    let http = raw_http_proxy(move |mut s| {
        if dribble(&mut s, b"HTTP/1.1 200 Connection established\r\nVia: 1.1 slow\r\n\r\n").is_ok() {
            relay(s, TcpStream::connect(target).unwrap())
        }
    });
    exchange(&echo.url(), proxied(&format!("http://{}", http.addr())));
    let socks = TcpServer::local(move |mut s| {
        let ok = read_n(&mut s, 3).is_ok()
            && dribble(&mut s, &[5, 0]).is_ok()
            && read_n(&mut s, 10).is_ok()
            && dribble(&mut s, &[5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]).is_ok();
        if ok {
            relay(s, TcpStream::connect(target).unwrap())
        }
    });
    exchange(&echo.url(), proxied(&format!("socks5://{}", socks.addr())));
    healthy.check();
}

#[test]
fn http_1_0_200_without_a_reason_phrase() {
    let _env = env_unchanged();
    let echo = echo_server();
    let target = echo.addr();
    let proxy = raw_http_proxy(move |mut s| {
        if s.write_all(b"HTTP/1.0 200\r\n\r\n").is_ok() {
            relay(s, TcpStream::connect(target).unwrap())
        }
    });
    exchange(&echo.url(), proxied(&format!("http://{}", proxy.addr())));
}

#[test]
fn target_bytes_in_the_same_segment_as_the_200_are_not_lost() {
    let _env = env_unchanged();
    // Proxy and target in one: the 200 and the first line of the target's
    // 101 go out in one write; if wsc read past the 200 and dropped the
    // rest, the upgrade response would be incomplete and the handshake fail.
    const FIRST: &str = "HTTP/1.1 101 Switching Protocols\r\n";
    let proxy = raw_http_proxy(|mut s| {
        let _ = s.write_all(format!("HTTP/1.1 200 Connection established\r\n\r\n{FIRST}").as_bytes());
        let Ok(head) = read_request(&mut s) else { return };
        let mut rest = upgrade_response(&head).strip_prefix(FIRST).unwrap().as_bytes().to_vec();
        rest.extend(frame(FIN | TEXT, b"first bytes"));
        let _ = s.write_all(&rest);
        if read_close_code(&mut s).is_some() {
            let _ = s.write_all(&close_frame(1000, ""));
        }
    });
    let (conn, rx) = open_channel("ws://127.0.0.1:9/", proxied(&format!("http://{}", proxy.addr())));
    expect_open(&rx);
    assert_eq!(expect_text(&rx), "first bytes");
    conn.close().unwrap();
    expect_close(&rx, 1000);
}

#[test]
fn garbage_instead_of_an_http_reply_fails_at_once() {
    let _env = env_unchanged();
    let healthy = Healthy::open();
    for garbage in
        [&b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n"[..], &b"\x00\xff\x13\x37 binary"[..], &b"HTTP/9 what\r\n\r\n"[..]]
    {
        let proxy = raw_http_proxy(move |mut s| {
            let _ = s.write_all(garbage);
            drain(s); // and stays connected: only the content can end it
        });
        let mut o = proxied(&format!("http://{}", proxy.addr()));
        o.connect_timeout(Duration::from_secs(60));
        let e = proxy_failure("ws://127.0.0.1:9/", o);
        assert_eq!(e.http_status(), None);
        assert_says(&e, &["not HTTP"]);
    }
    healthy.check();
}

#[test]
fn proxy_closing_mid_reply() {
    let _env = env_unchanged();
    let http = raw_http_proxy(|mut s| drop(s.write_all(b"HTTP/1.1 200 Conn")));
    let e = proxy_failure("ws://127.0.0.1:9/", proxied(&format!("http://{}", http.addr())));
    assert_says(&e, &["proxy closed the connection"]);
    let socks = TcpServer::local(|mut s| {
        let _ = read_n(&mut s, 3);
        let _ = s.write_all(&[5]);
    });
    let e = proxy_failure("ws://127.0.0.1:9/", proxied(&format!("socks5://{}", socks.addr())));
    assert_says(&e, &["proxy closed the connection", "SOCKS5 greeting"]);
}

#[test]
fn proxy_that_never_answers_times_out_within_the_connect_timeout() {
    let _env = env_unchanged();
    for scheme in ["http", "socks5h"] {
        let proxy = silent_server();
        let mut o = proxied(&format!("{scheme}://{}", proxy.addr()));
        o.connect_timeout(Duration::from_millis(500));
        let started = Instant::now();
        let e = proxy_failure("ws://example.invalid/", o);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "took {took:?}");
        assert_eq!(e.kind(), ErrorKind::Proxy { status: None });
        assert_says(&e, &["connect timeout: 500 ms", &format!("proxy {scheme}://{}", proxy.addr())]);
    }
}

#[test]
fn proxy_refusing_tcp_is_a_proxy_error() {
    let _env = env_unchanged();
    let port = closed_port();
    let e =
        proxy_failure("ws://127.0.0.1:9/", proxied(&format!("http://{HTTP_USER}:{HTTP_PASSWORD}@127.0.0.1:{port}")));
    assert_says(&e, &[&format!("proxy http://127.0.0.1:{port}"), "cannot connect"]);
    assert_no_secret(e.message(), HTTP_USER, HTTP_PASSWORD);
}

#[test]
fn refused_connect_carries_the_status_and_the_proxys_reason() {
    let _env = env_unchanged();
    let proxy = http_server("HTTP/1.1 502 Upstream Unreachable\r\nContent-Length: 0\r\n\r\n");
    let e = proxy_failure("ws://127.0.0.1:9/", proxied(&format!("http://{}", proxy.addr())));
    assert_eq!(e.kind(), ErrorKind::Proxy { status: Some(502) });
    assert_says(&e, &["refused CONNECT to 127.0.0.1:9: HTTP 502 Upstream Unreachable"]);
}

#[test]
fn socks_error_replies_are_named_in_words() {
    let _env = env_unchanged();
    let words = [
        (1, "general SOCKS server failure"),
        (2, "connection not allowed by ruleset"),
        (3, "network unreachable"),
        (4, "host unreachable"),
        (5, "connection refused"),
        (6, "TTL expired"),
        (7, "command not supported"),
        (8, "address type not supported"),
        (0x42, "unassigned reply code"),
    ];
    for (code, says) in words {
        let proxy = TcpServer::local(move |mut s| {
            if socks_accept(&mut s).is_ok() {
                let _ = s.write_all(&[5, code]); // and closes without the rest
            }
        });
        let e = proxy_failure("ws://127.0.0.1:9/", proxied(&format!("socks5://{}", proxy.addr())));
        assert_says(&e, &[says, &format!("(SOCKS5 reply {code})"), "could not connect to 127.0.0.1:9"]);
    }
}

#[test]
fn close_during_the_proxy_handshake_ends_at_once() {
    let _env = env_unchanged();
    for scheme in ["http", "socks5"] {
        let proxy = silent_server();
        let mut o = proxied(&format!("{scheme}://{}", proxy.addr()));
        o.connect_timeout(Duration::from_secs(60));
        let (conn, rx) = open_channel("ws://127.0.0.1:9/", o);
        proxy.wait_accepted();
        let asked = Instant::now();
        conn.close().unwrap();
        expect_close(&rx, 1006);
        assert!(asked.elapsed() < Duration::from_secs(2), "{scheme}: took {:?}", asked.elapsed());
    }
}

// ====================================================== setters and secrets

#[test]
fn invalid_proxy_uris_are_refused_at_the_setter_and_change_nothing() {
    let _env = env_unchanged();
    let mut o = Options::new();
    o.proxy("socks5h://keep:me@127.0.0.1:1").unwrap();
    let before = format!("{o:?}");
    for bad in [
        "https://p:1",
        "socks4://p:1",
        "ftp://p",
        "http://",
        "http://user:topsecret@",
        "http://p:0",
        "http://p:65536",
        "http://p:port",
        "http://::1:80",
        "http://p/some/path",
        "http://user:%zz@p",
        "http://user:top/secret@p:1",
    ] {
        match o.proxy(bad) {
            Err(Error::InvalidArgument(m)) => assert!(!m.contains("topsecret") && !m.contains("top/secret"), "{m}"),
            other => panic!("{bad}: {other:?}"),
        }
        assert_eq!(format!("{o:?}"), before, "{bad} changed the options");
    }
    for good in ["", "http://p", "HTTP://p:8080/", "p:3128", "socks5://u:p@[::1]:9050", "socks5h://10.0.0.1"] {
        o.proxy(good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

#[test]
fn credentials_never_appear_in_debug_output_or_messages() {
    let _env = env_unchanged();
    let mut o = Options::new();
    o.proxy(&format!("http://{HTTP_USER}:%73%33cret-pw@127.0.0.1:3128")).unwrap();
    let debug = format!("{o:?}");
    assert!(debug.contains("http://***@127.0.0.1:3128"), "{debug}");
    assert_no_secret(&debug, HTTP_USER, HTTP_PASSWORD);
    o.proxy(&format!("socks5://{SOCKS_USER}:{SOCKS_PASSWORD_ENCODED}@[::1]:1")).unwrap();
    assert_no_secret(&format!("{o:?}"), SOCKS_USER, SOCKS_PASSWORD);
    let e = o.proxy(&format!("socks5://{SOCKS_USER}:{SOCKS_PASSWORD_ENCODED}@[::1]:99999")).unwrap_err();
    assert_no_secret(&e.to_string(), SOCKS_USER, SOCKS_PASSWORD);
    // Messages from a proxy that refuses: HTTP 407, SOCKS5 authentication.
    let http = http_server("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
    let uri = format!("http://{HTTP_USER}:{HTTP_PASSWORD}@{}", http.addr());
    let e = proxy_failure("ws://127.0.0.1:9/", proxied(&uri));
    assert_no_secret(e.message(), HTTP_USER, HTTP_PASSWORD);
    assert_no_secret(&format!("{e:?}"), HTTP_USER, HTTP_PASSWORD);
    let socks = TcpServer::local(|mut s| {
        let _ = read_n(&mut s, 4).and_then(|_| s.write_all(&[5, 2]));
        let _ = read_n(&mut s, 2 + SOCKS_USER.len() + 1 + SOCKS_PASSWORD.len()).and_then(|_| s.write_all(&[1, 1]));
    });
    let uri = format!("socks5://{SOCKS_USER}:{SOCKS_PASSWORD_ENCODED}@{}", socks.addr());
    let e = proxy_failure("ws://127.0.0.1:9/", proxied(&uri));
    assert_says(&e, &["refused the user name and password"]);
    assert_no_secret(&format!("{e:?}"), SOCKS_USER, SOCKS_PASSWORD);
}

// ============================================================= environment

const PROXY_VARIABLES: [&str; 12] = [
    "ws_proxy",
    "WS_PROXY",
    "wss_proxy",
    "WSS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Clears the proxy variables and puts back what was there when dropped.
struct SavedEnvironment(Vec<(&'static str, Option<std::ffi::OsString>)>);

impl SavedEnvironment {
    fn clear() -> SavedEnvironment {
        let saved = PROXY_VARIABLES.iter().map(|&n| (n, std::env::var_os(n))).collect();
        PROXY_VARIABLES.iter().for_each(|n| std::env::remove_var(n));
        SavedEnvironment(saved)
    }
}

impl Drop for SavedEnvironment {
    fn drop(&mut self) {
        for (name, value) in &self.0 {
            match value {
                Some(v) => std::env::set_var(name, v),
                None => std::env::remove_var(name),
            }
        }
    }
}

/// Exactly these variables are set (the other proxy variables are not).
fn set_env(vars: &[(&str, &str)]) {
    PROXY_VARIABLES.iter().for_each(|n| std::env::remove_var(n));
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
}

#[test]
fn environment_variables_in_libcurl_order() {
    let _env = ENV.write().unwrap_or_else(|e| e.into_inner());
    let _saved = SavedEnvironment::clear();
    let echo = echo_server();
    let echo6 = ws_echo_on("[::1]:0");
    let tls = tls_echo_on("127.0.0.1:0", "good");
    let proxies: Vec<(TcpServer, Receiver<String>)> = (0..3).map(|_| forwarding_http_proxy("127.0.0.1:0")).collect();
    let uris = [0, 1, 2].map(|i| format!("http://{}", proxies[i].0.addr()));
    let (a, b, c) = (uris[0].as_str(), uris[1].as_str(), uris[2].as_str());
    let a_without_scheme = proxies[0].0.addr().to_string();
    let refusing = http_server("HTTP/1.1 403 Forbidden by policy\r\n\r\n");
    let refuse = format!("http://{}", refusing.addr());
    let refuse = refuse.as_str();
    // Which of A, B, C saw the (finished) connection's CONNECT.
    let used = || -> String {
        let names = ["A", "B", "C"];
        proxies.iter().zip(names).filter(|(p, _)| p.1.try_recv().is_ok()).map(|(_, n)| n).collect::<Vec<_>>().concat()
    };
    let mut from_env = Options::new();
    from_env.proxy_from_env(true);
    let ws = |o: &Options| exchange(&echo.url(), o.clone());
    let wss = |o: &Options| exchange(&tls.wss_url(), trusting_ca(o.clone()));

    // Off by default: the environment is not read at all.
    set_env(&[("http_proxy", refuse), ("all_proxy", refuse), ("ws_proxy", refuse)]);
    ws(&Options::new());
    assert_eq!(used(), "");

    // ws://: ws_proxy, WS_PROXY, http_proxy, then all_proxy, ALL_PROXY; read at each connect.
    let steps: &[(&[(&str, &str)], &str)] = &[
        (&[("ws_proxy", a), ("WS_PROXY", b), ("http_proxy", c), ("all_proxy", c)], "A"),
        (&[("WS_PROXY", b), ("http_proxy", c), ("all_proxy", a)], "B"),
        (&[("http_proxy", c), ("all_proxy", a), ("HTTPS_PROXY", b)], "C"),
        (&[("HTTP_PROXY", c), ("all_proxy", a)], "A"),
        (&[("HTTP_PROXY", c), ("ALL_PROXY", b), ("wss_proxy", a), ("https_proxy", a)], "B"),
        (&[("HTTP_PROXY", refuse)], ""),                     // never HTTP_PROXY (httpoxy)
        (&[("http_proxy", a_without_scheme.as_str())], "A"), // no scheme: http://
    ];
    for (vars, expected) in steps {
        set_env(vars);
        ws(&from_env);
        assert_eq!(used(), *expected, "ws:// with {vars:?}");
    }

    // wss://: wss_proxy, WSS_PROXY, https_proxy, HTTPS_PROXY, then all_proxy, ALL_PROXY.
    let steps: &[(&[(&str, &str)], &str)] = &[
        (&[("wss_proxy", a), ("WSS_PROXY", b), ("https_proxy", c), ("ws_proxy", refuse)], "A"),
        (&[("WSS_PROXY", b), ("https_proxy", c), ("all_proxy", a)], "B"),
        (&[("https_proxy", c), ("HTTPS_PROXY", a), ("http_proxy", refuse)], "C"),
        (&[("HTTPS_PROXY", a), ("all_proxy", b)], "A"),
        (&[("all_proxy", b), ("ALL_PROXY", c), ("http_proxy", refuse)], "B"),
        (&[("ALL_PROXY", c)], "C"),
        (&[("http_proxy", refuse), ("ws_proxy", refuse)], ""),
    ];
    for (vars, expected) in steps {
        set_env(vars);
        wss(&from_env);
        assert_eq!(used(), *expected, "wss:// with {vars:?}");
    }

    // no_proxy exempts (CIDR, ::1/128, names with ports); lower-case beats upper-case.
    let exempt: &[&[(&str, &str)]] = &[
        &[("no_proxy", "127.0.0.0/8")],
        &[("NO_PROXY", "10.0.0.0/8, 127.0.0.1")],
        &[("no_proxy", "*"), ("NO_PROXY", "nothing.example")],
        &[("no_proxy", &format!("example.com,127.0.0.1:{}", echo.addr().port()))],
    ];
    for vars in exempt {
        set_env(&[&[("ws_proxy", refuse)], *vars].concat());
        ws(&from_env);
    }
    set_env(&[("ws_proxy", refuse), ("no_proxy", "::1/128")]);
    exchange(&echo6.url(), from_env.clone());
    set_env(&[("ws_proxy", refuse), ("no_proxy", "example.com"), ("NO_PROXY", "*")]);
    let e = proxy_failure(&echo.url(), from_env.clone());
    assert_eq!(e.http_status(), Some(403), "no_proxy does not cover the target: {e}");
    assert_says(&e, &["HTTP 403 Forbidden by policy"]);
    set_env(&[("ws_proxy", refuse), ("no_proxy", "127.0.0.1:1")]);
    proxy_failure(&echo.url(), from_env.clone());

    // An explicit setting beats the environment: "" is direct, a URI is used.
    set_env(&[("ws_proxy", refuse), ("wss_proxy", refuse), ("all_proxy", refuse)]);
    let direct = with_proxy("", from_env.clone());
    ws(&direct);
    wss(&direct);
    ws(&with_proxy(b, from_env.clone()));
    assert_eq!(used(), "B");

    // A variable that does not parse ends the connection and keeps its secret.
    set_env(&[("ws_proxy", "ftp://user:env-s3cret@127.0.0.1:1")]);
    let e = proxy_failure(&echo.url(), from_env.clone());
    assert_eq!(e.kind(), ErrorKind::Proxy { status: None });
    assert_says(&e, &["ws_proxy"]);
    assert!(!e.message().contains("env-s3cret"), "{e}");
}

// ============================================= interim replies (issue 21)

/// 1xx heads before the 200, each kind of delivery: one write, one write per
/// head, byte by byte. Used to fail as "refused … HTTP 100".
#[test]
fn interim_1xx_replies_before_the_200_are_skipped() {
    let _env = env_unchanged();
    let echo = echo_server();
    let target = echo.addr();
    const HEADS: [&str; 4] = [
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 102 Processing\r\nX-Progress: 1\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        "HTTP/1.1 200 Connection established\r\n\r\n",
    ];
    for how in ["one write", "one write per head", "byte by byte"] {
        let proxy = raw_http_proxy(move |mut s| {
            let sent = match how {
                "one write" => s.write_all(HEADS.concat().as_bytes()),
                "one write per head" => HEADS.iter().try_for_each(|h| s.write_all(h.as_bytes())),
                _ => dribble(&mut s, HEADS.concat().as_bytes()),
            };
            if sent.is_ok() {
                relay(s, TcpStream::connect(target).unwrap())
            }
        });
        exchange(&echo.url(), proxied(&format!("http://{}", proxy.addr())));
    }
    // The final status is the one reported: a 407 after a 100.
    let proxy = raw_http_proxy(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
        drain(s);
    });
    let e = proxy_failure("ws://127.0.0.1:9/", proxied(&format!("http://{}", proxy.addr())));
    assert_eq!(e.http_status(), Some(407), "{e}");
    assert_says(&e, &["HTTP 407"]);
}

/// A 101 to CONNECT opens no tunnel (only a 2xx does, RFC 9110 §9.3.6; curl
/// fails it too): a proxy error with status 101, not a tunnel, not a skip.
#[test]
fn a_101_to_connect_is_not_a_tunnel() {
    let _env = env_unchanged();
    let proxy = raw_http_proxy(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        drain(s);
    });
    let mut o = proxied(&format!("http://{}", proxy.addr()));
    o.connect_timeout(Duration::from_secs(60));
    let started = Instant::now();
    let e = proxy_failure("ws://127.0.0.1:9/", o);
    assert!(started.elapsed() < Duration::from_secs(10), "failed at once, not at the timeout");
    assert_eq!(e.http_status(), Some(101), "{e}");
    assert_says(&e, &["101", "opens no tunnel"]);
}
