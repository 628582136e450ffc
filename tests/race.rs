//! `shutdown` at the same moment as everything else, for many rounds: the
//! promise is that `Ok` from `shutdown` means no worker thread, nothing
//! listed, every id unknown, so a host may `dlclose` the library. Also the
//! way out: wsc called from thread-exit destructors. `shutdown` is
//! process-wide, so this is its own binary and its tests take turns.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, MutexGuard};
use std::time::Duration;
use wsc::{Builder, Connection, Error, Options};

/// Takes this binary's turn (see `common::serial`) and starts from `init`.
fn serial_from_init() -> MutexGuard<'static, ()> {
    let guard = serial();
    wsc::init();
    guard
}

/// A small deterministic generator: each round is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One application thread: connects and pokes its connections at random
/// until connecting is refused because of shutdown. Returns every handle.
fn app_thread(url: &str, seed: u64, start: &Barrier) -> Vec<Connection> {
    let mut rng = Rng(seed | 1);
    let mut conns: Vec<Connection> = Vec::new();
    start.wait();
    loop {
        match rng.below(6) {
            0 | 1 => match Builder::new(url).options(Options::new()).connect() {
                Ok(c) => conns.push(c),
                Err(Error::Shutdown) => return conns,
                Err(e) => panic!("connect: {e:?}"),
            },
            2 if !conns.is_empty() => {
                let _ = conns[rng.below(conns.len() as u64) as usize].send("x");
            }
            3 if !conns.is_empty() => {
                let _ = conns[rng.below(conns.len() as u64) as usize].close();
            }
            4 if !conns.is_empty() => {
                let _ = conns[rng.below(conns.len() as u64) as usize].message_complete();
            }
            _ => std::thread::yield_now(),
        }
    }
}

/// After `Ok` from shutdown: nothing runs, nothing is listed, no id answers.
fn assert_nothing_left(handles: &[Connection], round: u64) {
    assert!(wsc::clients().is_empty(), "round {round}: listed after shutdown: {:?}", wsc::clients());
    for c in handles {
        assert_eq!(c.state(), Err(Error::UnknownId), "round {round}: connection {} still answers", c.id());
        assert!(wsc::client(c.id()).is_none(), "round {round}");
        assert_eq!(wsc::ffi::wsc_close(c.id()), wsc::ffi::wsc_status::WSC_ERR_UNKNOWN_ID, "round {round}");
    }
    // Joined threads leave /proc a moment after they are joined.
    assert!(
        eventually(Duration::from_secs(2), || worker_threads() == 0),
        "round {round}: {} wsc- thread(s) after shutdown returned Ok",
        worker_threads()
    );
}

#[test]
fn shutdown_racing_connect_and_calls_leaves_nothing_running() {
    let _serial = serial_from_init();
    let server = echo_server();
    let url = server.url();
    for round in 0..1500u64 {
        wsc::init();
        let start = Arc::new(Barrier::new(4));
        let apps: Vec<_> = (0..3)
            .map(|t| {
                let (url, start) = (url.clone(), start.clone());
                std::thread::spawn(move || app_thread(&url, round * 3 + t + 1, &start))
            })
            .collect();
        start.wait();
        let mut rng = Rng(round + 7);
        for _ in 0..rng.below(2000) {
            std::hint::spin_loop(); // vary the moment of shutdown
        }
        assert_eq!(wsc::shutdown(DEADLINE), Ok(()), "round {round}");
        let after_ok_clients = wsc::clients();
        let handles: Vec<Connection> = apps.into_iter().flat_map(|a| a.join().unwrap()).collect();
        assert!(after_ok_clients.is_empty(), "round {round}: {after_ok_clients:?}");
        assert_nothing_left(&handles, round);
    }
    wsc::init();
}

#[test]
fn shutdown_with_duration_max_waits_for_every_worker() {
    let _serial = serial_from_init();
    let server = echo_server();
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    assert_eq!(wsc::shutdown(Duration::MAX), Ok(()));
    assert_nothing_left(&[conn], 0);
    wsc::init();
}

#[test]
fn init_racing_shutdown_never_leaves_a_refused_connect_running() {
    // init and shutdown from different threads at once: whatever the
    // interleaving, a connect is either refused with Shutdown or its worker
    // is one that a later shutdown waits for.
    let _serial = serial_from_init();
    let server = echo_server();
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                wsc::init();
                let _ = wsc::shutdown(Duration::from_millis(1));
            }
        })
    };
    let mut connected = 0;
    for _ in 0..500 {
        match Builder::new(server.url()).connect() {
            Ok(c) => {
                connected += 1;
                let _ = c.close();
            }
            Err(Error::Shutdown) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    toggler.join().unwrap();
    assert_eq!(wsc::shutdown(DEADLINE), Ok(()));
    assert_nothing_left(&[], 0);
    wsc::init();
    eprintln!("{connected} of 500 connects were admitted");
}

// ------------------------------------------------------ thread exit

/// Calls wsc from a thread-local destructor that runs after wsc's own
/// thread-locals on that thread are gone.
struct CallsAtExit(std::sync::mpsc::Sender<Vec<String>>);

impl Drop for CallsAtExit {
    fn drop(&mut self) {
        use wsc::ffi::*;
        let mut seen = Vec::new();
        seen.push(format!("close {:?}", wsc_close(u64::MAX)));
        // SAFETY: wsc_last_error never returns NULL.
        let last = unsafe { std::ffi::CStr::from_ptr(wsc_last_error()) };
        seen.push(format!("last_error {}", last.to_string_lossy()));
        seen.push(format!("method null {}", wsc_get_method().is_null()));
        seen.push(format!("message null {}", wsc_get_message().is_null()));
        seen.push(format!("error null {}", wsc_get_error().is_null()));
        seen.push(format!("close code {}", wsc_get_close_code()));
        seen.push(format!("on_open {}", wsc_is_on_open()));
        seen.push(format!("wait {:?}", wsc_wait(u64::MAX, 0)));
        let _ = self.0.send(seen);
    }
}

thread_local! {
    static AT_EXIT: std::cell::RefCell<Option<CallsAtExit>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn calls_from_a_thread_local_destructor_return_their_fallbacks() {
    let _serial = serial_from_init();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Registered before wsc's thread-locals, so destroyed after them.
        AT_EXIT.with(|slot| *slot.borrow_mut() = Some(CallsAtExit(tx)));
        assert_eq!(wsc::ffi::wsc_close(u64::MAX), wsc::ffi::wsc_status::WSC_ERR_UNKNOWN_ID);
        assert!(!wsc::ffi::wsc_last_error().is_null());
    })
    .join()
    .unwrap();
    let seen = rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(seen[0], "close WSC_ERR_UNKNOWN_ID");
    assert!(seen[1].starts_with("last_error "), "{seen:?}");
    assert_eq!(
        &seen[2..],
        [
            "method null true",
            "message null true",
            "error null true",
            "close code 0",
            "on_open false",
            "wait WSC_ERR_UNKNOWN_ID"
        ]
    );
}

#[test]
fn shutdown_stops_every_server_and_joins_its_threads() {
    let _serial = serial_from_init();
    wsc::register_handler("race/server-echo", |c, e| {
        if let wsc::Event::Message(m) = e {
            let _ = c.send_message(m.clone());
        }
    })
    .unwrap();
    let server = wsc::Server::bind("127.0.0.1:0").endpoint("echo", "race/server-echo").start().unwrap();
    let (client, rx) = open_channel(&server.url("echo"), Options::new());
    expect_open(&rx);
    // a handshake in progress: half a request, never finished
    let mut half = std::net::TcpStream::connect(server.local_addr()).unwrap();
    std::io::Write::write_all(&mut half, b"GET /websockets/v4/service/echo HTTP/1.1\r\n").unwrap();
    assert_eq!(wsc::shutdown(DEADLINE), Ok(()));
    let end = finish(&rx).1;
    assert!(matches!(end, wsc::Event::Close { code: 1001, .. }), "{end:?}");
    assert_nothing_left(&[client], 0);
    let left: Vec<_> = thread_names().into_iter().filter(|(_, n)| n.starts_with("wsc-")).collect();
    assert!(
        left.is_empty()
            || eventually(Duration::from_secs(2), || !thread_names().iter().any(|(_, n)| n.starts_with("wsc-"))),
        "{left:?}"
    );
    assert!(matches!(wsc::Server::bind("127.0.0.1:0").start(), Err(Error::Shutdown)));
    assert_eq!(server.stop(), Ok(()), "stopping a server that shutdown stopped only frees it");
    wsc::init();
    wsc::Server::bind("127.0.0.1:0").start().unwrap().stop().unwrap();
}

#[test]
fn shutdown_during_a_reconnect_backoff_ends_it_at_once() {
    let _serial = serial_from_init();
    let port = closed_port();
    let mut o = Options::new();
    o.reconnect(wsc::Reconnect {
        min_delay: Duration::from_secs(60),
        max_delay: Duration::from_secs(60),
        max_attempts: 0,
    })
    .unwrap();
    let (conn, rx) = open_channel(&format!("ws://127.0.0.1:{port}/"), o);
    let ev = next_event(&rx, "reconnecting");
    assert!(matches!(ev, wsc::Event::Reconnecting { attempt: 1, .. }), "{ev:?}");
    assert_eq!(wsc::shutdown(DEADLINE), Ok(()));
    let end = finish(&rx).1;
    assert!(matches!(end, wsc::Event::Close { code: 1006, .. }), "{end:?}");
    assert_nothing_left(&[conn], 0);
    wsc::init();
}

#[test]
fn shutdown_from_the_loop_thread_leaves_the_terminal_for_the_next_dispatch() {
    let _serial = serial_from_init();
    let server = echo_server();
    let lp = wsc::Loop::new().unwrap();
    let mut o = Options::new();
    o.event_loop(&lp);
    let (conn, rx) = wsc::Builder::new(server.url()).options(o).connect_channel().unwrap();
    while rx.is_empty() {
        let mut p = libc::pollfd { fd: lp.fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 20_000) };
        lp.dispatch(0).unwrap();
    }
    assert_eq!(rx.recv().unwrap(), wsc::Event::Open);
    // This thread dispatches the loop: shutdown must not wait for a dispatch.
    assert_eq!(wsc::shutdown(DEADLINE), Ok(()));
    assert!(conn.state().is_ok(), "the id answers until its terminal callback is dispatched");
    assert_eq!(lp.attached(), 1);
    assert!(lp.dispatch(0).unwrap() >= 1);
    let end = finish(&rx).1;
    assert!(matches!(end, wsc::Event::Close { code: 1001, .. }), "{end:?}");
    assert_eq!(conn.state(), Err(Error::UnknownId));
    assert_eq!(lp.attached(), 0);
    wsc::init();
}
