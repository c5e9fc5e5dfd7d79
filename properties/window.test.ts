/** Schedule windows: which pair a row compares, determinism, and what the count means. */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type RowWindow, runsPerHit, scheduleWindow } from './window.ts';

const all = (w: RowWindow | null) => ({ uniform: w?.uniform.hits, pct: w?.pct.hits });

describe('scheduleWindow', () => {
  test('a witness no schedule can miss counts every schedule (inv-during-flr: one reset during FLR)', () => {
    expect(all(scheduleWindow('inv-during-flr', 'v4', 30, 1))).toEqual({ uniform: 30, pct: 30 });
  });

  test('a known limit compares its witness with its control: every schedule, not none', () => {
    // Were the witness its own baseline, it would fail there and no schedule would count.
    expect(all(scheduleWindow('enotty-keeps-blocked', 'v4', 30, 1))).toEqual({ uniform: 30, pct: 30 });
  });

  test('a masked row is measured on its unmasked base, where its witness fails', () => {
    // The witness passes under v4+ats-reenabled-while-broken (the mask, P23: witnesses.test).
    const w = scheduleWindow('ats-reenabled-while-broken', 'v4', 30, 1)!;
    expect(w.uniform.hits + w.pct.hits).toBeGreaterThan(0);
  });

  test('same row, runs and seed: the same counts (a row whose window is neither empty nor full)', () => {
    fc.assert(
      fc.property(fc.nat(1000), (seed) => {
        const w = scheduleWindow('sfm-kills-smmu', 'v4', 12, seed)!;
        expect(scheduleWindow('sfm-kills-smmu', 'v4', 12, seed)).toEqual(w);
        expect(w.uniform.runs).toBe(12);
        expect(w.pct.runs).toBe(12);
      }),
      { numRuns: 5 },
    );
  });

  test('sfm-kills-smmu: some uniform schedules miss its window (the counts are not all-or-nothing)', () => {
    const w = scheduleWindow('sfm-kills-smmu', 'v4', 60, 1)!;
    expect(w.uniform.hits).toBeGreaterThan(0);
    expect(w.uniform.hits).toBeLessThan(60);
  });

  test('an unknown row is an error', () => {
    expect(() => scheduleWindow('no-such-row', 'v4', 1, 1)).toThrow(/unknown row 'no-such-row'/);
  });
});

describe('runsPerHit', () => {
  test('all runs over all hits, or null when nothing hit', () => {
    const hits = fc.record({ hits: fc.nat(50), runs: fc.integer({ min: 50, max: 100 }) });
    fc.assert(
      fc.property(hits, hits, (uniform, pct) => {
        const r = runsPerHit({ id: 'x', base: 'v4', uniform, pct });
        if (uniform.hits + pct.hits === 0) expect(r).toBeNull();
        else expect(r! * (uniform.hits + pct.hits)).toBeCloseTo(uniform.runs + pct.runs);
      }),
    );
  });
});
