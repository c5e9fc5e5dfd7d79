/** npm run replay: exact re-runs, exit codes, and one-line errors for bad files. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { expectUsageError } from './expect-usage.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
const corpusFile = 'properties/corpus/v4-sync-queued-behind-failure.json';

function replay(...args: string[]) {
  const r = spawnSync(tsx, ['properties/cli/replay.ts', ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('npm run replay', () => {
  test('a recorded counterexample reproduces (exit 1), byte for byte', () => {
    const a = replay(corpusFile);
    expect(a.code).toBe(1);
    expect(a.out).toMatch(/reproduces on v4\n$/);
    expect(a.out).toMatch(/violated: no-corruption/);
    expect(replay(corpusFile).out).toBe(a.out);
  });

  test('--variant tries another variant', () => {
    const r = replay(corpusFile, '--variant', 'mainline');
    expect(r.out).toMatch(/on mainline/);
    expect(r.code).toBe(1);
  });

  const dir = mkdtempSync(join(tmpdir(), 'atc-replay-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  test.each([
    ['not JSON', file('a.json', '{oops'), /not JSON/],
    [
      'missing topology field',
      file('b.json', '{"variant":"v4","scenario":{"topology":{},"rounds":[],"choices":[]}}'),
      /scenario\.topology\.cpus/,
    ],
    [
      'operation on a device that does not exist',
      file(
        'c.json',
        JSON.stringify({
          variant: 'v4',
          scenario: {
            topology: {
              cpus: 1,
              devices: [{ ats: true, sids: 1 }],
              gerrorIrqCpu: 0,
              queueShift: 3,
              batchEntries: 3,
              atcTimeoutUs: 50000,
              iovas: 1,
            },
            rounds: [[{ kind: 'hang', dev: 3 }]],
            choices: [],
          },
        }),
      ),
      /dev3, but there are 1 devices/,
    ],
    [
      'unknown variant',
      file('d.json', JSON.stringify({ variant: 'v9', scenario: { topology: {}, rounds: [], choices: [] } })),
      /./,
    ],
    ['missing file', join(dir, 'none.json'), /cannot read/],
  ])('%s: one line, exit 2, nothing on stdout', (_what, path, msg) => {
    const r = replay(path);
    expectUsageError(r, msg);
  });
});
