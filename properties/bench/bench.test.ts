/**
 * The benchmark command runs and reports every figure. Speed targets live in the benchmark's own
 * output, never here: this only checks that `--quick --json` prints the expected keys with sane
 * values, that a baseline comparison works, and the small pure helpers.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { type BenchResult, compare, formatText, isBenchResult } from './report.ts';
import { median, quantile } from './stats.ts';
import { expectUsageError } from '../cli/expect-usage.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

function bench(...args: string[]) {
  const r = spawnSync(tsx, ['properties/cli/bench.ts', ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const sane = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;

describe('npm run bench -- --quick --json', () => {
  let result: BenchResult;
  let file: string;

  beforeAll(() => {
    const r = bench('--quick', '--json', '--seeds', '1', '--memory-seconds', '2');
    expect(r.code, r.err).toBe(0);
    const last = r.out.trim().split('\n').at(-1)!;
    result = JSON.parse(last) as BenchResult;
    file = join(mkdtempSync(join(tmpdir(), 'bench-')), 'baseline.json');
    writeFileSync(file, r.out);
  });

  test('prints one object with every figure, each positive and finite', () => {
    expect(isBenchResult(result)).toBe(true);
    expect(result.quick).toBe(true);
    expect(result.machine.nproc).toBeGreaterThan(0);
    expect(typeof result.machine.cpu).toBe('string');
    expect(result.machine.node).toMatch(/^v\d+/);
    for (const x of [
      result.singleCore.stepsPerSec,
      result.singleCore.scenariosPerSec,
      result.singleCore.steps,
      result.allCores.stepsPerSec,
      result.allCores.scenariosPerSec,
      result.allCores.speedup,
      result.observers.stepsPerSecOn,
      result.observers.stepsPerSecOff,
      result.observers.overhead,
      result.memory.peakRssMB,
      result.memory.runs,
      result.memory.scenariosPerSec,
    ]) {
      expect(sane(x), String(x)).toBe(true);
    }
    expect(result.allCores.workers).toBeGreaterThan(0);
    expect(result.mix.scenariosUsed).toBeGreaterThan(0);
    expect(result.detection.strategies).toEqual({
      uniform: 'measured',
      pct: 'measured',
      both: 'not measured',
    });
    expect(result.detection.rows.length).toBeGreaterThan(0);
    for (const row of result.detection.rows) {
      for (const strategy of ['uniform', 'pct'] as const) {
        const searches = row.strategies[strategy]!;
        for (const f of [searches.fuzz, searches.differential]) {
          expect(f.runs).toHaveLength(row.seeds);
          if (f.medianMs !== null) expect(f.medianMs).toBeGreaterThanOrEqual(0);
        }
      }
    }
    expect(result.targets.map((t) => typeof t.met)).toEqual(result.targets.map(() => 'boolean'));
  });

  test('--baseline FILE prints the ratio of every figure to that run', () => {
    const r = bench('--quick', '--json', '--seeds', '1', '--memory-seconds', '1', '--baseline', file);
    expect(r.code, r.err).toBe(0);
    const again = JSON.parse(r.out.trim().split('\n').at(-1)!) as BenchResult;
    const byName = new Map(again.comparison!.map((c) => [c.figure, c]));
    for (const name of ['one core steps/s', 'all cores steps/s', 'observer overhead', 'peak RSS MB']) {
      expect(sane(byName.get(name)?.ratio), name).toBe(true);
    }
  });

  test('compare() against itself: every known ratio is 1; the text report has the tables', () => {
    for (const c of compare(result, result)) if (c.ratio !== null) expect(c.ratio).toBeCloseTo(1, 9);
    const text = formatText({ ...result, comparison: compare(result, result) });
    expect(text).toMatch(/one core/);
    expect(text).toMatch(/catalog row/);
    expect(text).toMatch(/against the baseline/);
  });
});

describe('npm run bench: bad input', () => {
  test.each([
    [['--runs', 'many'], /--runs takes a whole number/],
    [['--rows', 'no-such-row'], /unknown catalog row 'no-such-row'/],
    [['--strategies', 'uniform,dfs'], /unknown strategy 'dfs'/],
    [['--baseline', '/nonexistent/file.json'], /cannot read --baseline/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
  ])('%j: one line, exit 2, nothing on stdout', (args, msg) => {
    const r = bench(...args);
    expectUsageError(r, msg);
  });
});

describe('stats', () => {
  test('median and nearest-rank quantile; a search that found nothing counts as +∞', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([1, Infinity])).toBe(Infinity);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBe(9);
    expect(quantile([5, 1, Infinity], 0.9)).toBe(Infinity);
  });
});
