/** Protocol coverage: the accumulator's algebra, what runs record, and the universe. */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ArrayChoices } from '../impl/sim/machine.ts';
import { System, type Topology } from '../impl/system.ts';
import { Variant } from '../impl/variants.ts';
import { Coverage, type CoverageJson, fmtBlindSpots, fmtCoverageLine, universe } from './coverage.ts';
import { queueState, sampleOp } from './coverage-probe.ts';
import { fuzz } from './fuzz.ts';
import { abstraction } from './refinement.ts';
import { runScenario } from './runner.ts';
import { type Scenario, scenarioArb } from './scenario.ts';

const v4 = Variant.parse('v4');

/** A coverage made of keys drawn from the universe, with stamps. */
const coverageArb: fc.Arbitrary<CoverageJson> = fc
  .record({
    ops: fc.array(fc.tuple(fc.constantFrom(...universe().ops), fc.nat(50)), { maxLength: 30 }),
    transitions: fc.array(fc.tuple(fc.constantFrom(...universe().transitions), fc.nat(50)), {
      maxLength: 15,
    }),
  })
  .map(({ ops, transitions }) => {
    // Built by merging single visits, so a key seen twice keeps its smallest stamp.
    const c = new Coverage();
    for (const [k, s] of ops) c.merge({ ops: { [k]: s }, transitions: {} });
    for (const [k, s] of transitions) c.merge({ ops: {}, transitions: { [k]: s } });
    return c.toJSON();
  });

const merged = (...xs: CoverageJson[]) => xs.reduce((acc, x) => acc.merge(x), new Coverage()).toJSON();

function recorded(s: Scenario, v = v4): CoverageJson {
  const c = new Coverage();
  runScenario(s, v, { coverage: c });
  return c.toJSON();
}

const oneDevice: Topology = {
  cpus: 1,
  devices: [{ ats: true, sids: 1 }],
  gerrorIrqCpu: 0,
  queueShift: 2,
  batchEntries: 2,
  atcTimeoutUs: 50_000,
  iovas: 1,
};

describe('the accumulator', () => {
  test.prop([coverageArb, coverageArb, coverageArb])('merging is associative', (a, b, c) => {
    expect(merged(merged(a, b), c)).toEqual(merged(a, merged(b, c)));
  });

  test.prop([coverageArb, coverageArb])('merging is commutative and idempotent', (a, b) => {
    expect(merged(a, b)).toEqual(merged(b, a));
    expect(merged(a, a)).toEqual(a);
  });

  test.prop([coverageArb])('its JSON round-trips, keys sorted whatever the order of visits', (a) => {
    const json = Coverage.fromJSON(a).toJSON();
    expect(json).toEqual(a);
    expect(JSON.stringify(json)).toBe(JSON.stringify(merged(...[a].reverse())));
    expect(Object.keys(json.ops)).toEqual(Object.keys(json.ops).sort());
    expect(Object.keys(json.transitions)).toEqual(Object.keys(json.transitions).sort());
  });

  test.prop([coverageArb, fc.nat(60)])(
    'cutting at a position keeps exactly the earlier first visits',
    (a, cut) => {
      const c = Coverage.fromJSON(a).before(cut).toJSON();
      for (const [k, s] of Object.entries(a.ops)) expect(c.ops[k]).toBe(s < cut ? s : undefined);
      for (const [k, s] of Object.entries(a.transitions))
        expect(c.transitions[k]).toBe(s < cut ? s : undefined);
    },
  );

  test.prop([coverageArb])('the report counts what was visited against the universe', (a) => {
    const r = Coverage.fromJSON(a).report();
    expect(r.ops.visited).toBe(Object.keys(a.ops).length);
    expect(r.ops.visited + r.ops.never.length).toBe(r.ops.total);
    expect(r.transitions.visited).toBe(Object.keys(a.transitions).length);
    for (const k of r.ops.never) expect(a.ops[k]).toBeUndefined();
  });
});

describe('the universe', () => {
  test('op tuples: map, unmap and gerror have no device; a removed device is in no quarantine', () => {
    const u = universe().ops;
    // 3 kinds × 5 queue states + 7 kinds (aer too) × (4 device states × 4 quarantines + removed) × 5
    expect(u.length).toBe(3 * 5 + 7 * 17 * 5);
    expect(new Set(u).size).toBe(u.length);
    expect(u).toContain('unmap - - full');
    expect(u).toContain('gerror - - error');
    expect(u).toContain('reset hung/ats resetting error');
    expect(u).not.toContain('reset removed broken empty');
    expect(u).not.toContain('map ok/ats none empty');
  });

  test('model transitions: the ones the model takes, not the whole product', () => {
    const u = universe().transitions;
    for (const t of [
      'report none->broken',
      'resetPrepare none->resetting',
      'resetDone resetting->none',
      'unplug broken->none',
    ])
      expect(u).toContain(t);
    // A probe resets nothing; nothing lifts a quarantine but a reset that works or an unplug.
    for (const t of ['probe none->broken', 'unmap broken->none', 'attach reset_failed->none'])
      expect(u).not.toContain(t);
    expect(u.length).toBeLessThan(9 * 16);
  });
});

describe('what a run records', () => {
  test('a hang, then an unmap: the unmap tuple, and the report takes none->broken', () => {
    const s: Scenario = {
      topology: oneDevice,
      rounds: [[{ kind: 'hang', dev: 0 }], [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }]],
      choices: [],
    };
    const c = recorded(s);
    // Probing filled the 4-slot ring past its end: both start on an idle queue on its second lap.
    expect(c.ops).toEqual({ 'hang ok/ats none wrapped': 0, 'unmap - - wrapped': 0 });
    expect(c.transitions).toEqual({ 'hang none->none': 0, 'unmap none->none': 0, 'report none->broken': 0 });
    const r = Coverage.fromJSON(c).report();
    expect(fmtCoverageLine(r)).toBe(`2/${r.ops.total} op tuples, 3/${r.transitions.total} model transitions`);
    expect(fmtBlindSpots(r)).toContain('  unmap - -: empty busy full error');
  });

  test('a reset that fails takes prepare then done, and the next attach starts on a quarantined device', () => {
    const s: Scenario = {
      topology: oneDevice,
      rounds: [
        [{ kind: 'reset', cpu: 0, dev: 0, outcome: 'fail' }],
        [{ kind: 'attach', cpu: 0, dev: 0, domain: 1 }],
      ],
      choices: [],
    };
    const c = recorded(s);
    expect(Object.keys(c.transitions)).toEqual([
      'attach reset_failed->reset_failed',
      'resetDone resetting->reset_failed',
      'resetPrepare none->resetting',
    ]);
    // The reset's commands brought PROD round to an even lap again.
    expect(c.ops).toEqual({ 'reset ok/ats none wrapped': 0, 'attach ok/no-ats reset_failed empty': 0 });
  });

  test.prop([scenarioArb], { numRuns: 40 })('the same scenario records the same coverage', (s) => {
    expect(recorded(s)).toEqual(recorded(s));
  });

  test.prop([scenarioArb], { numRuns: 40 })('recording changes nothing about the run', (s) => {
    const a = runScenario(s, v4, { trace: true });
    const b = runScenario(s, v4, { trace: true, coverage: new Coverage() });
    expect(b.steps).toBe(a.steps);
    expect(b.violations).toEqual(a.violations);
    expect(b.trace).toEqual(a.trace);
    expect(b.normalizedChoices).toEqual(a.normalizedChoices);
  });

  test.prop([scenarioArb, fc.constantFrom('mainline', 'v4', 'v4+full-queue-stall')], { numRuns: 60 })(
    'everything visited is in the universe',
    (s, name) => {
      const c = recorded(s, Variant.parse(name));
      const r = Coverage.fromJSON(c).report();
      expect(r.ops.visited).toBe(Object.keys(c.ops).length);
      expect(r.transitions.visited).toBe(Object.keys(c.transitions).length);
    },
  );

  test.prop([scenarioArb], { numRuns: 30 })(
    'a device is sampled as the refinement abstraction sees it',
    (s) => {
      const sys = new System(s.topology, v4, new ArrayChoices([]));
      sys.setup();
      sys.m.setChoices(new ArrayChoices(s.choices));
      let i = 0;
      for (const ops of s.rounds) {
        for (const op of ops) {
          if (!('dev' in op)) continue;
          const d = abstraction(sys).devs[op.dev]!;
          const t = sampleOp(sys, op);
          expect(t.device).toBe(
            !d.present ? 'removed' : `${d.responsive ? 'ok' : 'hung'}/${d.atsOn ? 'ats' : 'no-ats'}`,
          );
          expect(t.quarantine).toBe(d.quarantine);
        }
        if (sys.runRound(ops, i) !== 'quiescent') break;
        i += ops.length;
      }
    },
  );

  test('the queue buckets: empty, wrapped, busy, full, error', () => {
    const sys = new System({ ...oneDevice, queueShift: 2 }, v4, new ArrayChoices([]));
    const hw = sys.k.smmu.hw.cmdq;
    const cmdq = sys.k.smmu.cmdq;
    const at = (prod: number, cons: number, shadow = { prod: 0, cons: 0 }) => {
      hw.prod = prod;
      hw.cons = cons;
      cmdq.llq.prod = shadow.prod;
      cmdq.llq.cons = shadow.cons;
      return queueState(hw, cmdq);
    };
    expect(at(0, 0)).toBe('empty');
    expect(at(2, 0)).toBe('busy');
    expect(at(0b101, 0b011)).toBe('busy'); // PROD index 1 past the wrap, CONS index 3 before it
    expect(at(0b110, 0b110)).toBe('wrapped'); // idle, on the ring's second lap
    expect(at(0b100, 0, { prod: 0b100, cons: 0 })).toBe('full');
    hw.gerror ^= 1;
    expect(at(0, 0)).toBe('error');
  });
});

describe('fuzz', () => {
  test('records the search runs, stamped with their index, only when asked', () => {
    const off = fuzz({ variant: v4, seed: 3, runs: 40 });
    expect(off.coverage).toBeUndefined();
    const on = fuzz({ variant: v4, seed: 3, runs: 40, coverage: true });
    const stamps = [...Object.values(on.coverage!.ops), ...Object.values(on.coverage!.transitions)];
    expect(Math.min(...stamps)).toBe(0);
    expect(Math.max(...stamps)).toBeLessThan(40);
    const { elapsedMs: _a, shrinkMs: _b, coverage: _c, ...rest } = on;
    const { elapsedMs: _d, shrinkMs: _e, ...restOff } = off;
    expect(rest).toEqual(restOff);
  });
});
