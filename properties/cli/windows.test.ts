/** npm run windows: bad input (one line, exit 2, nothing on stdout), JSON, determinism. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { expectUsageError } from './expect-usage.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

function windows(...args: string[]) {
  const r = spawnSync(tsx, ['properties/cli/windows.ts', ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('npm run windows', () => {
  test.each([
    [['--base', 'v5'], /unknown --base 'v5' \(known: v4, v4-fixed\)/],
    [['--flag', 'no-such-row'], /unknown row 'no-such-row'/],
    [['--runs', '0'], /--runs takes a whole number >= 1/],
    [['--seed', 'x'], /--seed takes a whole number >= 0/],
    [['--bogus'], /Unknown option '--bogus'/],
  ])('bad input %j: one line, exit 2, nothing on stdout', (args, msg) => {
    const r = windows(...args);
    expectUsageError(r, msg);
  });

  test('--json: one entry per --flag in order, the same every time', () => {
    const args = ['--json', '--runs', '20', '--flag', 'sfm-kills-smmu', '--flag', 'inv-during-flr'];
    const r = windows(...args);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as {
      base: string;
      entries: { id: string; uniform: { hits: number; runs: number }; runsPerHit: number }[];
    };
    expect(j.base).toBe('v4');
    expect(j.entries.map((e) => e.id)).toEqual(['sfm-kills-smmu', 'inv-during-flr']);
    expect(j.entries[1]).toMatchObject({ uniform: { hits: 20, runs: 20 }, runsPerHit: 1 });
    expect(windows(...args).out).toBe(r.out);
  });

  test('the table names a row no schedule hit', () => {
    const r = windows('--runs', '5', '--flag', 'broken-work-uaf');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/broken-work-uaf\s+0\/5\s+0\/5\s+none in 10/);
  });
});
