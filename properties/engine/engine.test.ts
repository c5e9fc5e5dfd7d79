/**
 * The parallel engine: seeds and shards, agreement with fuzz() whatever the number of workers,
 * keep-going, interrupts, crashes and the replay check.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { Variant } from '../../impl/variants.ts';
import { fuzz } from '../fuzz.ts';
import { runScenario } from '../runner.ts';
import { scenarioArb } from '../scenario.ts';
import { Engine, type EngineSpec, type EngineState, NONDETERMINISM } from './engine.ts';
import { Control, type Job, type JobEvent } from './jobs.ts';
import { type Executor, InProcess, type Outcome, WorkerPool } from './pool.ts';
import { blockAt, MIN_BLOCK, parseShard, ShardError, shardSeed, WHOLE } from './seeds.ts';
import { shapeOf } from './shape.ts';

const spec = (over: Omit<Partial<EngineSpec>, 'variant'> & { variant: string }): EngineSpec => ({
  seed: 1,
  shard: WHOLE,
  runs: 300,
  keepGoing: false,
  shrinkTimeMs: 60_000,
  ...over,
  variant: Variant.parse(over.variant),
});

async function runEngine(s: EngineSpec, make: (ctl: Control) => Executor = (c) => new InProcess(c)) {
  const ctl = Control.create();
  return new Engine(s, make(ctl), ctl).run();
}

/** Everything repeatable about an outcome. */
const repeatable = (st: EngineState) => ({
  runs: st.runs,
  steps: st.steps,
  byProperty: st.byProperty,
  end: st.end,
  violations: st.violations.map((v) => ({
    property: v.property,
    message: v.message,
    scenario: v.scenario,
    index: v.index,
    runsToDetect: v.runsToDetect,
    seen: v.seen,
  })),
});

describe('seeds and shards', () => {
  test('shard 1/1 searches the job seed itself', () => {
    expect(shardSeed(12345, WHOLE)).toBe(12345);
  });

  test('the shards of a job have pairwise distinct stream seeds', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.integer({ min: 2, max: 64 }), (seed, count) => {
        const seeds = Array.from({ length: count }, (_, i) => shardSeed(seed, { index: i + 1, count }));
        expect(new Set(seeds).size).toBe(count);
        for (const s of seeds) expect(Number.isInteger(s) && s >= 0 && s <= 0xffffffff).toBe(true);
      }),
    );
  });

  test.each(['0/4', '5/4', '1/0', 'a/b', '2', '2/4/1', ''])('bad shard spec %j', (spec) => {
    expect(() => parseShard(spec)).toThrow(ShardError);
  });

  test('blocks tile the stream without gap or overlap, and stop at the limit', () => {
    let at = 0;
    const limit = 50_000;
    while (true) {
      const b = blockAt(at, limit);
      if (b === null) break;
      expect(b.start).toBe(at);
      expect(b.size).toBeGreaterThanOrEqual(Math.min(MIN_BLOCK, limit - at));
      at += b.size;
    }
    expect(at).toBe(limit);
  });
});

describe('stopping at the first: the same outcome as fuzz()', () => {
  test.each([
    ['mainline', 1, 300],
    ['v4', 2, 400],
    ['v4+late-isr-misclassified', 3, 400],
    ['v4+done-ignores-result', 4, 200],
    ['v4', 5, 40],
    // A conformance violation only: the grace window ends mid-block, well before the budget.
    ['v4+no-reset-device-done', 1, 3000],
  ])('%s seed %i, %i runs', async (variant, seed, runs) => {
    const legacy = fuzz({ variant: Variant.parse(variant), seed, runs });
    const st = await runEngine(spec({ variant, seed, runs }));
    expect(st.runs).toBe(legacy.runs);
    expect(st.steps).toBe(legacy.steps);
    const lv = legacy.violation;
    expect(st.violations.length).toBe(lv === null ? 0 : 1);
    if (lv !== null) {
      const v = st.violations[0]!;
      expect({ p: v.property, m: v.message, s: v.scenario, r: v.runsToDetect }).toEqual({
        p: lv.property,
        m: lv.message,
        s: lv.scenario,
        r: lv.runsToDetect,
      });
      expect(st.end).toBe('violation');
    } else {
      expect(st.end).toBe('budget');
    }
  });

  test('worker threads give the same outcome as the in-process path', async () => {
    const s = spec({ variant: 'v4+late-isr-misclassified', seed: 9, runs: 700 });
    const one = await runEngine(s);
    const two = await runEngine(s, (c) => new WorkerPool(2, c));
    expect(repeatable(two)).toEqual(repeatable(one));
  });
});

describe('coverage', () => {
  test.each([
    ['v4+late-isr-misclassified', 3, 400],
    ['v4', 5, 150],
  ])('%s seed %i, %i runs: the runs counted, as fuzz() records them', async (variant, seed, runs) => {
    const legacy = fuzz({ variant: Variant.parse(variant), seed, runs, coverage: true });
    const st = await runEngine(spec({ variant, seed, runs, coverage: true }));
    expect(st.coverage?.toJSON()).toEqual(legacy.coverage);
    expect((await runEngine(spec({ variant, seed, runs: 20 }))).coverage).toBeUndefined();
  });

  test('worker threads that ran past the stop record the same as the in-process path', async () => {
    const s = spec({ variant: 'v4+late-isr-misclassified', seed: 9, runs: 700, coverage: true });
    const one = await runEngine(s);
    const two = await runEngine(s, (c) => new WorkerPool(2, c));
    expect(one.end).toBe('violation');
    expect(two.coverage!.toJSON()).toEqual(one.coverage!.toJSON());
    const stamps = Object.values(one.coverage!.toJSON().ops);
    expect(Math.max(...stamps)).toBeLessThan(one.runs);
  });
});

describe('keep going', () => {
  // A flag whose violations shrink fast (each distinct one is shrunk): several, in 600 runs.
  const s = spec({ variant: 'v4+late-isr-misclassified', seed: 2, runs: 600, keepGoing: true });

  test('repeatable, one report per property + shape, each replaying its property', async () => {
    const a = await runEngine(s);
    const b = await runEngine(s);
    expect(repeatable(b)).toEqual(repeatable(a));
    expect(a.runs).toBe(600);
    expect(a.end).toBe('budget');
    const keys = a.violations.map((v) => v.key);
    expect(keys.length).toBeGreaterThan(1);
    expect(new Set(keys).size).toBe(keys.length);
    for (const v of a.violations) {
      expect(v.shape).toBe(shapeOf(v.scenario));
      expect(runScenario(v.scenario, s.variant).violations.map((x) => x.property)).toContain(v.property);
    }
    // Every violating run is counted, and nothing is reported that was not counted.
    expect(a.violatingRuns).toBe(Object.values(a.byProperty).reduce((x, y) => x + y, 0));
    for (const v of a.violations) expect(a.byProperty[v.property]).toBeGreaterThan(0);
  });

  test('does not depend on how the stream is split over workers', async () => {
    const one = await runEngine(s);
    const two = await runEngine(s, (c) => new WorkerPool(2, c));
    expect(repeatable(two)).toEqual(repeatable(one));
  });
});

describe('interrupts, crashes and the replay check', () => {
  test('an interrupt ends the search with a consistent state', async () => {
    const ctl = Control.create();
    const engine = new Engine(
      spec({ variant: 'v4+late-isr-misclassified', runs: undefined, timeMs: 60_000, keepGoing: true }),
      new InProcess(ctl),
      ctl,
    );
    const done = engine.run();
    setTimeout(() => engine.interrupt('SIGINT'), 300);
    const st = await done;
    expect(st.end).toBe('interrupted');
    expect(st.interruptedBy).toBe('SIGINT');
    expect(st.elapsedMs).toBeLessThan(30_000);
    expect(st.runs).toBe(st.executedRuns);
    for (const v of st.violations) expect(v.replay.violations.map((x) => x.property)).toContain(v.property);
  });

  /** Runs jobs in-process, but the n-th search job crashes after its first violating run. */
  class CrashingExecutor implements Executor {
    readonly size = 1;
    private searches = 0;
    constructor(
      private readonly inner: InProcess,
      private readonly crashSearch: number,
    ) {}
    async run(job: Job, onEvent: (e: JobEvent) => void): Promise<Outcome> {
      if (job.kind === 'search' && ++this.searches === this.crashSearch) {
        let forwarded = false;
        const r = await this.inner.run(job, (e) => {
          if (forwarded) return;
          onEvent(e);
          if (e.type === 'found') forwarded = true;
        });
        return r.ok ? { ok: false, error: 'worker exited with code 70' } : r;
      }
      return this.inner.run(job, onEvent);
    }
    async close() {}
  }

  test('a crashed worker loses nothing it had reported, and the crash is recorded', async () => {
    const s = spec({ variant: 'v4+late-isr-misclassified', seed: 2, runs: 3 * MIN_BLOCK, keepGoing: true });
    const clean = await runEngine(s);
    const crashed = await runEngine(s, (c) => new CrashingExecutor(new InProcess(c), 2));
    expect(crashed.crashes).toHaveLength(1);
    expect(crashed.crashes[0]!.job).toMatch(/^search 250\.\.499$/);
    expect(crashed.crashes[0]!.runsLost).toBeGreaterThan(0);
    // The blocks before the crash are all there.
    const before = (st: EngineState) => st.violations.filter((v) => v.index < MIN_BLOCK).map((v) => v.key);
    expect(before(clean).length).toBeGreaterThan(0);
    expect(before(crashed)).toEqual(before(clean));
    expect(crashed.executedRuns).toBeLessThan(clean.executedRuns);
    expect(crashed.violatingRuns).toBeLessThanOrEqual(clean.violatingRuns);
  });

  test('a shrunk counterexample that does not replay is reported as harness-nondeterminism', async () => {
    const variant = 'v4+done-ignores-result';
    // The shrink "result" is a harmless scenario: replaying it shows nothing.
    const harmless = fc
      .sample(scenarioArb, { seed: 4, numRuns: 50 })
      .find((x) => runScenario(x, Variant.parse(variant)).violations.length === 0)!;
    class LyingExecutor extends InProcess {
      override async run(job: Job, onEvent: (e: JobEvent) => void): Promise<Outcome> {
        const r = await super.run(job, onEvent);
        if (job.kind !== 'shrink' || !r.ok || r.result.kind !== 'shrink') return r;
        return { ok: true, result: { ...r.result, scenario: harmless } };
      }
    }
    const s = spec({ variant, seed: 1, runs: 3000 });
    // Precondition (detection.test.ts finds this flag's bug with this budget).
    expect(fuzz({ variant: s.variant, seed: 1, runs: 3000 }).violation).not.toBeNull();
    const st = await runEngine(s, (c) => new LyingExecutor(c));
    expect(st.violations).toHaveLength(1);
    expect(st.violations[0]!.property).toBe(NONDETERMINISM);
    expect(st.violations[0]!.message).toMatch(/does not violate it when replayed/);
  });
});
