//! Name servers on loopback and a private resolver configuration, for the
//! tests of name resolution (tests/resolve.rs).
//!
//! wsc reads `/etc/resolv.conf` and `/etc/hosts` like any program, and has
//! no test-only way to point it elsewhere. So a test re-runs itself (its own
//! binary, that one test only) under `unshare -m`, in a private mount
//! namespace where its own files are bind-mounted over those two; the name
//! server it names runs in that child, on 127.0.0.x:53 (UDP and TCP), each
//! test with its own x so tests can run side by side. Needs root (CI is).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};

/// Set in the re-run child.
const CHILD: &str = "WSC_TEST_PRIVATE_RESOLVER";

/// Runs the test `name` (the calling test) again in a private mount namespace
/// whose `/etc/resolv.conf` and `/etc/hosts` hold `resolv_conf` and `hosts`.
/// Returns true in that child, which then runs the test's body; in the
/// parent, waits for the child, asserts that it passed and returns false.
pub fn in_private_resolver(name: &str, resolv_conf: &str, hosts: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let dir = std::env::temp_dir().join(format!("wsc-resolver-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (conf, hosts_file) = (dir.join("resolv.conf"), dir.join("hosts"));
    std::fs::write(&conf, resolv_conf).unwrap();
    std::fs::write(&hosts_file, hosts).unwrap();
    let exe = std::env::current_exe().unwrap();
    let script = r#"mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@""#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&conf)
        .arg(&hosts_file)
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("unshare runs (util-linux)");
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "the test in a private namespace failed:\n{text}");
    // Seen with --nocapture (captured by the harness otherwise).
    eprint!("{text}");
    false
}

/// A `resolv.conf` naming one server, with c-ares' and glibc's defaults
/// spelled out (5 s × 2 tries: a silent server costs 10 s to a lookup that
/// nothing bounds).
pub fn resolv_conf(server: Ipv4Addr) -> String {
    format!("nameserver {server}\noptions timeout:5 attempts:2\n")
}

/// The usual `localhost` lines, and `extra` after them.
pub fn hosts(extra: &str) -> String {
    format!("127.0.0.1 localhost\n::1 localhost ip6-localhost\n{extra}")
}

/// How a [`NameServer`] treats one query type.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// Answers at once.
    Now,
    /// Answers after this long.
    After(Duration),
    /// Never answers.
    Never,
}

/// A DNS server on `ip`:53, UDP and TCP, that knows a few names. Each
/// query's name and type (1 = A, 28 = AAAA) is sent on [`NameServer::queries`]
/// when it arrives. Threads end with the test process.
pub struct NameServer {
    pub queries: Receiver<(String, u16)>,
}

/// What the server knows: names (lower case, no final dot) to addresses.
#[derive(Clone, Default)]
pub struct Zone {
    pub a: HashMap<String, Vec<Ipv4Addr>>,
    pub aaaa: HashMap<String, Vec<Ipv6Addr>>,
    /// The reply to A queries and to AAAA queries.
    pub reply_a: Option<Reply>,
    pub reply_aaaa: Option<Reply>,
}

impl NameServer {
    pub fn start(ip: Ipv4Addr, zone: Zone) -> NameServer {
        let (tx, queries) = unbounded();
        let udp = UdpSocket::bind((ip, 53)).expect("bind UDP :53 (root)");
        let tcp = TcpListener::bind((ip, 53)).expect("bind TCP :53 (root)");
        let (z, t) = (zone.clone(), tx.clone());
        thread::Builder::new().name("dns-udp".into()).spawn(move || serve_udp(udp, z, t)).unwrap();
        thread::Builder::new().name("dns-tcp".into()).spawn(move || serve_tcp(tcp, zone, tx)).unwrap();
        NameServer { queries }
    }

    /// A server that receives every query and answers none.
    pub fn silent(ip: Ipv4Addr) -> NameServer {
        NameServer::start(ip, Zone { reply_a: Some(Reply::Never), reply_aaaa: Some(Reply::Never), ..Zone::default() })
    }
}

fn serve_udp(udp: UdpSocket, zone: Zone, tx: Sender<(String, u16)>) {
    let mut buf = [0u8; 4096];
    while let Ok((n, from)) = udp.recv_from(&mut buf) {
        let Some((name, qtype, answer)) = answer(&zone, &buf[..n]) else { continue };
        let _ = tx.send((name, qtype));
        let Some((delay, answer)) = delayed(&zone, qtype, answer) else { continue };
        let udp = udp.try_clone().unwrap();
        thread::spawn(move || {
            // The server's slowness, not synchronisation: the test waits for events.
            thread::sleep(delay);
            let _ = udp.send_to(&answer, from);
        });
    }
}

fn serve_tcp(tcp: TcpListener, zone: Zone, tx: Sender<(String, u16)>) {
    use std::io::{Read, Write};
    for stream in tcp.incoming() {
        let Ok(mut s) = stream else { continue };
        let (zone, tx) = (zone.clone(), tx.clone());
        thread::spawn(move || {
            let mut len = [0u8; 2];
            while s.read_exact(&mut len).is_ok() {
                let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if s.read_exact(&mut q).is_err() {
                    return;
                }
                let Some((name, qtype, answer)) = answer(&zone, &q) else { return };
                let _ = tx.send((name, qtype));
                let Some((delay, answer)) = delayed(&zone, qtype, answer) else { continue };
                thread::sleep(delay);
                let mut framed = u16::try_from(answer.len()).unwrap().to_be_bytes().to_vec();
                framed.extend(answer);
                let _ = s.write_all(&framed);
            }
        });
    }
}

/// When to send `answer` to a query of `qtype`; `None`: never.
fn delayed(zone: &Zone, qtype: u16, answer: Vec<u8>) -> Option<(Duration, Vec<u8>)> {
    let reply = if qtype == 28 { zone.reply_aaaa } else { zone.reply_a };
    match reply.unwrap_or(Reply::Now) {
        Reply::Now => Some((Duration::ZERO, answer)),
        Reply::After(d) => Some((d, answer)),
        Reply::Never => None,
    }
}

/// Parses a query; returns its name, type and the answer to it (NXDOMAIN
/// for an unknown name, no records for a known name without that type).
fn answer(zone: &Zone, q: &[u8]) -> Option<(String, u16, Vec<u8>)> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question = q.get(12..i + 4)?;
    let name = labels.join(".");
    let rdatas: Vec<Vec<u8>> = match qtype {
        1 => zone.a.get(&name).map(|v| v.iter().map(|ip| ip.octets().to_vec()).collect()),
        28 => zone.aaaa.get(&name).map(|v| v.iter().map(|ip| ip.octets().to_vec()).collect()),
        _ => None,
    }
    .unwrap_or_default();
    let known = zone.a.contains_key(&name) || zone.aaaa.contains_key(&name);
    let rcode = if known { 0 } else { 3 };
    let mut out = vec![q[0], q[1], 0x81 | (q[2] & 0x01), 0x80 | rcode, 0, 1];
    out.extend(u16::try_from(rdatas.len()).unwrap().to_be_bytes());
    out.extend([0, 0, 0, 0]);
    out.extend(question);
    for rdata in rdatas {
        out.extend([0xc0, 0x0c]);
        out.extend(qtype.to_be_bytes());
        out.extend([0, 1, 0, 0, 0, 60]);
        out.extend(u16::try_from(rdata.len()).unwrap().to_be_bytes());
        out.extend(rdata);
    }
    Some((name, qtype, out))
}

/// A listener on `[::1]:port` that completes no handshake: its accept queue
/// is filled by one connection never accepted, after which the kernel drops
/// every SYN, so a connect there hangs as on a dead route. `None` if the
/// port is taken on `::1`.
pub fn black_hole_v6(port: u16) -> Option<BlackHole> {
    let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None).ok()?;
    socket.set_only_v6(true).ok()?;
    let addr = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    socket.bind(&addr.into()).ok()?;
    socket.listen(0).ok()?;
    // With a backlog of 0 the queue holds one connection: fill it.
    let filler = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    Some(BlackHole { _listener: socket, _filler: filler })
}

/// Keeps a [`black_hole_v6`] alive.
pub struct BlackHole {
    _listener: socket2::Socket,
    _filler: std::net::TcpStream,
}
