/**
 * Catalog detection: for a flag, search random scenarios (the generic arbitraries, nothing
 * per row) for one that violates some property under `v4+flag` and none under `v4`, then shrink
 * (fast-check, then the reducer: reduce.ts) keeping both. Differential, because v4 as posted has
 * findings of its own: a scenario that fails on v4 too shows v4's bug, not the flag's.
 *
 * A known-limit row is v4's own: its option (LIMIT_OPTIONS) turns on, in a generated scenario,
 * the condition the limit needs; the row is found by a scenario that fails under v4 with the
 * option and passes under v4 without it.
 *
 * A masked row (witnesses.ts MASKED: another patch of v4 closes its bug's window) is searched on
 * v4 with the flags that take the masking code out: fails under v4+unmask+flag, passes under
 * v4+unmask.
 */
import fc from 'fast-check';
import { FLAGS, V4_FIXED, Variant } from '../impl/variants.ts';
import type { Op } from '../impl/system.ts';
import type { Coverage } from './coverage.ts';
import { projectDrop, record } from './project.ts';
import { dropOp, mergeDevice, reduce } from './reduce.ts';
import { MASKED } from './witnesses/witnesses.ts';
import { runScenario } from './runner.ts';
import {
  arbFor,
  choicesArb,
  pctArb,
  type Scenario,
  scenarioSize,
  type Strategy,
  UNRESETTABLE,
} from './scenario.ts';

/**
 * The option that enables each modelled known limit in a generated scenario (the default search
 * never produces these conditions).
 */
export const LIMIT_OPTIONS: Readonly<Record<string, (s: Scenario) => Scenario>> = {
  // An SMMU whose ATC invalidation completion timeout (2 s) exceeds the 1 s CMD_SYNC poll.
  'completion-timeout-exceeds-poll': (s) => ({ ...s, topology: { ...s.topology, atcTimeoutUs: 2_000_000 } }),
  // Functions no method can reset: no quirk, no FLR, no bus reset, an ACPI _RST that fails.
  'enotty-keeps-blocked': (s) => ({
    ...s,
    topology: {
      ...s.topology,
      devices: s.topology.devices.map(({ quirk: _q, busReset: _b, ...d }) => ({ ...d, ...UNRESETTABLE })),
    },
  }),
  // The SMMU enters Service Failure Mode at the start.
  'sfm-kills-smmu': (s) => ({ ...s, rounds: [[{ kind: 'gerror', cause: 'sfm', delayUs: 0 }], ...s.rounds] }),
  // Every reset is an AER recovery's (a reset of the function's Port), not pci_reset_function().
  'aer-recovery-unfenced': (s) => ({
    ...s,
    rounds: s.rounds.map((r) =>
      r.map((o): Op =>
        o.kind === 'reset' ? { kind: 'aer', cpu: o.cpu, dev: o.dev, outcome: o.outcome } : o,
      ),
    ),
  }),
};

/**
 * What a row searches: the variant a scenario runs under, how the row's condition is enabled,
 * and the baseline the scenario must pass outright under.
 */
interface Row {
  readonly variant: Variant;
  readonly enable: (s: Scenario) => Scenario;
  readonly baseline: Variant;
}

/**
 * The bases a row can be searched on: v4 as posted (the catalog's definition), or v4 with the
 * fixes proposed for its own findings, where a flag cannot borrow one of v4's bugs.
 */
export const BASES = ['v4', V4_FIXED] as const;
export type Base = (typeof BASES)[number];

/** The variant a row's scenarios must pass under: the base, plus a masked row's unmasking flags. */
export function baselineOf(id: string, base: Base): string {
  const masked = MASKED.find((m) => m.flag === id);
  return masked === undefined ? base : [base, ...masked.unmaskedBy].join('+');
}

/**
 * The variant a row's find fails under as saved: base+flag, or for a known limit the baseline
 * (the saved scenario has the limit's condition enabled already).
 */
export const failingVariantOf = (id: string, base: Base): string => rowOf(id, base).variant.name;

function rowOf(id: string, base: Base): Row {
  const name = baselineOf(id, base);
  const baseline = Variant.parse(name);
  const option = LIMIT_OPTIONS[id];
  if (option !== undefined) return { variant: baseline, enable: option, baseline };
  return { variant: Variant.parse(`${name}+${id}`), enable: (s) => s, baseline };
}

export interface Detection {
  readonly flag: string;
  readonly seed: number;
  readonly detected: boolean;
  /** The most severe property the first differential scenario violated. */
  readonly property: string | null;
  /** The shrunk scenario's most severe property and its message (it may differ: see detect()). */
  readonly shrunkProperty: string | null;
  readonly message: string | null;
  /** Scenarios run until the first differential violation (all of the budget if none). */
  readonly runs: number;
  readonly msToDetect: number;
  readonly shrinkMs: number;
  readonly scenario: Scenario | null;
  readonly shrunk: { ops: number; rounds: number; choices: number } | null;
  /**
   * Searched on v4: whether the shrunk find is a differential on v4-fixed too (it fails under
   * v4-fixed+flag and passes under v4-fixed), so that it cannot be one of v4's own findings
   * reached through the flag's timing. False does not make it one: the fixes change every run
   * after a poll timeout, so a replay can diverge where the bug is the flag's. Null when nothing
   * was found, or searched on v4-fixed (where every find is one).
   */
  readonly confirmedOnFixed: boolean | null;
}

export interface DetectOptions {
  readonly runs: number;
  /**
   * Schedules: uniform choice streams (default), PCT priorities with change points, or both
   * (each scenario one or the other: mixedScenarioArb).
   */
  readonly strategy?: Strategy;
  readonly timeMs?: number;
  readonly shrinkTimeMs?: number;
  /** Predicate calls the post-shrink reducer may make (reduce.ts; default its own default). */
  readonly reduceRuns?: number;
  /**
   * The base searched (default v4): the row's variant is base+flag, its baseline the base (for a
   * masked row, both with its unmasking flags: baselineOf).
   */
  readonly base?: Base;
  /** Records the search's runs under `v4+flag` (not the baseline's, not the shrink's) here. */
  readonly coverage?: Coverage;
}

/**
 * The most severe property violated by the row (its variant, its condition enabled) when the
 * scenario itself passes outright under the row's baseline, or null.
 */
function differential(
  s: Scenario,
  row: Row,
  coverage?: Coverage,
): { property: string; message: string } | null {
  const r = runScenario(row.enable(s), row.variant, { coverage });
  if (r.violations.length === 0) return null;
  const base = new Set(runScenario(s, row.baseline).violations.map((v) => v.property));
  // The baseline must pass outright: any baseline violation means the scenario is not the flag's.
  if (base.size > 0) return null;
  const v = r.violations[0]!;
  return { property: v.property, message: v.message };
}

/** What the shrink's later steps share: the differential, the reducer, a seed and a deadline. */
interface Shrink {
  readonly seed: number;
  readonly keeps: (s: Scenario) => boolean;
  /** The variant a scenario fails under as it is, or null when the row rewrites it (a limit). */
  readonly failsUnder: Variant | null;
  readonly reduce: (s: Scenario) => Scenario;
  /** A performance.now() deadline: a safety net, as the reducer's. */
  readonly until: number;
}

/** Predicate calls for fast-check's own shrink in detect(): a bound, so that it is repeatable. */
export const FC_SHRINK_CALLS = 500;

/**
 * A failure that hangs on one long schedule survives no edit that shifts its choices: dropping an
 * operation renumbers every later decision (master-freed-under-rcu found with 6 operations and 36
 * choices, none of whose 2–4-operation sub-shapes fails under 1,000 fresh schedules). So carry
 * the failing run's own schedule over to the scenario without two, then one, of its operations
 * (project.ts); the first that still fails is reduced and projected again. Each candidate costs
 * a few runs, so this comes before the steps that draw fresh schedules. A projection is a choice
 * stream, and a PCT find is a few numbers that the later steps usually shrink, so PCT finds are
 * projected only at the end (`pctToo`), where those steps have had their turn: a PCT find they
 * leave large becomes a smaller uniform one (reset-clears-broken-midway seed 8: 9 operations,
 * witness 5, then 4).
 */
function projected(reduced: Scenario, sh: Shrink, pctToo = false): Scenario {
  const variant = sh.failsUnder;
  if (variant === null || (reduced.pct !== undefined && !pctToo)) return reduced;
  let best = reduced;
  for (;;) {
    const n = scenarioSize(best).ops;
    if (n <= 1 || performance.now() >= sh.until) return best;
    const rec = record(best, variant);
    let found: Scenario | null = null;
    for (const d of [...combinations(n, 2), ...combinations(n, 1)]) {
      const c = projectDrop(best, rec, new Set(d), variant);
      if (c !== null && sh.keeps(c)) {
        found = c;
        break;
      }
    }
    if (found === null) return best;
    best = sh.reduce(found);
  }
}

/** Fresh scenarios drawn after the reducer, in batches (see {@link redraw}). */
export const REDRAW_BATCHES = 5;
const REDRAW_BATCH = 1000;
/** Their seeds: the search's, moved off the search's own stream. */
const REDRAW_SEED = 0x5eed;

/**
 * Rounds of the redrawn scenarios: at most 2 operations. Drawn from the search's own arbitrary
 * (rounds of up to 4 since the eighth session), 25 scenarios in 5,000 have 2 operations or fewer,
 * against 121 with rounds of 3, and inv-during-flr's seed 1 kept 3 operations (witness 1).
 */
export const REDRAW_OPS_PER_ROUND = 2;

/**
 * The reducer stops at a local minimum: a scenario none of whose edits still fails, where a
 * smaller one of another shape would (inv-during-flr found as a hang, an unmap and a working FLR,
 * where a failing FLR alone shows it). So draw more scenarios of the search's strategy, with
 * smaller rounds ({@link REDRAW_OPS_PER_ROUND}), keep those with fewer operations than the
 * reduced one, and try them smallest first: the first that still fails is reduced in turn and
 * replaces it. Small scenarios run fast; drawing is most of the cost (about 70 ms a batch).
 */
function redraw(arb: fc.Arbitrary<Scenario>, reduced: Scenario, sh: Shrink): Scenario {
  const bound = scenarioSize(reduced).ops;
  // Down to two operations the reducer has usually done it: drawing costs more than it finds.
  for (let b = 0; b < REDRAW_BATCHES && bound > 2 && performance.now() < sh.until; b++) {
    const hit = fc
      .sample(arb, { seed: sh.seed ^ (REDRAW_SEED + b), numRuns: REDRAW_BATCH })
      .map((s) => ({ s, ops: scenarioSize(s).ops }))
      .filter((c) => c.ops < bound)
      .sort((x, y) => x.ops - y.ops)
      .find((c) => sh.keeps(c.s));
    if (hit !== undefined) return sh.reduce(hit.s);
  }
  return reduced;
}

/** Runs the sub-shape step may make in all (see {@link subShapes}). */
export const SUB_SHAPE_RUNS = 12_000;
/** Fresh schedules of each kind, with and without CPU stalls, that it tries on each shape. */
export const SUB_SHAPE_SCHEDULES = 50;
/** The largest sub-shape it tries: beyond that, dropping one operation at a time is cheaper. */
export const SUB_SHAPE_MAX_OPS = 3;

/** The k-element index subsets of 0..n-1, in lexicographic order. */
function* combinations(n: number, k: number, from = 0): Generator<number[]> {
  if (k === 0) {
    yield [];
    return;
  }
  for (let i = from; i <= n - k; i++) for (const rest of combinations(n, k - 1, i + 1)) yield [i, ...rest];
}

/**
 * The rounds of every sub-multiset of a scenario's operations with at most
 * {@link SUB_SHAPE_MAX_OPS} of them (and fewer than it has), fewest first, each arranged three
 * ways: in the rounds they had, all in one round, and one per round in their order.
 */
export function smallerShapes(s: Scenario): Scenario['rounds'][] {
  const ops = s.rounds.flatMap((r, k) => r.map((op) => ({ op, k })));
  const seen = new Set<string>();
  const shapes: Scenario['rounds'][] = [];
  for (let size = 1; size < ops.length && size <= SUB_SHAPE_MAX_OPS; size++) {
    for (const idx of combinations(ops.length, size)) {
      const pick = idx.map((i) => ops[i]!);
      const grouped = s.rounds
        .map((_, k) => pick.filter((p) => p.k === k).map((p) => p.op))
        .filter((r) => r.length > 0);
      for (const rounds of [grouped, [pick.map((p) => p.op)], pick.map((p) => [p.op])]) {
        const key = JSON.stringify(rounds);
        if (!seen.has(key)) {
          seen.add(key);
          shapes.push(rounds);
        }
      }
    }
  }
  return shapes;
}

/**
 * Fresh schedules for a scenario's smaller shapes: its own kind of schedule first, then the
 * other kind, then both again with CPU stalls turned on (a smaller scenario may need them:
 * stale-broken-report's witness does). `count` of each kind, drawn from `seed`.
 */
function freshSchedules(
  from: Scenario,
  seed: number,
  count: number,
): ((rounds: Scenario['rounds']) => Scenario)[] {
  const opts = { seed, numRuns: count };
  const uniform = fc.sample(choicesArb, opts);
  const pct = fc.sample(pctArb, opts);
  const topologies = from.topology.stalls
    ? [from.topology]
    : [from.topology, { ...from.topology, stalls: true }];
  return topologies.flatMap((topology) => {
    const u = uniform.map((choices) => (rounds: Scenario['rounds']): Scenario => ({
      topology,
      rounds,
      choices,
    }));
    const p = pct.map((schedule) => (rounds: Scenario['rounds']): Scenario => ({
      topology,
      rounds,
      choices: [],
      pct: schedule,
    }));
    return from.pct ? [...p, ...u] : [...u, ...p];
  });
}

/**
 * A local minimum may hold a smaller scenario of another shape made of its own operations
 * (stale-broken-report found as two resets, a hang and an attach on one CPU, where the reset and
 * the hang of one device in one round, with CPU stalls and a PCT schedule, fail in about 2
 * schedules in 100, and no single operation can be dropped under 12,000). So try its small
 * sub-shapes (smallerShapes), and those of the scenario with two of its devices made one, fewest
 * operations first, each with {@link SUB_SHAPE_SCHEDULES} fresh schedules of each kind, within
 * {@link SUB_SHAPE_RUNS} runs; the first that still fails is reduced and replaces it.
 */
function subShapes(reduced: Scenario, sh: Shrink): Scenario {
  // The scenario itself, then with each pair of its devices made one: a hang of one device and a
  // reset of another may show, on one device, what the row's bug needs.
  const bases = [reduced];
  const devices = reduced.topology.devices.length;
  for (let to = 0; to < devices; to++) {
    for (let from = to + 1; from < devices; from++) {
      const merged = mergeDevice(reduced, from, to);
      if (merged !== null) bases.push(merged);
    }
  }
  const seed = sh.seed ^ (REDRAW_SEED - 1);
  const shapes = bases
    .flatMap((base) => {
      const schedules = freshSchedules(base, seed, SUB_SHAPE_SCHEDULES);
      return smallerShapes(base).map((rounds) => ({ rounds, schedules }));
    })
    // Fewest operations first, whichever base they come from (a stable sort).
    .sort((a, b) => a.rounds.flat().length - b.rounds.flat().length);
  let runs = 0;
  for (const { rounds, schedules } of shapes) {
    for (const f of schedules) {
      if (runs++ >= SUB_SHAPE_RUNS || performance.now() >= sh.until) return reduced;
      const candidate = f(rounds);
      if (sh.keeps(candidate)) return sh.reduce(candidate);
    }
  }
  return reduced;
}

/**
 * The same operations with every hang in a round of its own first and the rest, in their order,
 * in one round: a hang is a state the others act on, and the generator draws a first round of
 * hangs (roundsArb). atc-inv-to-broken's seed 2 found an unmap beside a hang of dev0, then a map
 * beside a hang of dev1, then an unmap, on one CPU: no 4 of them fail as they were arranged, the
 * hang of dev1 first and the rest in one round does (8 uniform schedules in 100).
 */
export function hangsFirst(rounds: Scenario['rounds']): Scenario['rounds'] {
  const ops = rounds.flat();
  const hangs = ops.filter((o) => o.kind === 'hang');
  const rest = ops.filter((o) => o.kind !== 'hang');
  return [hangs, rest].filter((r) => r.length > 0);
}

/** Fresh schedules tried for each operation dropped (see {@link rescheduled}). */
export const SCHEDULES_PER_DROP = 100;

/**
 * A scenario whose failure hangs on a long schedule is a local minimum of its own: dropping an
 * operation shifts every later choice, so no single edit keeps it failing (full-queue-stall found
 * with a third operation beside its hang and unmap, and 45 choices). So drop each operation in
 * turn with fresh schedules of the scenario's kind, then each drop rearranged ({@link hangsFirst});
 * the first that still fails is reduced, and tried again.
 */
function rescheduled(reduced: Scenario, sh: Shrink): Scenario {
  let best = reduced;
  for (let pass = 0; scenarioSize(best).ops > 1 && performance.now() < sh.until; pass++) {
    const from = best;
    const withSchedules = freshSchedules(
      from,
      sh.seed ^ (REDRAW_SEED + REDRAW_BATCHES + pass),
      SCHEDULES_PER_DROP,
    );
    // More than one operation is left, so dropping one never empties the scenario.
    const dropped = Array.from({ length: scenarioSize(from).ops }, (_, i) => dropOp(from, i)!.rounds);
    // Then each drop with its hangs first and the rest in one round, as the generator draws it.
    const rearranged = dropped
      .map(hangsFirst)
      .filter((r, i) => JSON.stringify(r) !== JSON.stringify(dropped[i]));
    const found = [...dropped, ...rearranged]
      .flatMap((rounds) => withSchedules.map((f) => f(rounds)))
      .find(sh.keeps);
    if (found === undefined) break;
    best = sh.reduce(found);
  }
  return best;
}

/** A search before its shrink: what detect() found, or that it found nothing. */
export interface Search {
  readonly flag: string;
  /** The fast-check seed the search ran with (the row's seed, or a worker's own: catalog-pool.ts). */
  readonly seed: number;
  readonly runs: number;
  readonly msToDetect: number;
  /** The first differential scenario and its fast-check path (for the shrink), or null. */
  readonly found: { readonly scenario: Scenario; readonly path: string } | null;
}

/**
 * The search half of {@link detect}: random scenarios until the first differential violation,
 * the budget, or `stop()` (checked before every run; another worker found the row first).
 */
export function search(
  flag: string,
  seed: number,
  opts: DetectOptions & { readonly stop?: () => boolean },
): Search {
  const row = rowOf(flag, opts.base ?? 'v4');
  const t0 = performance.now();
  let runs = 0;
  let stopped = false;
  const r = fc.check(
    fc.property(arbFor(opts.strategy ?? 'uniform'), (s) => {
      // A failure ends the search at once (endOnFailure): the way out of fc.check.
      if (opts.stop?.()) return !(stopped = true);
      if (opts.coverage) opts.coverage.stamp = runs;
      runs++;
      return differential(s, row, opts.coverage) === null;
    }),
    {
      seed,
      numRuns: opts.runs,
      interruptAfterTimeLimit: opts.timeMs,
      markInterruptAsFailure: false,
      endOnFailure: true,
    },
  );
  const msToDetect = performance.now() - t0;
  const found =
    !stopped && r.failed && r.counterexample !== null && r.counterexamplePath !== null
      ? { scenario: r.counterexample[0], path: r.counterexamplePath }
      : null;
  return { flag, seed, runs, msToDetect, found };
}

/**
 * The shrink's steps after fast-check's, on a scenario that keeps the row's differential:
 * fast-check shrinks the rounds only with the topology they were drawn for, so reduce further,
 * project, redraw, try sub-shapes, reschedule and project again, keeping the differential (some
 * property under the flag, nothing under the baseline); `until` is a performance.now() deadline.
 */
export function shrinkFurther(
  flag: string,
  s: Scenario,
  opts: DetectOptions,
  seed: number,
  until: number,
): Scenario {
  const row = rowOf(flag, opts.base ?? 'v4');
  const keeps = (x: Scenario) => differential(x, row) !== null;
  const reduceOpts = {
    maxRuns: opts.reduceRuns,
    until,
    normalizeChoices: (x: Scenario) => runScenario(row.enable(x), row.variant).normalizedChoices,
  };
  const sh: Shrink = {
    seed,
    keeps,
    failsUnder: LIMIT_OPTIONS[flag] === undefined ? row.variant : null,
    reduce: (x) => reduce(x, keeps, reduceOpts).scenario,
    until,
  };
  const reduced = projected(sh.reduce(s), sh);
  // Projection again at the end, PCT finds too: the steps between may leave a scenario it can
  // shrink further.
  const scenario = projected(
    rescheduled(
      subShapes(redraw(arbFor(opts.strategy ?? 'uniform', REDRAW_OPS_PER_ROUND), reduced, sh), sh),
      sh,
    ),
    sh,
    true,
  );
  if (scenario.pct) return scenario;
  const trimmed: Scenario = { ...scenario, choices: reduceOpts.normalizeChoices(scenario) };
  return keeps(trimmed) ? trimmed : scenario;
}

export function detect(flag: string, seed: number, opts: DetectOptions): Detection {
  return shrinkFound(search(flag, seed, opts), opts, seed);
}

/** The shrink half of {@link detect}; `rowSeed` is the seed the caller reports. */
export function shrinkFound(found: Search, opts: DetectOptions, rowSeed: number): Detection {
  const { flag, seed, runs, msToDetect } = found;
  const base = opts.base ?? 'v4';
  const row = rowOf(flag, base);
  const arb = arbFor(opts.strategy ?? 'uniform');
  if (found.found === null) {
    return {
      flag,
      seed: rowSeed,
      detected: false,
      property: null,
      shrunkProperty: null,
      message: null,
      runs,
      msToDetect,
      shrinkMs: 0,
      scenario: null,
      shrunk: null,
      confirmedOnFixed: null,
    };
  }
  const property = differential(found.found.scenario, row)!.property;
  // The shrink keeps any differential violation, not only the property seen first: the row is
  // one change, so whatever fails with it and passes without it is its bug, and the smallest
  // scenario showing it is what a reviewer wants (enable-ats-failure-desync, say, is found as
  // an error storm on one seed and shrinks to the one-operation WARN).
  const keeps = (s: Scenario) => differential(s, row) !== null;
  const t1 = performance.now();
  const shrinkTimeMs = opts.shrinkTimeMs ?? 30_000;
  // fast-check's shrink gets FC_SHRINK_CALLS predicate calls (then every candidate "passes", so
  // it stops where it is) and a third of the time: on a long choice stream it could take all of
  // it, and the steps after it (the reducer, redrawn and rescheduled scenarios) remove more.
  let calls = 0;
  const shrink = fc.check(
    fc.property(arb, (s) => ++calls > FC_SHRINK_CALLS || !keeps(s)),
    {
      seed,
      path: found.found.path,
      numRuns: 1,
      interruptAfterTimeLimit: shrinkTimeMs / 3,
      markInterruptAsFailure: false,
    },
  );
  const scenario = shrinkFurther(
    flag,
    shrink.counterexample?.[0] ?? found.found.scenario,
    opts,
    seed,
    t1 + shrinkTimeMs,
  );
  const shrunk = differential(scenario, row)!;
  // What fails: for a known limit, the scenario with its condition enabled.
  const failing = row.enable(scenario);
  return {
    flag,
    seed: rowSeed,
    detected: true,
    property,
    message: shrunk.message,
    shrunkProperty: shrunk.property,
    runs,
    msToDetect,
    shrinkMs: performance.now() - t1,
    scenario: failing,
    shrunk: scenarioSize(failing),
    confirmedOnFixed: base === V4_FIXED ? null : differential(scenario, rowOf(flag, V4_FIXED)) !== null,
  };
}

export const catalogFlags = (): string[] => FLAGS.map((f) => f.id);

/** Every row the catalog searches: the flags, then the known limits that are modelled. */
export const catalogRows = (): string[] => [...catalogFlags(), ...Object.keys(LIMIT_OPTIONS)];
