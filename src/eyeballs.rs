//! Happy Eyeballs (RFC 8305): name lookup and TCP connection attempts race
//! inside one connect deadline, so a dead IPv6 route (or a dead first
//! address) costs 250 ms, not the whole timeout.
//!
//! The rules followed:
//! - AAAA and A are asked at once (`resolve.rs`); attempts start as soon as
//!   the AAAA answer is in, or 50 ms after the A answer if AAAA is still
//!   pending ("Resolution Delay", §3); later answers join the queue.
//! - Addresses alternate between families, IPv6 first (§4), each family in
//!   c-ares' RFC 6724 order.
//! - The next attempt starts 250 ms after the previous one ("Connection
//!   Attempt Delay", §5) or at once when an attempt fails; earlier attempts
//!   go on. The first to connect wins; the others are closed (dropped).
//!
//! Invariants:
//! - One `poll(2)` waits on every attempt, every name server socket and the
//!   worker's eventfd, until the earliest of: the connect deadline, c-ares'
//!   next retry, the next attempt's start. No thread, no busy waiting.
//! - `close()` or `wsc_shutdown` wake that poll; the race then returns
//!   [`DialError::Aborted`] and dropping it closes every socket it opened.
//! - Stats: `dns` is the time until the first attempt started (waiting for
//!   names), `tcp` the time from there to the winning connection.

use crate::dial::{Dial, DialError};
use crate::error::{ConnectionError, ErrorKind};
use crate::logging::wlog;
use crate::resolve::{Answer, Lookup, V4, V6};
use crate::waker::{Interest, Readiness};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// RFC 8305 §5 "Connection Attempt Delay" (its recommended value).
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// RFC 8305 §3 "Resolution Delay": how long an A answer waits for AAAA.
const RESOLUTION_DELAY: Duration = Duration::from_millis(50);

const WRITE: Interest = Interest { read: false, write: true };

pub(crate) struct Race<'r, 'a> {
    dial: &'r Dial<'a>,
    host: &'r str,
    port: u16,
    lookup: Option<Lookup>,
    /// A family's answer is still awaited ([IPv6, IPv4]).
    pending: [bool; 2],
    queues: [VecDeque<SocketAddr>; 2],
    /// The family of the next attempt, when it has addresses left.
    next_family: usize,
    /// When the A answer arrived, if AAAA was still pending then.
    a_answered: Option<Instant>,
    attempts: Vec<(Socket, SocketAddr)>,
    /// No new attempt before this while others are in flight.
    next_start: Instant,
    started: Instant,
    first_attempt: Option<Instant>,
    last_failure: Option<ConnectionError>,
    lookup_failures: Vec<String>,
}

impl<'r, 'a> Race<'r, 'a> {
    /// A race over the answers of a lookup of `host` that starts now.
    pub(crate) fn resolving(dial: &'r Dial<'a>, host: &'r str, port: u16) -> Result<Self, DialError> {
        let started = Instant::now();
        let lookup = Lookup::start(host).map_err(|e| ConnectionError::new(ErrorKind::Resolve, e))?;
        let mut race = Race::known(dial, host, port, &[]);
        race.started = started;
        race.lookup = Some(lookup);
        race.pending = [true, true];
        Ok(race)
    }

    /// A race over addresses already known (an IP literal, a proxy's).
    pub(crate) fn known(dial: &'r Dial<'a>, host: &'r str, port: u16, addrs: &[SocketAddr]) -> Self {
        let now = Instant::now();
        let mut queues = [VecDeque::new(), VecDeque::new()];
        for a in addrs {
            queues[if a.is_ipv6() { V6 } else { V4 }].push_back(*a);
        }
        let next_family = if addrs.first().is_some_and(SocketAddr::is_ipv4) { V4 } else { V6 };
        Race {
            dial,
            host,
            port,
            lookup: None,
            pending: [false, false],
            queues,
            next_family,
            a_answered: None,
            attempts: Vec::new(),
            next_start: now,
            started: now,
            first_attempt: None,
            last_failure: None,
            lookup_failures: Vec::new(),
        }
    }

    /// Runs the lookup alone to its end (both answers in); returns the
    /// addresses, families alternating, IPv6 first.
    ///
    /// # Errors
    /// Kind `Resolve` when neither family has an address; `Timeout` or
    /// [`DialError::Aborted`] as for the whole dial.
    pub(crate) fn addresses(mut self) -> Result<Vec<SocketAddr>, DialError> {
        loop {
            self.harvest();
            if !self.pending.contains(&true) {
                break;
            }
            self.step(None)?;
        }
        self.dial.timed(self.started, |p| &mut p.dns);
        let mut out = Vec::new();
        while let Some(a) = self.pop() {
            out.push(a);
        }
        if out.is_empty() {
            return Err(self.resolve_error().into());
        }
        Ok(out)
    }

    /// Runs the race to the first connected socket.
    ///
    /// # Errors
    /// The last attempt's failure (kind `Connect`), kind `Resolve` when no
    /// address came, `Timeout` at the deadline, [`DialError::Aborted`] on close.
    pub(crate) fn connect(mut self) -> Result<(TcpStream, SocketAddr), DialError> {
        loop {
            self.harvest();
            while self.may_start(Instant::now()) {
                if let Some(won) = self.start_next() {
                    return Ok(self.won(won));
                }
            }
            if self.attempts.is_empty() && self.queues.iter().all(VecDeque::is_empty) && !self.pending.contains(&true) {
                return Err(self.failure().into());
            }
            if let Some(won) = self.step(self.start_at())? {
                return Ok(self.won(won));
            }
        }
    }

    /// Moves arrived answers into the queues.
    fn harvest(&mut self) {
        let Some(lookup) = &self.lookup else { return };
        let answers: [Option<Answer>; 2] = [lookup.take(V6), lookup.take(V4)];
        for (family, answer) in answers.into_iter().enumerate() {
            let Some(answer) = answer else { continue };
            self.pending[family] = false;
            let kind = if family == V6 { "AAAA" } else { "A" };
            match answer {
                Ok(ips) => {
                    let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
                    wlog!(
                        Debug,
                        self.dial.id,
                        "resolved '{}' {kind}: [{}] in {} us",
                        self.host,
                        list.join(", "),
                        self.started.elapsed().as_micros()
                    );
                    self.queues[family].extend(ips.into_iter().map(|ip| SocketAddr::new(ip, self.port)));
                }
                Err(e) => {
                    wlog!(Debug, self.dial.id, "no {kind} address for '{}': {e}", self.host);
                    self.lookup_failures.push(e);
                }
            }
            if family == V4 && self.pending[V6] {
                self.a_answered = Some(Instant::now());
            }
        }
    }

    /// When the next attempt may start (`None`: not before an event).
    fn start_at(&self) -> Option<Instant> {
        if self.queues.iter().all(VecDeque::is_empty) {
            return None;
        }
        if self.first_attempt.is_none() && self.pending[V6] {
            return self.a_answered.map(|t| t + RESOLUTION_DELAY);
        }
        Some(if self.attempts.is_empty() { self.started } else { self.next_start })
    }

    fn may_start(&self, now: Instant) -> bool {
        self.start_at().is_some_and(|t| now >= t)
    }

    /// The next address, alternating families.
    fn pop(&mut self) -> Option<SocketAddr> {
        let family = if self.queues[self.next_family].is_empty() { 1 - self.next_family } else { self.next_family };
        let addr = self.queues[family].pop_front()?;
        self.next_family = 1 - family;
        Some(addr)
    }

    /// Starts one attempt; returns the socket if it connected at once.
    fn start_next(&mut self) -> Option<(Socket, SocketAddr)> {
        let addr = self.pop()?;
        let now = Instant::now();
        if self.first_attempt.is_none() {
            self.first_attempt = Some(now);
            if self.lookup.is_some() {
                self.dial.timed(self.started, |p| &mut p.dns);
            }
        }
        self.next_start = now + ATTEMPT_DELAY;
        // Any failure here (no IPv6 in this kernel, no route, no descriptor
        // left) ends this attempt only: the next address may still work.
        match begin(addr) {
            Ok((socket, true)) => return Some((socket, addr)),
            Ok((socket, false)) => {
                wlog!(Debug, self.dial.id, "TCP connecting to {addr}");
                self.attempts.push((socket, addr));
            }
            Err(e) => self.failed(ConnectionError::new(ErrorKind::Connect, format!("cannot connect to {addr}: {e}"))),
        }
        None
    }

    fn failed(&mut self, e: ConnectionError) {
        wlog!(Debug, self.dial.id, "{}", e.message());
        self.last_failure = Some(e);
        self.next_start = Instant::now();
    }

    /// Waits once for any attempt, name server socket, the eventfd, the
    /// deadline or `until`; handles what is ready. Returns a connected socket.
    fn step(&mut self, until: Option<Instant>) -> Result<Option<(Socket, SocketAddr)>, DialError> {
        let stage = self.stage();
        self.dial.check(&stage)?;
        let dns = self.lookup.as_ref().map(Lookup::interest).unwrap_or_default();
        let mut fds: Vec<_> = self.attempts.iter().map(|(s, _)| (s.as_raw_fd(), WRITE)).collect();
        fds.extend(&dns);
        let retry = self.lookup.as_ref().and_then(Lookup::timeout).and_then(|t| Instant::now().checked_add(t));
        let wake = [self.dial.deadline, until, retry].into_iter().flatten().min();
        let ready = self.dial.waker.wait_all(&fds, wake);
        self.dial.check(&stage)?;
        let (tcp, names) = ready.split_at(self.attempts.len());
        if let Some(lookup) = &mut self.lookup {
            if !dns.is_empty() || retry.is_some() {
                lookup.process(&dns, names);
            }
        }
        Ok(self.settle(tcp))
    }

    /// Ends the attempts that `ready` says are done (in `attempts` order);
    /// returns the first that connected. Failed ones let the next start.
    fn settle(&mut self, ready: &[Readiness]) -> Option<(Socket, SocketAddr)> {
        let mut won = None;
        for i in (0..ready.len()).rev() {
            if !(ready[i].writable || ready[i].hangup) {
                continue;
            }
            let (socket, addr) = self.attempts.swap_remove(i);
            match socket.take_error() {
                Ok(None) if won.is_none() => won = Some((socket, addr)),
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    self.failed(ConnectionError::new(ErrorKind::Connect, format!("cannot connect to {addr}: {e}")))
                }
            }
        }
        won
    }

    /// What the dial is doing, for a timeout's message.
    fn stage(&self) -> String {
        if self.attempts.is_empty() && self.first_attempt.is_none() {
            return "resolving the host name".to_owned();
        }
        let list: Vec<String> = self.attempts.iter().map(|(_, a)| a.to_string()).collect();
        match list.len() {
            0 => "resolving the host name (every address tried failed)".to_owned(),
            _ => format!("connecting to {}", list.join(", ")),
        }
    }

    fn won(&mut self, (socket, addr): (Socket, SocketAddr)) -> (TcpStream, SocketAddr) {
        let first = self.first_attempt.unwrap_or(self.started);
        self.dial.timed(first, |p| &mut p.tcp);
        wlog!(Debug, self.dial.id, "TCP connected to {addr} in {} us", first.elapsed().as_micros());
        (socket.into(), addr)
    }

    fn failure(&mut self) -> ConnectionError {
        self.last_failure.take().unwrap_or_else(|| self.resolve_error())
    }

    fn resolve_error(&self) -> ConnectionError {
        let host = self.host;
        match self.lookup_failures.last() {
            Some(e) => ConnectionError::new(ErrorKind::Resolve, format!("cannot resolve '{host}': {e}")),
            None => ConnectionError::new(ErrorKind::Resolve, format!("'{host}' has no address")),
        }
    }
}

/// A non-blocking connect to `addr`: the socket, and whether it connected
/// at once (otherwise it is in progress).
fn begin(addr: SocketAddr) -> std::io::Result<(Socket, bool)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => Ok((socket, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((socket, false)),
        Err(e) => Err(e),
    }
}
