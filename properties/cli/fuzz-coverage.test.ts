/** npm run fuzz reports protocol coverage: one line, the blind spots with --coverage, and summary.json. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { parseSummary } from '../../reports/summary.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'atc-fuzz-coverage-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function fuzz(out: string, ...args: string[]) {
  const r = spawnSync(
    tsx,
    [
      'properties/cli/fuzz.ts',
      '--variant',
      'v4',
      '--seed',
      '1',
      '--runs',
      '60',
      '--out',
      join(tmp, out),
      ...args,
    ],
    { cwd: root, encoding: 'utf8' },
  );
  const summary = parseSummary(readFileSync(join(tmp, out, 'summary.json'), 'utf8'), out);
  return { code: r.status, out: r.stdout, summary };
}

describe('fuzz coverage', () => {
  test('a line of counts, the same in summary.json, whatever the number of workers', () => {
    const one = fuzz('one', '--workers', '1');
    // 0, or 1 when the 60 runs meet one of v4's own findings: either way the report is complete.
    expect([0, 1]).toContain(one.code);
    const line =
      /^coverage: (\d+)\/(\d+) op tuples, (\d+)\/(\d+) model transitions \(--coverage lists the blind spots\)$/m.exec(
        one.out,
      );
    expect(line).not.toBeNull();
    const c = one.summary.coverage!;
    expect([c.ops.visited, c.ops.total, c.transitions.visited, c.transitions.total]).toEqual(
      line!.slice(1).map(Number),
    );
    expect(Object.keys(c.ops.first).length).toBe(c.ops.visited);
    expect(c.ops.never.length).toBe(c.ops.total - c.ops.visited);
    expect(Math.max(...Object.values(c.ops.first))).toBeLessThan(60);
    expect(one.out).not.toMatch(/never visited/);
    const two = fuzz('two', '--workers', '2');
    expect(two.summary.coverage).toEqual(c);
  });

  test('--coverage lists the blind spots', () => {
    const r = fuzz('spots', '--workers', '1', '--coverage');
    const c = r.summary.coverage!;
    expect(r.out).toContain(`never visited: ${c.ops.never.length} op tuple(s)`);
    expect(r.out).toContain(`never taken: ${c.transitions.never.length} model transition(s)`);
    for (const t of c.transitions.never) expect(r.out).toContain(`\n  ${t}\n`);
  });
});
