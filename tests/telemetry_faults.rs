//! Integration tests for the simulator's telemetry faults set from a plan
//! (`[simulator] running_underreport`, `queue_time_misreport`): a run
//! against the built-in simulator whose running gauge lies fails the
//! server's own law, as one against a `SimConfig` set in code does
//! (tests/agreement.rs).

use crate::util;

const IN_SYSTEM: &str = "Little's law (in system)";
const WAITING: &str = "Little's law (waiting)";

/// tests/agreement.rs's queueing run, with the embedded simulator set up
/// by the plan: 20 requests a second for 4 s at a server that runs 4 at a
/// time, each 20 ms + 24 × 10 ms, so a queue builds; sampled every 250 ms
/// (at 1 s the sampling bound would hide a small under-report).
const LYING_RUNNING_GAUGE: &str = "name = 'lying-gauge'\n\
    [workload]\nmax_tokens = 24\nprompts = [{ tokens = 32 }]\n\
    [[phases]]\nname = 'queueing'\nduration = '4s'\nload = { type = 'constant', rate = 20 }\n\
    [simulator]\nmax_num_seqs = 4\nttft = '20ms'\nper_token = '10ms'\nslowdown = 0.0\n\
    running_underreport = 0.5\n\
    [observe]\ninterval = '250ms'\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plans_running_underreport_fails_littles_law_in_system() {
    let (result, _dir) = util::run(LYING_RUNNING_GAUGE, None).await;
    let report = &result.report;
    assert!(report.target.embedded_simulator);
    let row = |check: &str| util::agreement_row(report, check);
    let system = row(IN_SYSTEM);
    eprintln!(
        "{}: reference {:.3} server {:.3} [{}] {}",
        system.check, system.client, system.server_low, system.tolerance, system.detail
    );
    assert!(!system.pass, "{system:#?}");
    assert!(system.detail.contains("held fewer requests"), "{system:#?}");
    // Only the running gauge lies: the waiting law still holds.
    let waiting = row(WAITING);
    assert!(waiting.pass, "{waiting:#?}");
}
