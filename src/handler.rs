//! Named handlers and the client registry: the Dirigible-style API
//! (`createWebsocket(uri, handler, engine)`, `getClients`, `getClientByHandler`).
//!
//! A connection is bound to a handler *name*, resolved at every event, as a
//! Dirigible handler is a script path: re-registering a name redirects the
//! next events of connections already using it, and events of a connection
//! whose handler has been unregistered are dropped (the connection carries
//! on; close it or register the name again).
//!
//! A handler serves every connection created with its name, so it runs on
//! several worker threads at once. Its captured state (a C `user_data`)
//! must outlive every call in progress: unregistering or replacing a handler
//! therefore waits for those calls to return, except when called from
//! inside a callback, where waiting could wait for the caller itself (or for
//! a thread waiting for the caller). Calls are counted under the table's
//! lock, so none can start unseen between the removal and the wait.

use crate::connection::{current_worker, Connection, Sink, State};
use crate::error::Error;
use crate::event::Event;
use crate::lifecycle::start;
use crate::options::Options;
use crate::registry::registry;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// A handler receives every event of the connections created with its name.
pub type Handler = Arc<dyn Fn(&Connection, &Event) + Send + Sync>;

/// The engines `create_websocket` accepts (`None` and `""` mean the first).
pub const ENGINES: &[&str] = &["default"];

/// A registered handler and the number of its calls in progress.
struct Registered {
    f: Handler,
    calls: Mutex<usize>,
    idle: Condvar,
}

impl Registered {
    /// Waits until no call is in progress.
    fn drain(&self) {
        let mut calls = self.calls.lock();
        while *calls > 0 {
            self.idle.wait(&mut calls);
        }
    }

    fn leave(&self) {
        let mut calls = self.calls.lock();
        *calls -= 1;
        if *calls == 0 {
            self.idle.notify_all();
        }
    }
}

/// Counts a call in progress; dropping it (even during a panic) ends the call.
struct Call(Arc<Registered>);

impl Drop for Call {
    fn drop(&mut self) {
        self.0.leave();
    }
}

fn handlers() -> &'static RwLock<HashMap<String, Arc<Registered>>> {
    static HANDLERS: OnceLock<RwLock<HashMap<String, Arc<Registered>>>> = OnceLock::new();
    HANDLERS.get_or_init(Default::default)
}

/// The handler now registered as `name`, counted as called until dropped.
fn enter(name: &str) -> Option<Call> {
    let table = handlers().read();
    let h = table.get(name)?.clone();
    *h.calls.lock() += 1;
    Some(Call(h))
}

/// Waits for the calls of a handler just removed from the table, unless
/// the caller is itself inside a callback (see the module doc).
fn retire(old: Option<Arc<Registered>>) {
    if let Some(old) = old {
        if current_worker().is_none() {
            old.drain();
        }
    }
}

/// Registers `handler` under `name`, replacing any handler of that name.
/// When replacing, it returns once no call of the old handler is in progress
/// (unless called from inside a callback: then at once).
///
/// # Errors
/// [`Error::InvalidArgument`] for an empty name.
pub fn register_handler(
    name: &str,
    handler: impl Fn(&Connection, &Event) + Send + Sync + 'static,
) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("a handler name must not be empty".into()));
    }
    let new = Arc::new(Registered { f: Arc::new(handler), calls: Mutex::new(0), idle: Condvar::new() });
    let old = handlers().write().insert(name.to_owned(), new);
    retire(old);
    Ok(())
}

/// Removes the handler; later events of connections using it are dropped.
/// Returns once no call of it is in progress on any thread, so what it
/// captured may be freed then — unless called from inside a callback
/// (including the handler itself), where it returns at once and calls on
/// other threads may still be running.
///
/// # Errors
/// [`Error::UnknownHandler`] if no handler is registered under `name`.
pub fn unregister_handler(name: &str) -> Result<(), Error> {
    let old = handlers().write().remove(name).ok_or_else(|| Error::UnknownHandler(name.to_owned()))?;
    retire(Some(old));
    Ok(())
}

/// `createWebsocket(uri, handler, engine)`: connects, sending every event to
/// the handler registered as `handler`. `engine` `None`, `""` or `"default"`
/// is the one engine there is (worker threads over tungstenite).
///
/// ```
/// # let server = wsc::server::EchoServer::start("127.0.0.1:0")?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let tx = std::sync::Mutex::new(tx);
/// wsc::register_handler("doc/echo", move |conn, event| {
///     if let wsc::Event::Message(m) = event {
///         tx.lock().unwrap().send(m.as_text().map(str::to_owned)).unwrap();
///         conn.close().unwrap();
///     }
/// })?;
/// let ws = wsc::create_websocket(&server.url("echo"), "doc/echo", None, None)?;
/// ws.send("hello")?;
/// assert_eq!(rx.recv()?.as_deref(), Some("hello"));
/// ws.wait(std::time::Duration::from_secs(10))?;
/// wsc::unregister_handler("doc/echo")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] for an unknown engine;
/// [`Error::UnknownHandler`] if no handler is registered as `handler`;
/// otherwise as [`crate::Builder::connect`].
pub fn create_websocket(
    uri: &str,
    handler: &str,
    engine: Option<&str>,
    options: Option<&Options>,
) -> Result<Connection, Error> {
    match engine {
        None | Some("") | Some("default") => {}
        Some(other) => {
            return Err(Error::InvalidArgument(format!(
                "unknown engine '{other}': the engines are {}",
                ENGINES.join(", ")
            )))
        }
    }
    if !handlers().read().contains_key(handler) {
        return Err(Error::UnknownHandler(handler.to_owned()));
    }
    let default = Options::default();
    start(uri, options.unwrap_or(&default), Some(handler.to_owned()), handler_sink(handler))
}

/// Delivers a connection's events to the handler registered as `name` at
/// each event (client and server side alike).
pub(crate) fn handler_sink(name: &str) -> Sink {
    let name = name.to_owned();
    Box::new(move |conn, event| {
        if let Some(call) = enter(&name) {
            (call.0.f)(conn, &event);
        }
    })
}

/// True if a handler is registered as `name` now.
pub(crate) fn is_registered(name: &str) -> bool {
    handlers().read().contains_key(name)
}

/// Metadata of one unfinished connection (`getClients`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The connection's id ([`Connection::id`]).
    pub id: u64,
    /// The URI it was created with.
    pub uri: String,
    /// The handler name, `None` for connections made with callbacks.
    pub handler: Option<String>,
    /// Its state when the snapshot was taken.
    pub state: State,
}

impl Connection {
    /// This connection's metadata; `None` once it has finished.
    pub fn info(&self) -> Option<ClientInfo> {
        let state = self.state().ok()?;
        Some(ClientInfo {
            id: self.id(),
            uri: self.uri().to_owned(),
            handler: self.handler().map(str::to_owned),
            state,
        })
    }
}

/// Every connection this process created that has not finished
/// (connecting, open or closing), in any API style, oldest first. Server-side
/// connections are not clients and are not listed.
pub fn clients() -> Vec<ClientInfo> {
    registry().snapshot().iter().filter(|c| c.endpoint().is_none()).filter_map(Connection::info).collect()
}

/// The unfinished client connection with this id (`getClient`); `None` for
/// a server-side connection.
pub fn client(id: u64) -> Option<Connection> {
    registry().get(id).filter(|c| c.endpoint().is_none())
}

/// The newest unfinished client connection created with this handler (`getClientByHandler`).
pub fn client_by_handler(handler: &str) -> Option<Connection> {
    registry()
        .snapshot()
        .into_iter()
        .rev()
        .find(|c| c.endpoint().is_none() && c.handler() == Some(handler) && c.state().is_ok())
}
