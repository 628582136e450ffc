//! Process-wide lifecycle (issue 2, behaviour 11): worker threads end with
//! their connections, and `shutdown` closes everything and joins every
//! worker, as a host must before `dlclose`. `shutdown` affects every
//! connection in the process, so this binary is separate from the others and
//! its tests take turns (`serial`), each starting from `init()`.

mod common;

use common::*;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};
use wsc::{Builder, Error, Event, Options};

/// The tests of this binary, whose harness threads carry these names.
const TESTS: &[&str] = &[
    "shutdown_closes_every_connection_and_joins_every_worker",
    "connect_after_shutdown_is_refused_until_init",
    "shutdown_from_inside_a_callback_cannot_wait_for_itself",
    CYCLES,
    "idle_connections_leave_the_process_idle",
];
const CYCLES: &str = "hundred_connect_close_cycles_leave_no_thread_behind";

/// This test's turn ([`common::serial`]), starting from `init()`.
fn turn() -> MutexGuard<'static, ()> {
    let guard = serial();
    wsc::init();
    guard
}

/// Threads of this process other than the test harness's: the main thread,
/// this test's thread, and the other tests' threads (libtest names each
/// after its test; `comm` keeps 15 bytes). A thread this test starts carries
/// this test's name until it renames itself, so it is counted either way.
fn threads_besides_the_harness(this_test: &str) -> usize {
    let main = std::fs::read_to_string("/proc/self/comm").unwrap();
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() } as u32;
    let harness = |n: &str| {
        n == main.trim_end() || TESTS.iter().any(|t| *t != this_test && t.as_bytes().starts_with(n.as_bytes()))
    };
    thread_names().iter().filter(|(tid, n)| *tid != me && !harness(n)).count()
}

#[test]
fn shutdown_closes_every_connection_and_joins_every_worker() {
    let _turn = turn();
    let server = echo_server();
    let silent = silent_server();
    let open: Vec<_> = (0..5).map(|_| open_channel(&server.url(), Options::new())).collect();
    for (_, rx) in &open {
        expect_open(rx);
    }
    let mut o = Options::new();
    o.connect_timeout(Duration::from_secs(60));
    let (_connecting, connecting_rx) = open_channel(&silent.url(), o);
    silent.wait_accepted();
    assert_eq!(worker_threads(), 6);

    let started = Instant::now();
    assert_eq!(wsc::shutdown(Duration::from_secs(10)), Ok(()));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    // Joined threads leave /proc a moment after they are joined (the kernel
    // wakes the joiner before it unlists the thread).
    assert!(
        eventually(Duration::from_secs(2), || worker_threads() == 0),
        "every worker joined when shutdown returns: {} left",
        worker_threads()
    );
    assert!(wsc::clients().is_empty());
    for (conn, rx) in &open {
        assert_eq!(expect_close(rx, 1001), "shutting down");
        assert_eq!(conn.state(), Err(Error::UnknownId));
    }
    expect_close(&connecting_rx, 1006);
}

#[test]
fn connect_after_shutdown_is_refused_until_init() {
    let _turn = turn();
    let server = echo_server();
    assert_eq!(wsc::shutdown(Duration::from_secs(5)), Ok(()));
    assert_eq!(wsc::connect(&server.url()).err(), Some(Error::Shutdown));
    assert_eq!(Builder::new(server.url()).connect().err(), Some(Error::Shutdown));
    wsc::init();
    let (conn, rx) = wsc::connect(&server.url()).unwrap();
    expect_open(&rx);
    echo_text(&conn, &rx, "again");
    close_cleanly(&conn, &rx);
}

#[test]
fn shutdown_from_inside_a_callback_cannot_wait_for_itself() {
    let _turn = turn();
    let server = echo_server();
    let (other, other_rx) = open_channel(&server.url(), Options::new());
    expect_open(&other_rx);
    let (tx, rx) = crossbeam_channel::unbounded();
    let tx2 = tx.clone();
    let _conn = Builder::new(server.url())
        .on_open(move |_| tx.send(format!("{:?}", wsc::shutdown(Duration::from_secs(5)))).unwrap())
        .on_close(move |_, code, _| tx2.send(format!("close {code}")).unwrap())
        .connect()
        .unwrap();
    let results = collect_all(&rx);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].starts_with("Err(Timeout("), "{results:?}");
    assert!(results[0].contains("inside a callback"), "{results:?}");
    assert_eq!(results[1], "close 1001");
    expect_close(&other_rx, 1001);
    assert_eq!(other.state(), Err(Error::UnknownId));
    assert!(eventually(DEADLINE, || worker_threads() == 0));
}

#[test]
fn hundred_connect_close_cycles_leave_no_thread_behind() {
    let _turn = turn();
    let server = echo_server();
    assert!(eventually(DEADLINE, || worker_threads() == 0), "a previous test left workers");
    let no_server_threads = || !thread_names().iter().any(|(_, n)| n == "srv-conn");
    assert!(eventually(DEADLINE, no_server_threads), "earlier servers' threads linger");
    let baseline = threads_besides_the_harness(CYCLES);
    for i in 0..100 {
        let (conn, rx) = open_channel(&server.url(), Options::new());
        expect_open(&rx);
        conn.send(format!("cycle {i}")).unwrap();
        assert_eq!(expect_text(&rx), format!("cycle {i}"));
        conn.close().unwrap();
        let (_, last) = finish(&rx);
        assert_eq!(last, Event::Close { code: 1000, reason: String::new() });
    }
    assert!(eventually(DEADLINE, || worker_threads() == 0), "{} workers left", worker_threads());
    assert!(
        eventually(DEADLINE, || threads_besides_the_harness(CYCLES) <= baseline),
        "threads: {} at the start, {} now: {:?}",
        baseline,
        threads_besides_the_harness(CYCLES),
        thread_names()
    );
}

#[test]
fn idle_connections_leave_the_process_idle() {
    let _turn = turn();
    let server = echo_server();
    let mut o = Options::new();
    o.ping_interval(Some(Duration::from_secs(30))); // a timer armed, far away
    let conns: Vec<_> = (0..8).map(|_| open_channel(&server.url(), o.clone())).collect();
    for (_, rx) in &conns {
        expect_open(rx);
    }
    let before = process_cpu();
    let idle = conns[0].1.recv_timeout(Duration::from_secs(1));
    let used = process_cpu() - before;
    assert!(idle.is_err(), "nothing happens while idle: {idle:?}");
    assert!(used < Duration::from_millis(30), "8 idle connections used {used:?} of CPU in 1 s");
    for (c, rx) in &conns {
        c.close().unwrap();
        expect_close(rx, 1000);
    }
}
