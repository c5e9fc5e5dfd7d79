/** The post-shrink reducer: it finds the known minimal scenario, keeps the predicate, is a fixpoint, repeats. */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import type { Op, Topology } from '../impl/system.ts';
import { Variant } from '../impl/variants.ts';
import { parseCounterexample } from './counterexample-file.ts';
import { type Keeps, mergeDevice, reduce, sizeKey, validScenario } from './reduce.ts';
import { runScenario } from './runner.ts';
import { type Scenario, pctScenarioArb, scenarioArb, scenarioSize } from './scenario.ts';
import { WITNESSES } from './witnesses/witnesses.ts';

/** The catalog's predicate: the flag's property violated under v4+flag, nothing under v4. */
function differential(
  flag: string,
  property: string,
): { keeps: Keeps; normalize: (s: Scenario) => number[] } {
  const flagged = Variant.parse(`v4+${flag}`);
  const v4 = Variant.parse('v4');
  return {
    keeps: (s) =>
      runScenario(s, flagged).violations[0]?.property === property &&
      runScenario(s, v4).violations.length === 0,
    normalize: (s) => [...runScenario(s, flagged).normalizedChoices],
  };
}

const witness = (flag: string): Scenario => WITNESSES.find((w) => w.flag === flag)!.scenario;

/**
 * probe-blocks-iommu's witness (one quirky device, one probe) with noise: an unrelated device
 * before it (so the quirky one is dev1), a second CPU taking the probe and the GERROR IRQ, a DMA
 * and a map in rounds of their own and beside the probe, another IOVA, and a choice stream.
 */
const NOISY_PROBE: Scenario = {
  topology: {
    cpus: 2,
    devices: [
      { ats: true, sids: 2 },
      { ats: true, sids: 1, quirk: true },
    ],
    gerrorIrqCpu: 1,
    queueShift: 3,
    batchEntries: 3,
    atcTimeoutUs: 200_000,
    iovas: 2,
  },
  rounds: [
    [{ kind: 'dma', dev: 0, iova: 1 }],
    [
      { kind: 'map', cpu: 0, domain: 1, iova: 0 },
      { kind: 'probe', cpu: 1, dev: 1 },
    ],
  ],
  choices: [3, 1, 2, 5, 0, 4],
};

/** A synthetic predicate (no simulation): some hang of a quirky VF precedes a DMA by its PF. */
const hangOfQuirkyVfThenPfDma: Keeps = (s) => {
  const devs = s.topology.devices;
  const ops = s.rounds.flatMap((r, k) => r.map((op) => ({ op, k })));
  return ops.some(
    ({ op, k }) =>
      op.kind === 'hang' &&
      devs[op.dev]?.quirk === true &&
      devs[op.dev]?.pf !== undefined &&
      ops.some(({ op: o, k: l }) => o.kind === 'dma' && l > k && o.dev === devs[op.dev]!.pf),
  );
};

const SYNTHETIC: Scenario = {
  topology: {
    cpus: 3,
    devices: [
      { ats: true, sids: 2, noAts: true },
      { ats: true, sids: 1, flr: false, busReset: true },
      { ats: false, sids: 2, quirk: true, pf: 1 },
    ],
    gerrorIrqCpu: 2,
    queueShift: 4,
    batchEntries: 4,
    atcTimeoutUs: 50_000,
    iovas: 3,
    stalls: true,
  },
  rounds: [
    [{ kind: 'unmap', cpu: 2, domain: 1, iova: 2 }],
    [
      { kind: 'hang', dev: 2 },
      { kind: 'attach', cpu: 1, dev: 0, domain: 1 },
    ],
    [{ kind: 'reset', cpu: 2, dev: 1, outcome: 'fail' }],
    [
      { kind: 'dma', dev: 1, iova: 2 },
      { kind: 'dma', dev: 0, iova: 1 },
    ],
  ],
  choices: [4, 0, 2],
};

describe('reduce', () => {
  test('a witness with an irrelevant device, CPU, operations and choices reduces to the witness', () => {
    const { keeps, normalize } = differential('probe-blocks-iommu', 'reset-fence-only-in-reset');
    expect(keeps(NOISY_PROBE)).toBe(true);
    const r = reduce(NOISY_PROBE, keeps, { normalizeChoices: normalize });
    expect(r.complete).toBe(true);
    expect(keeps(r.scenario)).toBe(true);
    const w = witness('probe-blocks-iommu');
    expect(r.scenario.rounds).toEqual(w.rounds);
    expect(r.scenario.topology.devices).toEqual(w.topology.devices);
    expect(r.scenario.topology.cpus).toBe(1);
    expect(r.scenario.topology.iovas).toBe(1);
    expect(r.scenario.topology.atcTimeoutUs).toBe(50_000);
    expect(r.scenario.choices).toEqual([]);
    // A valid counterexample file, as the engine writes and replays it.
    expect(() =>
      parseCounterexample(JSON.stringify({ variant: 'v4', scenario: r.scenario }), 'reduced'),
    ).not.toThrow();
    // Idempotent: nothing left to take away.
    const again = reduce(r.scenario, keeps, { normalizeChoices: normalize });
    expect(again.scenario).toEqual(r.scenario);
    expect(again.complete).toBe(true);
  });

  test('removing a device remaps operations and PF links; devices and fields are simplified', () => {
    const r = reduce(SYNTHETIC, hangOfQuirkyVfThenPfDma);
    expect(r.complete).toBe(true);
    expect(r.scenario).toEqual({
      ...SYNTHETIC,
      topology: {
        cpus: 1,
        devices: [
          { ats: true, sids: 1 },
          { ats: false, sids: 1, quirk: true, pf: 0 },
        ],
        gerrorIrqCpu: 0,
        queueShift: 2,
        batchEntries: 2,
        atcTimeoutUs: 50_000,
        iovas: 1,
      },
      rounds: [[{ kind: 'hang', dev: 1 }], [{ kind: 'dma', dev: 0, iova: 0 }]],
      choices: [],
    });
  });

  test('a CPU dropped moves every CPU-naming topology field; an optional feature not needed goes', () => {
    const s: Scenario = {
      ...SYNTHETIC,
      topology: { ...SYNTHETIC.topology, gerrorIrqCpu: 2, vcmdq: { irqCpu: 2 } } as Topology,
    };
    // Keeps the vcmdq feature, on the highest CPU there is: it must follow the CPUs down.
    const keeps: Keeps = (c) => {
      const v = (c.topology as { vcmdq?: { irqCpu: number } }).vcmdq;
      return hangOfQuirkyVfThenPfDma(c) && v !== undefined && v.irqCpu === c.topology.cpus - 1;
    };
    const r = reduce(s, keeps);
    expect(r.scenario.topology.cpus).toBe(1);
    expect(r.scenario.topology).toMatchObject({ gerrorIrqCpu: 0, vcmdq: { irqCpu: 0 } });
    expect(reduce(s, hangOfQuirkyVfThenPfDma).scenario.topology).not.toHaveProperty('vcmdq');
  });

  test('the work is bounded: maxRuns predicate calls at most, the best so far returned', () => {
    let calls = 0;
    const counting: Keeps = (s) => {
      calls++;
      return hangOfQuirkyVfThenPfDma(s);
    };
    const r = reduce(SYNTHETIC, counting, { maxRuns: 5 });
    expect(calls).toBe(5);
    expect(r.runs).toBe(5);
    expect(r.complete).toBe(false);
    expect(hangOfQuirkyVfThenPfDma(r.scenario)).toBe(true);
    const stopped = reduce(SYNTHETIC, counting, { stop: () => true });
    expect(stopped).toEqual({ scenario: SYNTHETIC, runs: 0, complete: false });
  });

  test('a predicate that throws counts as not kept', () => {
    const r = reduce(SYNTHETIC, (s) => {
      if (s.rounds.length < 4) throw new Error('boom');
      return true;
    });
    expect(r.scenario.rounds.length).toBe(4);
    expect(r.complete).toBe(true);
  });

  const notBigger = (a: readonly number[], b: readonly number[]): boolean => {
    const i = a.findIndex((x, k) => x !== b[k]);
    return i < 0 || a[i]! < b[i]!;
  };

  /** A synthetic predicate over generated scenarios: an operation of each of these kinds remains. */
  const keepsKinds =
    (kinds: readonly Op['kind'][]): Keeps =>
    (s) =>
      kinds.every((k) => s.rounds.some((r) => r.some((o) => o.kind === k)));

  test.prop([fc.oneof(scenarioArb, pctScenarioArb)], { numRuns: 60 })(
    'the result keeps the predicate, is no bigger, is a fixpoint, and is the same every time',
    (s) => {
      const kinds = [...new Set(s.rounds.flat().map((o) => o.kind))].slice(0, 2);
      const keeps = keepsKinds(kinds);
      const r = reduce(s, keeps);
      expect(r.complete).toBe(true);
      expect(keeps(r.scenario)).toBe(true);
      expect(notBigger(sizeKey(r.scenario), sizeKey(s))).toBe(true);
      expect(scenarioSize(r.scenario).ops).toBe(kinds.length);
      expect(reduce(s, keeps)).toEqual(r);
      const again = reduce(r.scenario, keeps);
      expect(again.scenario).toEqual(r.scenario);
      expect(() =>
        parseCounterexample(JSON.stringify({ variant: 'v4', scenario: r.scenario }), 'reduced'),
      ).not.toThrow();
    },
  );

  test.prop([scenarioArb], { numRuns: 15 })(
    'on real runs: the result still violates the property, and the same twice',
    (s) => {
      const v = Variant.parse('mainline');
      const first = runScenario(s, v).violations[0]?.property;
      fc.pre(first !== undefined);
      const keeps: Keeps = (c) => runScenario(c, v).violations.some((x) => x.property === first);
      const opts = { maxRuns: 60, normalizeChoices: (c: Scenario) => runScenario(c, v).normalizedChoices };
      const r = reduce(s, keeps, opts);
      expect(keeps(r.scenario)).toBe(true);
      expect(reduce(s, keeps, opts)).toEqual(r);
    },
  );
});

describe('mergeDevice', () => {
  const multiDevice = fc.oneof(scenarioArb, pctScenarioArb).filter((s) => s.topology.devices.length > 1);
  test.prop([multiDevice, fc.nat(), fc.nat()], { numRuns: 100 })(
    'moves one device onto another: one device fewer, the same operations, a valid scenario',
    (s, a, b) => {
      const n = s.topology.devices.length;
      const from = 1 + (a % (n - 1));
      const to = b % from;
      // Moving operations never removes one, so some operation is always left.
      const m = mergeDevice(s, from, to)!;
      expect(m).not.toBeNull();
      expect(m.topology.devices.length).toBe(n - 1);
      expect(scenarioSize(m).ops).toBe(scenarioSize(s).ops);
      // Device indices below `from` keep their number, `from` becomes `to`, later ones move down.
      const expected = s.rounds.flat().map((o) => {
        if (!('dev' in o)) return o;
        return { ...o, dev: o.dev === from ? to : o.dev > from ? o.dev - 1 : o.dev };
      });
      expect(m.rounds.flat()).toEqual(expected);
      expect(validScenario(m)).toBe(true);
    },
  );
});
