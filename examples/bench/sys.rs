//! What the benchmark reads from and asks of the operating system.
//!
//! Client CPU comes from `getrusage(RUSAGE_SELF)`, which is only the client's
//! because the peer always runs in another process. Memory, threads and
//! descriptors come from `/proc/self`, so a scale figure is what `ps` would show.

use std::time::Duration;

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// Pins the calling thread, and every thread it starts later, to one CPU.
/// Call it first thing in `main`, before any thread exists.
pub fn pin_to(cpu: usize) -> bool {
    // SAFETY: as above; the set is fully initialised before the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Raises the soft descriptor limit to the hard one; returns the new limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit read and write one valid rlimit struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur
    }
}

/// User + system CPU time of this whole process (every thread) so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage fills one valid rusage struct.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time (ns) and the number of times scheduled, summed over every
/// thread of this process except the calling one, from the kernel's
/// per-thread `schedstat`: exact, and costs the other threads nothing.
pub fn other_threads_sched() -> (u64, u64) {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() }.to_string();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    let mut total = (0, 0);
    for task in tasks.flatten() {
        if task.file_name().to_string_lossy() == me {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let f: Vec<u64> = stat.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if let [run_ns, _, slices] = f[..] {
            total.0 += run_ns;
            total.1 += slices;
        }
    }
    total
}

/// A numeric field of `/proc/self/status` (`VmRSS` in KiB, `Threads`, ...).
pub fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of this process.
pub fn fd_count() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// Resident memory, threads and descriptors at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Footprint {
    pub rss_kib: u64,
    pub threads: u64,
    pub fds: u64,
}

impl Footprint {
    pub fn now() -> Footprint {
        Footprint { rss_kib: proc_status("VmRSS"), threads: proc_status("Threads"), fds: fd_count() }
    }
}

/// A one-line description of the machine for the report.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_owned();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    format!("{cores} × {model}, {} GiB RAM, Linux {}", (mem_kib + (1 << 19)) >> 20, kernel.trim())
}
