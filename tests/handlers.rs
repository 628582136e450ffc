//! Named handlers and the client registry (the Dirigible-style API), through
//! the Rust API, against the embedded echo server on loopback.
//!
//! Handler names are process-global, so every test uses names of its own.

mod common;

use common::{next_event, DEADLINE};
use crossbeam_channel::{unbounded, Receiver};
use std::time::Duration;
use wsc::server::EchoServer;
use wsc::{Connection, Error, Event, State};

/// Registers `name` with a handler that forwards (method, event) to a channel.
fn forwarding(name: &str) -> Receiver<(u64, Event)> {
    let (tx, rx) = unbounded();
    wsc::register_handler(name, move |conn, ev| {
        let _ = tx.send((conn.id(), ev.clone()));
    })
    .unwrap();
    rx
}

#[test]
fn the_seed_example_send_hello_then_find_by_handler_and_close() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let events = forwarding("h/seed");
    let ws = wsc::create_websocket(&server.url("my-endpoint"), "h/seed", None, None).unwrap();
    ws.send("hello").unwrap();
    assert_eq!(next_event(&events, "a handler event"), (ws.id(), Event::Open));
    let (id, ev) = next_event(&events, "a handler event");
    assert_eq!(id, ws.id());
    assert_eq!(ev.method(), "onmessage");
    let Event::Message(m) = ev else { unreachable!() };
    assert_eq!(m.as_text(), Some("hello"));
    let found = wsc::client_by_handler("h/seed").expect("the client is found by its handler");
    assert_eq!(found, ws);
    found.close().unwrap();
    assert_eq!(next_event(&events, "a handler event"), (ws.id(), Event::Close { code: 1000, reason: String::new() }));
    ws.wait(DEADLINE).unwrap();
    assert!(wsc::client_by_handler("h/seed").is_none(), "after close the lookup finds nothing");
}

#[test]
fn engines_default_and_empty_are_accepted_others_are_named_in_the_error() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let events = forwarding("h/engine");
    for engine in [None, Some(""), Some("default")] {
        let c = wsc::create_websocket(&server.url("e"), "h/engine", engine, None).unwrap();
        assert_eq!(next_event(&events, "a handler event").1, Event::Open);
        c.close().unwrap();
        assert!(next_event(&events, "a handler event").1.is_terminal());
    }
    match wsc::create_websocket(&server.url("e"), "h/engine", Some("netty"), None) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("netty") && m.contains("default"), "{m}"),
        other => panic!("unknown engine must be InvalidArgument, got {other:?}"),
    }
}

#[test]
fn unknown_handler_is_refused() {
    let r = wsc::create_websocket("ws://127.0.0.1:9/", "h/never-registered", None, None);
    assert_eq!(r.unwrap_err(), Error::UnknownHandler("h/never-registered".into()));
    assert_eq!(wsc::unregister_handler("h/never-registered"), Err(Error::UnknownHandler("h/never-registered".into())));
}

#[test]
fn clients_lists_every_live_connection_with_its_state_until_it_ends() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let events = forwarding("h/list");
    let a = wsc::create_websocket(&server.url("a"), "h/list", None, None).unwrap();
    let (b, b_events) = wsc::Builder::new(server.url("b")).connect_channel().unwrap();
    assert_eq!(next_event(&events, "a handler event").1, Event::Open);
    assert_eq!(b_events.recv_timeout(DEADLINE).unwrap(), Event::Open);

    let listed = wsc::clients();
    let info_a = listed.iter().find(|c| c.id == a.id()).expect("a is listed");
    assert_eq!(info_a.handler.as_deref(), Some("h/list"));
    assert_eq!(info_a.uri, server.url("a"));
    assert_eq!(info_a.state, State::Open);
    let info_b = listed.iter().find(|c| c.id == b.id()).expect("b (callback style) is listed");
    assert_eq!(info_b.handler, None);
    assert_eq!(wsc::client(a.id()).as_ref(), Some(&a));

    a.close().unwrap();
    // Closing from now on, until it finishes (which may already have happened).
    let state = wsc::client(a.id()).and_then(|c| c.info()).map(|i| i.state);
    assert!(matches!(state, Some(State::Closing) | None), "{state:?}");
    assert!(next_event(&events, "a handler event").1.is_terminal());
    a.wait(DEADLINE).unwrap();
    assert!(wsc::clients().iter().all(|c| c.id != a.id()), "a finished connection disappears");
    assert!(wsc::client(a.id()).is_none());
    assert!(wsc::clients().iter().any(|c| c.id == b.id()), "b is still there");
    b.close().unwrap();
    b.wait(DEADLINE).unwrap();
}

#[test]
fn a_connecting_client_is_listed_as_connecting() {
    let silent = common::silent_server();
    let _events = forwarding("h/connecting");
    let c = wsc::create_websocket(&silent.url(), "h/connecting", None, None).unwrap();
    let info = wsc::clients().into_iter().find(|i| i.id == c.id()).expect("listed while connecting");
    assert_eq!(info.state, State::Connecting);
    c.close().unwrap();
    c.wait(DEADLINE).unwrap();
}

#[test]
fn client_by_handler_returns_the_newest_unfinished_one() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let events = forwarding("h/newest");
    let old = wsc::create_websocket(&server.url("1"), "h/newest", None, None).unwrap();
    let new = wsc::create_websocket(&server.url("2"), "h/newest", None, None).unwrap();
    assert_eq!(wsc::client_by_handler("h/newest"), Some(new.clone()));
    new.close().unwrap();
    new.wait(DEADLINE).unwrap();
    assert_eq!(wsc::client_by_handler("h/newest"), Some(old.clone()));
    old.close().unwrap();
    old.wait(DEADLINE).unwrap();
    assert_eq!(wsc::client_by_handler("h/newest"), None);
    drop(events);
}

#[test]
fn replacing_a_handler_redirects_the_next_events_of_live_connections() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let first = forwarding("h/replace");
    let c = wsc::create_websocket(&server.url("r"), "h/replace", None, None).unwrap();
    assert_eq!(next_event(&first, "a handler event").1, Event::Open);
    let second = forwarding("h/replace"); // replaces the first
    c.send("after").unwrap();
    let (_, ev) = next_event(&second, "a handler event");
    assert_eq!(ev.method(), "onmessage");
    assert!(first.try_recv().is_err(), "the replaced handler sees nothing more");
    c.close().unwrap();
    assert!(next_event(&second, "a handler event").1.is_terminal());
}

#[test]
fn unregistering_drops_events_until_registered_again_and_the_connection_carries_on() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let first = forwarding("h/unregister");
    let c = wsc::create_websocket(&server.url("u"), "h/unregister", None, None).unwrap();
    assert_eq!(next_event(&first, "a handler event").1, Event::Open);
    wsc::unregister_handler("h/unregister").unwrap();
    c.send("dropped").unwrap();
    // No handler: the echo of "dropped" (if it comes back now) goes nowhere.
    let again = forwarding("h/unregister");
    c.send("seen").unwrap();
    let mut texts = Vec::new();
    while let Ok((_, Event::Message(m))) = again.recv_timeout(Duration::from_secs(5)) {
        texts.push(m.as_text().unwrap().to_owned());
        if texts.last().map(String::as_str) == Some("seen") {
            break;
        }
    }
    assert_eq!(texts.last().map(String::as_str), Some("seen"));
    assert_eq!(c.state(), Ok(State::Open), "the connection carried on without a handler");
    c.close().unwrap();
    c.wait(DEADLINE).unwrap();
}

#[test]
fn a_handler_may_close_its_own_connection_and_look_itself_up() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let (tx, rx) = unbounded();
    wsc::register_handler("h/self", move |conn: &Connection, ev: &Event| {
        if matches!(ev, Event::Open) {
            let me = wsc::client_by_handler("h/self").expect("finds itself");
            assert_eq!(&me, conn);
            me.close().unwrap();
        }
        let _ = tx.send(ev.method());
    })
    .unwrap();
    let c = wsc::create_websocket(&server.url("s"), "h/self", None, None).unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), "onopen");
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), "onclose");
    c.wait(DEADLINE).unwrap();
}

#[test]
fn handler_errors_arrive_as_onerror() {
    let events = forwarding("h/error");
    let port = common::closed_port();
    let c = wsc::create_websocket(&format!("ws://127.0.0.1:{port}/"), "h/error", None, None).unwrap();
    let (id, ev) = next_event(&events, "a handler event");
    assert_eq!(id, c.id());
    assert_eq!(ev.method(), "onerror");
    let Event::Error(e) = ev else { unreachable!() };
    assert!(e.message().contains("refused"), "{e}");
}
