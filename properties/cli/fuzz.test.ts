/** The fuzz command as users run it: exit codes, one-line errors, JSON, repeatable output. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

function fuzz(...args: string[]) {
  const r = spawnSync(tsx, ['properties/cli/fuzz.ts', ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('npm run fuzz', () => {
  test.each([
    [['--variant', 'v5'], /unknown variant preset 'v5'/],
    [['--variant', 'v4+no-such-bug'], /unknown flag 'no-such-bug'/],
    [['--runs', 'ten'], /--runs takes a whole number/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['--runs', '5', '--time', '5'], /--runs or --time, not both/],
  ])('bad input %j: one line, exit 2, nothing on stdout', (args, msg) => {
    const r = fuzz(...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(msg);
  });

  test('--list-variants lists the presets and flags', () => {
    const r = fuzz('--list-variants');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toEqual(
      expect.arrayContaining(['mainline', 'v4', 'v4+done-ignores-result', 'v4+late-isr-misclassified']),
    );
  });

  test('a violation: exit 1, the same bytes twice, and a JSON last line with --json', () => {
    const args = ['--variant', 'v4+done-ignores-result', '--runs', '200', '--seed', '3'];
    const a = fuzz(...args);
    const b = fuzz(...args);
    expect(a.code).toBe(1);
    expect(b.out).toBe(a.out);
    expect(a.out).toMatch(/VIOLATION of quarantine-lifted-only-by-reset/);
    expect(a.out).toMatch(/re-run: npm run fuzz -- --variant v4\+done-ignores-result --seed 3 --runs 200/);
    const j = fuzz(...args, '--json');
    expect(j.code).toBe(1);
    const last = JSON.parse(j.out.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({
      variant: 'v4+done-ignores-result',
      seed: 3,
      violation: { property: 'quarantine-lifted-only-by-reset' },
    });
    expect(typeof last.elapsedMs).toBe('number');
    expect(last.violation.scenario.rounds.length).toBeGreaterThan(0);
  });

  test('no violation: exit 0', () => {
    const r = fuzz('--variant', 'v4', '--runs', '5', '--seed', '1', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out.trim()).violation).toBeNull();
  });
});
