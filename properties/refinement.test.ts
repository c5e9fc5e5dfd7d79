import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import type { Op } from '../impl/system.ts';
import {
  atomicSteps,
  type Consts,
  constsOf,
  type Design,
  equal,
  init,
  interleavings,
  next,
  nexts,
  roundSeqs,
  settle,
  settleSteps,
  type Quarantine,
  type State,
} from '../model/model.ts';
import { checkRound, type RefinementResult, stateKey, toModelOp } from './refinement.ts';
import { opArb, topologyArb } from './scenario.ts';

/**
 * The definition checkRound walks as a tree: every order taken from the start, one at a time,
 * then the reports it leaves pending (model.ts Round).
 */
function byDefinition(c: Consts, before: State, ops: readonly Op[], impl: State): RefinementResult {
  const candidates: State[] = [];
  for (const order of interleavings(roundSeqs(c, before, ops.map(toModelOp)))) {
    let states = [before];
    for (const op of order)
      states =
        c.design === 'core' ? states.map((x) => next(c, x, op)) : states.flatMap((x) => nexts(c, x, op));
    for (const s0 of states) {
      const tail = settleSteps(s0);
      const s = settle(c, s0);
      if (equal(s, impl)) return { ok: true, state: s, order: [...order, ...tail] };
      if (!candidates.some((x) => equal(x, s))) candidates.push(s);
    }
  }
  return { ok: false, impl, candidates };
}

/** A model state some operations after init, a round of 0–4 operations, and a design. */
const roundArb = topologyArb.chain((t) =>
  fc.record({
    c: fc.constantFrom<Design>('core', 'driver').map((design) => constsOf(t.devices, 2, t.iovas, design)),
    history: fc.array(opArb(t), { maxLength: 6 }),
    ops: fc.array(opArb(t), { maxLength: 4 }),
    // The impl state: the model state of one of the round's orders, or that state perturbed.
    pick: fc.nat(),
    perturb: fc.option(fc.nat(), { freq: 2 }),
  }),
);

function perturbed(s: State, n: number): State {
  const devs = s.devs.map((d, i) =>
    i === n % s.devs.length ? { ...d, atsBroken: !d.atsBroken, responsive: n % 2 === 0 } : d,
  );
  return { ...s, devs };
}

test.prop([roundArb], { numRuns: 300 })(
  'checkRound gives the answer of every order taken from the start: verdict, state, order, candidates',
  ({ c, history, ops, pick, perturb }) => {
    const before = history.reduce(
      (s, op) =>
        settle(
          c,
          atomicSteps(toModelOp(op)).reduce((x, step) => next(c, x, step), s),
        ),
      init(c),
    );
    const some = byDefinition(c, before, ops, perturbed(before, 0));
    const all = some.ok ? [some.state] : some.candidates;
    const reached = all.length > 0 ? all[pick % all.length]! : before;
    const impl = perturb === null ? reached : perturbed(reached, perturb);
    const got = checkRound(c, before, ops, impl);
    const want = byDefinition(c, before, ops, impl);
    expect(got.ok).toBe(want.ok);
    if (got.ok && want.ok) {
      expect(JSON.stringify(got.state)).toBe(JSON.stringify(want.state));
      expect(got.order).toEqual(want.order);
    }
    if (!got.ok && !want.ok) expect(JSON.stringify(got.candidates)).toBe(JSON.stringify(want.candidates));
  },
);

const QUARANTINES: readonly Quarantine[] = ['none', 'resetting', 'reset_failed', 'broken'];

test.prop([roundArb, roundArb], { numRuns: 300 })(
  "stateKey tells two states apart exactly when they differ (checkRound's comparisons and memo)",
  (a, b) => {
    const reachable = ({ c, history, ops }: { c: Consts; history: Op[]; ops: Op[] }): State[] => {
      const before = history.reduce((s, op) => settle(c, next(c, s, toModelOp(op))), init(c));
      const r = byDefinition(c, before, ops, perturbed(before, 0));
      return [before, ...(r.ok ? [r.state] : r.candidates)];
    };
    // Every quarantine on dev0 too: mid-round values (resetting) never reach a quiescent state.
    const quarantined = (s: State): State[] =>
      QUARANTINES.map((quarantine) => ({
        ...s,
        devs: s.devs.map((d, i) => (i === 0 ? { ...d, quarantine } : d)),
      }));
    const states = [
      ...reachable(a),
      ...reachable(b),
      ...reachable(a).map((s, i) => perturbed(s, i)),
      ...reachable(b).flatMap(quarantined),
    ];
    for (const x of states) for (const y of states) expect(stateKey(x) === stateKey(y)).toBe(equal(x, y));
  },
);
