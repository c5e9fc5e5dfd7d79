import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import {
  atomicSteps,
  type Consts,
  constsOf,
  type FunctionSpec,
  GONE,
  init,
  interleavings,
  invariants,
  type ModelOp,
  next,
  nexts,
  roundSeqs,
  settle,
  settleSteps,
} from './model.ts';

/** Functions, some of them VFs of an earlier PF, some quirked. */
const functions: fc.Arbitrary<FunctionSpec[]> = fc
  .array(fc.record({ ats: fc.boolean(), pf: fc.option(fc.nat(2)), noAts: fc.boolean() }), {
    minLength: 1,
    maxLength: 3,
  })
  .map((fs) =>
    fs.map((f, d) => {
      const pf = f.pf === null || d === 0 ? undefined : f.pf % d;
      return { ats: f.ats, noAts: f.noAts, ...(pf === undefined || fs[pf]!.pf !== null ? {} : { pf }) };
    }),
  );

const consts: fc.Arbitrary<Consts> = fc
  .tuple(functions, fc.integer({ min: 1, max: 3 }))
  .map(([fs, iovas]) => constsOf(fs, 2, iovas));

const op = (c: Consts): fc.Arbitrary<ModelOp> => {
  const dev = fc.nat(c.ats.length - 1);
  const domain = fc.nat(c.domains - 1);
  const iova = fc.nat(c.iovas - 1);
  return fc.oneof(
    fc.record({ kind: fc.constant('map' as const), domain, iova }),
    fc.record({ kind: fc.constant('unmap' as const), domain, iova }),
    fc.record({ kind: fc.constant('attach' as const), dev, domain }),
    fc.record({
      kind: fc.constant('reset' as const),
      dev,
      outcome: fc.constantFrom('ok' as const, 'fail' as const),
    }),
    fc.record({ kind: fc.constant('dma' as const), dev, iova }),
    fc.record({ kind: fc.constant('hang' as const), dev }),
    fc.record({ kind: fc.constant('unplug' as const), dev }),
    fc.record({ kind: fc.constant('report' as const), dev }),
  );
};

const run = consts.chain((c) => fc.tuple(fc.constant(c), fc.array(op(c), { maxLength: 30 })));

describe('model', () => {
  test.prop([run])('every named invariant holds in every reachable state', ([c, ops]) => {
    let s = init(c);
    for (const o of ops) {
      s = next(c, s, o);
      for (const [name, inv] of Object.entries(invariants)) expect(inv(c, s), name).toBe(true);
    }
  });

  test.prop([run])('a working reset always clears the device and its group', ([c, ops]) => {
    let s = init(c);
    for (const o of ops) s = next(c, s, o);
    c.ats.forEach((_, d) => {
      if (!s.devs[d]!.present) return;
      const t = next(c, s, { kind: 'reset', dev: d, outcome: 'ok' });
      expect(t.devs[d]!.quarantine).toBe('none');
      expect(t.devs[d]!.responsive).toBe(true);
      expect(t.recoveryCnt[d]).toBe(0);
      expect(t.devs[d]!.atsOn).toBe(c.ats[d]);
      // P11: a report queued before it is neutralised
      expect(t.devs[d]!.brokenPending).toBe(false);
    });
  });

  test.prop([run])('a failed reset never lifts a quarantine', ([c, ops]) => {
    let s = init(c);
    for (const o of ops) s = next(c, s, o);
    c.ats.forEach((ats, d) => {
      if (!s.devs[d]!.present) return;
      const t = next(c, s, { kind: 'reset', dev: d, outcome: 'fail' });
      if (ats) expect(t.devs[d]!.quarantine).not.toBe('none');
      if (s.devs[d]!.quarantine !== 'none') expect(t.devs[d]!.quarantine).not.toBe('none');
    });
  });

  test('an unmap quarantines a hung ATS device on that domain, and only that one', () => {
    const c = constsOf([{ ats: true }, { ats: true }, { ats: false }], 2, 1);
    let s = next(c, init(c), { kind: 'hang', dev: 0 });
    s = next(c, s, { kind: 'unmap', domain: 0, iova: 0 });
    // The timeout fences ATS at once; the core's quarantine is the report's own step.
    expect(s.devs[0]).toMatchObject({
      quarantine: 'none',
      atsBroken: true,
      atsOn: false,
      brokenPending: true,
    });
    expect(settleSteps(s)).toEqual([{ kind: 'report', dev: 0 }]);
    s = settle(c, s);
    expect(s.devs.map((x) => x.quarantine)).toEqual(['broken', 'none', 'none']);
    expect(s.devs[0]!.brokenPending).toBe(false);
    expect(s.devs[0]).toMatchObject({ atsBroken: true, atsOn: false });
    expect(s.recoveryCnt).toEqual([1, 0, 0]);
    // attaching is refused while the group recovers
    expect(next(c, s, { kind: 'attach', dev: 0, domain: 1 })).toEqual(s);
  });

  test('the report is queued: an attach may move the device before it lands, with ATS kept off', () => {
    const c = constsOf([{ ats: true }], 2, 1);
    const hung = next(c, next(c, init(c), { kind: 'attach', dev: 0, domain: 1 }), { kind: 'hang', dev: 0 });
    // The attach back to domain 0 times out; the report waits for the worker.
    const timedOut = next(c, hung, { kind: 'attach', dev: 0, domain: 0 });
    expect(timedOut.devs[0]).toMatchObject({
      domain: 0,
      quarantine: 'none',
      atsOn: false,
      brokenPending: true,
    });
    const moved = next(c, timedOut, { kind: 'attach', dev: 0, domain: 1 });
    expect(moved.devs[0]).toMatchObject({ domain: 1, atsOn: false, atsBroken: true });
    expect(settle(c, moved).devs[0]).toMatchObject({ domain: 1, quarantine: 'broken' });
    // Landed first, it refuses the move.
    const landed = next(c, timedOut, { kind: 'report', dev: 0 });
    expect(next(c, landed, { kind: 'attach', dev: 0, domain: 1 }).devs[0]!.domain).toBe(0);
    // A reset that works neutralises it; one that fails does not.
    const reset = next(c, timedOut, { kind: 'reset', dev: 0, outcome: 'ok' });
    expect(settle(c, reset).devs[0]!.quarantine).toBe('none');
    const failed = next(c, timedOut, { kind: 'reset', dev: 0, outcome: 'fail' });
    expect(settle(c, failed).devs[0]!.quarantine).toBe('broken');
  });

  test.prop([run])(
    'Round: the worker may run anywhere among the steps, and only for a device that can time out',
    ([c, ops]) => {
      const s = ops.reduce((t, o) => settle(c, next(c, t, o)), init(c));
      const round: ModelOp[] = [
        { kind: 'unmap', domain: 0, iova: 0 },
        { kind: 'hang', dev: 0 },
      ];
      const seqs = roundSeqs(c, s, round);
      const reporters = seqs.slice(round.length).map((q) => q[0]);
      for (const r of reporters) {
        expect(r?.kind).toBe('report');
        const d = r!.kind === 'report' ? r!.dev : -1;
        expect(s.devs[d]!.present && c.ats[d]).toBe(true);
        expect(d === 0 || !s.devs[d]!.responsive).toBe(true);
      }
      // Every device that the round can leave with a report pending has its worker step.
      for (const order of interleavings(seqs.slice(0, round.length))) {
        const end = order.reduce((t, o) => next(c, t, o), s);
        for (const op of settleSteps(end)) expect(reporters).toContainEqual(op);
      }
    },
  );

  test('PF/VF rules: a PF quirk reaches its VFs; a VF whose PF has no ATS fails its probe', () => {
    const c = constsOf(
      [{ ats: true, noAts: true }, { ats: true, pf: 0 }, { ats: false }, { ats: true, pf: 2 }, { ats: true }],
      2,
      1,
    );
    expect(c.ats).toEqual([false, false, false, true, true]);
    expect(c.probed).toEqual([true, true, true, false, true]);
    expect(init(c).devs[3]).toEqual(GONE);
    expect(init(c).devs[1]).toMatchObject({ present: true, atsOn: false });
  });

  test.prop([consts.chain((c) => fc.tuple(fc.constant(c), fc.nat(c.ats.length - 1)))])(
    'unplugging a PF takes its VFs, and only them, with it',
    ([c, d]) => {
      const s = next(c, init(c), { kind: 'unplug', dev: d });
      s.devs.forEach((x, e) => {
        const gone = e === d || c.pf[e] === d || !c.probed[e];
        expect(x.present).toBe(!gone);
      });
    },
  );

  test("'driver' design: the core is not told, an attach turns ATS back on, bystanders may be fenced", () => {
    const c = constsOf([{ ats: true }, { ats: true }], 2, 1, 'driver');
    let s = next(c, init(c), { kind: 'hang', dev: 0 });
    const after = nexts(c, s, { kind: 'unmap', domain: 0, iova: 0 });
    // dev0 fenced by the driver only; dev1 (healthy, same batch) fenced or not
    expect(after.map((x) => x.devs.map((d) => d.atsBroken))).toEqual([
      [true, false],
      [true, true],
    ]);
    expect(after.every((x) => x.devs[0]!.quarantine === 'none' && x.recoveryCnt[0] === 0)).toBe(true);
    s = after[0]!;
    // the attach re-enables ATS, which times out again on the silent device and is fenced again
    expect(next(c, s, { kind: 'attach', dev: 0, domain: 1 }).devs[0]).toMatchObject({
      domain: 1,
      atsBroken: true,
      atsOn: false,
    });
    // a working reset restores it
    const r = next(c, s, { kind: 'reset', dev: 0, outcome: 'ok' });
    expect(r.devs[0]).toMatchObject({ atsBroken: false, atsOn: true, quarantine: 'none' });
  });

  test.prop([
    consts
      .map((c) => ({ ...c, design: 'driver' as const }))
      .chain((c) => fc.tuple(fc.constant(c), fc.array(op(c), { maxLength: 8 }))),
  ])("'driver' design keeps the invariants, and 'core' has exactly one successor", ([c, ops]) => {
    let states = [init(c)];
    for (const o of ops) {
      states = states.flatMap((x) => nexts(c, x, o)).slice(0, 64);
      for (const x of states)
        for (const [name, inv] of Object.entries(invariants)) expect(inv(c, x), name).toBe(true);
      expect(nexts({ ...c, design: 'core' }, states[0]!, o)).toHaveLength(1);
    }
  });

  test('a reset is two atomic steps; interleavings keep each operation in order', () => {
    const a = atomicSteps({ kind: 'reset', dev: 0, outcome: 'ok' });
    expect(a.map((x) => x.kind)).toEqual(['resetPrepare', 'resetDone']);
    const all = interleavings([[1, 2], [3]]);
    expect(all).toEqual([
      [1, 2, 3],
      [1, 3, 2],
      [3, 1, 2],
    ]);
  });

  test.prop([fc.array(fc.array(fc.nat(), { maxLength: 2 }), { maxLength: 3 })])(
    'interleavings: count is the multinomial, and each keeps every sequence in order',
    (seqs) => {
      const all = interleavings(seqs);
      const n = seqs.reduce((a, q) => a + q.length, 0);
      const fact = (k: number): number => (k <= 1 ? 1 : k * fact(k - 1));
      expect(all.length).toBe(fact(n) / seqs.reduce((a, q) => a * fact(q.length), 1));
      for (const order of all) expect(order.length).toBe(n);
    },
  );
});
