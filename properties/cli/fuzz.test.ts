/** The fuzz command as users run it: exit codes, one-line errors, JSON, repeatable output, reports. */
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
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
import { parseSummary, type Summary } from '../../reports/summary.ts';
import { expectUsageError } from './expect-usage.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'atc-fuzz-cli-'));
let outs = 0;
const freshOut = () => join(tmp, `out-${outs++}`);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the CLI; in-process (`--workers 1`) and into a fresh temporary --out unless told otherwise. */
function fuzz(...args: string[]) {
  const extra = [
    ...(args.includes('--workers') ? [] : ['--workers', '1']),
    ...(args.includes('--out') || args.includes('--list-variants') ? [] : ['--out', freshOut()]),
  ];
  return run(['properties/cli/fuzz.ts', ...args, ...extra]);
}

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(tsx, args, { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const summaryOf = (dir: string): Summary =>
  parseSummary(readFileSync(join(dir, 'summary.json'), 'utf8'), join(dir, 'summary.json'));
/** A summary without what may differ between repeats. */
const repeatable = ({ timing: _t, ...rest }: Summary) => rest;

describe('npm run fuzz', () => {
  test.each([
    [['--variant', 'v5'], /unknown variant preset 'v5'/],
    [['--variant', 'v4+no-such-bug'], /unknown flag 'no-such-bug'/],
    [['--variant', 'v4+fix-no-such-fix'], /unknown fix 'fix-no-such-fix'/],
    [['--variant', 'v4-minimal+fix-sfm-skip-err'], /flags and fixes apply to v4, not to v4-minimal/],
    [['--runs', 'ten'], /--runs takes a whole number/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['--runs', '5', '--time', '5'], /--runs or --time, not both/],
    [['--shard', '0/4'], /--shard 0\/4: i must be 1\.\.4/],
    [['--shard', '3/2'], /i must be 1\.\.2/],
    [['--shard', 'two'], /--shard takes i\/N/],
    [['--strategy', 'random'], /unknown --strategy 'random'/],
    [['--workers', '0'], /--workers takes a whole number >= 1/],
    [['--time', '0'], /--time takes a whole number >= 1/],
    [['--corpus', '/nonexistent/corpus'], /--corpus \/nonexistent\/corpus is not a folder/],
  ])('bad input %j: one line, exit 2, nothing on stdout, no folder written', (args, msg) => {
    const out = freshOut();
    const r = fuzz(...args, '--out', out);
    expectUsageError(r, msg);
    expect(existsSync(out)).toBe(false);
  });

  test('--out must be empty: one line, exit 2, the folder left as it was', () => {
    const out = freshOut();
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'x');
    const r = fuzz('--runs', '5', '--out', out);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/is not empty/);
    expect(readdirSync(out)).toEqual(['keep.txt']);
  });

  test('--strategy pct searches PCT schedules and finds a flag', () => {
    const r = fuzz(
      '--variant',
      'v4+probe-blocks-iommu',
      '--strategy',
      'pct',
      '--runs',
      '300',
      '--seed',
      '1',
      '--workers',
      '1',
      '--json',
    );
    expect(r.code).toBe(1);
    const last = JSON.parse(r.out.trim().split('\n').at(-1)!);
    expect(last.violation.scenario.pct).toBeDefined();
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

  test('--json: one line on stdout, nothing on stderr', () => {
    const r = fuzz(
      '--variant',
      'v4+late-isr-misclassified',
      '--runs',
      '300',
      '--seed',
      '2',
      '--keep-going',
      '--json',
    );
    expect(r.err).toBe('');
    expect(r.out.trim().split('\n')).toHaveLength(1);
    const j = JSON.parse(r.out);
    expect(r.code).toBe(j.violations.length > 0 ? 1 : 0);
    expect(j.violation === null ? [] : [j.violation.property]).toEqual(
      j.violations.slice(0, 1).map((v: { property: string }) => v.property),
    );
  });
});

describe('reports', () => {
  test('the report folder: summary, junit, and per violation a replayable counterexample and timelines', () => {
    const out = freshOut();
    const r = fuzz('--variant', 'v4+late-isr-misclassified', '--runs', '400', '--seed', '1', '--out', out);
    const s = summaryOf(out);
    expect(r.code).toBe(s.violations.length > 0 ? 1 : 0);
    expect(s.status).toBe('done');
    expect(s.harness.revision).toMatch(/^([0-9a-f]{40}|unknown)$/);
    expect(s).toMatchObject({
      variant: 'v4+late-isr-misclassified',
      seeds: { job: 1, stream: 1 },
      budget: { runs: 400 },
    });
    expect(readFileSync(join(out, 'junit.xml'), 'utf8')).toMatch(/^<\?xml/);
    for (const v of s.violations) {
      const dir = join(out, v.dir);
      const txt = readFileSync(join(dir, 'timeline.txt'), 'utf8');
      for (const line of txt.split('\n')) expect([...line].length).toBeLessThanOrEqual(80);
      expect(readFileSync(join(dir, 'timeline.md'), 'utf8')).toContain('```mermaid\nsequenceDiagram');
      // npm run replay reads it, and the violation reproduces.
      const rep = run(['properties/cli/replay.ts', join(dir, 'counterexample.json')]);
      expect(rep.err).toBe('');
      expect(rep.code).toBe(1);
      expect(rep.out).toMatch(new RegExp(`violated: ${v.property}`));
      // So does the folder itself.
      expect(run(['properties/cli/replay.ts', dir]).code).toBe(1);
    }
    expect(r.err).toContain(`report: ${out}/summary.json`);
  });

  test('worker threads, shards and --keep-going: summaries repeat, whatever the number of workers', () => {
    // A flag whose violations shrink fast: what is compared is the summary, not the shrink.
    const base = ['--variant', 'v4+late-isr-misclassified', '--seed', '5', '--runs', '400', '--keep-going'];
    const one = freshOut();
    const two = freshOut();
    const a = fuzz(...base, '--shard', '2/3', '--out', one);
    const b = fuzz(...base, '--shard', '2/3', '--workers', '2', '--out', two);
    expect(b.code).toBe(a.code);
    expect(b.out).toBe(a.out);
    const sa = summaryOf(one);
    const sb = summaryOf(two);
    expect(repeatable(sb)).toEqual(repeatable(sa));
    expect(sb.timing.workers).toBe(2);
    expect(sa.counts.runs).toBe(400);
    expect(sa.shard).toEqual({ index: 2, count: 3 });
    expect(a.out).toMatch(/--shard 2\/3 --runs 400 --keep-going/);
    // Another shard of the same job searches another stream.
    const other = freshOut();
    fuzz(...base, '--shard', '3/3', '--out', other);
    expect(summaryOf(other).seeds.stream).not.toBe(sa.seeds.stream);
    expect(summaryOf(other).seeds.job).toBe(sa.seeds.job);
  });

  test('a crashed worker: the crash is in the summary, and nothing found before it is lost', () => {
    const base = ['--variant', 'v4+late-isr-misclassified', '--seed', '2', '--runs', '520', '--keep-going'];
    const clean = freshOut();
    const crashed = freshOut();
    fuzz(...base, '--out', clean);
    const r = run(['properties/cli/fuzz.ts', ...base, '--workers', '2', '--out', crashed], {
      ATC_HARNESS_TEST_CRASH_AT: '300',
    });
    const s = summaryOf(crashed);
    expect(s.crashes).toHaveLength(1);
    expect(s.crashes[0]).toMatchObject({ job: 'search 250..499' });
    expect(s.crashes[0]!.runsLost).toBeGreaterThan(0);
    expect(r.code).toBe(s.violations.length > 0 ? 1 : 3);
    const before = (x: Summary) =>
      x.violations.filter((v) => v.index < 250).map((v) => [v.property, v.shape]);
    expect(before(summaryOf(clean)).length).toBeGreaterThan(0);
    expect(before(s)).toEqual(before(summaryOf(clean)));
    expect(readFileSync(join(crashed, 'junit.xml'), 'utf8')).toContain('<error type="crash"');
  });

  test('SIGTERM mid-run: a valid summary with every violation found so far, and the right exit code', async () => {
    const out = freshOut();
    // The fuzz process itself, not the tsx wrapper: the signal must reach the process that
    // handles it, whatever the wrapper does with signals under load.
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'properties/cli/fuzz.ts',
        '--variant',
        'v4+late-isr-misclassified',
        '--seed',
        '1',
        '--time',
        '60',
        '--keep-going',
        '--workers',
        '2',
        '--out',
        out,
      ],
      { cwd: root, stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Wait until it is under way (the first summary is written at the start), then a little.
    for (let i = 0; i < 100 && !existsSync(join(out, 'summary.json')); i++)
      await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGTERM');
    const code = await exited;
    const s = summaryOf(out);
    expect(s.status).toBe('interrupted');
    expect(s.end).toBe('interrupted');
    expect(code).toBe(s.violations.length > 0 ? 1 : 143);
    for (const v of s.violations) expect(existsSync(join(out, v.dir, 'counterexample.json'))).toBe(true);
    expect(s.timing.elapsedMs).toBeLessThan(30_000);
  }, 60_000);
});

describe('the corpus', () => {
  test('--save-corpus adds new counterexamples once; merge-summaries flags only what the corpus lacks', () => {
    const corpus = join(tmp, 'corpus');
    cpSync(join(root, 'properties', 'corpus'), corpus, { recursive: true });
    const before = readdirSync(corpus);
    const args = ['--variant', 'v4+done-ignores-result', '--seed', '3', '--runs', '200', '--corpus', corpus];
    const first = freshOut();
    const a = fuzz(...args, '--out', first);
    expect(a.code).toBe(1);
    const added = readdirSync(corpus).filter((f) => !before.includes(f));
    const s = summaryOf(first);
    expect(s.violations).toHaveLength(1);
    expect(s.violations[0]!.inCorpus).toBeNull();
    // Merging before saving: a new violation, exit 1.
    const m1 = run(['properties/cli/merge-summaries.ts', '--corpus', corpus, first]);
    expect(added).toEqual([]);
    expect(m1.code).toBe(1);
    expect(m1.out).toMatch(/\*\*new\*\*/);

    const saved = fuzz(...args, '--save-corpus');
    expect(saved.out).toMatch(/corpus: added /);
    const now = readdirSync(corpus).filter((f) => !before.includes(f));
    expect(now).toEqual([`${s.violations[0]!.id}.json`]);
    const file = JSON.parse(readFileSync(join(corpus, now[0]!), 'utf8'));
    expect(file).toMatchObject({
      id: s.violations[0]!.id,
      variant: 'v4+done-ignores-result',
      property: s.violations[0]!.property,
    });
    // It is formatted as the repository's Prettier config wants (npm run lint checks the corpus).
    const check = spawnSync(join(root, 'node_modules/.bin/prettier'), ['--check', join(corpus, now[0]!)], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(check.status).toBe(0);

    // Saving again adds nothing; and now the merge finds nothing new.
    const again = fuzz(...args, '--save-corpus');
    expect(again.out).toMatch(/corpus: already has this property \+ shape/);
    expect(readdirSync(corpus).filter((f) => !before.includes(f))).toEqual(now);
    const m2 = run(['properties/cli/merge-summaries.ts', '--corpus', corpus, first]);
    expect(m2.code).toBe(0);
    expect(m2.out).toMatch(/Verdict: nothing new/);
    expect(m2.out).toContain(`| v4+done-ignores-result | 1/1 | 3 | done | ${s.counts.runs} |`);
    // The shard's protocol coverage, carried into the merged table.
    expect(s.coverage).toBeDefined();
    expect(m2.out).toContain(
      `Coverage of v4+done-ignores-result over 1 job(s): ${s.coverage!.ops.visited}/${s.coverage!.ops.total} op tuples`,
    );
  });

  test('merge-summaries: bad input is one line and exit 2', () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    const bad = join(tmp, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'summary.json'), '{"schema": "something else"}');
    for (const [args, msg] of [
      [[empty], /no summary\.json under/],
      [[bad], /schema/],
      [[join(tmp, 'nothing-here')], /no such file or folder/],
      [[], /give the report folders/],
    ] as const) {
      const r = run(['properties/cli/merge-summaries.ts', ...args]);
      expectUsageError(r, msg);
    }
  });
});
