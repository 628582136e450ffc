//! Name resolution inside the connect's bounds, and Happy Eyeballs (issue 21,
//! item 7): name servers on loopback that never answer, answer slowly or
//! answer only AAAA; a name whose first address is a black hole.
//!
//! Each test that needs its own resolver configuration re-runs itself in a
//! private mount namespace (`common::dns::in_private_resolver`, root only)
//! with its own name server address, so they can run side by side.

mod common;

use common::dns::{self, NameServer, Reply, Zone};
use common::*;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::time::{Duration, Instant};
use wsc::{ErrorKind, Options};

const SECOND: Duration = Duration::from_secs(1);

/// Starts a private-resolver test: in the parent, runs the child and
/// returns false; in the child, returns true.
fn private(name: &str, server: Ipv4Addr, hosts: &str) -> bool {
    dns::in_private_resolver(name, &dns::resolv_conf(server), &dns::hosts(hosts))
}

/// Waits until the name server has received a query for `name`.
fn wait_query(server: &NameServer, name: &str) {
    wait_for(&server.queries, "a query at the name server", |(n, _)| n == name);
}

#[test]
fn a_silent_name_server_is_bounded_by_the_connect_timeout() {
    let ip = Ipv4Addr::new(127, 0, 0, 71);
    if !private("a_silent_name_server_is_bounded_by_the_connect_timeout", ip, "") {
        return;
    }
    let _server = NameServer::silent(ip);
    let started = Instant::now();
    let (_conn, rx) = open_channel(
        "ws://silent.test:9/",
        opts(|o| {
            o.connect_timeout(SECOND);
        }),
    );
    let e = expect_error(&rx, ErrorKind::Timeout);
    let took = started.elapsed();
    // The resolver alone would take 10 s (5 s x 2 tries).
    assert!(took >= SECOND && took < 3 * SECOND, "ended after {took:?}: {e}");
    assert!(e.message().contains("resolving the host name"), "{e}");
}

#[test]
fn close_during_a_lookup_ends_the_connection_at_once() {
    let ip = Ipv4Addr::new(127, 0, 0, 72);
    if !private("close_during_a_lookup_ends_the_connection_at_once", ip, "") {
        return;
    }
    let server = NameServer::silent(ip);
    let (conn, rx) = open_channel("ws://silent.test:9/", Options::new());
    wait_query(&server, "silent.test");
    let closed = Instant::now();
    conn.close().unwrap();
    expect_close(&rx, 1006);
    let took = closed.elapsed();
    assert!(took < SECOND, "on_close came {took:?} after close()");
}

#[test]
fn extreme_connect_timeouts_with_a_silent_name_server() {
    let ip = Ipv4Addr::new(127, 0, 0, 80);
    if !private("extreme_connect_timeouts_with_a_silent_name_server", ip, "") {
        return;
    }
    let server = NameServer::silent(ip);
    // Zero: over before any lookup can answer.
    let started = Instant::now();
    let (_conn, rx) = open_channel(
        "ws://silent.test:9/",
        opts(|o| {
            o.connect_timeout(Duration::ZERO);
        }),
    );
    expect_error(&rx, ErrorKind::Timeout);
    assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());
    // No deadline at all: the lookup ends with c-ares' own tries (here the
    // 10 s would pass), or at once with close().
    let (conn, rx) = open_channel(
        "ws://silent.test:9/",
        opts(|o| {
            o.connect_timeout(Duration::MAX);
        }),
    );
    wait_query(&server, "silent.test");
    let closed = Instant::now();
    conn.close().unwrap();
    expect_close(&rx, 1006);
    assert!(closed.elapsed() < SECOND, "on_close came {:?} after close()", closed.elapsed());
}

#[test]
fn a_proxy_name_and_a_socks5_target_are_looked_up_within_the_bounds() {
    let ip = Ipv4Addr::new(127, 0, 0, 81);
    if !private("a_proxy_name_and_a_socks5_target_are_looked_up_within_the_bounds", ip, "") {
        return;
    }
    let server = NameServer::silent(ip);
    // The proxy's own name: bounded by the connect timeout.
    let started = Instant::now();
    let (_conn, rx) = open_channel(
        "ws://127.0.0.1:9/",
        opts(|o| {
            o.connect_timeout(SECOND).proxy("http://proxy.test:3128").unwrap();
        }),
    );
    let e = expect_error(&rx, ErrorKind::Proxy { status: None });
    assert!(started.elapsed() < 3 * SECOND && e.message().contains("resolving"), "{e} after {:?}", started.elapsed());
    // socks5:// resolves the target here first: close() ends that at once.
    let (conn, rx) = open_channel(
        "ws://target.test:9/",
        opts(|o| {
            o.proxy("socks5://127.0.0.1:9").unwrap();
        }),
    );
    wait_query(&server, "target.test");
    let closed = Instant::now();
    conn.close().unwrap();
    expect_close(&rx, 1006);
    assert!(closed.elapsed() < SECOND, "on_close came {:?} after close()", closed.elapsed());
}

#[test]
fn shutdown_during_a_lookup_returns_ok_and_leaves_no_wsc_thread() {
    let ip = Ipv4Addr::new(127, 0, 0, 73);
    if !private("shutdown_during_a_lookup_returns_ok_and_leaves_no_wsc_thread", ip, "") {
        return;
    }
    let server = NameServer::silent(ip);
    let before = all_threads();
    let (_conn, rx) = open_channel("ws://silent.test:9/", Options::new());
    wait_query(&server, "silent.test");
    let started = Instant::now();
    // The C entry point, as a host unloading wsc calls it.
    assert_eq!(wsc::ffi::wsc_shutdown(2000), wsc::ffi::wsc_status::WSC_OK);
    assert!(started.elapsed() < 2 * SECOND, "shutdown took {:?}", started.elapsed());
    expect_close(&rx, 1006);
    // No thread of wsc's (a worker, or a lookup's) is left.
    let names = thread_names();
    assert_eq!(worker_threads(), 0, "{names:?}");
    assert_eq!(all_threads(), before, "{names:?}");
}

#[test]
fn a_slow_name_server_within_the_timeout_connects() {
    let ip = Ipv4Addr::new(127, 0, 0, 74);
    if !private("a_slow_name_server_within_the_timeout_connects", ip, "") {
        return;
    }
    let slow = Reply::After(Duration::from_millis(1500));
    let zone = Zone {
        a: [("slow.test".to_owned(), vec![Ipv4Addr::LOCALHOST])].into(),
        aaaa: [("slow.test".to_owned(), vec![])].into(),
        reply_a: Some(slow),
        reply_aaaa: Some(slow),
    };
    let _server = NameServer::start(ip, zone);
    let echo = echo_server();
    let url = format!("ws://slow.test:{}/", echo.addr().port());
    let started = Instant::now();
    let (conn, rx) = open_channel(
        &url,
        opts(|o| {
            o.connect_timeout(5 * SECOND);
        }),
    );
    expect_open(&rx);
    let p = conn.stats().unwrap().connect;
    assert!(p.dns >= Duration::from_millis(1500) && p.dns <= started.elapsed(), "{p:?}");
    echo_text(&conn, &rx, "after a slow lookup");
    close_cleanly(&conn, &rx);
}

#[test]
fn an_aaaa_only_name_server_connects_over_ipv6() {
    let ip = Ipv4Addr::new(127, 0, 0, 75);
    if !private("an_aaaa_only_name_server_connects_over_ipv6", ip, "") {
        return;
    }
    // AAAA answered at once; A never: the connection must not wait for A.
    let zone = Zone {
        aaaa: [("six.test".to_owned(), vec![Ipv6Addr::LOCALHOST])].into(),
        reply_a: Some(Reply::Never),
        ..Zone::default()
    };
    let _server = NameServer::start(ip, zone);
    let echo = echo_server_v6();
    let url = format!("ws://six.test:{}/", echo.addr().port());
    let started = Instant::now();
    let (conn, rx) = open_channel(
        &url,
        opts(|o| {
            o.connect_timeout(5 * SECOND);
        }),
    );
    expect_open(&rx);
    // glibc waits for the A answer (10 s here) before connecting at all.
    assert!(started.elapsed() < 3 * SECOND, "opened after {:?}", started.elapsed());
    echo_text(&conn, &rx, "over IPv6");
    close_cleanly(&conn, &rx);
}

#[test]
fn a_black_holed_first_address_costs_a_fraction_of_the_timeout() {
    // /etc/hosts gives ::1 (tried first) and 127.0.0.1; the server listens
    // on 127.0.0.1 only and [::1] on that port drops every SYN.
    let ip = Ipv4Addr::new(127, 0, 0, 76);
    let hosts = "::1 dual.test\n127.0.0.1 dual.test\n";
    if !private("a_black_holed_first_address_costs_a_fraction_of_the_timeout", ip, hosts) {
        return;
    }
    let _server = NameServer::silent(ip);
    let (echo, _hole) = (0..20)
        .find_map(|_| {
            let echo = echo_server();
            dns::black_hole_v6(echo.addr().port()).map(|h| (echo, h))
        })
        .expect("a port free on both 127.0.0.1 and ::1");
    let url = format!("ws://dual.test:{}/", echo.addr().port());
    let started = Instant::now();
    let (conn, rx) = open_channel(
        &url,
        opts(|o| {
            o.connect_timeout(10 * SECOND);
        }),
    );
    expect_open(&rx);
    // One after the other, the dead address would eat all 10 s.
    assert!(started.elapsed() < 3 * SECOND, "opened after {:?}", started.elapsed());
    let p = conn.stats().unwrap().connect;
    assert!(p.tcp >= Duration::from_millis(250), "the second attempt waits 250 ms: {p:?}");
    close_cleanly(&conn, &rx);
}

#[test]
fn an_ip_literal_skips_the_silent_name_server() {
    let ip = Ipv4Addr::new(127, 0, 0, 77);
    if !private("an_ip_literal_skips_the_silent_name_server", ip, "") {
        return;
    }
    let server = NameServer::silent(ip);
    let (v4, v6) = (echo_server(), echo_server_v6());
    for url in [v4.url(), format!("ws://[::1]:{}/", v6.addr().port())] {
        let (conn, rx) = open_channel(&url, Options::new());
        expect_open(&rx);
        assert_eq!(conn.stats().unwrap().connect.dns, Duration::ZERO);
        close_cleanly(&conn, &rx);
    }
    assert!(server.queries.try_recv().is_err(), "no query for an IP literal");
}

#[test]
fn localhost_connects_through_the_hosts_file() {
    // The machine's own configuration: `localhost` is in /etc/hosts, as ::1
    // (refused here: nothing listens there) and 127.0.0.1.
    let echo = echo_server();
    let url = format!("ws://localhost:{}/", echo.addr().port());
    let (conn, rx) = open_channel(&url, Options::new());
    expect_open(&rx);
    echo_text(&conn, &rx, "via localhost");
    close_cleanly(&conn, &rx);
}

#[test]
fn every_address_refused_reports_connect() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (_conn, rx) = open_channel(&format!("ws://localhost:{port}/"), Options::new());
    let e = expect_error(&rx, ErrorKind::Connect);
    assert!(e.message().contains("refused"), "{e}");
}

#[test]
fn an_unknown_name_reports_resolve() {
    let ip = Ipv4Addr::new(127, 0, 0, 78);
    if !private("an_unknown_name_reports_resolve", ip, "") {
        return;
    }
    let _server = NameServer::start(ip, Zone::default());
    let (_conn, rx) = open_channel("ws://nowhere.test:9/", Options::new());
    let e = expect_error(&rx, ErrorKind::Resolve);
    assert!(e.message().contains("cannot resolve 'nowhere.test'"), "{e}");
}

/// An echo server on `[::1]`.
fn echo_server_v6() -> TcpServer {
    TcpServer::start("[::1]:0", |s| {
        if let Ok(ws) = tungstenite::accept(s) {
            echo(ws)
        }
    })
}

#[test]
fn a_name_only_in_the_hosts_file_needs_no_name_server() {
    // v4only.test has only an IPv4 line; the name server never answers. A
    // refused connection must be reported at once, not after waiting for an
    // AAAA answer that the hosts file cannot give.
    let ip = Ipv4Addr::new(127, 0, 0, 79);
    if !private("a_name_only_in_the_hosts_file_needs_no_name_server", ip, "127.0.0.1 v4only.test\n") {
        return;
    }
    let _server = NameServer::silent(ip);
    let echo = echo_server();
    let (conn, rx) = open_channel(&format!("ws://v4only.test:{}/", echo.addr().port()), Options::new());
    expect_open(&rx);
    close_cleanly(&conn, &rx);
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let (_conn, rx) = open_channel(&format!("ws://v4only.test:{port}/"), Options::new());
    let e = expect_error(&rx, ErrorKind::Connect);
    assert!(started.elapsed() < 3 * SECOND, "{e} after {:?}", started.elapsed());
}
