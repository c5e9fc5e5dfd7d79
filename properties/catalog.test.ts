/**
 * Bounded catalog run with fixed seeds: every row listed as detectable must be found by the
 * generic differential search (fails under v4+flag, passes under v4) and shrink. The rows not
 * yet detectable are listed, not hidden: moving one into DETECTABLE is how progress shows.
 */
import { describe, expect, test } from 'vitest';
import { FLAGS } from '../impl/variants.ts';
import { detect } from './catalog.ts';

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
] as const;

/**
 * Rows that need a longer search. stale-atc-timeout-bit needs an ATC timeout and then a full
 * wrap of the ring onto the same slot: 7 of 10 seeds find it within 4000 runs, seed 3 at 7772.
 */
const RUNS: Partial<Record<(typeof DETECTABLE)[number], number>> = { 'stale-atc-timeout-bit': 8000 };

/** Not yet reached by the generic search within a test budget (issue: find them all). */
const NOT_YET = [
  'stale-broken-report',
  'atc-bit-cleared-after-publish',
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

  test.each(DETECTABLE)('%s is found with seeds 1-3 and shrinks', (flag) => {
    for (const seed of [1, 2, 3]) {
      const d = detect(flag, seed, { runs: RUNS[flag] ?? 4000 });
      expect(d.detected, `seed ${seed}`).toBe(true);
      expect(d.shrunk!.ops).toBeLessThanOrEqual(8);
    }
  });
});
