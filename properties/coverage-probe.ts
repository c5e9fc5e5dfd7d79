/**
 * What one run records into a {@link Coverage} (runner.ts calls these only when asked for
 * coverage, so a run without it pays nothing):
 *
 * - each operation's tuple, sampled just before the operation's first step, not when the round
 *   starts: at a round's start the system is quiescent (queue idle, no error pending), while the
 *   states the races live in (a full queue, a pending CMDQ error, a device mid-reset) are the
 *   ones the round's other operations leave for it;
 * - after a round the refinement check accepted, the model transitions of the order that
 *   explains it (the first, as refinement.ts tries them).
 */
import type { HwCmdq } from '../impl/hw/smmu.ts';
import type { ArmSmmuCmdq } from '../impl/kernel.ts';
import type { Proc } from '../impl/sim/machine.ts';
import type { Op, System } from '../impl/system.ts';
import { queueFull } from '../impl/smmuv3/queue.ts';
import {
  type Consts,
  interleavings,
  type ModelOp,
  next,
  roundSeqs,
  settleSteps,
  type State,
} from '../model/model.ts';
import {
  type Coverage,
  type DeviceState,
  type OpTuple,
  type QueueState,
  stepTransitions,
} from './coverage.ts';
import { abstraction, stateKey, toModelOp } from './refinement.ts';

/** The command queue as the buckets of coverage.ts: hardware registers, and the driver's view of room. */
export function queueState(hw: HwCmdq, cmdq: ArmSmmuCmdq): QueueState {
  if (hw.errActive()) return 'error';
  if (queueFull(cmdq.maxNShift, cmdq.llq)) return 'full';
  if (!hw.empty()) return 'busy';
  return hw.wrp(hw.prod) !== 0 ? 'wrapped' : 'empty';
}

/** The tuple of `op` in the system's current state (read only). */
export function sampleOp(sys: System, op: Op): OpTuple {
  const queue = queueState(sys.k.smmu.hw.cmdq, sys.k.smmu.cmdq);
  if (op.kind === 'map' || op.kind === 'unmap' || op.kind === 'gerror')
    return { op: op.kind, device: '-', quarantine: '-', queue };
  // Through the refinement abstraction, so that the device is what the model would call it.
  const d = abstraction(sys).devs[op.dev]!;
  const device: DeviceState = !d.present
    ? 'removed'
    : `${d.responsive ? 'ok' : 'hung'}/${d.atsOn ? 'ats' : 'no-ats'}`;
  return { op: op.kind, device, quarantine: d.quarantine, queue };
}

/** `body`, with `first` called as its first step begins. */
function* onFirstStep<T>(body: Proc<T>, first: () => void): Proc<T> {
  first();
  return yield* body;
}

/**
 * Until the returned function is called, the threads System.start makes for `ops` (named
 * `<kind>#<index>`) record their tuple as they take their first step. The machine is not
 * changed: its spawn and agent are wrapped on this one instance, and the steps are the same.
 */
export function watchOpStarts(
  sys: System,
  ops: readonly Op[],
  firstIndex: number,
  cov: Coverage,
): () => void {
  const m = sys.m;
  const pending = new Map(ops.map((op, j) => [`${op.kind}#${firstIndex + j}`, op]));
  const wrap = (name: string, body: Proc<unknown>): Proc<unknown> => {
    const op = pending.get(name);
    if (op === undefined) return body;
    pending.delete(name);
    return onFirstStep(body, () => cov.op(sampleOp(sys, op)));
  };
  const spawn = m.spawn.bind(m);
  const agent = m.agent.bind(m);
  m.spawn = (name, cpu, body, opts) => spawn(name, cpu, wrap(name, body), opts);
  m.agent = (name, body, opts) => agent(name, wrap(name, body), opts);
  return () => {
    Reflect.deleteProperty(m, 'spawn');
    Reflect.deleteProperty(m, 'agent');
  };
}

/**
 * Records the transitions of the first order of `ops`' atomic steps that leads from `before` to
 * `after` under model.next. That is `accepted`, the order refinement accepted (refinement.ts
 * checkRound: no earlier order reaches `after` by any of model.nexts' choices), unless the
 * driver-only design reached `after` there by another choice than next's; then the first other.
 */
export function recordRound(
  cov: Coverage,
  c: Consts,
  before: State,
  ops: readonly Op[],
  accepted: readonly ModelOp[],
  after: State,
): void {
  const target = stateKey(after);
  // An order, then the reports it leaves pending (model.settle; none after `accepted`, which
  // ends with them), with its states, if it leads to `after`.
  const reaches = (o: readonly ModelOp[]): { order: ModelOp[]; states: State[] } | null => {
    const order = [...o];
    const states = [before];
    for (const op of order) states.push(next(c, states.at(-1)!, op));
    for (const op of settleSteps(states.at(-1)!)) {
      order.push(op);
      states.push(next(c, states.at(-1)!, op));
    }
    return stateKey(states.at(-1)!) === target ? { order, states } : null;
  };
  let found = reaches(accepted);
  if (found === null) {
    for (const o of interleavings(roundSeqs(c, before, ops.map(toModelOp)))) {
      found = reaches(o);
      if (found !== null) break;
    }
  }
  if (found === null) return;
  const { order, states } = found;
  order.forEach((op, i) => {
    for (const t of stepTransitions(op, states[i]!, states[i + 1]!)) cov.transition(t);
  });
}
