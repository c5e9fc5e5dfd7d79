/**
 * Bounded catalog run with fixed seeds: every row listed as detectable must be found by the
 * generic differential search (fails under v4+flag, passes under v4) and shrink to at most one
 * operation more than its witness. The rows not
 * yet detectable are listed, not hidden: moving one into DETECTABLE is how progress shows.
 */
import { describe, expect, test } from 'vitest';
import { FLAGS } from '../impl/variants.ts';
import { detect, LIMIT_OPTIONS } from './catalog.ts';
import { scenarioSize } from './scenario.ts';
import { LIMITS, WITNESSES } from './witnesses/witnesses.ts';

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
] as const;

/**
 * Rows that need a longer search. stale-atc-timeout-bit needs an ATC timeout and then a full
 * wrap of the ring onto the same slot. Since 1 topology in 4 has CPU stalls (which shifted every
 * seed's scenarios), seeds 1-10 find it at 6931, 5344, 1569, 7561, 7858, 1680, -, -, 1781, 2299
 * runs (before: 7 of 10 within 4000, seed 3 at 7772). atc-inv-to-broken, likewise: 196, 7435, 777,
 * 1801, -, 1071, 74, 2630, 527, 26 (- : not within 12,000; before: all 10 within 3015). With the
 * gerror operation in the generator (every seed shifted again), seed 3 needs 10,470 (uniform).
 */
const RUNS: Partial<Record<(typeof DETECTABLE)[number], number>> = {
  'stale-atc-timeout-bit': 16000,
  'atc-inv-to-broken': 12000,
};

/**
 * Rows found by the PCT strategy, not by uniform choices. atc-bit-cleared-after-publish needs a
 * CPU stall (topology `stalls`) right after the issuer's PROD write, then the GERROR handler ahead
 * of the issuer: PCT finds it on seeds 1-5 within 900 runs; uniform choices on 1 of seeds 1-3
 * within 20,000.
 */
const STRATEGY: Partial<Record<(typeof DETECTABLE)[number], 'uniform' | 'pct'>> = {
  'atc-bit-cleared-after-publish': 'pct',
  // With reset methods and arm_smmu_asid_lock (every seed shifted again): PCT finds it on seeds
  // 1-6 at 9326, 464, 14837, 5164, 3794, 2329 runs; uniform at 65, -, 15734, -, 3024, 261.
  'stale-atc-timeout-bit': 'pct',
};

/** Not yet reached by the generic search within a test budget (issue: find them all). */
const NOT_YET = [
  'stale-broken-report',
  'full-queue-stall',
  'ats-reenabled-while-broken',
  'reset-clears-broken-midway',
  'broken-work-uaf',
  'master-freed-under-rcu',
] as const;

describe('catalog detection', () => {
  test('every flag is either detectable or listed as not yet', () => {
    expect([...DETECTABLE, ...NOT_YET].sort()).toEqual(FLAGS.map((f) => f.id).sort());
  });

  // As `npm run catalog` does with --strategy both: one strategy, then the other if need be.
  test.each(DETECTABLE)('%s is found with seeds 1-3 and shrinks', (flag) => {
    const first = STRATEGY[flag] ?? 'uniform';
    const second = first === 'uniform' ? 'pct' : 'uniform';
    const w = WITNESSES.find((x) => x.flag === flag);
    const bound = w === undefined ? 8 : scenarioSize(w.scenario).ops + 1;
    for (const seed of [1, 2, 3]) {
      const runs = RUNS[flag] ?? 4000;
      let d = detect(flag, seed, { runs, strategy: first });
      if (!d.detected) d = detect(flag, seed, { runs, strategy: second });
      expect(d.detected, `seed ${seed}`).toBe(true);
      // The shrink (fast-check's, then the reducer's) ends near the witness.
      expect(d.shrunk!.ops, `seed ${seed}: ${JSON.stringify(d.scenario)}`).toBeLessThanOrEqual(bound);
    }
  });

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
});
