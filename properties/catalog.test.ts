/**
 * Bounded catalog run with fixed seeds: every row listed as detectable must be found by the
 * generic differential search (fails under v4+flag, passes under v4; a masked row on v4 with its
 * unmasking flags, baselineOf) and shrink to at most one operation more than its witness. The rows not yet
 * detectable are listed, not hidden: moving one into DETECTABLE is how progress shows.
 */
import { test as propTest } from '@fast-check/vitest';
import { describe, expect, test } from 'vitest';
import { FLAGS, Variant } from '../impl/variants.ts';
import {
  baselineOf,
  detect,
  LIMIT_OPTIONS,
  SUB_SHAPE_MAX_OPS,
  shrinkFurther,
  hangsFirst,
  smallerShapes,
} from './catalog.ts';
import { runScenario } from './runner.ts';
import { mixedScenarioArb, type Scenario, scenarioSize } from './scenario.ts';
import { LIMITS, WITNESSES, witnessOf } from './witnesses/witnesses.ts';

const DETECTABLE = [
  'done-ignores-result',
  'no-reset-device-done',
  'stale-atc-timeout-bit',
  'late-isr-misclassified',
  'atc-inv-to-broken',
  'eats-lost-update',
  'async-batch-flush',
  'blame-first-sid',
  'inv-during-flr',
  'unplug-leaks-recovery-cnt',
  'probe-blocks-iommu',
  'flr-result-dropped',
  'enable-ats-failure-desync',
  'vf-ats-ignores-pf-quirk',
  'vf-stu-unchecked',
  'atc-bit-cleared-after-publish',
  'full-queue-stall',
  'stale-broken-report',
  // masked in v4 by P23: searched on v4+eats-lost-update
  'ats-reenabled-while-broken',
  // since the seventeenth session; its finds here are v4's sync finding (BORROWED)
  'master-freed-under-rcu',
] as const;

/**
 * Rows that need a longer search than 4000 runs: only master-freed-under-rcu, since the
 * seventeenth session (below). None of the others since choice streams are drawn up to their
 * full length (scenario.ts). With uniform choices, seeds 1-6 (runs to detect, shrunk ops):
 * stale-atc-timeout-bit 20(3) 41(3) 281(2) 130(2) 566(3) 103(3); atc-inv-to-broken 35(3) 624(4)
 * 192(3) 166(3) 329(3) 358(3); eats-lost-update 105(4) 1494(4) 1720(3) 1518(3) 914(3) 768(3).
 * (Before, with streams capped near 10 choices: stale-atc-timeout-bit needed PCT and 16,000 runs,
 * atc-inv-to-broken 12,000.)
 */
const RUNS: Partial<Record<(typeof DETECTABLE)[number], number>> = {
  // Uniform, seeds 1-3 (seventeenth session): 66, 1464 and 10,162 runs, shrunk to 4, 3, 3.
  'master-freed-under-rcu': 12_000,
};

/**
 * Rows whose finds on seeds 1-3 are, as far as a replay can tell, v4's sync finding (a failed
 * CMD_SYNC taken for a plain timeout) reached through the flag's timing, and not the row's own
 * bug: each fails under v4+flag and passes under v4, as a detection must, and passes under
 * v4+`passesWith`+flag. Listed, not hidden, as the catalog's `own on fixed` column shows them:
 * the test checks each still stands, so a search that reaches the row's own race on one of
 * these seeds fails here, and the entry goes.
 *
 * master-freed-under-rcu: its own race needs a device joining the domain the unmap walks while
 * a third is unplugged (the witness), drawn too rarely for any seed to reach in the catalog's
 * 30 s (README, Catalog); what the search finds first fires `refinement`.
 */
const BORROWED: Partial<Record<(typeof DETECTABLE)[number], { passesWith: string }>> = {
  'master-freed-under-rcu': { passesWith: 'fix-sync-behind-failure' },
};

/**
 * Rows searched with PCT first (as the CLI does with uniform first; the order only saves time).
 * stale-broken-report: a hang landing while the reset's prepare flushes the ATC (with CPU stalls),
 * found by PCT on seeds 1-3 at 1992, 602, 494 runs, each shrunk to its 2 operations; uniform
 * choices within 4000 runs: -, 3912 (shrunk to 4 operations), 316 (6).
 * Earlier: atc-bit-cleared-after-publish needs a CPU stall right after the issuer's PROD write,
 * then the GERROR handler ahead of the issuer; uniform choices find it on seeds 1-6 at 106, 162,
 * 37, 30, 90, 257 runs (PCT: 619, 554, 1363 on seeds 1-3). full-queue-stall (11 explicit choices
 * in its witness): uniform, seeds 1-6 at 20, 41, 37, 126, 63, 104 runs.
 */
const STRATEGY: Partial<Record<(typeof DETECTABLE)[number], 'uniform' | 'pct'>> = {
  'stale-broken-report': 'pct',
};

/**
 * Seeds whose find the shrink leaves above the row's bound (its witness's operations plus 1):
 * listed, not hidden. The test checks each still stands as stated, so a shrink that gets one
 * down fails here, and the entry goes.
 *
 * atc-inv-to-broken seed 1, since the fence in arm_smmu_invs_unref() (thirteenth session): an
 * 18-operation find on one CPU that shrinks to 5 (a hang, an unmap and a working reset; a second
 * hang; a failing reset). It is v4's sync finding (a failed CMD_SYNC taken for a plain timeout),
 * which the flag's extra ATC_INVs to the broken function reach: v4 with fix-sync-behind-failure
 * and the flag passes it. No 4 of its operations fail in any of the 75 ways to arrange them in
 * rounds (200 schedules each, with and without CPU stalls), nor any 3 or 4 of the 11 that
 * fast-check's shrink left (426 shapes); the row's 3-operation witness fails only in a topology
 * of its own (3 CPUs, a 16-entry queue, a 200 ms ATC timeout), which no shrink step grows to.
 */
const OVER_BOUND: Partial<
  Record<(typeof DETECTABLE)[number], { seed: number; ops: number; passesWith: string }>
> = {
  'atc-inv-to-broken': { seed: 1, ops: 5, passesWith: 'fix-sync-behind-failure' },
};

/** Not yet reached by the generic search within a test budget (issue: find them all). */
const NOT_YET = ['reset-clears-broken-midway', 'broken-work-uaf'] as const;

describe('catalog detection', () => {
  test('every flag is either detectable or listed as not yet', () => {
    expect([...DETECTABLE, ...NOT_YET].sort()).toEqual(FLAGS.map((f) => f.id).sort());
  });

  // One strategy, then the other if need be (the CLI mixes them per scenario: scenario.ts).
  test.each(DETECTABLE)('%s is found with seeds 1-3 and shrinks', (flag) => {
    const first = STRATEGY[flag] ?? 'uniform';
    const second = first === 'uniform' ? 'pct' : 'uniform';
    const w = witnessOf(flag);
    const bound = w == null ? 8 : scenarioSize(w).ops + 1;
    const baseline = baselineOf(flag, 'v4');
    for (const seed of [1, 2, 3]) {
      const runs = RUNS[flag] ?? 4000;
      let d = detect(flag, seed, { runs, strategy: first });
      if (!d.detected) d = detect(flag, seed, { runs, strategy: second });
      expect(d.detected, `seed ${seed}`).toBe(true);
      const under = (variant: string) => runScenario(d.scenario!, Variant.parse(variant)).violations;
      // The shrink (fast-check's, the reducer's, then redrawn and rescheduled smaller scenarios)
      // ends near the witness, and what it ends with still fails under the flag alone.
      const over = OVER_BOUND[flag];
      if (over?.seed === seed) {
        expect(d.shrunk!.ops, `seed ${seed}: listed over its bound`).toBe(over.ops);
        expect(under(`${baseline}+${over.passesWith}+${flag}`)).toEqual([]);
      } else {
        expect(d.shrunk!.ops, `seed ${seed}: ${JSON.stringify(d.scenario)}`).toBeLessThanOrEqual(bound);
      }
      expect(under(`${baseline}+${flag}`)).not.toEqual([]);
      expect(under(baseline)).toEqual([]);
      const borrowed = BORROWED[flag];
      if (borrowed !== undefined) {
        const fixed = `${baseline}+${borrowed.passesWith}+${flag}`;
        expect(under(fixed), `seed ${seed}: listed as borrowed`).toEqual([]);
      }
    }
  });

  /**
   * The same search on v4 with its own findings fixed (--base v4-fixed), where a flag cannot be
   * credited with one of them: two rows whose v4 detections mostly carry the sync finding's
   * signature (an ATC timeout reported as a plain timeout) are found there as their own bug
   * (fourth session, 10 seeds x 30 s: found 10/10, median 32 and 45 ms).
   */
  test.each(['stale-atc-timeout-bit', 'eats-lost-update'] as const)(
    '%s is found as its own bug on v4-fixed, seeds 1-3',
    (flag) => {
      const bound = scenarioSize(WITNESSES.find((x) => x.flag === flag)!.scenario).ops + 1;
      for (const seed of [1, 2, 3]) {
        let d = detect(flag, seed, { runs: 4000, base: 'v4-fixed' });
        if (!d.detected) d = detect(flag, seed, { runs: 4000, base: 'v4-fixed', strategy: 'pct' });
        expect(d.detected, `seed ${seed}`).toBe(true);
        expect(d.shrunk!.ops).toBeLessThanOrEqual(bound);
        expect(runScenario(d.scenario!, Variant.parse(`v4-fixed+${flag}`)).violations).not.toEqual([]);
        expect(runScenario(d.scenario!, Variant.parse('v4-fixed')).violations).toEqual([]);
      }
    },
  );

  // Known limits are v4's own: found with their option on, and the scenario passes without it.
  test.each(Object.keys(LIMIT_OPTIONS))('known limit %s is found with its option on, seeds 1-3', (id) => {
    const l = LIMITS.find((x) => x.id === id)!;
    expect(l.scenario).not.toBeNull();
    const bound = scenarioSize(l.scenario!).ops + 1;
    for (const seed of [1, 2, 3]) {
      const d = detect(id, seed, { runs: 2000 });
      expect(d.detected, `seed ${seed}`).toBe(true);
      expect(d.shrunk!.ops).toBeLessThanOrEqual(bound);
    }
  });

  /**
   * The sub-shape step (catalog.ts subShapes): until the seventh session the mixed search's seed 7
   * found the row as two resets on one CPU, a hang and an attach, a local minimum (no operation
   * can be dropped under 12,000 fresh schedules); the hang and the reset of one device, in one
   * round with CPU stalls, fail under about 2 PCT schedules in 100. Without the step it stays at
   * 4 operations. (The search no longer finds it on that seed since rounds have 4 operations, so
   * the test starts from the scenario.)
   */
  test('stale-broken-report: a 4-operation local minimum shrinks to its 2-operation shape', () => {
    const s: Scenario = LOCAL_MINIMUM;
    expect(scenarioSize(s).ops).toBe(4);
    const shrunk = shrinkFurther(
      'stale-broken-report',
      s,
      { runs: 0, strategy: 'both' },
      7,
      performance.now() + 30_000,
    );
    expect(scenarioSize(shrunk).ops).toBeLessThanOrEqual(2);
    for (const x of [s, shrunk]) {
      expect(runScenario(x, Variant.parse('v4+stale-broken-report')).violations).not.toEqual([]);
      expect(runScenario(x, Variant.parse('v4')).violations).toEqual([]);
    }
  });
});

/** stale-broken-report as the mixed search's seed 7 found it until the seventh session, reduced. */
const LOCAL_MINIMUM: Scenario = {
  topology: {
    cpus: 1,
    devices: [
      { ats: true, sids: 1, quirk: false },
      { ats: true, sids: 1, quirk: false },
    ],
    gerrorIrqCpu: 0,
    queueShift: 2,
    batchEntries: 2,
    atcTimeoutUs: 50000,
    iovas: 1,
  },
  rounds: [
    [
      { kind: 'reset', cpu: 0, dev: 0, outcome: 'ok' },
      { kind: 'reset', cpu: 0, dev: 1, outcome: 'ok' },
    ],
    [{ kind: 'hang', dev: 1 }],
    [{ kind: 'attach', cpu: 0, dev: 1, domain: 1 }],
  ],
  choices: [
    0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1,
  ],
};

describe('smallerShapes', () => {
  const key = (o: unknown) => JSON.stringify(o);
  propTest.prop([mixedScenarioArb], { numRuns: 40 })(
    'sub-multisets of the operations, fewer and at most SUB_SHAPE_MAX_OPS, each once, fewest first',
    (s) => {
      const ops = s.rounds.flat().map(key);
      const shapes = smallerShapes(s);
      const sizes = shapes.map((r) => r.flat().length);
      expect(sizes).toEqual([...sizes].sort((a, b) => a - b));
      expect(new Set(shapes.map(key)).size).toBe(shapes.length);
      for (const rounds of shapes) {
        const n = rounds.flat().length;
        expect(n).toBeGreaterThan(0);
        expect(n).toBeLessThan(ops.length);
        expect(n).toBeLessThanOrEqual(SUB_SHAPE_MAX_OPS);
        expect(rounds.every((r) => r.length > 0)).toBe(true);
        const left = [...ops];
        for (const o of rounds.flat().map(key)) {
          const i = left.indexOf(o);
          expect(i).toBeGreaterThanOrEqual(0);
          left.splice(i, 1);
        }
      }
      // Every single operation is tried alone when there are at least two.
      if (ops.length > 1)
        expect(new Set(shapes.filter((r) => r.flat().length === 1).map(key)).size).toBe(new Set(ops).size);
    },
  );
});

describe('hangsFirst', () => {
  const key = (o: unknown) => JSON.stringify(o);
  propTest.prop([mixedScenarioArb])(
    'the same operations: the hangs in a first round of their own, the rest in their order in one round',
    (s) => {
      const ops = s.rounds.flat();
      const r = hangsFirst(s.rounds);
      expect(r.flat().map(key).sort()).toEqual(ops.map(key).sort());
      expect(r.every((round) => round.length > 0)).toBe(true);
      const hangs = ops.filter((o) => o.kind === 'hang');
      if (hangs.length > 0) expect(r[0]!.map(key)).toEqual(hangs.map(key));
      expect(r.at(-1)!.map(key)).toEqual(
        (hangs.length === ops.length ? hangs : ops.filter((o) => o.kind !== 'hang')).map(key),
      );
      expect(r.length).toBeLessThanOrEqual(2);
    },
  );
});
