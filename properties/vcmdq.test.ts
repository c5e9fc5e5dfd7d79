/**
 * The tegra241 CMDQV topology option (Topology.vcmdq) at the scenario level: the generator turns
 * it on in a minority of topologies and leaves it absent otherwise, the counterexample format
 * and the report carry it, a recorded counterexample without it replays step for step as before
 * it existed, and a recorded v4 finding reproduces on the VCMDQ. The hardware and driver side:
 * impl/smmuv3/tegra241-cmdqv.test.ts.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Topology } from '../impl/system.ts';
import { Variant } from '../impl/variants.ts';
import { fmtTopology } from '../reports/counterexample.ts';
import { CounterexampleError, parseCounterexample } from './counterexample-file.ts';
import { readCounterexample } from './engine/corpus.ts';
import { atcTimeoutReportedAsPlainTimeout } from './findings.ts';
import { runScenario } from './runner.ts';
import { type Scenario, topologyArb } from './scenario.ts';

const corpus = (name: string): Scenario => readCounterexample(name).scenario;

describe('generator, file format, report', () => {
  const sample = fc.sample(topologyArb, { seed: 11, numRuns: 2000 });

  test('on in about 1 topology in 4, with its interrupt on one of the CPUs; the key is absent when off', () => {
    const on = sample.filter((t) => t.vcmdq !== undefined);
    expect(on.length / sample.length).toBeGreaterThan(0.15);
    expect(on.length / sample.length).toBeLessThan(0.35);
    for (const t of on) expect(t.vcmdq!.irqCpu).toBeLessThan(t.cpus);
    for (const t of sample) if (t.vcmdq === undefined) expect('vcmdq' in t).toBe(false);
    // Some with the interrupt on another CPU than the GERROR IRQ, some on the same.
    expect(on.some((t) => t.vcmdq!.irqCpu !== t.gerrorIrqCpu)).toBe(true);
    expect(on.some((t) => t.vcmdq!.irqCpu === t.gerrorIrqCpu)).toBe(true);
  });

  test('generated topologies pass the counterexample schema; a VCMDQ interrupt on a missing CPU does not', () => {
    const file = (topology: Topology) =>
      JSON.stringify({ variant: 'v4', scenario: { topology, rounds: [], choices: [] } });
    for (const t of sample) expect(parseCounterexample(file(t), 't').scenario.topology).toEqual(t);
    const t = sample.find((x) => x.vcmdq !== undefined)!;
    expect(() => parseCounterexample(file({ ...t, vcmdq: { irqCpu: t.cpus } }), 'bad')).toThrow(
      CounterexampleError,
    );
  });

  test('the report names the second queue and its interrupt CPU, and says nothing without it', () => {
    const t = sample.find((x) => x.vcmdq !== undefined)!;
    expect(fmtTopology(t)[0]).toContain(
      `tegra241 VCMDQ (TLBI, ATC_INV) with its error IRQ on cpu${t.vcmdq!.irqCpu}`,
    );
    const { vcmdq: _, ...plain } = t;
    expect(fmtTopology(plain)[0]).not.toContain('VCMDQ');
  });
});

/** The digest of that run, taken from the code before the option was added (612b83a). */
const PINNED = 'd37d9bc943d87faa';

test('a recorded counterexample without the option replays step for step as before the option existed', () => {
  const s = corpus('v4-sync-queued-behind-failure');
  expect(s.topology.vcmdq).toBeUndefined();
  const r = runScenario(s, Variant.parse('v4'), { trace: true });
  const digest = createHash('sha256')
    .update(JSON.stringify(r.trace.map((t) => [t.step, t.time, t.actor, t.cpu, t.kind, t.label])))
    .update(JSON.stringify(r.log))
    // The events recorded then (runs now also keep atsFenced and eatsEnabled for signatures).
    .update(
      JSON.stringify(
        r.events.filter(
          (e) => e.kind === 'syncReturn' || e.kind === 'syncAtcError' || e.kind === 'invalidationIntoFlr',
        ),
      ),
    )
    .digest('hex')
    .slice(0, 16);
  expect(digest).toBe(PINNED);
  // Adding the CMDQV changes the run: the option is not inert.
  const on = runScenario({ ...s, topology: { ...s.topology, vcmdq: { irqCpu: 0 } } }, Variant.parse('v4'), {
    trace: true,
  });
  expect(on.trace.some((t) => t.actor === 'VCMDQ0')).toBe(true);
});

describe('the recorded v4 findings on a tegra241 guest', () => {
  test("sync-queued-behind-failure reproduces on the VCMDQ: an attach's ATC_INV queued behind an unmap's failing SYNC", () => {
    // Found by the search with the option on (seed 1), shrunk: both issuers spin with IRQs off,
    // the CMDQV interrupt's CPU among them, past the 1 s poll; the unmap drains the VCMDQ first,
    // the attach finds nothing left to drain and takes its own ATC_INV, still pending behind the
    // re-fetched SYNC, for a plain timeout: dev0 is never fenced.
    const s: Scenario = {
      topology: {
        cpus: 2,
        devices: [{ ats: true, sids: 1 }],
        gerrorIrqCpu: 0,
        queueShift: 3,
        batchEntries: 2,
        atcTimeoutUs: 50_000,
        iovas: 1,
        vcmdq: { irqCpu: 1 },
      },
      rounds: [
        [{ kind: 'hang', dev: 0 }],
        [
          // To domain 1: an attach to the domain the group is on is a no-op in Linux.
          { kind: 'attach', cpu: 0, dev: 0, domain: 1 },
          { kind: 'unmap', cpu: 1, domain: 0, iova: 0 },
        ],
      ],
      choices: [],
    };
    const r = runScenario(s, Variant.parse('v4'));
    expect(r.violations.map((v) => v.property)).toEqual(['refinement']);
    expect(atcTimeoutReportedAsPlainTimeout(r.events)).toBe(true);
    const failed = r.events.filter((e) => e.kind === 'syncAtcError');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((e) => e.cmdq === 'vcmdq0')).toBe(true);
  });
});
