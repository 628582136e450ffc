//! wss:// against loopback TLS servers whose certificates are made for the
//! test run by the `openssl` command line tool: a test CA, a server
//! certificate for 127.0.0.1/localhost, one for another host name, and one
//! that expired in 2020. Verification failures must say which check failed,
//! because that is what a user has to fix.

mod common;

use common::*;
use native_tls::{Identity, TlsAcceptor};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wsc::{ErrorKind, Event, Options};

/// The certificates of this test run, made once.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn get() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(Pki::make)
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }

    fn make() -> Pki {
        let dir = std::env::temp_dir().join(format!("wsc-tls-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        for (name, cn) in [("ca", "wsc test CA"), ("other-ca", "some other CA")] {
            let (key, pem, subj) = (format!("{name}.key"), format!("{name}.pem"), format!("/CN={cn}"));
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &pem, "-subj", &subj, "-days", "2"]);
            openssl(&dir, &args);
        }
        for name in ["good", "wrong", "expired"] {
            let (key, csr, subj) = (format!("{name}.key"), format!("{name}.csr"), format!("/CN={name}"));
            let mut args = vec!["req", "-new"];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(&dir, &args);
        }
        std::fs::write(dir.join("good.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        std::fs::write(dir.join("wrong.ext"), "subjectAltName=DNS:wrong.example\n").unwrap();
        for name in ["good", "wrong"] {
            let (csr, ext, pem) = (format!("{name}.csr"), format!("{name}.ext"), format!("{name}.pem"));
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                    "-out",
                    &pem,
                ],
            );
        }
        // `openssl ca` is the only 3.0 command that takes explicit dates.
        std::fs::write(dir.join("db/index.txt"), "").unwrap();
        std::fs::write(dir.join("db/serial"), "1000\n").unwrap();
        std::fs::write(dir.join("ca.cnf"), CA_CONFIG).unwrap();
        openssl(
            &dir,
            &[
                "ca",
                "-batch",
                "-config",
                "ca.cnf",
                "-in",
                "expired.csr",
                "-out",
                "expired.pem",
                "-notext",
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200201000000Z",
            ],
        );
        Pki { dir }
    }

    /// A TLS acceptor presenting `name`.pem.
    fn acceptor(&self, name: &str) -> TlsAcceptor {
        let cert = std::fs::read(self.dir.join(format!("{name}.pem"))).unwrap();
        let key = std::fs::read(self.dir.join(format!("{name}.key"))).unwrap();
        TlsAcceptor::new(Identity::from_pkcs8(&cert, &key).unwrap()).unwrap()
    }
}

const CA_CONFIG: &str = "[ca]\ndefault_ca = test\n[test]\ndir = .\ndatabase = db/index.txt\nserial = db/serial\n\
new_certs_dir = db\ncertificate = ca.pem\nprivate_key = ca.key\ndefault_md = sha256\npolicy = any\n\
x509_extensions = ext\n[any]\ncommonName = supplied\n[ext]\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A wss echo server presenting certificate `name`.
fn tls_echo_server(name: &str) -> TcpServer {
    let acceptor = Arc::new(Pki::get().acceptor(name));
    TcpServer::local(move |tcp| {
        let Ok(tls) = acceptor.accept(tcp) else { return };
        if let Ok(ws) = tungstenite::accept(tls) {
            echo(ws)
        }
    })
}

fn trusting(ca: &str) -> Options {
    let mut o = Options::new();
    o.ca_file(&Pki::get().path(ca)).unwrap();
    o
}

/// Connects, exchanges one message and closes cleanly.
fn round_trip(url: &str, options: Options) {
    let (conn, rx) = open_channel(url, options);
    expect_open(&rx);
    conn.send("secure hello").unwrap();
    assert_eq!(expect_text(&rx), "secure hello");
    conn.close().unwrap();
    expect_close(&rx, 1000);
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
    round_trip(&server.wss_url(), trusting("ca.pem"));
}

#[test]
fn wss_verified_by_host_name_localhost() {
    let server = tls_echo_server("good");
    round_trip(&format!("wss://localhost:{}/", server.addr().port()), trusting("ca.pem"));
}

#[test]
fn wss_wrong_ca_says_the_issuer_is_unknown() {
    let server = tls_echo_server("good");
    tls_failure(&server.wss_url(), trusting("other-ca.pem"), "unable to get local issuer certificate");
}

#[test]
fn wss_without_the_ca_fails_verification() {
    let server = tls_echo_server("good");
    tls_failure(&server.wss_url(), Options::new(), "certificate verify failed");
}

#[test]
fn wss_wrong_host_name_says_so() {
    let server = tls_echo_server("wrong");
    let url = format!("wss://localhost:{}/", server.addr().port());
    tls_failure(&url, trusting("ca.pem"), "hostname mismatch");
}

#[test]
fn wss_wrong_ip_address_says_so() {
    let server = tls_echo_server("wrong");
    tls_failure(&server.wss_url(), trusting("ca.pem"), "ip address mismatch");
}

#[test]
fn wss_expired_certificate_says_so() {
    let server = tls_echo_server("expired");
    tls_failure(&server.wss_url(), trusting("ca.pem"), "certificate has expired");
}

#[test]
fn wss_danger_accept_invalid_certs_connects_anyway() {
    for name in ["wrong", "expired"] {
        let server = tls_echo_server(name);
        let mut o = Options::new();
        o.danger_accept_invalid_certs(true);
        round_trip(&server.wss_url(), o);
    }
}

#[test]
fn wss_large_messages_both_ways() {
    let server = tls_echo_server("good");
    let (conn, rx) = open_channel(&server.wss_url(), trusting("ca.pem"));
    expect_open(&rx);
    for i in 0..4u8 {
        conn.send_binary(vec![i; 3 << 20]).unwrap();
    }
    for i in 0..4u8 {
        match next_event(&rx, "echo") {
            Event::Message(m) => assert_eq!((m.len(), m.as_bytes()[0]), (3 << 20, i)),
            other => panic!("{other:?}"),
        }
    }
    conn.close().unwrap();
    expect_close(&rx, 1000);
}

#[test]
fn wss_close_during_the_tls_handshake_with_a_silent_server_is_immediate() {
    let server = silent_server();
    let mut o = trusting("ca.pem");
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
    // As a C host: SIGPIPE not ignored, so a write(2) without MSG_NOSIGNAL
    // under OpenSSL to the reset socket would kill this test process.
    // SAFETY: restoring the default disposition of a signal has no memory effects.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let healthy = Healthy::open();
    let acceptor = Arc::new(Pki::get().acceptor("good"));
    let server = TcpServer::local(move |tcp| {
        let raw = tcp.try_clone().unwrap();
        let Ok(tls) = acceptor.accept(tcp) else { return };
        let Ok(mut ws) = tungstenite::accept(tls) else { return };
        let _ = ws.read(); // part of the first big message is in flight
        let _ = socket2::SockRef::from(&raw).set_linger(Some(Duration::ZERO));
    });
    let (conn, rx) = open_channel(&server.wss_url(), trusting("ca.pem"));
    expect_open(&rx);
    for _ in 0..8 {
        let _ = conn.send_binary(vec![5u8; 4 << 20]);
    }
    expect_error(&rx, ErrorKind::ConnectionLost);
    healthy.check();
}
