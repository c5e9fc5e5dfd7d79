/**
 * The two kinds of work a fuzz job is made of, run by a worker thread or in-process:
 *
 * - a search block: the scenarios at positions start..start+size-1 of a shard's stream, each run
 *   once; every violating run is reported as it is found (so a crash loses nothing found);
 * - a shrink: the scenario at one position, shrunk keeping the same property violated, exactly
 *   as {@link fuzz} does it: fast-check's shrink, then the reducer (reduce.ts), then the choices.
 *
 * Both are async so that the in-process path (`--workers 1`) lets signals and timers in every
 * {@link YIELD_MS}; in a worker thread they never wait on anything but microtasks.
 */
import fc from 'fast-check';
import { Variant } from '../../impl/variants.ts';
import { Coverage, type CoverageJson } from '../coverage.ts';
import { finishShrink, reduceSpec, violates } from '../fuzz.ts';
import { isSafety } from '../invariants.ts';
import { reduceAsync } from '../reduce.ts';
import { runScenario } from '../runner.ts';
import { arbFor, type Scenario, type Strategy } from '../scenario.ts';

export interface SearchJob {
  readonly kind: 'search';
  readonly variant: string;
  readonly strategy: Strategy;
  /** The shard's stream seed. */
  readonly seed: number;
  readonly start: number;
  readonly size: number;
  /** Go on past a safety violation (else the block ends there: nothing after it matters). */
  readonly keepGoing: boolean;
  /** Wall-clock deadline (Date.now() milliseconds), or null for none. */
  readonly deadline: number | null;
  /** Record protocol coverage (coverage.ts), each run stamped with its stream position. */
  readonly coverage?: boolean;
}

export interface ShrinkJob {
  readonly kind: 'shrink';
  readonly variant: string;
  readonly strategy: Strategy;
  readonly seed: number;
  /** The stream position of the violating scenario. */
  readonly index: number;
  readonly property: string;
  readonly shrinkTimeMs: number;
}

export type Job = SearchJob | ShrinkJob;

/** A violating run, as the search saw it. */
export interface Found {
  /** Stream position. */
  readonly ordinal: number;
  /** Its most severe violated property. */
  readonly property: string;
  readonly safety: boolean;
  readonly message: string;
  /** Simulated steps of the block's runs up to and including this one. */
  readonly stepsThrough: number;
}

export type JobEvent =
  | { readonly type: 'found'; readonly found: Found }
  /** Cumulative for the job. */
  | { readonly type: 'progress'; readonly done: number; readonly steps: number };

export interface SearchResult {
  readonly kind: 'search';
  /** Runs made: positions start..start+done-1. */
  readonly done: number;
  readonly steps: number;
  /** Simulated steps of the block's runs up to and including each one (a grace window may end mid-block). */
  readonly stepsThrough: readonly number[];
  readonly found: readonly Found[];
  /** complete: the whole block; safety: ended at a safety violation; stopped: stop index, deadline or interrupt. */
  readonly end: 'complete' | 'safety' | 'stopped';
  /** The runs' coverage (plain JSON: it crosses to the coordinator), when the job asked for it. */
  readonly coverage?: CoverageJson;
}

export interface ShrinkResult {
  readonly kind: 'shrink';
  /** The scenario the search ran at that position, regenerated. */
  readonly original: Scenario;
  readonly scenario: Scenario;
  readonly message: string;
  readonly shrinkRuns: number;
  readonly shrinkMs: number;
  /** False when the shrink was cut short by an interrupt (the result is still a counterexample). */
  readonly complete: boolean;
  /** Whether the regenerated original violates the property again (it must: determinism). */
  readonly reproduced: boolean;
}

export type JobResult = SearchResult | ShrinkResult;

/**
 * What all executors share with the coordinator: a stop position (no run at or after it is
 * made) and an interrupt flag. Shared memory, so that a busy worker sees it at once.
 */
export class Control {
  private readonly stop: BigInt64Array;
  private readonly flags: Int32Array;

  /** Wraps a buffer made by {@link Control.create} (e.g. one passed to a worker). */
  constructor(readonly buffer: SharedArrayBuffer) {
    this.stop = new BigInt64Array(buffer, 0, 1);
    this.flags = new Int32Array(buffer, 8, 1);
  }

  static create(): Control {
    const c = new Control(new SharedArrayBuffer(16));
    Atomics.store(c.stop, 0, BigInt(Number.MAX_SAFE_INTEGER));
    return c;
  }

  stopIndex(): number {
    return Number(Atomics.load(this.stop, 0));
  }

  /** Lowers the stop position (never raises it). */
  stopAt(index: number): void {
    if (index < this.stopIndex()) Atomics.store(this.stop, 0, BigInt(index));
  }

  interrupted(): boolean {
    return Atomics.load(this.flags, 0) !== 0;
  }

  interrupt(): void {
    Atomics.store(this.flags, 0, 1);
  }
}

export interface RunOptions {
  /** Let the event loop in at least this often (in-process); Infinity in a worker. */
  readonly yieldMs: number;
  /** Progress events at most this often. */
  readonly progressMs?: number;
  /** Test hook: called before each search run with its position. */
  readonly beforeRun?: (ordinal: number) => void;
}

export const YIELD_MS = 50;

class EndBlock extends Error {}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function runJob(
  job: Job,
  ctl: Control,
  emit: (e: JobEvent) => void,
  opts: RunOptions,
): Promise<JobResult> {
  return job.kind === 'search' ? runSearch(job, ctl, emit, opts) : runShrink(job, ctl, opts);
}

async function runSearch(
  job: SearchJob,
  ctl: Control,
  emit: (e: JobEvent) => void,
  opts: RunOptions,
): Promise<SearchResult> {
  const v = Variant.parse(job.variant);
  const found: Found[] = [];
  let done = 0;
  let steps = 0;
  const stepsThrough: number[] = [];
  let end: SearchResult['end'] = 'complete';
  let lastYield = Date.now();
  let lastProgress = lastYield;
  const progressMs = opts.progressMs ?? 200;
  const cov = job.coverage ? new Coverage() : undefined;
  const search = await fc.check(
    fc.asyncProperty(arbFor(job.strategy), async (s) => {
      const ordinal = job.start + done;
      if (Date.now() - lastYield >= opts.yieldMs) {
        await yieldToLoop();
        lastYield = Date.now();
      }
      if (
        ordinal >= ctl.stopIndex() ||
        ctl.interrupted() ||
        (job.deadline !== null && Date.now() >= job.deadline)
      ) {
        end = 'stopped';
        throw new EndBlock();
      }
      opts.beforeRun?.(ordinal);
      if (cov) cov.stamp = ordinal;
      const r = runScenario(s, v, { coverage: cov });
      done++;
      steps += r.steps;
      stepsThrough.push(steps);
      const now = Date.now();
      if (now - lastProgress >= progressMs) {
        lastProgress = now;
        emit({ type: 'progress', done, steps });
      }
      const first = r.violations[0];
      if (first === undefined) return true;
      const f: Found = {
        ordinal,
        property: first.property,
        safety: isSafety(first.property),
        message: first.message,
        stepsThrough: steps,
      };
      found.push(f);
      emit({ type: 'found', found: f });
      if (f.safety && !job.keepGoing) {
        end = 'safety';
        throw new EndBlock();
      }
      return true;
    }),
    { seed: job.seed, path: String(job.start), numRuns: job.size, endOnFailure: true },
  );
  // Anything but our own EndBlock is a harness error (runScenario threw): the caller reports it.
  if (search.failed && !(search.errorInstance instanceof EndBlock)) {
    const e = search.errorInstance;
    throw new Error(
      `run at stream position ${job.start + done} threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    );
  }
  emit({ type: 'progress', done, steps });
  return {
    kind: 'search',
    done,
    steps,
    stepsThrough,
    found,
    end,
    ...(cov ? { coverage: cov.toJSON() } : {}),
  };
}

async function runShrink(job: ShrinkJob, ctl: Control, opts: RunOptions): Promise<ShrinkResult> {
  const t0 = performance.now();
  const v = Variant.parse(job.variant);
  const path = String(job.index);
  const original = fc.sample(arbFor(job.strategy), { seed: job.seed, path, numRuns: 1 })[0]!;
  const reproduced = violates(runScenario(original, v), job.property);
  let shrinkRuns = 0;
  let complete = true;
  let candidate = original;
  if (reproduced && !ctl.interrupted()) {
    let lastYield = Date.now();
    const shrink = await fc.check(
      fc.asyncProperty(arbFor(job.strategy), async (s) => {
        if (Date.now() - lastYield >= opts.yieldMs) {
          await yieldToLoop();
          lastYield = Date.now();
        }
        // Interrupted: every further candidate "passes", so the shrink ends with the best so far.
        if (ctl.interrupted()) {
          complete = false;
          return true;
        }
        shrinkRuns++;
        return !violates(runScenario(s, v), job.property);
      }),
      {
        seed: job.seed,
        path,
        numRuns: 1,
        interruptAfterTimeLimit: job.shrinkTimeMs,
        markInterruptAsFailure: false,
      },
    );
    candidate = shrink.counterexample?.[0] ?? original;
    // The same reduction as fuzz(), with the same deadline (from the start of the shrink), and
    // the event loop let in as often as during the shrink.
    const r = reduceSpec(v, job.property, t0 + job.shrinkTimeMs);
    const reduced = await reduceAsync(
      candidate,
      r.keeps,
      { ...r.opts, stop: () => ctl.interrupted() },
      async () => {
        if (Date.now() - lastYield >= opts.yieldMs) {
          await yieldToLoop();
          lastYield = Date.now();
        }
      },
    );
    if (!reduced.complete && ctl.interrupted()) complete = false;
    shrinkRuns += reduced.runs;
    candidate = reduced.scenario;
  } else if (reproduced) {
    complete = false;
  }
  const { scenario, message } = reproduced
    ? finishShrink(candidate, v, job.property)
    : { scenario: original, message: '' };
  return {
    kind: 'shrink',
    original,
    scenario,
    message,
    shrinkRuns,
    shrinkMs: Math.round(performance.now() - t0),
    complete,
    reproduced,
  };
}
