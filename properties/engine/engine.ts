/**
 * The coordinator of a fuzz job: hands out search blocks and shrinks to an executor (worker
 * threads or the main thread), merges what they find in stream order, replays every shrunk
 * counterexample once before reporting it, and deduplicates.
 *
 * Determinism (see seeds.ts for where scenarios come from): results are merged in stream order,
 * never in arrival order, so with a `--runs` budget a result depends on (variant, seed, shard,
 * runs) only, not on the number of workers or their timing.
 *
 * - Stop at the first (default): the outcome is the one {@link fuzz} computes for the same stream
 *   and budget: the first safety violation; or, when a conformance violation comes first, the
 *   first safety violation within its grace window, else that conformance violation. Workers
 *   race ahead, but a decision is taken only over the settled prefix of the stream (every block
 *   before it done), and then everything after it is cancelled.
 * - `keepGoing`: every violating run is counted; the n-th run violating property P is shrunk when
 *   n <= {@link SHRINK_ALL_FIRST} or n is a power of two (taken in stream order, so the choice is
 *   repeatable), and the shrunk ones are reported once per property + shape (the earliest).
 */
import fc from 'fast-check';
import type { Variant } from '../../impl/variants.ts';
import { Coverage } from '../coverage.ts';
import { parseCounterexample } from '../counterexample-file.ts';
import { conformanceStopAt, violates } from '../fuzz.ts';
import { type RunResult, runScenario } from '../runner.ts';
import { arbFor, type Scenario, type Strategy } from '../scenario.ts';
import type { Control, Found, Job, JobEvent, ShrinkResult } from './jobs.ts';
import type { Executor, Outcome } from './pool.ts';
import { blockAt, type Shard, shardSeed } from './seeds.ts';
import { dedupKey, shapeOf } from './shape.ts';

/** The property a violation is reported as when its shrunk counterexample does not replay. */
export const NONDETERMINISM = 'harness-nondeterminism';

/** In keep-going mode, the first this-many violating runs of each property are all shrunk. */
export const SHRINK_ALL_FIRST = 16;

/** More crashes than this (beyond one per worker) and the search is abandoned. */
const CRASH_ALLOWANCE = 3;

export interface EngineSpec {
  readonly variant: Variant;
  /** Schedules: uniform choice streams, or PCT priorities (default uniform). */
  readonly strategy?: Strategy;
  readonly seed: number;
  readonly shard: Shard;
  readonly runs?: number;
  readonly timeMs?: number;
  readonly keepGoing: boolean;
  readonly shrinkTimeMs: number;
  /** Record the search's protocol coverage (coverage.ts) into {@link EngineState.coverage}. */
  readonly coverage?: boolean;
}

export interface Reported {
  /** The property reported: the one found, or {@link NONDETERMINISM}. */
  readonly property: string;
  /** The property the search saw. */
  readonly searchProperty: string;
  readonly message: string;
  readonly scenario: Scenario;
  readonly original: Scenario;
  /** Stream position of the violating run. */
  readonly index: number;
  /** Runs made until it was found (the whole search when stopping at the first). */
  readonly runsToDetect: number;
  readonly shrinkRuns: number;
  readonly shrinkMs: number;
  /** False when the shrink was cut short (interrupt, crash): the scenario is a counterexample but maybe not minimal. */
  readonly shrinkComplete: boolean;
  readonly shape: string;
  readonly key: string;
  /** How many shrunk violating runs landed on this property + shape (keep-going). */
  seen: number;
  /** The traced replay (the timeline is drawn from it). */
  readonly replay: RunResult;
}

export interface Crash {
  /** What was running: `search 1000..1249` or `shrink 1234`. */
  readonly job: string;
  readonly error: string;
  /** Search runs of the block that were not made. */
  readonly runsLost: number;
}

export type EndReason = 'budget' | 'violation' | 'interrupted' | 'aborted';

export interface EngineState {
  /** Runs as the search counts them (see fuzz.ts); with `--runs`, repeatable. */
  readonly runs: number;
  readonly steps: number;
  /** Runs actually made (workers run ahead of a decision): a timing, not repeatable. */
  readonly executedRuns: number;
  readonly violatingRuns: number;
  /** Violating runs by their most severe property (over the runs counted). */
  readonly byProperty: Readonly<Record<string, number>>;
  /** Reported violations, in stream order. */
  readonly violations: readonly Reported[];
  /** Violating runs found and awaiting (or being) shrunk. */
  readonly pending: number;
  readonly crashes: readonly Crash[];
  readonly end: EndReason | null;
  /** Still searching (else shrinking, replaying and reporting what was found). */
  readonly searching: boolean;
  readonly interruptedBy: string | null;
  readonly elapsedMs: number;
  readonly shrinkMs: number;
  /**
   * When asked for: the coverage of the runs counted (with `--runs`, repeatable like `runs`).
   * A crashed block's runs are counted but their coverage is lost with the worker.
   */
  readonly coverage?: Coverage;
}

export interface EngineHooks {
  /** A violation was reported or replaced by an earlier one of the same key. */
  onViolation?(v: Reported): void;
  onCrash?(c: Crash): void;
}

type BlockStatus = 'running' | 'complete' | 'safety' | 'stopped' | 'crashed';

interface BlockState {
  readonly start: number;
  readonly size: number;
  done: number;
  steps: number;
  /** Per run, steps through it (once the block has ended). */
  stepsThrough: readonly number[];
  readonly found: Found[];
  status: BlockStatus;
}

interface Candidate {
  readonly found: Found;
  readonly runsToDetect: number;
}

const settled = (b: BlockState) => b.status !== 'running' && b.status !== 'stopped';

export class Engine {
  private readonly streamSeed: number;
  private readonly blocks: BlockState[] = [];
  private nextStart = 0;
  private readonly limit: number;
  private readonly deadline: number | null;
  private readonly shrinkQueue: Candidate[] = [];
  private readonly reported = new Map<string, Reported>();
  private readonly crashes: Crash[] = [];
  private running = 0;
  private runningSearches = 0;
  private pendingShrinks = 0;
  private searchDone = false;
  private finalized = false;
  /** Stop at the first: the decision, once taken. */
  private decision: { runs: number; steps: number; violation: Candidate | null; stopped: boolean } | null =
    null;
  /** Keep-going: blocks whose violating runs have been counted; counts per property. */
  private counted = 0;
  private runsCounted = 0;
  private stepsCounted = 0;
  private readonly counts = new Map<string, number>();
  private interruptedBy: string | null = null;
  private aborted = false;
  private readonly t0 = performance.now();
  private searchMs: number | null = null;
  private shrinkMsTotal = 0;
  private resolve: ((s: EngineState) => void) | null = null;
  /** Every finished block's coverage, merged (cut to the runs counted in {@link state}). */
  private readonly coverage: Coverage | null;

  constructor(
    private readonly spec: EngineSpec,
    private readonly executor: Executor,
    private readonly ctl: Control,
    private readonly hooks: EngineHooks = {},
  ) {
    this.streamSeed = shardSeed(spec.seed, spec.shard);
    this.limit = spec.runs ?? Number.MAX_SAFE_INTEGER;
    this.deadline = spec.timeMs !== undefined ? Date.now() + spec.timeMs : null;
    this.coverage = spec.coverage ? new Coverage() : null;
  }

  get seedOfStream(): number {
    return this.streamSeed;
  }

  run(): Promise<EngineState> {
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.pump();
    });
  }

  /** Stops the search (SIGINT, SIGTERM): what was found is still shrunk (briefly) and reported. */
  interrupt(reason: string): void {
    this.interruptedBy ??= reason;
    this.ctl.interrupt();
    this.pump();
  }

  /** A consistent view at any time (for progress and for the report written as we go). */
  state(): EngineState {
    const keep = this.spec.keepGoing;
    const executedRuns = this.blocks.reduce((n, b) => n + b.done, 0);
    const executedSteps = this.blocks.reduce((n, b) => n + b.steps, 0);
    const allFound = this.blocks.flatMap((b) => b.found);
    let runs = executedRuns;
    let steps = executedSteps;
    let byProperty: Record<string, number>;
    // Workers run ahead of a stop: what they ran past it is not counted, nor is its coverage.
    let cut = Number.MAX_SAFE_INTEGER;
    if (!keep && this.decision !== null) {
      runs = this.decision.runs;
      steps = this.decision.steps;
      if (this.decision.stopped) cut = this.stopOrdinal();
      byProperty = tally(allFound.filter((f) => f.ordinal < cut));
    } else if (keep && this.finalized) {
      runs = this.runsCounted;
      steps = this.stepsCounted;
      byProperty = Object.fromEntries([...this.counts.entries()].sort());
    } else {
      byProperty = tally(allFound);
    }
    const violations = [...this.reported.values()].sort((a, b) => a.index - b.index);
    const end: EndReason | null = !this.finalized
      ? null
      : this.interruptedBy !== null
        ? 'interrupted'
        : this.aborted
          ? 'aborted'
          : // A conformance violation still in its grace window when the budget ran out is
            // still the search's outcome, as fuzz() reports it.
            !keep && this.decision?.violation
            ? 'violation'
            : 'budget';
    return {
      runs,
      steps,
      executedRuns,
      violatingRuns: Object.values(byProperty).reduce((a, b) => a + b, 0),
      byProperty,
      violations,
      pending: this.shrinkQueue.length + this.pendingShrinks,
      crashes: [...this.crashes],
      end,
      searching: !this.searchDone,
      interruptedBy: this.interruptedBy,
      elapsedMs: Math.round(this.searchMs ?? performance.now() - this.t0),
      shrinkMs: Math.round(this.shrinkMsTotal),
      ...(this.coverage !== null ? { coverage: this.coverage.before(cut) } : {}),
    };
  }

  // ---- scheduling -----------------------------------------------------------------------------

  private searchOpen(): boolean {
    return (
      !this.searchDone &&
      this.interruptedBy === null &&
      !this.aborted &&
      this.decision === null &&
      this.nextStart < this.limit &&
      this.nextStart < this.ctl.stopIndex() &&
      (this.deadline === null || Date.now() < this.deadline)
    );
  }

  private pump(): void {
    this.dispatch();
    // The search is over once no block will be started and none is running: count what is
    // left, decide, and queue the last shrinks.
    if (!this.searchDone && this.runningSearches === 0 && !this.searchOpen()) {
      this.searchDone = true;
      this.searchMs = performance.now() - this.t0;
      this.finalizeSearch();
      this.dispatch();
    }
    if (!this.searchDone || this.running > 0 || this.shrinkQueue.length > 0) return;
    if (this.resolve !== null) {
      const r = this.resolve;
      this.resolve = null;
      void this.executor.close().then(() => r(this.state()));
    }
  }

  /** Fills the free slots: shrinks first, then search blocks while the search is open. */
  private dispatch(): void {
    while (this.running < this.executor.size) {
      const cand = this.shrinkQueue.shift();
      if (cand !== undefined) {
        this.startShrink(cand);
        continue;
      }
      if (!this.searchOpen()) break;
      const b = blockAt(this.nextStart, this.limit)!;
      this.nextStart += b.size;
      this.startSearch(b.start, b.size);
    }
  }

  private launch(job: Job, onEvent: (e: JobEvent) => void, done: (o: Outcome) => void): void {
    this.running++;
    void this.executor.run(job, onEvent).then((o) => {
      this.running--;
      done(o);
      this.pump();
    });
  }

  // ---- search ---------------------------------------------------------------------------------

  private startSearch(start: number, size: number): void {
    const b: BlockState = { start, size, done: 0, steps: 0, stepsThrough: [], found: [], status: 'running' };
    this.blocks.push(b);
    this.runningSearches++;
    const job: Job = {
      kind: 'search',
      variant: this.spec.variant.name,
      strategy: this.spec.strategy ?? 'uniform',
      seed: this.streamSeed,
      start,
      size,
      keepGoing: this.spec.keepGoing,
      deadline: this.deadline,
      ...(this.coverage !== null ? { coverage: true } : {}),
    };
    this.launch(
      job,
      (e) => {
        if (e.type === 'progress') {
          b.done = Math.max(b.done, e.done);
          b.steps = Math.max(b.steps, e.steps);
          return;
        }
        b.found.push(e.found);
        // Nothing after a safety violation can matter when stopping at the first.
        if (!this.spec.keepGoing && e.found.safety) this.ctl.stopAt(e.found.ordinal + 1);
      },
      (o) => {
        this.runningSearches--;
        if (o.ok && o.result.kind === 'search') {
          b.done = o.result.done;
          b.steps = o.result.steps;
          b.stepsThrough = o.result.stepsThrough;
          b.status = o.result.end === 'complete' ? 'complete' : o.result.end;
          if (o.result.coverage !== undefined) this.coverage?.merge(o.result.coverage);
        } else {
          const last = b.found.at(-1);
          if (last !== undefined) b.done = Math.max(b.done, last.ordinal - b.start + 1);
          b.status = 'crashed';
          this.crash({
            job: `search ${start}..${start + size - 1}`,
            error: o.ok ? 'unexpected result' : o.error,
            runsLost: size - b.done,
          });
        }
        this.afterBlock();
      },
    );
  }

  private crash(c: Crash): void {
    this.crashes.push(c);
    this.hooks.onCrash?.(c);
    if (this.crashes.length > this.executor.size + CRASH_ALLOWANCE) this.aborted = true;
  }

  private stopOrdinal(): number {
    return this.ctl.stopIndex();
  }

  private afterBlock(): void {
    if (this.spec.keepGoing) {
      this.countSettled(false);
      return;
    }
    if (this.decision !== null) return;
    const d = this.decide(false);
    if (d !== null) this.takeDecision(d);
  }

  /**
   * Stop-at-the-first, over the blocks in stream order: {@link fuzz}'s rule. Over the settled
   * prefix only, unless `final`; null when the prefix does not decide yet.
   */
  private decide(
    final: boolean,
  ): { runs: number; steps: number; violation: Candidate | null; stopped: boolean } | null {
    const ordered = [...this.blocks].sort((a, b) => a.start - b.start);
    let runsBefore = 0;
    let stepsBefore = 0;
    let conformance: Candidate | null = null;
    let conformanceIdx = -1;
    // The grace window after the first conformance violation ends after exactly stopAt runs.
    const endOfGrace = (b: BlockState, c: Candidate, stopRuns: number) => {
      const steps = stepsBefore + (b.stepsThrough[stopRuns - runsBefore - 1] ?? b.steps);
      return { runs: stopRuns, steps, violation: { ...c, runsToDetect: stopRuns }, stopped: true };
    };
    for (const b of ordered) {
      if (!final && !settled(b)) return null;
      for (const f of [...b.found].sort((x, y) => x.ordinal - y.ordinal)) {
        const runs = runsBefore + (f.ordinal - b.start) + 1;
        const steps = stepsBefore + f.stepsThrough;
        if (conformance !== null && runs > conformanceStopAt(conformanceIdx))
          return endOfGrace(b, conformance, conformanceStopAt(conformanceIdx));
        if (f.safety) return { runs, steps, violation: { found: f, runsToDetect: runs }, stopped: true };
        if (conformance === null) {
          conformance = { found: f, runsToDetect: runs };
          conformanceIdx = runs - 1;
        } else if (runs >= conformanceStopAt(conformanceIdx)) {
          return { runs, steps, violation: { ...conformance, runsToDetect: runs }, stopped: true };
        }
      }
      if (conformance !== null && runsBefore + b.done >= conformanceStopAt(conformanceIdx))
        return endOfGrace(b, conformance, conformanceStopAt(conformanceIdx));
      runsBefore += b.done;
      stepsBefore += b.steps;
    }
    if (!final) return null;
    const pending = conformance as Candidate | null;
    return {
      runs: runsBefore,
      steps: stepsBefore,
      violation: pending === null ? null : { ...pending, runsToDetect: runsBefore },
      stopped: false,
    };
  }

  private takeDecision(d: NonNullable<ReturnType<Engine['decide']>>): void {
    this.decision = d;
    if (d.stopped && d.violation !== null) {
      // The stopping run is the last one counted; cancel everything after it.
      const last = d.violation.found.safety ? d.violation.found.ordinal : this.lastCountedOrdinal(d.runs);
      this.ctl.stopAt(last + 1);
    }
    if (d.violation !== null) this.shrinkQueue.push(d.violation);
  }

  /** The stream position of the n-th run counted (1-based), over the blocks in order. */
  private lastCountedOrdinal(n: number): number {
    let left = n;
    for (const b of [...this.blocks].sort((a, c) => a.start - c.start)) {
      if (left <= b.done) return b.start + left - 1;
      left -= b.done;
    }
    return Number.MAX_SAFE_INTEGER;
  }

  /** Keep-going: counts the violating runs of settled blocks in stream order; queues shrinks. */
  private countSettled(final: boolean): void {
    const ordered = [...this.blocks].sort((a, b) => a.start - b.start);
    for (; this.counted < ordered.length; this.counted++) {
      const b = ordered[this.counted]!;
      if (!final && !settled(b)) return;
      for (const f of [...b.found].sort((x, y) => x.ordinal - y.ordinal)) {
        const n = (this.counts.get(f.property) ?? 0) + 1;
        this.counts.set(f.property, n);
        if (n <= SHRINK_ALL_FIRST || (n & (n - 1)) === 0)
          this.shrinkQueue.push({ found: f, runsToDetect: this.runsCounted + (f.ordinal - b.start) + 1 });
      }
      this.runsCounted += b.done;
      this.stepsCounted += b.steps;
    }
  }

  private finalizeSearch(): void {
    this.finalized = true;
    if (this.spec.keepGoing) {
      this.countSettled(true);
      return;
    }
    if (this.decision === null) this.takeDecision(this.decide(true)!);
  }

  // ---- shrink, replay, report ----------------------------------------------------------------

  private startShrink(c: Candidate): void {
    this.pendingShrinks++;
    const job: Job = {
      kind: 'shrink',
      variant: this.spec.variant.name,
      strategy: this.spec.strategy ?? 'uniform',
      seed: this.streamSeed,
      index: c.found.ordinal,
      property: c.found.property,
      shrinkTimeMs: this.spec.shrinkTimeMs,
    };
    this.launch(
      job,
      () => {},
      (o) => {
        this.pendingShrinks--;
        if (o.ok && o.result.kind === 'shrink') {
          this.shrinkMsTotal += o.result.shrinkMs;
          this.report(c, o.result);
          return;
        }
        this.crash({
          job: `shrink ${c.found.ordinal}`,
          error: o.ok ? 'unexpected result' : o.error,
          runsLost: 0,
        });
        // Report it unshrunk: regenerate the scenario here.
        const original = fc.sample(arbFor(this.spec.strategy ?? 'uniform'), {
          seed: this.streamSeed,
          path: String(c.found.ordinal),
          numRuns: 1,
        })[0]!;
        this.report(c, {
          kind: 'shrink',
          original,
          scenario: original,
          message: c.found.message,
          shrinkRuns: 0,
          shrinkMs: 0,
          complete: false,
          reproduced: violates(runScenario(original, this.spec.variant), c.found.property),
        });
      },
    );
  }

  /** Replays the shrunk counterexample, as `npm run replay` will, before reporting it. */
  private report(c: Candidate, s: ShrinkResult): void {
    const variant = this.spec.variant;
    const file = JSON.stringify({ variant: variant.name, property: c.found.property, scenario: s.scenario });
    const scenario = parseCounterexample(file, 'shrunk counterexample').scenario;
    const replay = runScenario(scenario, variant, { trace: true });
    const again = replay.violations.find((v) => v.property === c.found.property);
    const ok = s.reproduced && again !== undefined;
    const property = ok ? c.found.property : NONDETERMINISM;
    const message = ok
      ? s.message !== ''
        ? s.message
        : again.message
      : !s.reproduced
        ? `the scenario at stream position ${c.found.ordinal} violated ${c.found.property} in the search but not when generated and run again (${c.found.message})`
        : `the shrunk counterexample of ${c.found.property} does not violate it when replayed (the shrink saw: ${s.message})`;
    const shape = shapeOf(scenario);
    const key = dedupKey(property, shape);
    const r: Reported = {
      property,
      searchProperty: c.found.property,
      message,
      scenario,
      original: s.original,
      index: c.found.ordinal,
      runsToDetect: c.runsToDetect,
      shrinkRuns: s.shrinkRuns,
      shrinkMs: s.shrinkMs,
      shrinkComplete: s.complete,
      shape,
      key,
      seen: 1,
      replay,
    };
    const prev = this.reported.get(key);
    if (prev === undefined || r.index < prev.index) {
      r.seen = (prev?.seen ?? 0) + 1;
      this.reported.set(key, r);
      this.hooks.onViolation?.(r);
    } else {
      prev.seen++;
    }
  }
}

function tally(found: readonly Found[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const f of [...found].sort((a, b) => a.property.localeCompare(b.property)))
    m[f.property] = (m[f.property] ?? 0) + 1;
  return m;
}
