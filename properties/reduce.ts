/**
 * The post-shrink reducer: after fast-check's shrink, greedily tries smaller variations of a
 * counterexample and keeps each one that still fails the same way, until none does.
 *
 * fast-check shrinks a scenario's rounds only together with the topology they were drawn for
 * (`topologyArb.chain(...)`), so what it returns often keeps an operation, a device or a CPU
 * that plays no part. The reducer edits the scenario directly: it drops rounds, operations,
 * devices (remapping the operations' device indices and the VFs' PF links) and CPUs (remapping
 * the operations' CPUs and every topology field naming one: `gerrorIrqCpu`, a feature's
 * `irqCpu`), merges adjacent rounds, drops and zeroes choices and PCT priorities and change
 * points, and simplifies what is left (device fields back to the plain case, operation fields to
 * 0, the topology's knobs to their smallest values, its optional features off). A candidate
 * the counterexample file format rejects (counterexample-file.ts) is never run.
 *
 * A candidate is tried only if it is strictly smaller than the current scenario in the order of
 * {@link sizeKey} (operations first, then rounds, devices, CPUs, choices, the PCT schedule, and
 * last a sum of field values), so the greedy loop ends. Candidates come in a fixed order and the
 * predicate is the only thing consulted, so the same scenario and predicate give the same result;
 * the work is bounded by a number of predicate calls (deterministic) and, as a safety net, a
 * wall-clock deadline (which, when it strikes, makes the result depend on the machine).
 *
 * Operations are handled generically, by their fields, whatever their kind: `cpu` and `dev` are
 * remapped, and every numeric field (`cpu`, `dev`, `domain`, `iova`, a delay) is tried at 0.
 */
import type { DeviceSpec, Op, Topology } from '../impl/system.ts';
import { counterexampleSchema } from './counterexample-file.ts';
import type { PctSchedule } from './pct.ts';
import type { Scenario } from './scenario.ts';

/** "Still fails the same way" (e.g. the same property violated; for the catalog, the differential). */
export type Keeps = (s: Scenario) => boolean;

export interface ReduceOptions {
  /** At most this many predicate calls (default {@link DEFAULT_MAX_RUNS}). */
  readonly maxRuns?: number;
  /** A performance.now() deadline in ms: past it, the reducer stops with the best so far. */
  readonly until?: number;
  /** Polled before each predicate call: true stops the reducer (an interrupt). */
  readonly stop?: () => boolean;
  /**
   * The scenario's choice stream replaced by an equivalent, normalised one (the runner's
   * normalizedChoices under the variant that fails); tried first, and again after each change.
   */
  readonly normalizeChoices?: (s: Scenario) => readonly number[];
}

export interface Reduced {
  readonly scenario: Scenario;
  /** Predicate calls made. */
  readonly runs: number;
  /** True when no candidate is left (a fixpoint), false when a bound or `stop` ended it. */
  readonly complete: boolean;
}

export const DEFAULT_MAX_RUNS = 400;

/** The topology knobs' simplest values: the shorter ATC timeout, the smallest queue and batch. */
const DEFAULT_ATC_TIMEOUT_US = 50_000;
const MIN_QUEUE_SHIFT = 2;
const MIN_BATCH = 2;

/**
 * The operation fields the reducer remaps (`cpu`, `dev`) or moves to 0 (these, and any other
 * numeric field of an operation kind, e.g. a delay), in the order it simplifies them.
 */
const OP_FIELDS = ['cpu', 'dev', 'domain', 'iova'] as const;

const field = (op: Op, f: string): number | undefined => {
  const v = (op as unknown as Record<string, unknown>)[f];
  return typeof v === 'number' ? v : undefined;
};
const withField = (op: Op, f: string, v: number): Op => ({ ...op, [f]: v }) as Op;

/** The numeric fields of `op`: the known ones first, then the others in key order. */
function numericFields(op: Op): string[] {
  const others = Object.keys(op)
    .filter((k) => !(OP_FIELDS as readonly string[]).includes(k) && field(op, k) !== undefined)
    .sort();
  return [...OP_FIELDS.filter((f) => field(op, f) !== undefined), ...others];
}

const sumOf = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

function deviceComplexity(d: DeviceSpec): number {
  return (
    d.sids -
    1 +
    (d.quirk === true ? 1 : 0) +
    (d.noAts === true ? 1 : 0) +
    (d.pf !== undefined ? 1 : 0) +
    (d.flr === false ? 1 : 0) +
    (d.acpiRst !== undefined ? 1 : 0) +
    (d.busReset === true ? 1 : 0) +
    (d.dmaAliasOf !== undefined ? 1 : 0)
  );
}

function opComplexity(op: Op): number {
  let n = 0;
  for (const f of numericFields(op)) n += field(op, f)!;
  return n;
}

/**
 * The order candidates must descend: operations, rounds, devices, CPUs, choices, PCT schedule
 * entries, then a sum of field values (device features, operation fields, topology knobs away
 * from the default, choice and priority values). Compared lexicographically.
 */
export function sizeKey(s: Scenario): number[] {
  const t = s.topology;
  const ops = s.rounds.flat();
  const pct = s.pct;
  const topo =
    t.gerrorIrqCpu +
    (t.atcTimeoutUs !== DEFAULT_ATC_TIMEOUT_US ? 1 : 0) +
    (t.queueShift - MIN_QUEUE_SHIFT) +
    (t.batchEntries - MIN_BATCH) +
    features(t).length +
    (t.iovas - 1);
  return [
    ops.length,
    s.rounds.length,
    t.devices.length,
    t.cpus,
    s.choices.length,
    pct ? pct.priorities.length + pct.changes.length : 0,
    topo +
      sumOf(t.devices.map(deviceComplexity)) +
      sumOf(ops.map(opComplexity)) +
      sumOf(s.choices) +
      (pct ? sumOf(pct.priorities) + sumOf(pct.changes) : 0),
  ];
}

function smaller(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

// ---- candidates ----------------------------------------------------------------------------

/**
 * A reduction pass: the candidate at position `i` of scenario `s`; undefined when `i` is past the
 * last position, null when there is nothing to try at `i`. After a candidate is kept, the same
 * position is tried again on the new scenario (what was next has moved there, or the candidate
 * is no longer smaller and is skipped without running).
 */
type Pass = (s: Scenario, i: number) => Scenario | null | undefined;

/** `s` with these rounds, empty ones dropped; null if none is left (a scenario has an operation). */
function withRounds(s: Scenario, rounds: readonly (readonly Op[])[]): Scenario | null {
  const left = rounds.filter((r) => r.length > 0);
  return left.length === 0 ? null : { ...s, rounds: left };
}

const withTopology = (s: Scenario, over: Partial<Topology>): Scenario => ({
  ...s,
  topology: { ...s.topology, ...over },
});

/** Position `i` of the flattened operations: [round, index in round], or undefined. */
function opAt(s: Scenario, i: number): [number, number] | undefined {
  let k = i;
  for (let r = 0; r < s.rounds.length; r++) {
    if (k < s.rounds[r]!.length) return [r, k];
    k -= s.rounds[r]!.length;
  }
  return undefined;
}

const mapOps = (s: Scenario, f: (op: Op) => Op | null): (readonly Op[])[] =>
  s.rounds.map((r) => r.map(f).filter((o): o is Op => o !== null));

const dropRound: Pass = (s, i) =>
  i >= s.rounds.length
    ? undefined
    : withRounds(
        s,
        s.rounds.filter((_, k) => k !== i),
      );

/** `s` without its i-th operation (flattened order); undefined past the last, null if none is left. */
export const dropOp: Pass = (s, i) => {
  const at = opAt(s, i);
  if (at === undefined) return undefined;
  const [r, j] = at;
  return withRounds(
    s,
    s.rounds.map((ops, k) => (k === r ? ops.filter((_, l) => l !== j) : ops)),
  );
};

/**
 * `s` without the operations at `dropped` (positions in flattened order); null if none is left.
 */
export function dropOps(s: Scenario, dropped: ReadonlySet<number>): Scenario | null {
  let at = 0;
  return withRounds(
    s,
    s.rounds.map((ops) => ops.filter(() => !dropped.has(at++))),
  );
}

/** Two operations dropped at once (pairs in order), for when neither goes alone. */
const dropTwoOps: Pass = (s, i) => {
  const n = s.rounds.reduce((k, r) => k + r.length, 0);
  // Pair number i: (a, b) with a < b, in lexicographic order.
  let a = 0;
  let k = i;
  while (a < n - 1 && k >= n - 1 - a) {
    k -= n - 1 - a;
    a++;
  }
  if (a >= n - 1) return undefined;
  return dropOps(s, new Set([a, a + 1 + k]));
};

/**
 * Device `d` removed (last first): its operations go, later indices, PF links and DMA alias links
 * move down (a link to `d` goes).
 */
const dropDevice: Pass = (s, i) => {
  const devs = s.topology.devices;
  if (i >= devs.length) return undefined;
  if (devs.length === 1) return null;
  const d = devs.length - 1 - i;
  const devices = devs
    .filter((_, k) => k !== d)
    .map((dev): DeviceSpec => {
      if (dev.pf === undefined || dev.pf < d) return dev;
      if (dev.pf > d) return { ...dev, pf: dev.pf - 1 };
      const { pf: _, ...rest } = dev;
      return rest;
    })
    .map((dev): DeviceSpec => {
      if (dev.dmaAliasOf === undefined || dev.dmaAliasOf < d) return dev;
      if (dev.dmaAliasOf > d) return { ...dev, dmaAliasOf: dev.dmaAliasOf - 1 };
      const { dmaAliasOf: _, ...rest } = dev;
      return rest;
    });
  const rounds = mapOps(s, (op) => {
    const dev = field(op, 'dev');
    if (dev === undefined || dev < d) return op;
    return dev === d ? null : withField(op, 'dev', dev - 1);
  });
  return withRounds(withTopology(s, { devices }), rounds);
};

/**
 * `s` with device `from`'s operations moved to device `to` and `from` dropped (as dropDevice
 * does: later indices and links move down), or null if that leaves no operation.
 */
export function mergeDevice(s: Scenario, from: number, to: number): Scenario | null {
  const moved = withRounds(
    s,
    mapOps(s, (op) => (field(op, 'dev') === from ? withField(op, 'dev', to) : op)),
  );
  if (moved === null) return null;
  const dropped = dropDevice(moved, s.topology.devices.length - 1 - from);
  return dropped ?? null;
}

/** A topology field naming a CPU (`gerrorIrqCpu`, a feature's `irqCpu`, ...). */
const CPU_KEY = /(^cpu|Cpu)$/;

/** `o` with every CPU-naming number in it, at any depth (devices aside), mapped by `f`. */
function remapCpus<T>(o: T, f: (cpu: number) => number): T {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return o;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    out[k] = typeof v === 'number' && CPU_KEY.test(k) ? f(v) : remapCpus(v, f);
  }
  return out as T;
}

/**
 * CPU `c` removed (last first): what ran or was affine there (operations, interrupts) moves to
 * the CPU below (or CPU 0), later CPUs move down.
 */
const dropCpu: Pass = (s, i) => {
  const t = s.topology;
  if (i >= t.cpus) return undefined;
  if (t.cpus === 1) return null;
  const c = t.cpus - 1 - i;
  const remap = (x: number) => (x < c ? x : x > c ? x - 1 : Math.max(0, c - 1));
  const rounds = mapOps(s, (op) => {
    const cpu = field(op, 'cpu');
    return cpu === undefined ? op : withField(op, 'cpu', remap(cpu));
  });
  const { devices, ...rest } = t;
  return withRounds({ ...s, topology: { ...remapCpus(rest, remap), devices, cpus: t.cpus - 1 } }, rounds);
};

const MAX_MERGED = 3;

const mergeRounds: Pass = (s, i) => {
  if (i + 1 >= s.rounds.length) return undefined;
  const a = s.rounds[i]!;
  const b = s.rounds[i + 1]!;
  if (a.length + b.length > MAX_MERGED) return null;
  return { ...s, rounds: [...s.rounds.slice(0, i), [...a, ...b], ...s.rounds.slice(i + 2)] };
};

/** Choice stream cut to 0, n/2, 3n/4, ... n-1 choices. */
const truncateChoices: Pass = (s, i) => {
  const n = s.choices.length;
  const keepAt = (k: number) => (k === 0 ? 0 : n - Math.ceil(n / 2 ** k));
  if (n === 0 || (i >= 2 && keepAt(i - 1) >= n - 1)) return undefined;
  if (i > 0 && keepAt(i) === keepAt(i - 1)) return null;
  return { ...s, choices: s.choices.slice(0, keepAt(i)) };
};

const dropChoice: Pass = (s, i) =>
  i >= s.choices.length ? undefined : { ...s, choices: s.choices.filter((_, k) => k !== i) };

const zeroChoice: Pass = (s, i) =>
  i >= s.choices.length
    ? undefined
    : s.choices[i] === 0
      ? null
      : { ...s, choices: s.choices.map((c, k) => (k === i ? 0 : c)) };

const withPct = (s: Scenario, p: PctSchedule): Scenario => ({ ...s, pct: p });

const dropChange: Pass = (s, i) => {
  const p = s.pct;
  if (p === undefined || i >= p.changes.length) return undefined;
  return withPct(s, { ...p, changes: p.changes.filter((_, k) => k !== i) });
};

/** Priorities dropped from the end first: a dropped entry shifts the later actors' priorities. */
const dropPriority: Pass = (s, i) => {
  const p = s.pct;
  if (p === undefined || i >= p.priorities.length) return undefined;
  const k = p.priorities.length - 1 - i;
  return withPct(s, { ...p, priorities: p.priorities.filter((_, j) => j !== k) });
};

const zeroPriority: Pass = (s, i) => {
  const p = s.pct;
  if (p === undefined || i >= p.priorities.length) return undefined;
  if (p.priorities[i] === 0) return null;
  return withPct(s, { ...p, priorities: p.priorities.map((x, k) => (k === i ? 0 : x)) });
};

/**
 * Per device, one feature back to the plain case: 1 stream ID, no quirk, ATS allowed, FLR, a PF,
 * no DMA alias.
 */
const DEVICE_SIMPLIFICATIONS: readonly ((d: DeviceSpec) => DeviceSpec | null)[] = [
  (d) => (d.sids > 1 ? { ...d, sids: 1 } : null),
  ({ quirk, ...d }) => (quirk === true ? d : null),
  ({ noAts, ...d }) => (noAts === true ? d : null),
  ({ flr, acpiRst, busReset, ...d }) =>
    flr === false || acpiRst !== undefined || busReset === true ? d : null,
  ({ pf, ...d }) => (pf !== undefined ? d : null),
  ({ dmaAliasOf, ...d }) => (dmaAliasOf !== undefined ? d : null),
];

const simplifyDevice: Pass = (s, i) => {
  const devs = s.topology.devices;
  const k = DEVICE_SIMPLIFICATIONS.length;
  const d = Math.floor(i / k);
  if (d >= devs.length) return undefined;
  const simpler = DEVICE_SIMPLIFICATIONS[i % k]!(devs[d]!);
  if (simpler === null) return null;
  return withTopology(s, { devices: devs.map((x, j) => (j === d ? simpler : x)) });
};

/** Per operation, one numeric field to 0 (at most {@link MAX_OP_FIELDS} fields per operation). */
const MAX_OP_FIELDS = 8;
const zeroOpField: Pass = (s, i) => {
  const at = opAt(s, Math.floor(i / MAX_OP_FIELDS));
  if (at === undefined) return undefined;
  const [r, j] = at;
  const op = s.rounds[r]![j]!;
  const f = numericFields(op)[i % MAX_OP_FIELDS];
  if (f === undefined || !field(op, f)) return null;
  return {
    ...s,
    rounds: s.rounds.map((ops, x) => (x === r ? ops.map((o, y) => (y === j ? withField(o, f, 0) : o)) : ops)),
  };
};

/** The topology's knobs, one at a time, one step down; one IOVA fewer (ops clamped). */
const TOPOLOGY_SIMPLIFICATIONS: readonly ((s: Scenario) => Scenario | null)[] = [
  (s) => {
    const n = s.topology.iovas;
    if (n <= 1) return null;
    const rounds = mapOps(s, (op) => {
      const iova = field(op, 'iova');
      return iova === undefined || iova < n - 1 ? op : withField(op, 'iova', n - 2);
    });
    return { ...withTopology(s, { iovas: n - 1 }), rounds };
  },
  (s) => (s.topology.gerrorIrqCpu !== 0 ? withTopology(s, { gerrorIrqCpu: 0 }) : null),
  (s) =>
    s.topology.atcTimeoutUs !== DEFAULT_ATC_TIMEOUT_US
      ? withTopology(s, { atcTimeoutUs: DEFAULT_ATC_TIMEOUT_US })
      : null,
  // arm_smmu_device_hw_probe(): one batch plus a CMD_SYNC must fit in the queue.
  (s) =>
    s.topology.queueShift > MIN_QUEUE_SHIFT
      ? withTopology(s, {
          queueShift: s.topology.queueShift - 1,
          batchEntries: Math.min(s.topology.batchEntries, (1 << (s.topology.queueShift - 1)) - 1),
        })
      : null,
  (s) =>
    s.topology.batchEntries > MIN_BATCH
      ? withTopology(s, { batchEntries: s.topology.batchEntries - 1 })
      : null,
];

/** The topology's required fields; any other is an optional feature, absent when off (`stalls`, ...). */
const TOPOLOGY_FIELDS: readonly string[] = [
  'cpus',
  'devices',
  'gerrorIrqCpu',
  'queueShift',
  'batchEntries',
  'atcTimeoutUs',
  'iovas',
];

/** The optional features present (not false), in key order. */
const features = (t: Topology): string[] =>
  Object.keys(t)
    .filter((k) => !TOPOLOGY_FIELDS.includes(k) && (t as unknown as Record<string, unknown>)[k] !== false)
    .sort();

/** One knob one step down, or one optional feature off (removed). */
const simplifyTopology: Pass = (s, i) => {
  const k = TOPOLOGY_SIMPLIFICATIONS.length;
  if (i < k) return TOPOLOGY_SIMPLIFICATIONS[i]!(s);
  const f = features(s.topology)[i - k];
  if (f === undefined) return undefined;
  const { [f]: _, ...t } = s.topology as unknown as Record<string, unknown>;
  return { ...s, topology: t as unknown as Topology };
};

/** The passes, in the order they are tried: the big cuts first, then simplifications. */
const PASSES: readonly Pass[] = [
  dropRound,
  dropOp,
  dropTwoOps,
  dropDevice,
  dropCpu,
  mergeRounds,
  truncateChoices,
  dropChoice,
  dropChange,
  dropPriority,
  simplifyDevice,
  zeroOpField,
  simplifyTopology,
  zeroChoice,
  zeroPriority,
];

// ---- the loop ------------------------------------------------------------------------------

/** Whether a counterexample file may hold `s` (its schema: indices in range, PF links, ...). */
export const validScenario = (s: Scenario): boolean =>
  counterexampleSchema.shape.scenario.safeParse(s).success;

/**
 * The reducer as a generator: it yields before each predicate call (so that a caller can let an
 * event loop in) and returns the result. {@link reduce} and {@link reduceAsync} drive it.
 */
export function* reduceSteps(
  s: Scenario,
  keeps: Keeps,
  opts: ReduceOptions = {},
): Generator<void, Reduced, void> {
  const maxRuns = opts.maxRuns ?? DEFAULT_MAX_RUNS;
  const tried = new Set<string>();
  let cur = s;
  let curKey = sizeKey(cur);
  let runs = 0;
  const bounded = () =>
    runs >= maxRuns ||
    (opts.until !== undefined && performance.now() >= opts.until) ||
    (opts.stop?.() ?? false);
  /** Runs the predicate on `c` if it is smaller and new; keeps it if it holds. */
  function* attempt(c: Scenario): Generator<void, boolean | 'stop', void> {
    const key = sizeKey(c);
    if (!smaller(key, curKey)) return false;
    const id = JSON.stringify(c);
    if (tried.has(id)) return false;
    tried.add(id);
    // Only what a counterexample file may hold (npm run replay and the engine's report read it).
    if (!validScenario(c)) return false;
    if (bounded()) return 'stop';
    yield;
    runs++;
    let ok: boolean;
    try {
      ok = keeps(c);
    } catch {
      ok = false;
    }
    if (!ok) return false;
    cur = c;
    curKey = key;
    return true;
  }
  const normalize = opts.normalizeChoices;
  for (;;) {
    let improved = false;
    if (normalize && cur.choices.length > 0) {
      const r = yield* attempt({ ...cur, choices: [...normalize(cur)] });
      if (r === 'stop') return { scenario: cur, runs, complete: false };
      improved ||= r;
    }
    for (const pass of PASSES) {
      for (let i = 0; ;) {
        const c = pass(cur, i);
        if (c === undefined) break;
        const r = c === null ? false : yield* attempt(c);
        if (r === 'stop') return { scenario: cur, runs, complete: false };
        if (r) improved = true;
        else i++;
      }
    }
    if (!improved) return { scenario: cur, runs, complete: true };
  }
}

/** Reduces `s` while `keeps` holds (see the module comment); synchronous. */
export function reduce(s: Scenario, keeps: Keeps, opts: ReduceOptions = {}): Reduced {
  const it = reduceSteps(s, keeps, opts);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}

/** The same, awaiting `pause()` before each predicate call (e.g. to let an event loop in). */
export async function reduceAsync(
  s: Scenario,
  keeps: Keeps,
  opts: ReduceOptions,
  pause: () => Promise<void> | void,
): Promise<Reduced> {
  const it = reduceSteps(s, keeps, opts);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
    await pause();
  }
}
