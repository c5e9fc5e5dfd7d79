/** The report folder: files, formats and widths, on a real (shrunk) counterexample. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Variant } from '../impl/variants.ts';
import { parseCounterexample } from '../properties/counterexample-file.ts';
import { Engine, type EngineState } from '../properties/engine/engine.ts';
import { Control } from '../properties/engine/jobs.ts';
import { InProcess } from '../properties/engine/pool.ts';
import { WHOLE } from '../properties/engine/seeds.ts';
import { runScenario } from '../properties/runner.ts';
import { describeVariant, shellLines } from './counterexample.ts';
import { renderJunit, xmlEscape } from './junit.ts';
import { RunReport } from './run-report.ts';
import { parseSummary, type Summary } from './summary.ts';

const cps = (s: string) => [...s].length;

describe('a report folder', () => {
  const variant = 'v4+done-ignores-result';
  let dir: string;
  let state: EngineState;
  let summary: Summary;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'atc-report-'));
    const ctl = Control.create();
    const report = new RunReport({
      dir,
      displayDir: dir,
      variant,
      strategy: 'uniform',
      seed: 1,
      streamSeed: 1,
      shard: WHOLE,
      runs: 3000,
      timeSeconds: null,
      shrinkTimeSeconds: 60,
      keepGoing: false,
      workers: 1,
      revision: 'test',
      rerun: 'npm run fuzz -- ...',
      startedAt: new Date(0),
      corpus: [],
    });
    const engine = new Engine(
      {
        variant: Variant.parse(variant),
        seed: 1,
        shard: WHOLE,
        runs: 3000,
        keepGoing: false,
        shrinkTimeMs: 60_000,
      },
      new InProcess(ctl),
      ctl,
      { onViolation: (v) => report.addViolation(v) },
    );
    state = await engine.run();
    summary = report.write(state, 'done');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('holds a valid summary, junit.xml and one folder per violation, and no temporary file', () => {
    expect(state.violations.length).toBeGreaterThan(0);
    const again = parseSummary(readFileSync(join(dir, 'summary.json'), 'utf8'), 'summary.json');
    expect(again).toEqual(summary);
    expect(summary.violations.map((v) => v.property)).toEqual(state.violations.map((v) => v.property));
    const names = readdirSync(dir, { recursive: true }).map(String);
    expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([]);
    for (const v of summary.violations) {
      for (const f of ['counterexample.json', 'timeline.txt', 'timeline.md'])
        expect(existsSync(join(dir, v.dir, f))).toBe(true);
    }
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain(`failures="${summary.violations.length}"`);
  });

  it('counterexample.json is a replay file that reproduces its property', () => {
    for (const v of summary.violations) {
      const f = parseCounterexample(readFileSync(join(dir, v.dir, 'counterexample.json'), 'utf8'), v.dir);
      expect(f.id).toBe(v.id);
      expect(f.variant).toBe(variant);
      const r = runScenario(f.scenario, Variant.parse(f.variant));
      expect(r.violations.map((x) => x.property)).toContain(f.property);
    }
  });

  it('timeline.txt is at most 80 columns, and tells what, where, the diagram and how to replay', () => {
    const v = summary.violations[0]!;
    const text = readFileSync(join(dir, v.dir, 'timeline.txt'), 'utf8');
    for (const line of text.split('\n')) expect(cps(line)).toBeLessThanOrEqual(80);
    const flat = text.replace(/\s+/g, ' ');
    expect(flat).toMatch(new RegExp(`property: ${v.property} \\((safety|conformance)\\)`));
    expect(flat).toContain('done-ignores-result (P04)');
    expect(flat).toContain(`violated: ${v.message}`);
    expect(text).toContain(' CPU0');
    expect(text).toContain('replay (from the repository root):');
    // The (continued) replay command names this very file.
    const tail = text.trimEnd().split('\n');
    const start = tail.findIndex((l) => l.startsWith('replay ('));
    const cmd = tail
      .slice(start + 1)
      .map((l) => l.replace(/\\$/, ''))
      .join('')
      .trim();
    expect(cmd).toBe(`npm run replay -- ${dir}/${v.dir}/counterexample.json`);
  });

  it('timeline.md has a Mermaid sequence diagram of the same run', () => {
    const v = summary.violations[0]!;
    const md = readFileSync(join(dir, v.dir, 'timeline.md'), 'utf8');
    expect(md).toMatch(/```mermaid\nsequenceDiagram\n {2}participant L0 as CPU/);
    expect(md).toContain(v.message.slice(0, 40));
  });
});

describe('pieces', () => {
  it('shellLines: lines fit, and joining them as the shell does gives back the command', () => {
    const cmd = `npm run replay -- reports/out/20260101T000000Z-v4+late-isr-misclassified-123/violations/no-corruption-1a2b3c4d/counterexample.json`;
    for (const width of [30, 50, 80]) {
      const lines = shellLines(cmd, width, 2);
      for (const l of lines) expect(cps(l)).toBeLessThanOrEqual(width);
      const joined = lines.map((l, i) => (i < lines.length - 1 ? l.slice(0, -1) : l)).join('');
      expect(joined.trimStart()).toBe(cmd);
    }
    expect(shellLines('short', 80, 2)).toEqual(['  short']);
  });

  it('describeVariant names the preset and the bugs put back', () => {
    expect(describeVariant('mainline')).toMatch(/before the series/);
    expect(describeVariant('v4+late-isr-misclassified')).toMatch(
      /one bug put back: late-isr-misclassified \(P15\)/,
    );
  });

  it('describeVariant names the fixes of v4-fixed and of fix- tokens, beside the bugs', () => {
    const all = describeVariant('v4-fixed+late-isr-misclassified');
    expect(all).toMatch(
      /^v4: the series as posted, with 3 fixes of its findings: fix-sync-behind-failure \(for sync-queued-behind-failure\)/,
    );
    expect(all).toMatch(/one bug put back: late-isr-misclassified \(P15\)/);
    expect(describeVariant('v4+fix-sfm-skip-err')).toMatch(
      /with one fix of its findings: fix-sfm-skip-err \(for sfm-drops-reported-atc-timeout\)/,
    );
    expect(describeVariant('v4+fix-sfm-skip-err')).not.toMatch(/put back/);
  });

  it('junit: escaping, and one passing test case when nothing was found', () => {
    expect(xmlEscape(`a<b>&"c'\u0001`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
    const s = {
      schema: 'atc-harness/fuzz-summary/v1',
      status: 'done',
      harness: { revision: 'x' },
      variant: 'v4',
      strategy: 'uniform',
      seeds: { job: 1, stream: 1 },
      shard: { index: 1, count: 1 },
      budget: { runs: 10, timeSeconds: null, shrinkTimeSeconds: 60 },
      keepGoing: false,
      end: 'budget',
      counts: {
        runs: 10,
        steps: 5,
        violatingRuns: 0,
        byProperty: {},
        violations: 0,
        newViolations: 0,
        crashes: 0,
      },
      violations: [],
      crashes: [],
      rerun: 'r',
      timing: {
        startedAt: 'now',
        updatedAt: 'now',
        workers: 1,
        elapsedMs: 1500,
        shrinkMs: 0,
        executedRuns: 10,
        runsPerSecond: 7,
        interruptedBy: null,
      },
    } satisfies Summary;
    const xml = renderJunit(s);
    expect(xml).toContain('tests="1" failures="0" errors="0"');
    expect(xml).toContain(
      '<testcase classname="atc-harness.fuzz.v4" name="no violation in 10 scenarios" time="1.500"/>',
    );
  });
});
