/** Schedule projection: it replays a run, renames what it should, and shrinks what fresh schedules cannot. */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { Variant } from '../impl/variants.ts';
import { projectDrop, type Recording, record, withoutOps } from './project.ts';
import { dropOp, dropOps, validScenario } from './reduce.ts';
import { runScenario } from './runner.ts';
import { mixedScenarioArb, type Scenario, scenarioSize } from './scenario.ts';

const variants = fc.constantFrom(
  ...['v4', 'v4-minimal', 'v4+master-freed-under-rcu'].map((v) => Variant.parse(v)),
);

describe('projectDrop', () => {
  test.prop([mixedScenarioArb, variants], { numRuns: 60 })(
    'dropping nothing replays the same run, as a uniform stream',
    (s, v) => {
      const rec = record(s, v);
      const same = projectDrop(s, rec, new Set(), v)!;
      expect(same.pct).toBeUndefined();
      expect(record(same, v).actors).toEqual(rec.actors);
      const strip = (r: ReturnType<typeof runScenario>) =>
        r.violations.map((x) => [x.property, x.step, x.message]);
      expect(strip(runScenario(same, v))).toEqual(strip(runScenario(s, v)));
    },
  );

  test.prop([mixedScenarioArb.filter((s) => scenarioSize(s).ops >= 2), fc.nat(), variants], { numRuns: 40 })(
    'the smaller scenario keeps the other operations in their rounds and order, on the same topology',
    (s, i, v) => {
      const d = i % scenarioSize(s).ops;
      const p = projectDrop(s, record(s, v), new Set([d]), v)!;
      expect(p.rounds).toEqual(dropOp(s, d)!.rounds);
      expect(p.topology).toEqual(s.topology);
      expect(validScenario(p)).toBe(true);
    },
  );
});

describe('withoutOps', () => {
  const name = fc.constantFrom('unmap', 'attach', 'dma', 'unplug');
  const actor = fc.oneof(
    fc.constantFrom('time', 'kworker/0', 'gerror-irq', 'smmu'),
    fc.tuple(name, fc.nat(5)).map(([k, i]) => `${k}#${i}`),
  );
  test.prop([fc.array(actor, { maxLength: 40 }), fc.uniqueArray(fc.nat(5), { maxLength: 3 }), fc.nat(40)])(
    "drops the dropped operations' steps, renumbers later ones, keeps the rest, and moves the cut with them",
    (actors, dropped, cut) => {
      const rec: Recording = { actors, cut: Math.min(cut, actors.length), hw: [1, 0] };
      const out = withoutOps(rec, new Set(dropped));
      const expected = actors.flatMap((a) => {
        const m = /^(\w+)#(\d+)$/.exec(a);
        if (m === null) return [a];
        const i = Number(m[2]);
        return dropped.includes(i) ? [] : [`${m[1]}#${i - dropped.filter((x) => x < i).length}`];
      });
      expect(out.actors).toEqual(expected);
      expect(out.hw).toEqual(rec.hw);
      // The cut falls after the kept steps that came before it.
      const keptBefore = actors.slice(0, rec.cut).filter((a) => {
        const m = /#(\d+)$/.exec(a);
        return m === null || !dropped.includes(Number(m[1]));
      }).length;
      expect(out.cut).toBe(keptBefore);
    },
  );
});

/**
 * master-freed-under-rcu, as the catalog's second worker found it on seed 8 (seventh session): a
 * hang, two DMAs of the hung device, attaches and an unplug. Its attaches went to domain 0, where
 * both devices already were, which Linux makes a no-op; here they go to domain 1, under a
 * 39-choice stream found for this form (eleventh session). Neither DMA plays a part, but dropping
 * them shifts every later choice: the same stream passes, and 4 fresh schedules in 1,000 of the
 * 4-operation shape fail. The projected schedule does.
 */
const TWO_IDLE_DMAS: Scenario = {
  topology: {
    cpus: 1,
    devices: [
      { ats: true, sids: 2, quirk: false },
      { ats: false, sids: 1, quirk: false },
    ],
    gerrorIrqCpu: 0,
    queueShift: 2,
    batchEntries: 2,
    atcTimeoutUs: 50_000,
    iovas: 1,
  },
  rounds: [
    [
      { kind: 'hang', dev: 0 },
      { kind: 'attach', cpu: 0, dev: 1, domain: 1 },
    ],
    [
      { kind: 'dma', dev: 0, iova: 0 },
      { kind: 'dma', dev: 0, iova: 0 },
    ],
    [
      { kind: 'unplug', cpu: 0, dev: 1 },
      { kind: 'attach', cpu: 0, dev: 0, domain: 1 },
    ],
  ],
  choices: [
    1, 7, 1, 1, 7, 0, 4, 2, 4, 3, 0, 6, 4, 6, 5, 3, 5, 3, 4, 6, 5, 0, 4, 3, 4, 4, 4, 3, 1, 3, 2, 6, 3, 4, 3,
    5, 6, 3, 7,
  ],
};

/** Fails under v4+flag and passes under v4: what the catalog searches for. */
const differentialOf = (flagged: Variant) => {
  const v4 = Variant.parse('v4');
  return (s: Scenario) =>
    runScenario(s, flagged).violations.length > 0 && runScenario(s, v4).violations.length === 0;
};

test('a failure on one long schedule survives dropping two operations only with the schedule projected', () => {
  const flagged = Variant.parse('v4+master-freed-under-rcu');
  const differential = differentialOf(flagged);
  expect(differential(TWO_IDLE_DMAS)).toBe(true);
  const withoutDmas = dropOp(dropOp(TWO_IDLE_DMAS, 3)!, 2)!;
  expect(withoutDmas.rounds.flat().map((o) => o.kind)).toEqual(['hang', 'attach', 'unplug', 'attach']);
  expect(differential(withoutDmas)).toBe(false);
  const projected = projectDrop(TWO_IDLE_DMAS, record(TWO_IDLE_DMAS, flagged), new Set([2, 3]), flagged)!;
  expect(projected.rounds).toEqual(withoutDmas.rounds);
  expect(differential(projected)).toBe(true);
});

/**
 * reset-clears-broken-midway, found by PCT on seed 8 (ninth session) and left at 9 operations
 * (witness 5) by the shrink's steps before the last projection: under its own priorities and
 * change point, no operation or pair of them can be dropped (the threads after it are renumbered,
 * so every priority moves). Projected, the first round's unmap and reset can.
 */
const PCT_NINE_OPS: Scenario = {
  topology: {
    cpus: 2,
    gerrorIrqCpu: 1,
    queueShift: 3,
    batchEntries: 2,
    atcTimeoutUs: 50_000,
    iovas: 1,
    devices: [
      { ats: true, sids: 1, quirk: false },
      { ats: true, sids: 1, quirk: false },
    ],
    stalls: true,
  },
  rounds: [
    [
      { kind: 'unmap', cpu: 0, domain: 1, iova: 0 },
      { kind: 'reset', cpu: 0, dev: 0, outcome: 'ok' },
      { kind: 'probe', cpu: 0, dev: 0 },
    ],
    [{ kind: 'attach', cpu: 0, dev: 1, domain: 1 }],
    [
      { kind: 'map', cpu: 0, domain: 1, iova: 0 },
      { kind: 'hang', dev: 0 },
    ],
    [{ kind: 'unmap', cpu: 0, domain: 1, iova: 0 }],
    [
      { kind: 'reset', cpu: 0, dev: 1, outcome: 'ok' },
      { kind: 'unmap', cpu: 1, domain: 0, iova: 0 },
    ],
  ],
  choices: [],
  // 148 until the thirteenth session: the attach's unref drain added a scheduling decision.
  pct: { priorities: [0, 4, 0, 4], changes: [149] },
};

test('a PCT find that no drop keeps under its own priorities shrinks with its schedule projected', () => {
  const flagged = Variant.parse('v4+reset-clears-broken-midway');
  const differential = differentialOf(flagged);
  expect(differential(PCT_NINE_OPS)).toBe(true);
  const n = scenarioSize(PCT_NINE_OPS).ops;
  for (let a = 0; a < n; a++)
    for (let b = a; b < n; b++) expect(differential(dropOps(PCT_NINE_OPS, new Set([a, b]))!)).toBe(false);
  const projected = projectDrop(PCT_NINE_OPS, record(PCT_NINE_OPS, flagged), new Set([0, 1]), flagged)!;
  expect(projected.pct).toBeUndefined();
  expect(projected.rounds).toEqual(dropOps(PCT_NINE_OPS, new Set([0, 1]))!.rounds);
  expect(differential(projected)).toBe(true);
});
