/** The catalog command: bad input (one line, exit 2, nothing written), bases, workers, saved finds. */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { Variant } from '../../impl/variants.ts';
import { parseCounterexample } from '../counterexample-file.ts';
import { runScenario } from '../runner.ts';
import { expectUsageError } from './expect-usage.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

const tmp = mkdtempSync(join(tmpdir(), 'atc-catalog-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let outs = 0;
const freshOut = () => join(tmp, `out-${outs++}`);

/** Runs the CLI into a fresh temporary --out unless told otherwise; `dir` is the --out it had. */
function catalog(...args: string[]) {
  const given = args.indexOf('--out');
  const dir = given >= 0 ? args[given + 1]! : freshOut();
  const out = given >= 0 ? [] : ['--out', dir];
  const r = spawnSync(tsx, ['properties/cli/catalog.ts', ...args, ...out], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr, dir };
}

describe('npm run catalog', () => {
  test.each([
    [['--base', 'v5'], /unknown --base 'v5' \(known: v4, v4-fixed\)/],
    [['--strategy', 'random'], /unknown --strategy 'random'/],
    [['--flag', 'no-such-row'], /unknown row 'no-such-row'/],
    [['--seeds', '0'], /--seeds takes a whole number >= 1/],
    [['--workers', '0'], /--workers takes a whole number >= 1/],
    [['--out', ''], /--out takes a folder/],
  ])('bad input %j: one line, exit 2, nothing on stdout, no folder written', (args, msg) => {
    const r = catalog(...args);
    expectUsageError(r, msg);
    expect(existsSync(r.dir)).toBe(false);
  });

  test('--out must be empty: one line, exit 2, the folder left as it was', () => {
    const out = freshOut();
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'x');
    const r = catalog('--seeds', '1', '--runs', '5', '--flag', 'inv-during-flr', '--out', out);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--out .* is not empty/);
    expect(readdirSync(out)).toEqual(['keep.txt']);
  });

  test('every find is saved, replayable: it fails under base+flag and passes under the base', () => {
    const out = freshOut();
    const r = catalog(
      '--json',
      '--seeds',
      '2',
      '--runs',
      '500',
      '--flag',
      'no-reset-device-done',
      '--workers',
      '1',
      '--out',
      out,
    );
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.out);
    expect(summary.entries[0].finds).toEqual([
      'no-reset-device-done-seed1.json',
      'no-reset-device-done-seed2.json',
    ]);
    expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))).toEqual(summary);
    expect(readdirSync(out).sort()).toEqual([...summary.entries[0].finds, 'summary.json']);
    for (const f of summary.entries[0].finds) {
      const c = parseCounterexample(readFileSync(join(out, f), 'utf8'), f);
      expect(c.variant).toBe('v4+no-reset-device-done');
      expect(runScenario(c.scenario, Variant.parse(c.variant)).violations.map((v) => v.property)).toContain(
        c.property,
      );
      expect(runScenario(c.scenario, Variant.parse('v4')).violations).toEqual([]);
      // Listed as the row's own exactly when it is a differential on v4-fixed too.
      const onFixed =
        runScenario(c.scenario, Variant.parse('v4-fixed+no-reset-device-done')).violations.length > 0 &&
        runScenario(c.scenario, Variant.parse('v4-fixed')).violations.length === 0;
      expect(summary.entries[0].confirmedOnFixed.includes(f)).toBe(onFixed);
    }
  });

  test('--base v4-fixed searches there: a row is found and the table says which base', () => {
    const r = catalog('--base', 'v4-fixed', '--seeds', '1', '--runs', '500', '--flag', 'inv-during-flr');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^inv-during-flr\s+1\/1\s.*\s-$/m);
    expect(r.out).toMatch(/strategy both, base v4-fixed, \d+ worker\(s\)/);
  });

  test('--workers 2: both search every seed; the finder shrinks, and the runs of both count', () => {
    const args = ['--json', '--seeds', '2', '--runs', '500', '--flag', 'no-reset-device-done'];
    const one = JSON.parse(catalog(...args, '--workers', '1').out);
    const two = JSON.parse(catalog(...args, '--workers', '2').out);
    expect(one.workers).toBe(1);
    expect(two.workers).toBe(2);
    for (const r of [one, two]) {
      expect(r.entries[0].detected).toBe(true);
      expect(r.entries[0].shrunkOps).toBeLessThanOrEqual(r.entries[0].witnessOps + 1);
    }
    // Worker 0 searches the row's own seed, so two workers never need more runs than one: at
    // most twice the runs the single search needed (the other runs beside it, and a few more until it sees the stop).
    expect(two.entries[0].runsToDetectMedian).toBeLessThanOrEqual(2 * one.entries[0].runsToDetectMedian + 20);
  });
});
