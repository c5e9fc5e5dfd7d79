/**
 * Protocol coverage, in the spirit of Coyote's event coverage: which (operation × device state
 * × quarantine reason × command-queue state) tuples the operations of a search started in, and
 * which transitions of the reference model its rounds took; against the universe of both, so a
 * report can name the blind spots. What a run records is in coverage-probe.ts.
 *
 * A {@link Coverage} maps each visited key to the stamp (stream position) of the first run that
 * visited it. Merging keeps the smallest stamp: associative, commutative, idempotent; and cutting
 * at a stream position ({@link Coverage.before}) gives what the runs before it visited, which
 * keeps a parallel search's coverage independent of how far its workers ran ahead.
 */
import { match } from 'ts-pattern';
import { ArrayChoices } from '../impl/sim/machine.ts';
import { System, type Op, type Topology } from '../impl/system.ts';
import { Variant } from '../impl/variants.ts';
import { type Consts, init, type ModelOp, next, type Quarantine, type State } from '../model/model.ts';
import { consts } from './refinement.ts';

export type OpKind = Op['kind'];

/** Whether an operation targets a device (map and unmap target a domain). Typed: a new kind must say. */
const TARGETS_DEVICE: Record<OpKind, boolean> = {
  map: false,
  unmap: false,
  attach: true,
  reset: true,
  dma: true,
  hang: true,
  unplug: true,
  probe: true,
  aer: true,
  gerror: false,
};
export const OP_KINDS = Object.keys(TARGETS_DEVICE) as OpKind[];

/** The target device as the model sees it: answers invalidations or not, ATS effectively on or not. */
export type DeviceState = 'ok/ats' | 'ok/no-ats' | 'hung/ats' | 'hung/no-ats' | 'removed';
export const DEVICE_STATES: readonly DeviceState[] = [
  'ok/ats',
  'ok/no-ats',
  'hung/ats',
  'hung/no-ats',
  'removed',
];

export const QUARANTINES: readonly Quarantine[] = ['none', 'resetting', 'reset_failed', 'broken'];

/**
 * The SMMU command queue, most telling first: a CMDQ error pending (GERROR.CMDQ_ERR active,
 * nothing consumed), the driver's view full (an issuer must poll for room), entries waiting;
 * idle on an odd lap of the ring (PROD's wrap bit set: the wrap-bit arithmetic is in play) or on
 * an even one.
 */
export type QueueState = 'error' | 'full' | 'busy' | 'wrapped' | 'empty';
export const QUEUE_STATES: readonly QueueState[] = ['empty', 'wrapped', 'busy', 'full', 'error'];

/** An operation as it took its first step; '-' for the device fields of map and unmap. */
export interface OpTuple {
  readonly op: OpKind;
  readonly device: DeviceState | '-';
  readonly quarantine: Quarantine | '-';
  readonly queue: QueueState;
}

/** The model's atomic steps (a reset or an AER recovery is its prepare, then its done: model.ts atomicSteps). */
export type StepKind = Exclude<ModelOp['kind'], 'reset' | 'aer'>;

/** One device's quarantine across one atomic step of the model. */
export interface Transition {
  readonly step: StepKind;
  readonly from: Quarantine;
  readonly to: Quarantine;
}

export const opKey = (t: OpTuple): string => `${t.op} ${t.device} ${t.quarantine} ${t.queue}`;
export const transitionKey = (t: Transition): string => `${t.step} ${t.from}->${t.to}`;

/** Every op tuple: the product of the unions, less what cannot be (a removed device is in no quarantine). */
function opUniverse(): string[] {
  const keys: string[] = [];
  for (const op of OP_KINDS) {
    type Target = readonly [DeviceState | '-', Quarantine | '-'];
    const devs: readonly Target[] = TARGETS_DEVICE[op]
      ? DEVICE_STATES.flatMap((d): Target[] =>
          d === 'removed' ? [[d, 'none']] : QUARANTINES.map((q): Target => [d, q]),
        )
      : [['-', '-']];
    for (const [device, quarantine] of devs)
      for (const queue of QUEUE_STATES) keys.push(opKey({ op, device, quarantine, queue }));
  }
  return keys;
}

/**
 * The devices an atomic step touches: its device (the worker's, only when it has a report to
 * handle); for map and unmap, every device present on the domain (an unmap's invalidation is
 * what finds a silent device).
 */
export function touched(op: ModelOp, before: State): number[] {
  if (op.kind === 'report') return before.devs[op.dev]!.brokenPending ? [op.dev] : [];
  if ('dev' in op) return [op.dev];
  if (op.kind === 'gerror') return [];
  const out: number[] = [];
  before.devs.forEach((x, d) => {
    if (x.present && x.domain === op.domain) out.push(d);
  });
  return out;
}

/** Records the quarantine transition of every device `op` touches, from `before` to `after`. */
export function stepTransitions(op: ModelOp, before: State, after: State): Transition[] {
  if (op.kind === 'reset' || op.kind === 'aer') throw new Error(`${op.kind}: recorded as its atomic steps`);
  const step = op.kind;
  return touched(op, before).map((d) => ({
    step,
    from: before.devs[d]!.quarantine,
    to: after.devs[d]!.quarantine,
  }));
}

/** Every atomic step the model can take in a system with constants `c`. */
function allSteps(c: Consts): ModelOp[] {
  const devs = c.ats.map((_, d) => d);
  const doms = Array.from({ length: c.domains }, (_, i) => i);
  const iovas = Array.from({ length: c.iovas }, (_, i) => i);
  const kinds: StepKind[] = [
    'map',
    'unmap',
    'attach',
    'resetPrepare',
    'resetDone',
    'dma',
    'hang',
    'unplug',
    'probe',
    'gerror',
    'report',
  ];
  return kinds.flatMap((kind): ModelOp[] =>
    match(kind)
      .with('map', 'unmap', (k) => doms.flatMap((domain) => iovas.map((iova) => ({ kind: k, domain, iova }))))
      .with('attach', () =>
        devs.flatMap((dev) => doms.map((domain) => ({ kind: 'attach' as const, dev, domain }))),
      )
      .with('resetDone', () =>
        devs.flatMap((dev) =>
          (['ok', 'fail'] as const).map((outcome) => ({ kind: 'resetDone' as const, dev, outcome })),
        ),
      )
      .with('dma', () => devs.map((dev) => ({ kind: 'dma' as const, dev, iova: 0 })))
      .with('resetPrepare', 'hang', 'unplug', 'probe', 'report', (k) => devs.map((dev) => ({ kind: k, dev })))
      .with('gerror', () => [{ kind: 'gerror' as const }])
      .exhaustive(),
  );
}

/**
 * The model transitions that exist: every (step, from, to) the model takes from a state it can
 * reach, found by exploring it on a small system (one device with ATS, one without). Not the
 * product of the unions: most of that product (a probe that breaks a device) the model cannot
 * do, and listing it would drown the real blind spots.
 */
function transitionUniverse(): string[] {
  const topo: Topology = {
    cpus: 1,
    devices: [
      { ats: true, sids: 1 },
      { ats: false, sids: 1 },
    ],
    gerrorIrqCpu: 0,
    queueShift: 2,
    batchEntries: 2,
    atcTimeoutUs: 50_000,
    iovas: 1,
  };
  // The constants come from the harness's own abstraction of a real system, whatever they hold.
  const c = consts(new System(topo, Variant.parse('v4'), new ArrayChoices([])));
  const steps = allSteps(c);
  const s0 = init(c);
  const seen = new Set([JSON.stringify(s0)]);
  const queue: State[] = [s0];
  const keys = new Set<string>();
  for (let i = 0; i < queue.length; i++) {
    const s = queue[i]!;
    for (const op of steps) {
      const t = next(c, s, op);
      for (const tr of stepTransitions(op, s, t)) keys.add(transitionKey(tr));
      const k = JSON.stringify(t);
      if (!seen.has(k)) {
        seen.add(k);
        queue.push(t);
      }
    }
  }
  return [...keys].sort();
}

export interface Universe {
  readonly ops: readonly string[];
  readonly transitions: readonly string[];
}

let universeMemo: Universe | null = null;

/** All op tuples and all model transitions (computed once). */
export function universe(): Universe {
  universeMemo ??= { ops: opUniverse(), transitions: transitionUniverse() };
  return universeMemo;
}

/** Coverage as plain JSON: visited key → stamp of the first run that visited it, keys sorted. */
export interface CoverageJson {
  readonly ops: Readonly<Record<string, number>>;
  readonly transitions: Readonly<Record<string, number>>;
}

export interface CoverageCount {
  readonly visited: number;
  readonly total: number;
  /** The universe's keys never visited, in universe order. */
  readonly never: readonly string[];
}

export interface CoverageReport {
  readonly ops: CoverageCount;
  readonly transitions: CoverageCount;
}

const sortedRecord = (m: ReadonlyMap<string, number>): Record<string, number> =>
  Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

export class Coverage {
  private readonly opFirst = new Map<string, number>();
  private readonly transitionFirst = new Map<string, number>();
  /** The stream position of the run being recorded: what a first visit remembers. */
  stamp = 0;

  op(t: OpTuple): void {
    visit(this.opFirst, opKey(t), this.stamp);
  }

  transition(t: Transition): void {
    visit(this.transitionFirst, transitionKey(t), this.stamp);
  }

  /** Adds `other` into this one (smallest stamp wins); returns this. */
  merge(other: Coverage | CoverageJson): this {
    const o = other instanceof Coverage ? other.toJSON() : other;
    for (const [k, s] of Object.entries(o.ops)) visit(this.opFirst, k, s);
    for (const [k, s] of Object.entries(o.transitions)) visit(this.transitionFirst, k, s);
    return this;
  }

  /** What the runs before stream position `cut` visited. */
  before(cut: number): Coverage {
    const c = new Coverage();
    for (const [k, s] of this.opFirst) if (s < cut) c.opFirst.set(k, s);
    for (const [k, s] of this.transitionFirst) if (s < cut) c.transitionFirst.set(k, s);
    return c;
  }

  toJSON(): CoverageJson {
    return { ops: sortedRecord(this.opFirst), transitions: sortedRecord(this.transitionFirst) };
  }

  static fromJSON(j: CoverageJson): Coverage {
    return new Coverage().merge(j);
  }

  /** Visited and total per kind, and the blind spots, against {@link universe}. */
  report(): CoverageReport {
    const u = universe();
    const count = (all: readonly string[], seen: ReadonlyMap<string, number>): CoverageCount => {
      const never = all.filter((k) => !seen.has(k));
      return { visited: all.length - never.length, total: all.length, never };
    };
    return { ops: count(u.ops, this.opFirst), transitions: count(u.transitions, this.transitionFirst) };
  }
}

function visit(m: Map<string, number>, key: string, stamp: number): void {
  const s = m.get(key);
  if (s === undefined || stamp < s) m.set(key, stamp);
}

/** The one-line summary: `57/520 op tuples, 18/40 model transitions`. */
export const fmtCoverageLine = (r: CoverageReport): string =>
  `${r.ops.visited}/${r.ops.total} op tuples, ${r.transitions.visited}/${r.transitions.total} model transitions`;

/**
 * The blind spots for a reader: op tuples grouped by (op, device, quarantine) with the queue
 * states never seen there; then the model transitions never taken.
 */
export function fmtBlindSpots(r: CoverageReport): string[] {
  const groups = new Map<string, string[]>();
  for (const k of r.ops.never) {
    const cut = k.lastIndexOf(' ');
    const head = k.slice(0, cut);
    const list = groups.get(head) ?? [];
    list.push(k.slice(cut + 1));
    groups.set(head, list);
  }
  const lines = [`never visited: ${r.ops.never.length} op tuple(s) (op, device, quarantine: queue states)`];
  for (const [head, qs] of groups)
    lines.push(`  ${head}: ${qs.length === QUEUE_STATES.length ? 'any' : qs.join(' ')}`);
  lines.push(`never taken: ${r.transitions.never.length} model transition(s) (step from->to)`);
  for (const k of r.transitions.never) lines.push(`  ${k}`);
  return lines;
}
