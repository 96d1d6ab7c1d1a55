//! Prints what the NVML sampler sees: three readings of every GPU, each
//! also as the named values a run records (`gpu_util`, `vram_used`, ...,
//! the DCGM queries' names). For checking the sampler against a real
//! driver on a GPU machine.
//!
//! ```sh
//! cargo run --example nvml_probe                      # libnvidia-ml.so.1 from the loader path
//! cargo run --example nvml_probe -- /path/to/libnvidia-ml.so.1 [interval_ms] [pid]
//! ```
//!
//! Exits 0 after three readings, 3 when no GPU is available (and says why).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use infercheck::sample::nvml::{NvmlOptions, NvmlSampler, readings};

const READINGS: usize = 3;

fn main() {
    let mut args = std::env::args().skip(1);
    let lib_path = args.next().map(PathBuf::from);
    let interval = args
        .next()
        .map(|ms| Duration::from_millis(ms.parse().expect("interval in milliseconds")))
        .unwrap_or(Duration::from_secs(1));
    let pid: Option<u32> = args.next().map(|p| p.parse().expect("a process id"));
    let clock_start = Instant::now();

    let sampler = match NvmlSampler::start(NvmlOptions { lib_path, interval }, clock_start) {
        Ok(sampler) => sampler,
        Err(unavailable) => {
            println!("{unavailable}");
            std::process::exit(3);
        }
    };
    println!(
        "NVML up in {:?}; driver {}",
        clock_start.elapsed(),
        sampler.driver_version().unwrap_or("unknown")
    );
    for gpu in sampler.gpus() {
        println!("  GPU {}: {} ({})", gpu.index, gpu.name, gpu.uuid);
    }

    let mut snapshots = Vec::new();
    while snapshots.len() < READINGS {
        match sampler
            .samples()
            .recv_timeout(interval * 2 + Duration::from_secs(5))
        {
            Ok(snapshot) => {
                println!("at {:>8.3} s", snapshot.at.as_secs_f64());
                for g in &snapshot.gpus {
                    println!(
                        "  GPU {}: util {}% mem util {}% | mem {} / {} MiB | power {} W | {} C | processes {:?}",
                        g.index,
                        show(g.util_percent),
                        show(g.mem_util_percent),
                        show(g.mem_used_bytes.map(|b| b / (1024 * 1024))),
                        show(g.mem_total_bytes.map(|b| b / (1024 * 1024))),
                        show(g.power_watts.map(|w| format!("{w:.1}"))),
                        show(g.temperature_c),
                        g.processes
                            .iter()
                            .map(|(pid, bytes)| format!("{pid}: {} MiB", bytes / (1024 * 1024)))
                            .collect::<Vec<_>>(),
                    );
                }
                let named: Vec<String> = readings(&snapshot, pid)
                    .iter()
                    .map(|r| format!("{}={} {}", r.name, show(r.value), r.unit))
                    .collect();
                println!("  as recorded: {}", named.join(", "));
                snapshots.push(snapshot);
            }
            Err(e) => {
                println!("no reading: {e}");
                break;
            }
        }
    }
    let stopping = Instant::now();
    let rest = sampler.stop();
    println!(
        "stopped in {:?}; {} readings taken, {} more after the last one shown",
        stopping.elapsed(),
        snapshots.len(),
        rest.len()
    );
}

fn show<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}
