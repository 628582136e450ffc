//! Name resolution the worker can poll and abandon: c-ares.
//!
//! Why c-ares and not the alternatives (issue 21, item 7):
//! - `getaddrinfo` blocks its thread for the resolver's own timeouts (5 s ×
//!   2 attempts by default) and nothing interrupts it: close, shutdown and the
//!   connect timeout all waited for it.
//! - glibc's `getaddrinfo_a` runs the same lookup on libc threads; it tells
//!   of completion by a signal, by a `SIGEV_THREAD` callback (wsc code on a
//!   thread wsc does not own, which breaks unloading) or by polling
//!   `gai_error` (busy waiting), and `gai_cancel` cannot stop a lookup that
//!   has started, so an abandoned one keeps its thread and sockets.
//! - A DNS client of our own would have to re-create what c-ares already
//!   does and is tested for: `/etc/hosts`, nsswitch order, `resolv.conf`
//!   (servers, `search`, `domain`, `ndots`, `timeout`, `attempts`, `rotate`),
//!   truncated UDP answers retried over TCP, CNAME chains, RFC 6724 sorting.
//! - c-ares (the library behind curl's and Node's resolvers, built from the
//!   `c-ares-sys` crate's vendored sources, linked statically) reads the
//!   same files and runs no thread: its sockets are polled together with the
//!   worker's eventfd and the attempt sockets (see `eyeballs.rs`), and an
//!   abandoned lookup is simply dropped (`ares_destroy` closes its sockets).
//!
//! Invariants:
//! - A `Lookup` lives on one worker's stack and dies with the dial: no
//!   thread, no global state beyond c-ares' reference-counted library init,
//!   nothing that outlives `close` or `wsc_shutdown`. (c-ares starts a
//!   thread only for its optional event thread or `ares_reinit`; neither is
//!   used.)
//! - AAAA and A are asked separately and at once, so that one family's
//!   answer is usable while the other is still on its way (RFC 8305 §3).
//! - c-ares calls our callbacks only from inside `process` or `drop`, on the
//!   worker; they only store the answer (no log, no user code).
//! - The result is read from `resolv.conf` and `/etc/hosts` at each dial (a
//!   fresh channel), so a changed configuration is honoured without restart.

use crate::waker::{Interest, Readiness};
use c_ares::{AddrInfoHints, AddressFamily, Channel};
use parking_lot::Mutex;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

/// One family's answer: its addresses (RFC 6724 order) or why there are none.
pub(crate) type Answer = Result<Vec<IpAddr>, String>;

/// A lookup of both address families of one name, in progress.
pub(crate) struct Lookup {
    channel: Channel,
    /// [IPv6, IPv4]: `None` until that family's answer arrives.
    answers: Arc<Mutex<[Option<Answer>; 2]>>,
}

/// Index of a family in `Lookup::answers`.
pub(crate) const V6: usize = 0;
pub(crate) const V4: usize = 1;

impl Lookup {
    /// Starts asking for the AAAA and A addresses of `host`.
    ///
    /// # Errors
    /// c-ares cannot start (no memory, no readable configuration).
    pub(crate) fn start(host: &str) -> Result<Lookup, String> {
        let mut options = c_ares::Options::new();
        // A channel lives for one dial: a cache in it would never be hit.
        options.set_query_cache_max_ttl(0);
        let mut channel = Channel::with_options(options).map_err(|e| format!("cannot start the resolver: {e}"))?;
        let answers = Arc::new(Mutex::new([None, None]));
        for (slot, family) in [(V6, AddressFamily::INET6), (V4, AddressFamily::INET)] {
            let hints = AddrInfoHints {
                family: Some(family),
                socktype: libc::SOCK_STREAM,
                protocol: libc::IPPROTO_TCP,
                ..AddrInfoHints::default()
            };
            let store = answers.clone();
            channel.get_addrinfo(host, None, &hints, move |result| {
                let answer = result
                    .map(|r| r.nodes().filter_map(|n| n.ip_addr()).collect::<Vec<_>>())
                    .map_err(|e| e.to_string());
                store.lock()[slot] = Some(answer);
            });
        }
        Ok(Lookup { channel, answers })
    }

    /// The sockets c-ares waits on and what for (empty once both answers are in).
    pub(crate) fn interest(&self) -> Vec<(RawFd, Interest)> {
        self.channel.sockets().iter().map(|(fd, read, write)| (fd, Interest { read, write })).collect()
    }

    /// How long c-ares may sleep before it must retry or give up a query;
    /// `None` when it has nothing pending.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.channel.timeout(None)
    }

    /// Lets c-ares read, write and retry: `ready` are its sockets' readiness
    /// after a poll (in the order of [`Lookup::interest`]).
    pub(crate) fn process(&mut self, fds: &[(RawFd, Interest)], ready: &[Readiness]) {
        let mut any = false;
        for (&(fd, _), r) in fds.iter().zip(ready) {
            let read = (r.readable || r.hangup).then_some(fd);
            let write = r.writable.then_some(fd);
            if read.is_some() || write.is_some() {
                self.channel.process_fd(read, write);
                any = true;
            }
        }
        if !any {
            // Nothing to read or write: this runs c-ares' retries and timeouts.
            self.channel.process_fd(None, None);
        }
    }

    /// Takes the answer for `family` (`V6` or `V4`) if it has arrived and
    /// was not taken before.
    pub(crate) fn take(&self, family: usize) -> Option<Answer> {
        self.answers.lock()[family].take()
    }
}
