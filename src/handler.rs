//! Named handlers and the client registry: the Dirigible-style API
//! (`createWebsocket(uri, handler, engine)`, `getClients`, `getClientByHandler`).
//!
//! A connection is bound to a handler *name*, resolved at every event, as a
//! Dirigible handler is a script path: re-registering a name redirects the
//! next events of connections already using it, and events of a connection
//! whose handler has been unregistered are dropped (the connection carries
//! on; close it or register the name again).

use crate::connection::{start, Connection, Sink, State};
use crate::error::Error;
use crate::event::Event;
use crate::options::Options;
use crate::registry::registry;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// A handler receives every event of the connections created with its name.
pub type Handler = Arc<dyn Fn(&Connection, &Event) + Send + Sync>;

/// The engines `create_websocket` accepts (`None` and `""` mean the first).
pub const ENGINES: &[&str] = &["default"];

fn handlers() -> &'static RwLock<HashMap<String, Handler>> {
    static HANDLERS: OnceLock<RwLock<HashMap<String, Handler>>> = OnceLock::new();
    HANDLERS.get_or_init(Default::default)
}

/// Registers `handler` under `name`, replacing any handler of that name.
pub fn register_handler(
    name: &str,
    handler: impl Fn(&Connection, &Event) + Send + Sync + 'static,
) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("a handler name must not be empty".into()));
    }
    handlers().write().insert(name.to_owned(), Arc::new(handler));
    Ok(())
}

/// Removes the handler; later events of connections using it are dropped.
pub fn unregister_handler(name: &str) -> Result<(), Error> {
    handlers().write().remove(name).map(drop).ok_or_else(|| Error::UnknownHandler(name.to_owned()))
}

/// `createWebsocket(uri, handler, engine)`: connects, sending every event to
/// the handler registered as `handler`. `engine` `None`, `""` or `"default"`
/// is the one engine there is (worker threads over tungstenite).
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
    let name = handler.to_owned();
    let sink: Sink = Box::new(move |conn, event| {
        let current = handlers().read().get(&name).cloned();
        if let Some(h) = current {
            h(conn, &event);
        }
    });
    let default = Options::default();
    start(uri, options.unwrap_or(&default), Some(handler.to_owned()), sink)
}

/// Metadata of one unfinished connection (`getClients`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub id: u64,
    pub uri: String,
    /// The handler name, `None` for connections made with callbacks.
    pub handler: Option<String>,
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

/// Every connection that has not finished (connecting, open or closing),
/// made in any API style, oldest first.
pub fn clients() -> Vec<ClientInfo> {
    registry().snapshot().iter().filter_map(Connection::info).collect()
}

/// The unfinished connection with this id (`getClient`).
pub fn client(id: u64) -> Option<Connection> {
    registry().get(id)
}

/// The newest unfinished connection created with this handler (`getClientByHandler`).
pub fn client_by_handler(handler: &str) -> Option<Connection> {
    registry().snapshot().into_iter().rev().find(|c| c.handler() == Some(handler) && c.state().is_ok())
}
