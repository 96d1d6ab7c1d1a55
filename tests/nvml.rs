//! The NVML sampler against a fake libnvidia-ml (tests/fake_nvml/fake_nvml.c),
//! compiled here with the system C compiler (`$CC`, else `cc`).
//!
//! The library is compiled once per test process; each test copies it into a
//! folder of its own beside a `fake_nvml.script` that the copy reads at
//! `nvmlInit_v2` (it finds its own folder with `dladdr`). Separate files are
//! separate instances to the dynamic loader, so tests running in parallel
//! never share the fake's state and no environment variable is involved.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use infercheck::report::SampledSummary;
use infercheck::sample::SampledStore;
use infercheck::sample::nvml::{GpuSnapshot, NvmlOptions, NvmlSampler, readings};

const MIB: u64 = 1024 * 1024;
const INTERVAL: Duration = Duration::from_millis(20);
/// The longest any test waits for the samples it expects.
const PATIENCE: Duration = Duration::from_secs(10);

/// The compiled fake library's bytes, built once per process.
fn fake_library() -> &'static [u8] {
    static LIBRARY: OnceLock<Vec<u8>> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_nvml/fake_nvml.c");
        let build = tempfile::tempdir().expect("a temp folder");
        let out = build.path().join("libfake_nvml.so");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let result = Command::new(&cc)
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-o"])
            .arg(&out)
            .arg(&source)
            .output()
            .unwrap_or_else(|e| panic!("running the C compiler `{cc}`: {e}"));
        assert!(
            result.status.success(),
            "compiling the fake NVML failed:\n{}",
            String::from_utf8_lossy(&result.stderr)
        );
        std::fs::read(&out).expect("the compiled fake NVML")
    })
}

/// One test's copy of the fake library with its script.
pub(crate) struct FakeNvml {
    dir: tempfile::TempDir,
}

impl FakeNvml {
    pub(crate) fn new(script: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp folder");
        std::fs::write(dir.path().join("libnvidia-ml.so.1"), fake_library()).unwrap();
        std::fs::write(dir.path().join("fake_nvml.script"), script).unwrap();
        Self { dir }
    }

    pub(crate) fn lib(&self) -> PathBuf {
        self.dir.path().join("libnvidia-ml.so.1")
    }

    fn start(&self) -> NvmlSampler {
        NvmlSampler::start(
            NvmlOptions {
                lib_path: Some(self.lib()),
                interval: INTERVAL,
            },
            Instant::now(),
        )
        .expect("the fake NVML starts")
    }
}

/// The first `n` snapshots, waiting at most [`PATIENCE`] in all.
fn first(sampler: &NvmlSampler, n: usize) -> Vec<GpuSnapshot> {
    let deadline = Instant::now() + PATIENCE;
    let mut snapshots = Vec::with_capacity(n);
    while snapshots.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match sampler.samples().recv_timeout(left) {
            Ok(snapshot) => snapshots.push(snapshot),
            Err(e) => panic!("{} of {n} snapshots, then {e}", snapshots.len()),
        }
    }
    snapshots
}

/// The run's summary of one named value, as `SampledStore` makes it from
/// the snapshots' readings (the path a run takes).
fn summary(snapshots: &[GpuSnapshot], pid: Option<u32>, name: &str) -> SampledSummary {
    let mut store = SampledStore::default();
    for reading in snapshots.iter().flat_map(|s| readings(s, pid)) {
        store.add(reading);
    }
    store
        .summaries()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn ramp_shows_in_order_and_peaks_at_90() {
    let fake = FakeNvml::new(
        "name 0 NVIDIA Fake H100 80GB HBM3\n\
         uuid 0 GPU-00000000-1111-2222-3333-444444444444\n\
         total_mib 0 81559\n\
         row 0 util=10 memutil=5 used_mib=1000 power_mw=120500 temp=41\n\
         row 0 util=30 memutil=15 used_mib=20000 power_mw=250000 temp=50\n\
         row 0 util=50 memutil=25 used_mib=40000 power_mw=400000 temp=60\n\
         row 0 util=70 memutil=35 used_mib=60000 power_mw=550000 temp=65\n\
         row 0 util=90 memutil=45 used_mib=70000 power_mw=690000 temp=72\n",
    );
    let sampler = fake.start();
    assert_eq!(sampler.gpus().len(), 1);
    assert_eq!(sampler.gpus()[0].name, "NVIDIA Fake H100 80GB HBM3");
    assert_eq!(sampler.driver_version(), Some("999.99-fake"));
    // Past the script's end the last row repeats.
    let snapshots = first(&sampler, 6);
    let rest = sampler.stop();

    let util: Vec<_> = snapshots.iter().map(|s| s.gpus[0].util_percent).collect();
    assert_eq!(
        util,
        [10, 30, 50, 70, 90, 90].map(Some),
        "utilisation in script order"
    );
    let gpu = &snapshots[0].gpus[0];
    assert_eq!(gpu.index, 0);
    assert_eq!(gpu.uuid, "GPU-00000000-1111-2222-3333-444444444444");
    assert_eq!(gpu.mem_util_percent, Some(5));
    assert_eq!(gpu.mem_used_bytes, Some(1000 * MIB));
    assert_eq!(gpu.mem_total_bytes, Some(81559 * MIB));
    assert_eq!(gpu.power_watts, Some(120.5));
    assert_eq!(gpu.temperature_c, Some(41));
    assert!(
        snapshots.windows(2).all(|w| w[0].at < w[1].at),
        "snapshots are on the run clock, in order: {:?}",
        snapshots.iter().map(|s| s.at).collect::<Vec<_>>()
    );

    let mut all = snapshots;
    all.extend(rest);
    let peak = |name| summary(&all, None, name).stats.max;
    assert_eq!(peak("gpu_util"), Some(0.9));
    assert_eq!(peak("vram_used"), Some((70000 * MIB) as f64));
    assert_eq!(peak("gpu_power"), Some(690.0));
    assert_eq!(peak("gpu_temp"), Some(72.0));
    assert_eq!(
        summary(&all, None, "vram_free").stats.min,
        Some(((81559 - 70000) * MIB) as f64)
    );
}

#[test]
fn failed_read_gives_none_and_sampler_continues() {
    let fake = FakeNvml::new(
        "row 0 util=10 used_mib=100 power_mw=100000 temp=40 procs=7:1\n\
         row 0 util=err used_mib=err power_mw=err temp=err procs=err\n\
         row 0 util=30 used_mib=300 power_mw=300000 temp=60 procs=7:3\n",
    );
    let sampler = fake.start();
    let snapshots = first(&sampler, 3);
    sampler.stop();

    let failed = &snapshots[1].gpus[0];
    assert_eq!(failed.util_percent, None);
    assert_eq!(failed.mem_util_percent, None);
    assert_eq!(failed.mem_used_bytes, None);
    assert_eq!(failed.mem_total_bytes, None);
    assert_eq!(failed.power_watts, None);
    assert_eq!(failed.temperature_c, None);
    assert!(failed.processes.is_empty());
    assert_eq!(failed.name, "Fake GPU 0", "identity survives a failed read");

    let after = &snapshots[2].gpus[0];
    assert_eq!(after.util_percent, Some(30));
    assert_eq!(after.mem_used_bytes, Some(300 * MIB));
    assert_eq!(after.power_watts, Some(300.0));
    assert_eq!(after.temperature_c, Some(60));
    assert_eq!(after.processes, vec![(7, 3 * MIB)]);

    let util = summary(&snapshots, None, "gpu_util");
    assert_eq!(
        (util.stats.avg, util.stats.samples, util.gaps),
        (Some(0.2), 2, 1),
        "a failed read is a gap, not a zero"
    );
}

#[test]
fn one_failed_field_leaves_the_others() {
    let fake = FakeNvml::new("row 0 util=55 memutil=11 used_mib=100 temp=err\n");
    let sampler = fake.start();
    let snapshot = first(&sampler, 1).remove(0);
    sampler.stop();
    let gpu = &snapshot.gpus[0];
    assert_eq!(gpu.temperature_c, None);
    assert_eq!(gpu.util_percent, Some(55));
    assert_eq!(gpu.mem_util_percent, Some(11));
    assert_eq!(gpu.mem_used_bytes, Some(100 * MIB));
    assert_eq!(gpu.power_watts, Some(100.0));
}

#[test]
fn missing_library_is_unavailable_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libnvidia-ml.so.1");
    let started = Instant::now();
    let err = NvmlSampler::start(
        NvmlOptions {
            lib_path: Some(lib.clone()),
            interval: INTERVAL,
        },
        Instant::now(),
    )
    .expect_err("no library, no sampler");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        err.to_string(),
        format!("GPU: not available ({} not found)", lib.display())
    );
}

#[test]
fn file_that_is_not_a_library_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libnvidia-ml.so.1");
    std::fs::write(&lib, "not an ELF file\n").unwrap();
    let err = NvmlSampler::start(
        NvmlOptions {
            lib_path: Some(lib.clone()),
            interval: INTERVAL,
        },
        Instant::now(),
    )
    .expect_err("not a library");
    let reason = err.to_string();
    assert!(
        reason.starts_with(&format!(
            "GPU: not available (could not load {}: ",
            lib.display()
        )),
        "{reason}"
    );
    assert!(!reason.contains('\n'), "{reason}");
}

#[test]
fn driver_refusing_init_is_unavailable() {
    // 9: NVML_ERROR_DRIVER_NOT_LOADED
    let fake = FakeNvml::new("init_error 9\n");
    let err = NvmlSampler::start(
        NvmlOptions {
            lib_path: Some(fake.lib()),
            interval: INTERVAL,
        },
        Instant::now(),
    )
    .expect_err("init fails");
    assert_eq!(
        err.to_string(),
        "GPU: not available (NVML init failed: NVIDIA driver is not loaded)"
    );
}

#[test]
fn no_gpu_is_unavailable() {
    let fake = FakeNvml::new("devices 0\n");
    let err = NvmlSampler::start(
        NvmlOptions {
            lib_path: Some(fake.lib()),
            interval: INTERVAL,
        },
        Instant::now(),
    )
    .expect_err("no GPU");
    assert_eq!(err.to_string(), "GPU: not available (no GPU found)");
    assert_eq!(err.reason, "no GPU found");
}

#[test]
fn two_gpus_are_both_reported() {
    let fake = FakeNvml::new(
        "devices 2\n\
         name 0 NVIDIA A100-SXM4-40GB\n\
         name 1 NVIDIA A100-SXM4-80GB\n\
         uuid 1 GPU-second\n\
         total_mib 0 40960\n\
         row 0 util=20 used_mib=1000\n\
         row 0 util=40 used_mib=2000\n\
         row 1 util=60 used_mib=30000 power_mw=300000\n\
         row 1 util=80 used_mib=50000\n",
    );
    let sampler = fake.start();
    let infos: Vec<_> = sampler
        .gpus()
        .iter()
        .map(|g| (g.index, g.name.as_str(), g.uuid.as_str()))
        .collect();
    assert_eq!(
        infos,
        [
            (0, "NVIDIA A100-SXM4-40GB", "GPU-fake-0"),
            (1, "NVIDIA A100-SXM4-80GB", "GPU-second"),
        ]
    );
    let snapshots = first(&sampler, 2);
    sampler.stop();

    for s in &snapshots {
        assert_eq!(s.gpus.iter().map(|g| g.index).collect::<Vec<_>>(), [0, 1]);
    }
    let util = |i: usize| -> Vec<_> { snapshots.iter().map(|s| s.gpus[i].util_percent).collect() };
    assert_eq!(util(0), [Some(20), Some(40)]);
    assert_eq!(util(1), [Some(60), Some(80)]);
    assert_eq!(snapshots[0].gpus[0].mem_total_bytes, Some(40960 * MIB));
    assert_eq!(snapshots[0].gpus[1].mem_total_bytes, Some(81920 * MIB));
    assert_eq!(
        snapshots[1].gpus[1].power_watts,
        Some(300.0),
        "kept from row 1"
    );

    // As the DCGM queries read them: busiest, fullest, least free, power
    // summed over both GPUs.
    let value = |name| summary(&snapshots, None, name);
    assert_eq!(value("gpu_util").stats.max, Some(0.8));
    assert_eq!(value("vram_used").stats.max, Some((50000 * MIB) as f64));
    assert_eq!(
        value("vram_free").stats.min,
        Some(((81920 - 50000) * MIB) as f64)
    );
    assert_eq!(value("gpu_power").stats.last, Some(100.0 + 300.0));
}

#[test]
fn per_process_memory_is_read() {
    let fake = FakeNvml::new(
        "row 0 procs=none\n\
         row 0 procs=4242:512,4343:20480\n\
         row 0 procs=4343:30000\n",
    );
    let sampler = fake.start();
    let snapshots = first(&sampler, 3);
    sampler.stop();
    let processes: Vec<_> = snapshots
        .iter()
        .map(|s| s.gpus[0].processes.clone())
        .collect();
    assert_eq!(
        processes,
        [
            vec![],
            vec![(4242, 512 * MIB), (4343, 20480 * MIB)],
            vec![(4343, 30000 * MIB)],
        ]
    );
    let target = summary(&snapshots, Some(4343), "target_vram");
    assert_eq!(target.stats.max, Some((30000 * MIB) as f64));
    assert_eq!(target.stats.samples, 3, "a pid with no memory yet reads 0");
}

#[test]
fn memory_falls_back_to_v1_without_v2() {
    let fake = FakeNvml::new(
        "no_mem_v2 0\n\
         total_mib 0 16384\n\
         row 0 used_mib=1234\n",
    );
    let sampler = fake.start();
    let snapshot = first(&sampler, 1).remove(0);
    sampler.stop();
    assert_eq!(snapshot.gpus[0].mem_used_bytes, Some(1234 * MIB));
    assert_eq!(snapshot.gpus[0].mem_total_bytes, Some(16384 * MIB));
}

#[test]
fn stop_is_prompt_and_returns_what_was_not_drained() {
    let fake = FakeNvml::new("row 0 util=33\n");
    // A run that started 5 s ago: `at` is on the run's clock.
    let clock_start = Instant::now() - Duration::from_secs(5);
    // The second reading is a minute away: stop must not wait for it.
    let options = NvmlOptions {
        lib_path: Some(fake.lib()),
        interval: Duration::from_secs(60),
    };

    let sampler = NvmlSampler::start(options.clone(), clock_start).expect("the fake starts");
    let first = sampler
        .samples()
        .recv_timeout(PATIENCE)
        .expect("a first reading at once");
    assert!(first.at >= Duration::from_secs(5), "{:?}", first.at);
    assert_eq!(first.gpus[0].util_percent, Some(33));
    assert_eq!(sampler.dropped(), 0);
    let stopping = Instant::now();
    let rest = sampler.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "{:?}",
        stopping.elapsed()
    );
    assert!(rest.is_empty(), "all drained: {rest:?}");

    // The first reading is taken before the thread looks for a stop, so a
    // sampler stopped at once still hands back exactly that one.
    let sampler = NvmlSampler::start(options, clock_start).expect("the fake starts again");
    let stopping = Instant::now();
    let rest = sampler.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "{:?}",
        stopping.elapsed()
    );
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0].gpus[0].util_percent, Some(33));
}

/// `fake_nvml.out`'s counters, written by the fake at `nvmlShutdown`.
fn fake_out(fake: &FakeNvml, key: &str) -> u64 {
    let out = fake.lib().with_file_name("fake_nvml.out");
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// (name, value) of a snapshot's GPM readings, in the order read.
fn gpm_values(snapshot: &GpuSnapshot) -> Vec<(String, Option<f64>)> {
    readings(snapshot, None)
        .into_iter()
        .filter(|r| GPM_NAMES.contains(&r.name.as_str()))
        .map(|r| (r.name, r.value))
        .collect()
}

const GPM_NAMES: [&str; 5] = [
    "gpu_graphics_active",
    "gpu_sm_active",
    "gpu_sm_occupancy",
    "gpu_tensor_active",
    "gpu_dram_active",
];

fn gpm_expected(percent: [f64; 5]) -> Vec<(String, Option<f64>)> {
    GPM_NAMES
        .iter()
        .zip(percent)
        .map(|(n, p)| ((*n).to_owned(), Some(p / 100.0)))
        .collect()
}

/// A Hopper-like GPU: the GPM metrics NVML computed between two ticks'
/// samples are read exactly, as ratios under the DCGM profiling names; the
/// first tick (one sample, nothing to compare) gives none and no gap; every
/// GPM sample is freed.
#[test]
fn gpm_metrics_are_read_exactly_from_the_second_sample_on() {
    let fake = FakeNvml::new(
        "name 0 NVIDIA Fake H100 80GB HBM3\n\
         gpm 0\n\
         row 0 util=100 gr=1 sm=2 occupancy=3 tensor=4 dram=5\n\
         row 0 util=100 gr=61.5 sm=42.25 occupancy=18.5 tensor=33 dram=71.75\n\
         row 0 util=100 gr=90 sm=80 occupancy=40.5 tensor=66 dram=88\n",
    );
    let sampler = fake.start();
    assert!(sampler.gpus()[0].gpm, "the fake said it has GPM");
    let snapshots = first(&sampler, 3);
    let rest = sampler.stop();

    assert_eq!(snapshots[0].gpus[0].gpm, None, "one sample: nothing yet");
    assert!(gpm_values(&snapshots[0]).is_empty(), "not a gap either");
    let gpm = snapshots[1].gpus[0].gpm.expect("GPM after two samples");
    assert_eq!(
        (
            gpm.graphics_active,
            gpm.sm_active,
            gpm.sm_occupancy,
            gpm.tensor_active,
            gpm.dram_active
        ),
        (Some(61.5), Some(42.25), Some(18.5), Some(33.0), Some(71.75))
    );
    assert_eq!(
        gpm_values(&snapshots[1]),
        gpm_expected([61.5, 42.25, 18.5, 33.0, 71.75])
    );
    assert_eq!(
        gpm_values(&snapshots[2]),
        gpm_expected([90.0, 80.0, 40.5, 66.0, 88.0])
    );
    // The duty cycle read 100 % all along; the pressure did not.
    assert_eq!(snapshots[1].gpus[0].util_percent, Some(100));

    let mut all = snapshots;
    all.extend(rest);
    let sm = summary(&all, None, "gpu_sm_active");
    assert_eq!(
        (sm.stats.max, sm.gaps, sm.unit.as_str()),
        (Some(0.8), 0, "ratio")
    );
    assert!(fake_out(&fake, "gpm_samples_allocated") >= 3);
    assert_eq!(fake_out(&fake, "gpm_samples_live"), 0, "every sample freed");
}

/// Two GPUs, one without GPM (the fake answers "not supported" for it):
/// the GPM values are the GPM GPU's, the other gives none and no error.
#[test]
fn a_gpu_without_gpm_gives_no_gpm_values() {
    let fake = FakeNvml::new(
        "devices 2\n\
         name 0 NVIDIA Fake H100\n\
         name 1 NVIDIA Fake A10G\n\
         gpm 0\n\
         row 0 util=50 sm=10 tensor=5\n\
         row 0 util=50 sm=20 tensor=7.5\n\
         row 1 util=99\n",
    );
    let sampler = fake.start();
    let support: Vec<bool> = sampler.gpus().iter().map(|g| g.gpm).collect();
    assert_eq!(support, [true, false]);
    let snapshots = first(&sampler, 2);
    sampler.stop();
    assert!(snapshots.iter().all(|s| s.gpus[1].gpm.is_none()));
    assert_eq!(snapshots[1].gpus[1].util_percent, Some(99));
    let values = gpm_values(&snapshots[1]);
    let value = |name: &str| values.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(value("gpu_sm_active"), Some(0.2));
    assert_eq!(value("gpu_tensor_active"), Some(0.075));
    // Keys the script never set read 0, as NVML would compute them.
    assert_eq!(value("gpu_dram_active"), Some(0.0));
}

/// No GPU with GPM: no GPM reading at all, and the source leaves the GPM
/// names to the DCGM profiling queries.
#[test]
fn without_gpm_the_source_leaves_the_names_to_dcgm() {
    use infercheck::sample::Source;
    use infercheck::sample::nvml::NvmlSource;
    let options = |fake: &FakeNvml| NvmlOptions {
        lib_path: Some(fake.lib()),
        interval: INTERVAL,
    };
    let plain = FakeNvml::new("name 0 NVIDIA Fake L4\nrow 0 util=70\n");
    let sampler = plain.start();
    let snapshots = first(&sampler, 3);
    sampler.stop();
    assert!(snapshots.iter().all(|s| gpm_values(s).is_empty()));
    assert_eq!(fake_out(&plain, "gpm_samples_allocated"), 0);

    let (source, line) = NvmlSource::start(Some(&options(&plain)), None);
    let names = source.expect("the fake starts").names();
    assert!(names.contains(&"gpu_util".to_owned()), "{names:?}");
    assert!(GPM_NAMES.iter().all(|n| !names.contains(&(*n).to_owned())));
    assert_eq!(line.as_deref(), Some("GPU: 1 via NVML (0 NVIDIA Fake L4)"));

    let hopper = FakeNvml::new("name 0 NVIDIA Fake H100\ngpm 0\n");
    let (source, _) = NvmlSource::start(Some(&options(&hopper)), None);
    let names = source.expect("the fake starts").names();
    assert!(GPM_NAMES.iter().all(|n| names.contains(&(*n).to_owned())));
}

/// A GPM sample that fails is a gap in every GPM value; the next tick
/// starts a fresh pair (no values, no gap) and the one after reads again.
#[test]
fn a_failed_gpm_sample_is_a_gap_and_sampling_goes_on() {
    let fake = FakeNvml::new(
        "gpm 0\n\
         row 0 sm=10\n\
         row 0 sm=20\n\
         row 0 gpm_sample=err\n\
         row 0 sm=40\n\
         row 0 sm=50\n",
    );
    let sampler = fake.start();
    let snapshots = first(&sampler, 5);
    sampler.stop();
    let sm: Vec<Option<Option<f64>>> = snapshots
        .iter()
        .map(|s| s.gpus[0].gpm.map(|g| g.sm_active))
        .collect();
    assert_eq!(
        sm,
        [None, Some(Some(20.0)), Some(None), None, Some(Some(50.0))]
    );
    let summary = summary(&snapshots, None, "gpu_sm_active");
    assert_eq!(
        (summary.stats.samples, summary.gaps, summary.stats.max),
        (2, 1, Some(0.5))
    );
    assert_eq!(fake_out(&fake, "gpm_samples_live"), 0);
}
