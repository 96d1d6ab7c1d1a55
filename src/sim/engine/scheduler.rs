//! The engine's scheduler, as pure logic on a virtual clock: continuous
//! batching behind `max_num_seqs`, a KV cache of fixed-size blocks,
//! preemption (recompute) when the cache runs out, a prefix cache, and the
//! cost of each iteration. The async driver (`driver.rs`) supplies the time
//! and sleeps through each step; nothing here reads a clock, so a sequence
//! of calls always gives the same schedule (the simulator's determinism
//! rests on this).
//!
//! One iteration ("step"): `plan_step` grows the KV of decoding sequences
//! (preempting the most recently admitted ones when blocks run out), admits
//! waiting sequences in FIFO order while slots, blocks and the prefill token
//! budget allow, and prices the step; `finish_step` then produces one token
//! for every decoding sequence and the first token for every sequence whose
//! prefill is done, and retires the finished ones.
//!
//! The `kv_squeeze` fault ([`Scheduler::set_kv_squeeze`], set by the
//! driver before each step) holds a share of the blocks: admission and
//! growth see only the rest, as with a smaller cache, while KV usage is
//! still reported against the whole cache.

use std::collections::VecDeque;
use std::time::Duration;

use super::prefix::PrefixCache;

/// What an iteration costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StepCosts {
    /// A decode step with one sequence in the batch.
    pub per_token: Duration,
    /// Each further sequence in the batch makes the step this fraction
    /// longer (memory bandwidth and attention grow with the batch).
    pub slowdown_per_running: f64,
    /// Per prompt token prefilled (not served from the prefix cache), added
    /// to the step the sequence is admitted in.
    pub prefill_per_token: Duration,
    /// The shortest prefill: a first token comes no sooner than this after
    /// admission (chunked prefill spread over steps), at a step's end.
    pub ttft: Duration,
}

/// Capacities of the engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Limits {
    pub max_num_seqs: usize,
    /// Prompt tokens prefilled in one step (more waits for the next step,
    /// unless it is the step's only prefill).
    pub max_batched_tokens: u32,
    /// Tokens per KV block.
    pub block_size: u32,
    /// KV blocks in the cache.
    pub kv_blocks: u32,
}

/// The shortest step: keeps a zero-cost configuration from spinning.
const MIN_STEP: Duration = Duration::from_micros(50);

/// A request to schedule.
#[derive(Debug)]
pub(crate) struct NewSeq<T> {
    pub payload: T,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// Chained hashes of the prompt's full blocks (see `prefix.rs`).
    pub block_hashes: Vec<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Waiting,
    /// Admitted; the first token comes at the first step end at or after
    /// `ready_at`.
    Prefill {
        ready_at: Duration,
    },
    Decode,
}

#[derive(Debug)]
struct Seq<T> {
    payload: T,
    prompt: u32,
    max_tokens: u32,
    generated: u32,
    blocks: u32,
    hashes: Vec<u64>,
    phase: Phase,
    preemptions: u32,
}

impl<T> Seq<T> {
    /// Tokens whose KV this sequence holds once its next token exists.
    fn context_after_next(&self) -> u32 {
        self.prompt.saturating_add(self.generated).saturating_add(1)
    }
}

/// What happened to a sequence, reported through the caller's callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeqEvent {
    /// Left the queue at the step's start; `cached` prompt tokens came from
    /// the prefix cache; `first` is false after a preemption.
    Scheduled { cached: u32, first: bool },
    /// Lost its KV blocks and went back to the front of the queue.
    Preempted,
    /// Produced a token at the step's end; `generated` counts all so far.
    Token { generated: u32 },
    /// Produced its last token at the step's end.
    Finished { generated: u32, preemptions: u32 },
    /// Removed before the end (client gone, server stopping).
    Aborted { generated: u32, preemptions: u32 },
}

/// One planned iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct StepPlan {
    pub duration: Duration,
    /// Sequences in the batch (decoding and prefilling).
    pub batch: u32,
    /// Sequences producing a token this step (known at its end; an upper
    /// bound here).
    pub decoding: u32,
    /// Prompt tokens prefilled this step.
    pub prefill_tokens: u32,
}

impl StepPlan {
    /// Tokens the step processes (vLLM's `iteration_tokens_total`).
    pub fn tokens(&self) -> u32 {
        self.decoding + self.prefill_tokens
    }
}

/// Prefix-cache counters, in tokens (vLLM's queries and hits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PrefixStats {
    pub queries: u64,
    pub hits: u64,
}

/// The scheduler of one engine. `T` is what the caller attaches to each
/// sequence (the driver's handle to the waiting HTTP request).
#[derive(Debug)]
pub(crate) struct Scheduler<T> {
    costs: StepCosts,
    limits: Limits,
    waiting: VecDeque<Seq<T>>,
    /// In admission order: the last is preempted first.
    running: Vec<Seq<T>>,
    /// Blocks no sequence holds (some may be held by the squeeze).
    free_blocks: u32,
    /// Blocks the `kv_squeeze` fault takes away; it takes them from the
    /// free ones as they come free.
    squeezed: u32,
    prefix: PrefixCache,
    prefix_stats: PrefixStats,
    preemptions: u64,
}

impl<T> Scheduler<T> {
    pub fn new(costs: StepCosts, limits: Limits) -> Scheduler<T> {
        let limits = Limits {
            max_num_seqs: limits.max_num_seqs.max(1),
            block_size: limits.block_size.max(1),
            ..limits
        };
        Scheduler {
            costs,
            limits,
            waiting: VecDeque::new(),
            running: Vec::new(),
            free_blocks: limits.kv_blocks,
            squeezed: 0,
            prefix: PrefixCache::new(limits.kv_blocks as usize),
            prefix_stats: PrefixStats::default(),
            preemptions: 0,
        }
    }

    pub fn costs(&self) -> StepCosts {
        self.costs
    }

    /// Queues a request.
    pub fn add(&mut self, new: NewSeq<T>) {
        self.waiting.push_back(Seq {
            payload: new.payload,
            prompt: new.prompt_tokens,
            max_tokens: new.max_tokens.max(1),
            generated: 0,
            blocks: 0,
            hashes: new.block_hashes,
            phase: Phase::Waiting,
            preemptions: 0,
        });
    }

    pub fn has_work(&self) -> bool {
        !self.running.is_empty() || !self.waiting.is_empty()
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Makes `share` (in `[0, 1)`) of the KV blocks unavailable, the
    /// `kv_squeeze` fault; 0 gives them back. Sequences keep the blocks
    /// they hold: the squeeze takes free ones, and those freed later, so a
    /// sequence that must grow meanwhile preempts as in a full cache.
    pub fn set_kv_squeeze(&mut self, share: f64) {
        self.squeezed = squeezed_blocks(share, self.limits.kv_blocks);
    }

    /// Blocks a sequence may take: the free ones the squeeze does not hold.
    fn available(&self) -> u32 {
        self.free_blocks.saturating_sub(self.squeezed)
    }

    /// Fraction of the whole KV cache in use, 0..=1: blocks the squeeze
    /// holds count as used, so it reads at least the squeeze's share.
    pub fn kv_usage(&self) -> f64 {
        match self.limits.kv_blocks {
            0 => 0.0,
            total => f64::from(total - self.available()) / f64::from(total),
        }
    }

    /// Blocks sequences hold (the squeeze's not included: they hold no
    /// request's KV, and the GPU's memory does not count them).
    pub fn kv_blocks_used(&self) -> u32 {
        self.limits.kv_blocks - self.free_blocks
    }

    pub fn prefix_stats(&self) -> PrefixStats {
        self.prefix_stats
    }

    pub fn preemptions(&self) -> u64 {
        self.preemptions
    }

    /// Every sequence's payload, running first.
    pub fn payloads(&self) -> impl Iterator<Item = &T> {
        self.running
            .iter()
            .chain(self.waiting.iter())
            .map(|s| &s.payload)
    }

    /// Removes the sequences `drop_it` picks, freeing their blocks.
    pub fn abort_where(
        &mut self,
        mut drop_it: impl FnMut(&T) -> bool,
        mut on: impl FnMut(&T, SeqEvent),
    ) {
        let mut freed = 0;
        let mut report = |seq: &Seq<T>| {
            on(
                &seq.payload,
                SeqEvent::Aborted {
                    generated: seq.generated,
                    preemptions: seq.preemptions,
                },
            );
        };
        self.running.retain(|seq| {
            let remove = drop_it(&seq.payload);
            if remove {
                freed += seq.blocks;
                report(seq);
            }
            !remove
        });
        self.waiting.retain(|seq| {
            let remove = drop_it(&seq.payload);
            if remove {
                report(seq);
            }
            !remove
        });
        self.free_blocks += freed;
    }

    /// Plans the step starting at `now` (virtual time): grows KV, preempts,
    /// admits, and prices it. `slow_factor` multiplies the step's cost
    /// (latency-spike faults; 1.0 normally).
    pub fn plan_step(
        &mut self,
        now: Duration,
        slow_factor: f64,
        mut on: impl FnMut(&T, SeqEvent),
    ) -> StepPlan {
        self.grow_or_preempt(&mut on);
        let prefill_tokens = self.admit(now, slow_factor, &mut on);
        let batch = self.running.len() as u32;
        let decoding = self
            .running
            .iter()
            .filter(|s| s.phase == Phase::Decode)
            .count() as u32;
        let scale = 1.0 + self.costs.slowdown_per_running * f64::from(batch.saturating_sub(1));
        let decode = self.costs.per_token.mul_f64(scale.max(0.0));
        let prefill = self.costs.prefill_per_token.saturating_mul(prefill_tokens);
        let duration = (decode + prefill)
            .mul_f64(slow_factor.max(0.0))
            .max(MIN_STEP);
        StepPlan {
            duration,
            batch,
            decoding,
            prefill_tokens,
        }
    }

    /// Ends the step at `end` (virtual time): produces tokens, retires the
    /// finished sequences. Returns how many tokens were produced.
    pub fn finish_step(&mut self, end: Duration, mut on: impl FnMut(&T, SeqEvent)) -> u32 {
        let mut produced = 0;
        let mut freed = 0;
        let prefix = &mut self.prefix;
        self.running.retain_mut(|seq| {
            match seq.phase {
                Phase::Prefill { ready_at } if ready_at <= end => seq.phase = Phase::Decode,
                Phase::Decode => {}
                _ => return true,
            }
            seq.generated += 1;
            produced += 1;
            if seq.generated < seq.max_tokens {
                on(
                    &seq.payload,
                    SeqEvent::Token {
                        generated: seq.generated,
                    },
                );
                return true;
            }
            prefix.insert(&seq.hashes);
            freed += seq.blocks;
            on(
                &seq.payload,
                SeqEvent::Finished {
                    generated: seq.generated,
                    preemptions: seq.preemptions,
                },
            );
            false
        });
        self.free_blocks += freed;
        produced
    }

    fn blocks_for(&self, tokens: u32) -> u32 {
        tokens.div_ceil(self.limits.block_size)
    }

    /// Gives every decoding sequence the blocks its next token needs,
    /// preempting from the most recently admitted end when none are free.
    fn grow_or_preempt(&mut self, on: &mut impl FnMut(&T, SeqEvent)) {
        let mut i = 0;
        while i < self.running.len() {
            let seq = &self.running[i];
            let need = self
                .blocks_for(seq.context_after_next())
                .saturating_sub(seq.blocks);
            if need == 0 || seq.phase != Phase::Decode {
                i += 1;
                continue;
            }
            if need <= self.available() {
                self.free_blocks -= need;
                self.running[i].blocks += need;
                i += 1;
                continue;
            }
            // Preempt the newest; when that is this sequence, it goes too.
            let Some(mut victim) = self.running.pop() else {
                break;
            };
            self.free_blocks += victim.blocks;
            victim.blocks = 0;
            victim.phase = Phase::Waiting;
            victim.preemptions += 1;
            self.preemptions += 1;
            on(&victim.payload, SeqEvent::Preempted);
            self.waiting.push_front(victim);
        }
    }

    /// Admits waiting sequences in order; returns the prompt tokens to
    /// prefill this step.
    fn admit(&mut self, now: Duration, slow_factor: f64, on: &mut impl FnMut(&T, SeqEvent)) -> u32 {
        let mut prefill_tokens: u32 = 0;
        while self.running.len() < self.limits.max_num_seqs {
            let Some(seq) = self.waiting.front() else {
                break;
            };
            // A preempted sequence recomputes what it had generated.
            let context = seq.prompt.saturating_add(seq.generated);
            let hit_blocks = self.prefix.hits(&seq.hashes) as u32;
            // The last prompt token is always computed (it yields a logit).
            let cached = (hit_blocks * self.limits.block_size).min(context.saturating_sub(1));
            let tokens = context - cached;
            let need = self.blocks_for(context + 1);
            let over_budget = prefill_tokens > 0
                && prefill_tokens.saturating_add(tokens) > self.limits.max_batched_tokens;
            if need > self.available() || over_budget {
                break;
            }
            let Some(mut seq) = self.waiting.pop_front() else {
                break;
            };
            self.free_blocks -= need;
            seq.blocks = need;
            seq.phase = Phase::Prefill {
                ready_at: now + self.costs.ttft.mul_f64(slow_factor.max(0.0)),
            };
            prefill_tokens = prefill_tokens.saturating_add(tokens);
            self.prefix_stats.queries += u64::from(context);
            self.prefix_stats.hits += u64::from(cached);
            let first = seq.preemptions == 0;
            on(&seq.payload, SeqEvent::Scheduled { cached, first });
            self.running.push(seq);
        }
        prefill_tokens
    }
}

/// The blocks of `total` a squeeze of `share` holds: rounded up (and
/// past any float rounding), so that usage never reads below `share`.
fn squeezed_blocks(share: f64, total: u32) -> u32 {
    if share.is_nan() || share <= 0.0 {
        return 0;
    }
    let share = share.min(1.0);
    let total_f = f64::from(total);
    let mut blocks = ((share * total_f).ceil() as u32).min(total);
    if blocks < total && f64::from(blocks) / total_f < share {
        blocks += 1;
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn costs() -> StepCosts {
        StepCosts {
            per_token: 10 * MS,
            slowdown_per_running: 0.0,
            prefill_per_token: Duration::ZERO,
            ttft: Duration::ZERO,
        }
    }

    fn limits() -> Limits {
        Limits {
            max_num_seqs: 8,
            max_batched_tokens: 8192,
            block_size: 4,
            kv_blocks: 1000,
        }
    }

    fn seq(id: u32, prompt: u32, max_tokens: u32) -> NewSeq<u32> {
        NewSeq {
            payload: id,
            prompt_tokens: prompt,
            max_tokens,
            block_hashes: Vec::new(),
        }
    }

    /// Runs steps until idle; returns every event with its virtual time.
    fn run(s: &mut Scheduler<u32>, max_steps: usize) -> Vec<(Duration, u32, SeqEvent)> {
        let mut log = Vec::new();
        let mut now = Duration::ZERO;
        for _ in 0..max_steps {
            if !s.has_work() {
                break;
            }
            let plan = s.plan_step(now, 1.0, |id, e| log.push((now, *id, e)));
            now += plan.duration;
            s.finish_step(now, |id, e| log.push((now, *id, e)));
        }
        log
    }

    fn finished_at(log: &[(Duration, u32, SeqEvent)], id: u32) -> Duration {
        log.iter()
            .find(|(_, i, e)| *i == id && matches!(e, SeqEvent::Finished { .. }))
            .map(|(t, ..)| *t)
            .expect("finished")
    }

    #[test]
    fn a_lone_request_takes_ttft_then_one_step_per_token() {
        let mut s = Scheduler::new(
            StepCosts {
                ttft: 35 * MS,
                ..costs()
            },
            limits(),
        );
        s.add(seq(1, 10, 5));
        let log = run(&mut s, 100);
        let tokens: Vec<Duration> = log
            .iter()
            .filter(|(_, _, e)| matches!(e, SeqEvent::Token { .. } | SeqEvent::Finished { .. }))
            .map(|(t, ..)| *t)
            .collect();
        // First token at the first step end at or after 35 ms.
        assert_eq!(tokens, vec![40 * MS, 50 * MS, 60 * MS, 70 * MS, 80 * MS]);
        assert_eq!(s.kv_usage(), 0.0, "blocks are freed");
    }

    #[test]
    fn max_num_seqs_queues_the_rest_in_order() {
        let mut s = Scheduler::new(
            costs(),
            Limits {
                max_num_seqs: 2,
                ..limits()
            },
        );
        for id in 0..4 {
            s.add(seq(id, 4, 3));
        }
        let plan = s.plan_step(Duration::ZERO, 1.0, |_, _| {});
        assert_eq!((plan.batch, s.waiting()), (2, 2));
        let log = run(&mut s, 100);
        assert!(finished_at(&log, 0) < finished_at(&log, 2));
        assert_eq!(finished_at(&log, 2), finished_at(&log, 3));
    }

    #[test]
    fn steps_get_longer_with_the_batch_and_with_prefill() {
        let mut s = Scheduler::new(
            StepCosts {
                slowdown_per_running: 0.5,
                prefill_per_token: MS,
                ..costs()
            },
            limits(),
        );
        for id in 0..3 {
            s.add(seq(id, 4, 2));
        }
        let plan = s.plan_step(Duration::ZERO, 1.0, |_, _| {});
        // 10 ms × (1 + 0.5 × 2) + 12 prompt tokens × 1 ms.
        assert_eq!(plan.duration, 32 * MS);
        assert_eq!(plan.prefill_tokens, 12);
        s.finish_step(plan.duration, |_, _| {});
        let plan = s.plan_step(plan.duration, 2.0, |_, _| {});
        assert_eq!(plan.duration, 40 * MS, "a slow factor of 2 doubles it");
        assert_eq!(plan.tokens(), 3);
    }

    #[test]
    fn kv_exhaustion_preempts_the_newest_and_it_recomputes_later() {
        // 4 tokens a block, 6 blocks: two sequences of 8-token prompts fit
        // (3 blocks each for prompt+1), but cannot grow past 12 tokens.
        let mut s = Scheduler::new(
            costs(),
            Limits {
                kv_blocks: 6,
                ..limits()
            },
        );
        s.add(seq(0, 8, 8));
        s.add(seq(1, 8, 8));
        let log = run(&mut s, 200);
        let preempted: Vec<u32> = log
            .iter()
            .filter(|(_, _, e)| *e == SeqEvent::Preempted)
            .map(|(_, id, _)| *id)
            .collect();
        assert_eq!(preempted.first(), Some(&1), "the newest goes first");
        assert!(s.preemptions() >= 1);
        for id in [0, 1] {
            let generated = log.iter().find_map(|(_, i, e)| match e {
                SeqEvent::Finished {
                    generated,
                    preemptions,
                } if *i == id => Some((*generated, *preemptions)),
                _ => None,
            });
            assert_eq!(generated.map(|g| g.0), Some(8), "seq {id} completes");
        }
        let rescheduled = log.iter().any(|(_, id, e)| {
            *id == 1
                && *e
                    == SeqEvent::Scheduled {
                        cached: 0,
                        first: false,
                    }
        });
        assert!(rescheduled);
        assert_eq!(s.kv_usage(), 0.0);
    }

    #[test]
    fn a_repeated_prefix_is_served_from_the_cache() {
        let words = "a b c d e f g h i j";
        let hashes = super::super::prefix::block_hashes(words.split_whitespace(), 4);
        let mut s = Scheduler::new(
            StepCosts {
                prefill_per_token: MS,
                ..costs()
            },
            limits(),
        );
        let new = |id| NewSeq {
            payload: id,
            prompt_tokens: 10,
            max_tokens: 1,
            block_hashes: hashes.clone(),
        };
        s.add(new(0));
        let first = s.plan_step(Duration::ZERO, 1.0, |_, _| {});
        s.finish_step(first.duration, |_, _| {});
        s.add(new(1));
        let mut cached = None;
        let second = s.plan_step(first.duration, 1.0, |_, e| {
            if let SeqEvent::Scheduled { cached: c, .. } = e {
                cached = Some(c);
            }
        });
        assert_eq!(cached, Some(8), "two full blocks hit");
        assert_eq!(second.prefill_tokens, 2);
        assert_eq!(
            s.prefix_stats(),
            PrefixStats {
                queries: 20,
                hits: 8
            }
        );
    }

    #[test]
    fn aborting_frees_blocks_and_reports() {
        let mut s = Scheduler::new(costs(), limits());
        s.add(seq(0, 8, 100));
        s.add(seq(1, 8, 100));
        s.plan_step(Duration::ZERO, 1.0, |_, _| {});
        assert!(s.kv_usage() > 0.0);
        let mut aborted = Vec::new();
        s.abort_where(|_| true, |id, e| aborted.push((*id, e)));
        assert_eq!(aborted.len(), 2);
        assert!(!s.has_work());
        assert_eq!(s.kv_usage(), 0.0);
    }

    #[test]
    fn a_squeeze_reads_as_used_even_when_idle_and_clears() {
        let mut s: Scheduler<u32> = Scheduler::new(costs(), limits());
        s.set_kv_squeeze(0.97);
        assert!(s.kv_usage() >= 0.97, "{}", s.kv_usage());
        assert!(s.kv_usage() < 0.971, "{}", s.kv_usage());
        assert_eq!(s.kv_blocks_used(), 0, "no request holds them");
        for share in [0.1, 0.3, 0.7, 0.97, 0.999] {
            for total in [7, 100, 2400] {
                let blocks = squeezed_blocks(share, total);
                assert!(
                    f64::from(blocks) / f64::from(total) >= share,
                    "{share} of {total}"
                );
                let least = (share * f64::from(total)).ceil() as u32;
                assert!(blocks <= total && blocks <= least + 1, "{share} of {total}");
            }
        }
        assert_eq!(squeezed_blocks(0.0, 100), 0);
        assert_eq!(squeezed_blocks(f64::NAN, 100), 0);
        s.set_kv_squeeze(0.0);
        assert_eq!(s.kv_usage(), 0.0);
    }

    #[test]
    fn a_squeeze_admits_as_a_smaller_cache_would() {
        // 10 blocks of 4 tokens; an 8-token prompt needs 3 (prompt + 1).
        let mut s = Scheduler::new(
            costs(),
            Limits {
                kv_blocks: 10,
                ..limits()
            },
        );
        s.set_kv_squeeze(0.5);
        for id in 0..3 {
            s.add(seq(id, 8, 4));
        }
        let plan = s.plan_step(Duration::ZERO, 1.0, |_, _| {});
        assert_eq!((plan.batch, s.waiting()), (1, 2), "5 blocks: one fits");
        assert_eq!(s.kv_usage(), 0.8, "3 held + 5 squeezed of 10");
        s.finish_step(plan.duration, |_, _| {});
        s.set_kv_squeeze(0.0);
        let plan = s.plan_step(plan.duration, 1.0, |_, _| {});
        assert_eq!((plan.batch, s.waiting()), (3, 0), "given back: all fit");
    }

    #[test]
    fn a_squeeze_under_load_preempts_the_newest_and_waits_for_free_blocks() {
        // Two 11-token prompts hold 3 blocks each; after the first token
        // each needs a fourth.
        let mut s = Scheduler::new(
            costs(),
            Limits {
                kv_blocks: 10,
                ..limits()
            },
        );
        s.add(seq(0, 11, 6));
        s.add(seq(1, 11, 6));
        let plan = s.plan_step(Duration::ZERO, 1.0, |_, _| {});
        assert_eq!(plan.batch, 2);
        let mut now = plan.duration;
        s.finish_step(now, |_, _| {});
        s.set_kv_squeeze(0.4);
        assert_eq!(s.kv_usage(), 1.0, "6 held, the 4 free squeezed");
        let mut log = Vec::new();
        let plan = s.plan_step(now, 1.0, |id, e| log.push((*id, e)));
        assert_eq!(log, vec![(1, SeqEvent::Preempted)]);
        assert_eq!((plan.batch, s.waiting(), s.preemptions()), (1, 1, 1));
        // Seq 0 holds 4, the squeeze 4: 2 left, seq 1 now needs 4.
        assert_eq!((s.kv_blocks_used(), s.kv_usage()), (4, 0.8));
        now += plan.duration;
        s.finish_step(now, |_, _| {});
        let plan = s.plan_step(now, 1.0, |_, _| {});
        assert_eq!((plan.batch, s.waiting()), (1, 1), "still waits");
        s.finish_step(now + plan.duration, |_, _| {});
        s.set_kv_squeeze(0.0);
        let log = run(&mut s, 100);
        assert!(log.iter().any(|(_, id, e)| *id == 1
            && *e
                == SeqEvent::Scheduled {
                    cached: 0,
                    first: false
                }));
        assert!(finished_at(&log, 1) > finished_at(&log, 0));
        assert_eq!(s.kv_usage(), 0.0);
    }

    #[test]
    fn the_same_calls_give_the_same_schedule() {
        let build = || {
            let mut s = Scheduler::new(
                StepCosts {
                    slowdown_per_running: 0.1,
                    prefill_per_token: MS / 10,
                    ttft: 25 * MS,
                    ..costs()
                },
                Limits {
                    max_num_seqs: 3,
                    kv_blocks: 20,
                    ..limits()
                },
            );
            for id in 0..10 {
                s.add(seq(id, 5 + id * 3, 4 + id));
            }
            run(&mut s, 1000)
        };
        assert_eq!(build(), build());
    }
}
