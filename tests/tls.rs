//! wss:// against loopback TLS servers whose certificates are made for the
//! test run by `tests/interop/gen-certs.sh`: a test CA, a server
//! certificate for 127.0.0.1/localhost, one for another host name, and one
//! that expired in 2020. Verification failures must say which check failed,
//! because that is what a user has to fix.

mod common;

use common::*;
use native_tls::{Identity, TlsAcceptor};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wsc::{ErrorKind, Options};

/// A TLS acceptor presenting `name`.pem of the test PKI.
fn acceptor(name: &str) -> Arc<TlsAcceptor> {
    let cert = std::fs::read(test_cert(&format!("{name}.pem"))).unwrap();
    let key = std::fs::read(test_cert(&format!("{name}.key"))).unwrap();
    Arc::new(TlsAcceptor::new(Identity::from_pkcs8(&cert, &key).unwrap()).unwrap())
}

/// A wss echo server presenting certificate `name`.
fn tls_echo_server(name: &str) -> TcpServer {
    let acceptor = acceptor(name);
    TcpServer::local(move |tcp| {
        let Ok(tls) = acceptor.accept(tcp) else { return };
        if let Ok(ws) = tungstenite::accept(tls) {
            echo(ws)
        }
    })
}

fn trusting_the(ca: &str) -> Options {
    trusting(&test_cert(ca))
}

/// Connects and expects a TLS failure whose message contains `says`.
fn tls_failure(url: &str, options: Options, says: &str) {
    let (_conn, rx) = open_channel(url, options);
    let e = expect_error(&rx, ErrorKind::Tls);
    assert!(e.message().to_lowercase().contains(says), "'{says}' not in: {e}");
}

#[test]
fn wss_verified_against_the_test_ca() {
    let server = tls_echo_server("good");
    round_trip(&server.wss_url(), trusting_the("ca.pem"), "secure hello");
}

#[test]
fn wss_verified_by_host_name_localhost() {
    let server = tls_echo_server("good");
    let url = format!("wss://localhost:{}/", server.addr().port());
    round_trip(&url, trusting_the("ca.pem"), "secure hello");
}

#[test]
fn wss_wrong_ca_says_the_issuer_is_unknown() {
    let server = tls_echo_server("good");
    tls_failure(&server.wss_url(), trusting_the("other-ca.pem"), "unable to get local issuer certificate");
}

#[test]
fn wss_without_the_ca_fails_verification() {
    let server = tls_echo_server("good");
    tls_failure(&server.wss_url(), Options::new(), "certificate verify failed");
}

#[test]
fn wss_wrong_host_name_says_so() {
    let server = tls_echo_server("wronghost");
    let url = format!("wss://localhost:{}/", server.addr().port());
    tls_failure(&url, trusting_the("ca.pem"), "hostname mismatch");
}

#[test]
fn wss_wrong_ip_address_says_so() {
    let server = tls_echo_server("wronghost");
    tls_failure(&server.wss_url(), trusting_the("ca.pem"), "ip address mismatch");
}

#[test]
fn wss_expired_certificate_says_so() {
    let server = tls_echo_server("expired");
    tls_failure(&server.wss_url(), trusting_the("ca.pem"), "certificate has expired");
}

#[test]
fn wss_danger_accept_invalid_certs_connects_anyway() {
    for name in ["wronghost", "expired"] {
        let server = tls_echo_server(name);
        let mut o = Options::new();
        o.danger_accept_invalid_certs(true);
        round_trip(&server.wss_url(), o, "secure hello");
    }
}

#[test]
fn wss_large_messages_both_ways() {
    let server = tls_echo_server("good");
    let (conn, rx) = open_channel(&server.wss_url(), trusting_the("ca.pem"));
    expect_open(&rx);
    echo_binaries(&conn, &rx, 4, 3 << 20);
    close_cleanly(&conn, &rx);
}

#[test]
fn wss_close_during_the_tls_handshake_with_a_silent_server_is_immediate() {
    let server = silent_server();
    let mut o = trusting_the("ca.pem");
    o.connect_timeout(Duration::from_secs(60));
    let (conn, rx) = open_channel(&server.wss_url(), o);
    server.wait_accepted();
    let asked = Instant::now();
    conn.close().unwrap();
    expect_close(&rx, 1006);
    assert!(asked.elapsed() < Duration::from_secs(2), "took {:?}", asked.elapsed());
}

#[test]
fn wss_reset_during_a_large_send_with_sigpipe_at_default() {
    // As a C host: a write(2) without MSG_NOSIGNAL under OpenSSL would kill us.
    sigpipe_default();
    let healthy = Healthy::open();
    let acceptor = acceptor("good");
    let server = TcpServer::local(move |tcp| {
        let raw = tcp.try_clone().unwrap();
        let Ok(tls) = acceptor.accept(tcp) else { return };
        let Ok(mut ws) = tungstenite::accept(tls) else { return };
        let _ = ws.read(); // part of the first big message is in flight
        reset_on_close(&raw);
    });
    let (conn, rx) = open_channel(&server.wss_url(), trusting_the("ca.pem"));
    expect_open(&rx);
    flood_until_reset(&conn, &rx);
    healthy.check();
}
