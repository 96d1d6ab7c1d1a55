//! The generator's own CPU use, for its self-check. Counts every thread of
//! this process except the embedded simulator's, so a run against the
//! built-in target still measures only the load generator.

use std::time::{Duration, Instant};

/// Thread-name prefix of the embedded simulator's runtime (15-char comm).
pub const SIMULATOR_THREAD_PREFIX: &str = "infercheck-sim";

/// Samples CPU seconds used by the generator's threads between calls.
pub struct CpuMeter {
    last_ticks: Option<u64>,
    last_at: Instant,
    ticks_per_second: f64,
}

impl CpuMeter {
    pub fn new() -> Self {
        // SAFETY: sysconf has no preconditions; it only reads a constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        CpuMeter {
            last_ticks: generator_ticks(),
            last_at: Instant::now(),
            ticks_per_second: ticks.max(1) as f64,
        }
    }

    /// Cores busy since the previous sample (1.0 = one core saturated),
    /// or None where /proc is not available.
    pub fn sample(&mut self) -> Option<f64> {
        let now = Instant::now();
        let ticks = generator_ticks();
        let elapsed = now
            .duration_since(self.last_at)
            .max(Duration::from_millis(1))
            .as_secs_f64();
        let cores = match (self.last_ticks, ticks) {
            (Some(before), Some(after)) => {
                Some(after.saturating_sub(before) as f64 / self.ticks_per_second / elapsed)
            }
            _ => None,
        };
        self.last_ticks = ticks;
        self.last_at = now;
        cores
    }
}

/// User + system clock ticks of this process, the simulator's threads
/// excepted. The process's own counters keep the time of threads that
/// have exited (a blocking-pool thread that idled out, a finished test's),
/// which a sum over the live threads would lose and read as negative time.
fn generator_ticks() -> Option<u64> {
    let process = thread_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut simulator = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        if let Ok(stat) = std::fs::read_to_string(task.path().join("stat"))
            && is_simulator(&stat)
        {
            simulator += ticks(&stat).unwrap_or(0);
        }
    }
    Some(process.saturating_sub(simulator))
}

/// True for a thread of the embedded simulator's runtime.
fn is_simulator(stat: &str) -> bool {
    match (stat.find('('), stat.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            stat[open + 1..close].starts_with(SIMULATOR_THREAD_PREFIX)
        }
        _ => false,
    }
}

/// Parses /proc/<pid>/task/<tid>/stat: "tid (comm) state ... utime
/// stime"; a simulator thread counts nothing.
fn thread_ticks(stat: &str) -> Option<u64> {
    if is_simulator(stat) {
        return Some(0);
    }
    ticks(stat)
}

/// utime + stime of a /proc stat line (process or thread).
fn ticks(stat: &str) -> Option<u64> {
    let close = stat.rfind(')')?;
    // Fields after the comm: state is field 3, utime 14 and stime 15.
    let mut fields = stat.get(close + 2..)?.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

pub fn cores_available() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_and_skips_the_simulator() {
        let stat = "42 (infercheck-loa) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 1 0 5 0 0";
        assert_eq!(thread_ticks(stat), Some(280));
        let sim = "43 (infercheck-sim) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 1 0 5 0 0";
        assert_eq!(thread_ticks(sim), Some(0));
        let odd = "44 (a) b) R 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 0 0";
        assert_eq!(thread_ticks(odd), Some(10));
    }

    fn busy(length: Duration) {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < length {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
    }

    #[test]
    fn busy_work_shows_as_cpu() {
        let mut meter = CpuMeter::new();
        busy(Duration::from_millis(200));
        let cores = meter.sample().expect("/proc is available on Linux");
        assert!(cores > 0.3, "{cores}");
    }

    /// A thread that worked and exited between two samples (a blocking
    /// pool's, another test's) still counts: a sum over live threads would
    /// have lost it.
    #[test]
    fn the_time_of_threads_that_have_exited_still_counts() {
        let mut meter = CpuMeter::new();
        std::thread::spawn(|| busy(Duration::from_millis(200)))
            .join()
            .unwrap();
        let cores = meter.sample().expect("/proc is available on Linux");
        assert!(cores > 0.3, "{cores}");
    }
}
