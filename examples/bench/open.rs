//! Opening and closing a wsc connection for a measurement: waits for the
//! open and, at the end, for the terminal event, so no run overlaps the next.

use crate::flow::{Flow, PATIENCE};
use crossbeam_channel::{bounded, Receiver};
use std::sync::Arc;
use wsc::{Builder, Connection};

enum Life {
    Open,
    Ended(String),
}

/// An open connection and the channel its terminal event arrives on.
pub struct Opened {
    pub conn: Connection,
    life: Receiver<Life>,
}

/// Adds open/error/close callbacks to `builder`, connects and waits for the
/// open. A failure after that wakes `flow`, so no waiter hangs.
pub fn open(builder: Builder, flow: Option<Arc<Flow>>) -> Result<Opened, String> {
    let (tx, rx) = bounded(4);
    let (tx_err, tx_close) = (tx.clone(), tx.clone());
    let flow_err = flow.clone();
    let builder = builder
        .on_open(move |_| {
            let _ = tx.send(Life::Open);
        })
        .on_error(move |_, e| {
            if let Some(f) = &flow_err {
                f.fail();
            }
            let _ = tx_err.send(Life::Ended(format!("wsc error: {e}")));
        })
        .on_close(move |_, code, reason| {
            if let Some(f) = &flow {
                f.fail();
            }
            let _ = tx_close.send(Life::Ended(format!("wsc closed: {code} {reason}")));
        });
    let conn = builder.connect().map_err(|e| format!("wsc connect: {e}"))?;
    match rx.recv_timeout(PATIENCE) {
        Ok(Life::Open) => Ok(Opened { conn, life: rx }),
        Ok(Life::Ended(why)) => Err(why),
        Err(_) => Err("wsc: no open within the patience limit".into()),
    }
}

impl Opened {
    /// Closes and waits for the terminal event.
    pub fn close(self) {
        let _ = self.conn.close();
        while let Ok(Life::Open) = self.life.recv_timeout(PATIENCE) {}
    }
}
