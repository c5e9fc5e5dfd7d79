import { describe, expect, test } from 'vitest';
import { estimate, fmtBar, fmtLine, type ProgressState } from './progress.ts';

const p = (over: Partial<ProgressState> = {}): ProgressState => ({
  runs: 5000,
  violatingRuns: 0,
  violations: 0,
  elapsedMs: 2000,
  stopping: false,
  ...over,
});

describe('progress', () => {
  test('with --time: fraction and time left come from the clock', () => {
    expect(estimate(p(), { timeMs: 8000 })).toEqual({ done: 0.25, leftMs: 6000 });
    expect(fmtBar(p(), { timeMs: 8000 })).toBe(
      '[####------------]  25%  5,000 runs  2,500 runs/s  0 violations  0:06 left',
    );
  });

  test('with --runs: from the rate so far', () => {
    expect(estimate(p(), { runs: 20000 })).toEqual({ done: 0.25, leftMs: 6000 });
    expect(fmtLine(p({ violations: 1, violatingRuns: 3 }), { runs: 20000 })).toBe(
      'fuzz: 5,000 runs, 2,500 runs/s, 1 violation (3 violating runs), 0:06 left',
    );
  });

  test('the bar fits the terminal and says when it is winding down', () => {
    expect(fmtBar(p(), { timeMs: 8000 }, 40).length).toBeLessThanOrEqual(39);
    expect(fmtLine(p({ stopping: true }), { timeMs: 8000 })).toMatch(
      /stopping: shrinking and writing the report$/,
    );
  });
});
