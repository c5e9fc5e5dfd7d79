/** The catalog command's bad input: one line on stderr, exit 2, nothing on stdout. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

function catalog(...args: string[]) {
  const r = spawnSync(tsx, ['properties/cli/catalog.ts', ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('npm run catalog', () => {
  test.each([
    [['--base', 'v5'], /unknown --base 'v5' \(known: v4, v4-fixed\)/],
    [['--strategy', 'random'], /unknown --strategy 'random'/],
    [['--flag', 'no-such-row'], /unknown row 'no-such-row'/],
    [['--seeds', '0'], /--seeds takes a whole number >= 1/],
    [['--workers', '0'], /--workers takes a whole number >= 1/],
  ])('bad input %j: one line, exit 2, nothing on stdout', (args, msg) => {
    const r = catalog(...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(msg);
  });

  test('--base v4-fixed searches there: a row is found and the table says which base', () => {
    const r = catalog('--base', 'v4-fixed', '--seeds', '1', '--runs', '500', '--flag', 'inv-during-flr');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^inv-during-flr\s+1\/1\s/m);
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
