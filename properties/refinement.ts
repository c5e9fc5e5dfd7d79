/**
 * Refinement: at each quiescent point the abstraction of the impl state must equal the model
 * state reached by some order of the round's concurrent operations.
 */
import {
  type ArmSmmuMaster,
  BLOCKED_BROKEN,
  BLOCKED_RESET_FAILED,
  BLOCKED_RESETTING,
} from '../impl/kernel.ts';
import type { Op, System } from '../impl/system.ts';
import {
  type Consts,
  constsOf,
  GONE,
  type ModelOp,
  next,
  nexts,
  type Quarantine,
  roundSeqs,
  settle,
  settleSteps,
  type State,
} from '../model/model.ts';

const QUARANTINE: Record<number, Quarantine> = {
  0: 'none',
  [BLOCKED_RESETTING]: 'resetting',
  [BLOCKED_RESET_FAILED]: 'reset_failed',
  [BLOCKED_BROKEN]: 'broken',
};

export function consts(sys: System): Consts {
  return constsOf(
    sys.topo.devices,
    sys.k.domains.filter((d) => d.type === 'paging').length,
    sys.topo.iovas,
    sys.v.minimal ? 'driver' : 'core',
  );
}

/** The abstraction function: impl state → model state. */
export function abstraction(sys: System): State {
  const { k } = sys;
  return {
    devs: k.pdevs.map((pdev, d) => {
      // Removed, or never probed by the IOMMU: nothing of the protocol applies any more.
      if (pdev.removed || !pdev.hasIommu) return GONE;
      const gdev = k.gdevs[d]!;
      const sids = pdev.ep.sids;
      const eats = sids.every((sid) => k.smmu.hw.ste.get(sid)?.eats === true);
      return {
        domain: pdev.group!.domain!.id,
        quarantine: QUARANTINE[gdev.blocked] ?? 'none',
        atsBroken:
          pdev.master !== null && (pdev.master.atsBroken || (sys.v.minimal && fenced(pdev.master, eats))),
        atsOn: pdev.ep.atsEnabled && eats,
        responsive: pdev.ep.responsive,
        present: true,
        brokenPending: gdev.brokenPending,
      };
    }),
    recoveryCnt: k.groups.map((g) => g.recoveryCnt),
    mapped: k.domains.filter((d) => d.type === 'paging').map((d) => [...d.pt.keys()].sort((a, b) => a - b)),
  };
}

/**
 * v4-minimal keeps no ats_broken: its fence is EATS cleared under an ATS the driver still has
 * on, plus the master's invalidation entries marked broken.
 */
function fenced(master: ArmSmmuMaster, eats: boolean): boolean {
  const invs = master.domain?.invs.inv ?? [];
  return (master.atsEnabled && !eats) || invs.some((i) => i.broken === true && master.sids.includes(i.id));
}

export function toModelOp(op: Op): ModelOp {
  switch (op.kind) {
    case 'map':
    case 'unmap':
      return { kind: op.kind, domain: op.domain, iova: op.iova };
    case 'attach':
      return { kind: 'attach', dev: op.dev, domain: op.domain };
    case 'reset':
      return { kind: 'reset', dev: op.dev, outcome: op.outcome };
    case 'dma':
      return { kind: 'dma', dev: op.dev, iova: op.iova };
    case 'hang':
      return { kind: 'hang', dev: op.dev };
    case 'unplug':
      return { kind: 'unplug', dev: op.dev };
    case 'probe':
      return { kind: 'probe', dev: op.dev };
    case 'aer':
      return { kind: 'aer', dev: op.dev, outcome: op.outcome };
    case 'gerror':
      return { kind: 'gerror' };
  }
}

export type RefinementResult =
  { ok: true; state: State; order: readonly ModelOp[] } | { ok: false; impl: State; candidates: State[] };

const Q_CODE: Record<Quarantine, number> = { none: 0, resetting: 1, reset_failed: 2, broken: 3 };

/**
 * A state as a short string: equal states, equal keys (refinement.test.ts). checkRound compares
 * and memoises states by it, where JSON.stringify took a large share of a catalog search.
 */
export function stateKey(s: State): string {
  let key = '';
  for (const d of s.devs) {
    key += `${d.domain}:${Q_CODE[d.quarantine]}`;
    key += `${+d.atsBroken}${+d.atsOn}${+d.responsive}${+d.present}${+d.brokenPending};`;
  }
  return `${key}|${s.recoveryCnt.join(',')}|${s.mapped.map((m) => m.join(',')).join('/')}`;
}

/** A node of checkRound's tree: the steps each operation has taken, and the states reached. */
const nodeKey = (pos: readonly number[], states: readonly State[]): string =>
  `${pos.join(',')}#${states.map(stateKey).join('#')}`;

/**
 * Walks the round's interleavings (model.ts `interleavings`, in its order) as a tree, so that
 * orders sharing a prefix share its transitions, and compares states by key: the same answer
 * as taking each order from the start (refinement.test.ts), for less: runs with coverage went
 * from about 1,600 to 1,950 a second. On success, also the order that explains the state (the
 * first; coverage-probe.ts records its transitions).
 *
 * A subtree is walked once per state: two prefixes that took the same steps of each operation
 * and reached the same states have the same subtree, and one that did not reach the target the
 * first time does not the second (its candidates are in already), so it is skipped. The order
 * found and the candidates are those of the full walk. Sixteenth session, 6,201 catalog runs of
 * master-freed-under-rcu (36,150 rounds): 263,137 leaves and 785,126 nodes walked before, 44,775
 * and 244,324 after; the largest rounds went from over 8,192 leaves to under 128; the check's
 * time from 1.4 s to 0.6 s of the search's 4.1 s.
 */
export function checkRound(c: Consts, before: State, ops: readonly Op[], impl: State): RefinementResult {
  const seqs = roundSeqs(c, before, ops.map(toModelOp)).filter((q) => q.length > 0);
  const target = stateKey(impl);
  const candidates = new Map<string, State>();
  const dead = new Set<string>();
  const total = seqs.reduce((n, q) => n + q.length, 0);
  const pos = seqs.map(() => 0);
  const order: ModelOp[] = [];
  // Only the driver-only design leaves choices to the implementation (see model.nexts); an
  // order's states are then every state its steps may lead to, in model.nexts' order.
  const after = (states: readonly State[], op: ModelOp): State[] =>
    c.design === 'core' ? states.map((x) => next(c, x, op)) : states.flatMap((x) => nexts(c, x, op));
  const walk = (states: readonly State[]): State | null => {
    if (order.length === total) {
      for (const s of states) {
        // The system quiesces: the worker handles every report still pending.
        const end = settle(c, s);
        const key = stateKey(end);
        if (key === target) {
          order.push(...settleSteps(s));
          return end;
        }
        if (!candidates.has(key)) candidates.set(key, end);
      }
      return null;
    }
    // Keyed only once some subtree has failed: a round whose first order fits needs no key.
    const node = dead.size > 0 ? nodeKey(pos, states) : null;
    if (node !== null && dead.has(node)) return null;
    for (let i = 0; i < seqs.length; i++) {
      const op = seqs[i]![pos[i]!];
      if (op === undefined) continue;
      pos[i]!++;
      order.push(op);
      const found = walk(after(states, op));
      if (found !== null) return found;
      order.pop();
      pos[i]!--;
    }
    dead.add(node ?? nodeKey(pos, states));
    return null;
  };
  const state = walk([before]);
  return state !== null
    ? { ok: true, state, order }
    : { ok: false, impl, candidates: [...candidates.values()] };
}

function diff(impl: State, model: State): string[] {
  const diffs: string[] = [];
  impl.devs.forEach((x, d) => {
    const y = model.devs[d]!;
    for (const key of Object.keys(x) as (keyof typeof x)[]) {
      if (x[key] !== y[key]) diffs.push(`dev${d}.${key}: impl ${String(x[key])}, model ${String(y[key])}`);
    }
  });
  impl.recoveryCnt.forEach((n, g) => {
    if (n !== model.recoveryCnt[g])
      diffs.push(`group${g}.recovery_cnt: impl ${n}, model ${model.recoveryCnt[g]}`);
  });
  impl.mapped.forEach((m, d) => {
    if (m.join() !== model.mapped[d]!.join())
      diffs.push(`domain${d} mapped: impl [${m}], model [${model.mapped[d]}]`);
  });
  return diffs;
}

/** A short, readable difference between the impl state and the closest model state. */
export function describeMismatch(impl: State, candidates: readonly State[]): string {
  let best: string[] | null = null;
  for (const c of candidates) {
    const d = diff(impl, c);
    if (best === null || d.length < best.length) best = d;
  }
  if (best === null) return 'no model state';
  return best.join('; ') + (candidates.length > 1 ? ` (closest of ${candidates.length} model orders)` : '');
}
