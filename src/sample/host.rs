//! Host metrics from /proc: system memory in use, CPU load in cores busy
//! (from /proc/stat deltas), and a target process's RSS and CPU when a pid
//! is given. Linux only; elsewhere every read is `None` and the report says
//! the host was not sampled.
//!
//! This host's memory and CPU are the server's only when the server runs
//! here: [`target_on_this_host`] says when (a target pid, a loopback
//! target) and why, and the report names the machine by [`hostname`].

use std::time::Instant;

use futures_util::future::BoxFuture;

use super::{Reading, Source};
use crate::stats::Aggregate;

/// The host as a [`Source`]: `cpu_load` (cores busy), `memory_used`
/// (ratio), and with a pid `target_rss` (bytes) and `target_cpu` (cores).
#[derive(Debug)]
pub struct HostSource {
    host: HostSampler,
}

impl HostSource {
    /// The values it yields, and how each is summed up over a run.
    const VALUES: [(&'static str, &'static str, Aggregate); 4] = [
        ("cpu_load", "cores", Aggregate::Avg),
        ("memory_used", "ratio", Aggregate::Max),
        ("target_rss", "bytes", Aggregate::Max),
        ("target_cpu", "cores", Aggregate::Avg),
    ];

    /// Every name a host source can yield (with a pid).
    pub const NAMES: [&'static str; 4] = ["cpu_load", "memory_used", "target_rss", "target_cpu"];

    pub fn new(pid: Option<u32>) -> HostSource {
        let mut host = HostSampler::new(pid);
        // CPU figures are deltas: the first tick needs a reading before it.
        host.read();
        HostSource { host }
    }

    fn values(&self) -> impl Iterator<Item = &(&'static str, &'static str, Aggregate)> {
        let with_pid = self.host.pid().is_some();
        // Process values only when a process was named.
        Self::VALUES
            .iter()
            .filter(move |(name, ..)| with_pid || !name.starts_with("target_"))
    }
}

impl Source for HostSource {
    fn describe(&self) -> String {
        "host".to_owned()
    }

    fn names(&self) -> Vec<String> {
        self.values().map(|(name, ..)| (*name).to_owned()).collect()
    }

    fn sample(&mut self, t: f64) -> BoxFuture<'_, Vec<Reading>> {
        let r = self.host.read();
        let readings = self
            .values()
            .map(|&(name, unit, aggregate)| Reading {
                name: name.to_owned(),
                unit,
                t,
                value: match name {
                    "cpu_load" => r.cpu_load,
                    "memory_used" => r.memory_used,
                    "target_rss" => r.target_rss_bytes,
                    _ => r.target_cpu,
                },
                aggregate,
                query_latency_ms: None,
                source: "host",
            })
            .collect();
        Box::pin(std::future::ready(readings))
    }
}

/// Cumulative CPU counters, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct CpuTicks {
    busy: u64,
    total: u64,
}

/// One host reading.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HostReading {
    /// Cores busy over the last interval.
    pub cpu_load: Option<f64>,
    /// System memory in use, 0..=1.
    pub memory_used: Option<f64>,
    pub target_rss_bytes: Option<f64>,
    /// Cores the target process used over the last interval.
    pub target_cpu: Option<f64>,
}

/// Reads the host every interval, keeping what deltas need.
#[derive(Debug)]
pub struct HostSampler {
    pid: Option<u32>,
    last_cpu: Option<CpuTicks>,
    last_target: Option<(u64, Instant)>,
    ticks_per_second: f64,
}

impl HostSampler {
    pub fn new(pid: Option<u32>) -> HostSampler {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        HostSampler {
            pid,
            last_cpu: None,
            last_target: None,
            ticks_per_second: if hz > 0 { hz as f64 } else { 100.0 },
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The reading now (CPU values need a previous reading).
    pub fn read(&mut self) -> HostReading {
        let cpu = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| cpu_ticks(&t));
        let cpu_load = match (self.last_cpu, cpu) {
            (Some(a), Some(b)) if b.total > a.total => {
                let cores = online_cores();
                Some((b.busy - a.busy) as f64 / (b.total - a.total) as f64 * cores)
            }
            _ => None,
        };
        self.last_cpu = cpu;
        let memory_used = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| memory_used(&t));
        let (target_rss_bytes, target_cpu) = self.read_target();
        HostReading {
            cpu_load,
            memory_used,
            target_rss_bytes,
            target_cpu,
        }
    }

    fn read_target(&mut self) -> (Option<f64>, Option<f64>) {
        let Some(pid) = self.pid else {
            return (None, None);
        };
        let now = Instant::now();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        let Some((ticks, rss_pages)) = stat.as_deref().and_then(process_stat) else {
            return (None, None);
        };
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as f64;
        let cpu = self.last_target.and_then(|(before, at)| {
            let secs = now.duration_since(at).as_secs_f64();
            (secs > 0.0)
                .then(|| (ticks.saturating_sub(before)) as f64 / self.ticks_per_second / secs)
        });
        self.last_target = Some((ticks, now));
        (Some(rss_pages as f64 * page), cpu)
    }
}

/// Why this host's /proc speaks for the target, when it does: a target
/// pid was given ("target pid 4242"), or the target's URL is a loopback
/// address ("loopback target"; the URL itself is the report's target).
/// `None`: the target may run anywhere else.
pub fn target_on_this_host(base_url: &str, pid: Option<u32>) -> Option<String> {
    if let Some(pid) = pid {
        return Some(format!("target pid {pid}"));
    }
    let url = url::Url::parse(base_url).ok()?;
    let loopback = match url.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    loopback.then(|| "loopback target".to_owned())
}

/// This host's name, as the kernel knows it.
pub fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn online_cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// The aggregate `cpu` line of /proc/stat.
fn cpu_ticks(stat: &str) -> Option<CpuTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest is in user).
    let idle = v[3] + v[4];
    let total: u64 = v.iter().take(8).sum();
    Some(CpuTicks {
        busy: total - idle,
        total,
    })
}

/// 1 - MemAvailable / MemTotal.
fn memory_used(meminfo: &str) -> Option<f64> {
    let field = |name: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let (total, available) = (field("MemTotal:")?, field("MemAvailable:")?);
    (total > 0.0).then(|| 1.0 - available / total)
}

/// utime + stime (ticks) and RSS (pages) from /proc/<pid>/stat.
fn process_stat(stat: &str) -> Option<(u64, u64)> {
    // The command name may hold spaces; fields restart after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i)?.parse::<u64>().ok();
    // Fields 14, 15 (utime, stime) and 24 (rss), counted from 1 with
    // pid=1, comm=2, state=3: here state is index 0.
    Some((num(11)? + num(12)?, num(21)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(
            cpu_ticks(stat),
            Some(CpuTicks {
                busy: 150,
                total: 1000
            })
        );
        let meminfo = "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 250 kB\n";
        assert_eq!(memory_used(meminfo), Some(0.75));
        let pstat = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 30 12 13 14 15 16 17 18 19 20 777 22";
        assert_eq!(process_stat(pstat), Some((42, 777)));
    }

    #[test]
    fn the_target_is_on_this_host_by_pid_or_loopback_address() {
        let here = |url: &str| target_on_this_host(url, None);
        for loopback in [
            "http://127.0.0.1:8000",
            "http://[::1]:9000/v1",
            "https://LocalHost/",
            "http://127.8.9.10:1",
            "http://api.localhost:80",
        ] {
            assert_eq!(
                here(loopback).as_deref(),
                Some("loopback target"),
                "{loopback}"
            );
        }
        for elsewhere in [
            "http://10.0.0.5:8000",
            "http://gpu-node-1:8000",
            "http://localhost.example.com",
            "not a url",
        ] {
            assert_eq!(here(elsewhere), None, "{elsewhere}");
        }
        assert_eq!(
            target_on_this_host("http://10.0.0.5:8000", Some(4242)).as_deref(),
            Some("target pid 4242")
        );
    }

    #[test]
    fn this_host_has_a_name() {
        let name = hostname().expect("a hostname");
        assert!(!name.is_empty() && !name.contains('\n'), "{name:?}");
    }

    #[test]
    fn this_process_can_be_sampled() {
        let mut host = HostSampler::new(Some(std::process::id()));
        let first = host.read();
        assert!(first.memory_used.is_some_and(|m| (0.0..=1.0).contains(&m)));
        assert!(first.target_rss_bytes.is_some_and(|r| r > 1e5));
        let second = host.read();
        assert!(second.cpu_load.is_none_or(|c| c >= 0.0));
        assert!(second.target_cpu.is_some());
    }
}
