/**
 * Scenarios and their fast-check arbitraries: a topology, rounds of 1–4 concurrent operations,
 * and a choice stream. Everything shrinks: fewer rounds, fewer operations, smaller topologies,
 * shorter and smaller choices.
 */
import fc from 'fast-check';
import { GERROR_CAUSES, type GerrorCause } from '../impl/hw/smmu.ts';
import { type DeviceSpec, type Op, PAGING_DOMAINS, type Topology } from '../impl/system.ts';
import type { PctSchedule } from './pct.ts';

export interface Scenario {
  readonly topology: Topology;
  readonly rounds: readonly (readonly Op[])[];
  /** The uniform schedule: each choice picks among the enabled actions (see README). */
  readonly choices: readonly number[];
  /** Or a PCT schedule (then `choices` is empty). */
  readonly pct?: PctSchedule;
}

/**
 * Four since the eighth session (three before): a round that holds an invalidation, an attach
 * and an unplug (master-freed-under-rcu) is drawn more often with a fourth slot, and the row is
 * found in less than half the runs (README, Catalog). The storm bound grows with a round's size
 * (invariants.ts stormBound), so no property is looser for a scenario whose rounds are not.
 */
export const MAX_OPS_PER_ROUND = 4;

export const ATC_TIMEOUTS_US = [50_000, 200_000] as const;

interface RawDevice {
  readonly ats: boolean;
  readonly sids: number;
  readonly quirk: boolean;
  readonly vfOf: number;
  readonly noAts: boolean;
  readonly resets: ResetKind;
}

/**
 * Which reset methods a function has besides a quirk: FLR; an ACPI _RST instead of FLR; a failing
 * _RST before FLR; a bus reset instead of FLR. Every kind can reset the function: one that
 * cannot (enotty-keeps-blocked, a known limit of v4) needs LIMIT_DEVICES.
 */
type ResetKind = 'flr' | 'acpi' | 'acpi-fails' | 'bus';
const RESET_KINDS: Record<ResetKind, Partial<DeviceSpec>> = {
  flr: {},
  acpi: { flr: false, acpiRst: 'works' },
  'acpi-fails': { acpiRst: 'fails' },
  bus: { flr: false, busReset: true },
};

/** Functions that no method can reset: ACPI _RST fails and there is no FLR (enotty-keeps-blocked). */
export const UNRESETTABLE: Partial<DeviceSpec> = { flr: false, acpiRst: 'fails' };

/** Resolve PF links (a VF's PF is an earlier device that is not a VF); omit what is off. */
function withFunctions(raw: readonly RawDevice[]): DeviceSpec[] {
  const out: DeviceSpec[] = [];
  raw.forEach(({ vfOf, noAts, resets, ...d }, i) => {
    const pf = vfOf < 0 || i === 0 ? undefined : vfOf % i;
    out.push({
      ...d,
      ...RESET_KINDS[resets],
      ...(pf !== undefined && out[pf]!.pf === undefined ? { pf } : {}),
      ...(noAts ? { noAts } : {}),
    });
  });
  return out;
}

export const topologyArb: fc.Arbitrary<Topology> = fc
  .record({
    cpus: fc.integer({ min: 1, max: 3 }),
    devices: fc.array(
      fc.record({
        ats: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, fc.constant(false)),
        sids: fc.integer({ min: 1, max: 2 }),
        quirk: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, fc.constant(true)),
        // A VF of an earlier device (index taken modulo), and quirk_no_ats: seed 000's PF/VF rules.
        vfOf: fc.oneof({ weight: 3, arbitrary: fc.constant(-1) }, fc.nat(1)),
        noAts: fc.oneof({ weight: 7, arbitrary: fc.constant(false) }, fc.constant(true)),
        resets: fc.oneof(
          { weight: 6, arbitrary: fc.constant<ResetKind>('flr') },
          fc.constantFrom<ResetKind>('acpi', 'acpi-fails', 'bus'),
        ),
      }),
      {
        minLength: 1,
        maxLength: 3,
      },
    ),
    gerrorIrqCpu: fc.nat(2),
    queueShift: fc.integer({ min: 2, max: 4 }),
    batchEntries: fc.integer({ min: 2, max: 4 }),
    atcTimeoutUs: fc.constantFrom(...ATC_TIMEOUTS_US),
    iovas: fc.integer({ min: 1, max: 3 }),
    // In 1 topology in 4, CPUs can stall: a choice may let time pass while they are runnable.
    stalls: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, fc.constant(true)),
    // In 1 topology in 4, a tegra241 CMDQV adds a second command queue (VCMDQ) with its own
    // error interrupt, on any CPU (taken modulo the CPU count).
    vcmdqIrqCpu: fc.oneof({ weight: 3, arbitrary: fc.constant(-1) }, fc.nat(2)),
  })
  // arm_smmu_device_hw_probe(): one batch plus a CMD_SYNC must fit in the queue.
  .map(({ stalls, vcmdqIrqCpu, ...t }) => ({
    ...t,
    devices: withFunctions(t.devices),
    gerrorIrqCpu: t.gerrorIrqCpu % t.cpus,
    batchEntries: Math.min(t.batchEntries, (1 << t.queueShift) - 1),
    // Absent when off, so that a counterexample without stalls reads (and replays) as before.
    ...(stalls ? { stalls } : {}),
    ...(vcmdqIrqCpu >= 0 ? { vcmdq: { irqCpu: vcmdqIrqCpu % t.cpus } } : {}),
  }));

/**
 * When an injected GERROR cause is raised: at once, or late enough that a CMD_SYNC issued at the
 * round's start has failed (ATC timeouts of 50 or 200 ms) but its issuer's 1 s poll has not.
 */
export const GERROR_DELAYS_US = [0, 100_000, 300_000] as const;

/**
 * The GERROR causes the search injects by default: all but SFM. Service Failure Mode is a known
 * limit of the series (and of mainline): the SMMU stops for good, later ATC timeouts are never
 * reported and a full queue spins its issuers forever; see properties/gerror.test.ts.
 */
export const SEARCHED_GERROR_CAUSES: readonly GerrorCause[] = GERROR_CAUSES.filter((c) => c !== 'sfm');

export interface OpArbOptions {
  /** Also inject SFM (rarely): for exploring the known limit, never in the default search. */
  readonly sfm?: boolean;
  /**
   * Draw an attach's domain relative to where its device is ({@link resolveAttaches}): 0, three
   * times in four, is another domain, 1 the one it is on.
   */
  readonly relativeAttach?: boolean;
}

const MOVE_OR_STAY = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.constant(1) },
);

/**
 * Attaches drawn relative ({@link OpArbOptions.relativeAttach}) made absolute: 0 moves the device
 * to the next domain, 1 keeps it where it is, tracked in the order the operations are listed
 * (every probed device starts on domain 0). The core makes an attach to the group's own domain
 * a no-op, as Linux does, so uniform absolute domains wasted half of all attaches (every first
 * one to domain 0); a same-domain attach is still drawn, one in four.
 */
export function resolveAttaches(rounds: readonly (readonly Op[])[]): Op[][] {
  const on = new Map<number, number>();
  return rounds.map((r) =>
    r.map((o) => {
      if (o.kind !== 'attach') return o;
      const cur = on.get(o.dev) ?? 0;
      const domain = o.domain === 0 ? (cur + 1) % PAGING_DOMAINS : cur;
      on.set(o.dev, domain);
      return { ...o, domain };
    }),
  );
}

export function opArb(t: Topology, opts: OpArbOptions = {}): fc.Arbitrary<Op> {
  const cpu = fc.nat(t.cpus - 1);
  const dev = fc.nat(t.devices.length - 1);
  const domain = fc.nat(PAGING_DOMAINS - 1);
  const iova = fc.nat(t.iovas - 1);
  const delayUs = fc.oneof(
    { weight: 2, arbitrary: fc.constant<number>(GERROR_DELAYS_US[0]) },
    fc.constantFrom<number>(...GERROR_DELAYS_US.slice(1)),
  );
  // With SFM on, it is half as likely as each other cause (1 gerror operation in 13).
  const cause: fc.Arbitrary<GerrorCause> =
    opts.sfm === true
      ? fc.oneof(
          {
            weight: 2 * SEARCHED_GERROR_CAUSES.length,
            arbitrary: fc.constantFrom(...SEARCHED_GERROR_CAUSES),
          },
          { weight: 1, arbitrary: fc.constant<GerrorCause>('sfm') },
        )
      : fc.constantFrom(...SEARCHED_GERROR_CAUSES);
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('unmap' as const), cpu, domain, iova }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('map' as const), cpu, domain, iova }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('dma' as const), dev, iova }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('hang' as const), dev }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('reset' as const),
        cpu,
        dev,
        outcome: fc.constantFrom('ok' as const, 'fail' as const),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('attach' as const),
        cpu,
        dev,
        domain: opts.relativeAttach === true ? MOVE_OR_STAY : domain,
      }),
    },
    // Twice the weight of probes and interrupts: a removal racing an invalidation that still
    // reads the device (master-freed-under-rcu) needs the unplug in the invalidation's round.
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('unplug' as const), cpu, dev }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('probe' as const), cpu, dev }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('gerror' as const), cause, delayUs }) },
  );
}

/**
 * Rounds are shaped toward the states that matter (hung endpoints; resets, attaches and unplugs
 * overlapping invalidations), measured on the rows the plain shape missed (README, Catalog):
 * - in half the scenarios the first round hangs a device, so that every later round runs against
 *   a hung endpoint (a hang drawn as an ordinary operation rarely lands in an earlier round than
 *   the operations it matters to);
 * - a round's second, third and fourth operations are each there 5 times in 6, so 125 rounds in
 *   216 are full: races need company, and two operations on one CPU run in order, the first
 *   delaying the second. (Third session, rounds of 3, catalog, 10 seeds, 3000 runs per strategy:
 *   stale-broken-report found on 9/10 seeds with each there 2 times in 3, 7/10 with 3 in 4,
 *   10/10 with 5 in 6.)
 * Both are options, so that shrinking removes them (an operation, or the hang round) as it
 * would any other.
 */
export const HUNG_FIRST_FREQ = 2;
export const EXTRA_OP_FREQ = 6;
const MAX_ROUNDS = 8;

const RELATIVE: OpArbOptions = { relativeAttach: true };

const roundArb = (t: Topology, opsPerRound: number): fc.Arbitrary<Op[]> =>
  fc
    .tuple(
      opArb(t, RELATIVE),
      ...Array.from({ length: opsPerRound - 1 }, () =>
        fc.option(opArb(t, RELATIVE), { freq: EXTRA_OP_FREQ }),
      ),
    )
    .map((ops) => ops.filter((o): o is Op => o !== null));

/** 1–8 rounds of 1–4 concurrent operations, shaped as above. */
const roundsArb = (t: Topology, opsPerRound: number): fc.Arbitrary<Op[][]> =>
  fc
    .record({
      hung: fc.option(
        fc.nat(t.devices.length - 1).map((dev): Op[] => [{ kind: 'hang', dev }]),
        { freq: HUNG_FIRST_FREQ },
      ),
      rounds: fc.array(roundArb(t, opsPerRound), { minLength: 1, maxLength: MAX_ROUNDS }),
    })
    .map(({ hung, rounds }) =>
      resolveAttaches(hung === null ? rounds : [hung, ...rounds].slice(0, MAX_ROUNDS)),
    );

// size 'max' (choicesArb): lengths drawn up to maxLength. fast-check's default size ('small')
// would cap them near 10, so almost every run fell back to the fair default after a few choices,
// and schedules that need a dozen explicit choices (full-queue-stall's witness has 11) were never
// drawn.
// Measured on catalog seeds 1-3 (3000 runs per strategy, uniform then pct): full-queue-stall
// 1/3 -> 3/3 (within 41 runs), atc-inv-to-broken 2/3 -> 3/3, uniform alone now finds
// atc-bit-cleared-after-publish and stale-atc-timeout-bit on all three seeds.
/** A uniform schedule: a choice stream. */
export const choicesArb: fc.Arbitrary<number[]> = fc.array(fc.nat(7), { maxLength: 300, size: 'max' });

/** A PCT schedule: priorities and up to 3 change points. */
export const pctArb: fc.Arbitrary<PctSchedule> = fc.record({
  priorities: fc.array(fc.nat(20), { maxLength: 16 }),
  changes: fc.uniqueArray(fc.nat(400), { maxLength: 3 }),
});

/**
 * An unmap polls its CMD_SYNC with IRQs off: a GERROR interrupt routed to its CPU waits until the
 * poll gives up, and an issuer behind it sees a plain timeout where it would have seen the error.
 * Drawn independently, the interrupt's CPU is the unmap's in 1 scenario in 2 or 3; so in
 * IRQ_ON_UNMAP_FREQ - 1 scenarios in IRQ_ON_UNMAP_FREQ it goes to the CPU of the first unmap (an
 * option, so that shrinking takes it out and the topology's own CPU is back).
 */
export const IRQ_ON_UNMAP_FREQ = 2;

function irqOnFirstUnmap(s: Scenario): Scenario {
  const unmap = s.rounds.flat().find((o) => o.kind === 'unmap');
  return unmap === undefined ? s : { ...s, topology: { ...s.topology, gerrorIrqCpu: unmap.cpu } };
}

const withIrqOnUnmap = (arb: fc.Arbitrary<Scenario>): fc.Arbitrary<Scenario> =>
  fc
    .tuple(arb, fc.option(fc.constant(true), { freq: IRQ_ON_UNMAP_FREQ }))
    .map(([s, onUnmap]) => (onUnmap === null ? s : irqOnFirstUnmap(s)));

/** Scenarios on a drawn topology whose schedule (the record's last fields) `schedule` draws. */
const scenarioWith = (
  schedule: {
    readonly choices: fc.Arbitrary<number[]>;
    readonly pct?: fc.Arbitrary<PctSchedule>;
  },
  opsPerRound: number,
): fc.Arbitrary<Scenario> =>
  withIrqOnUnmap(
    topologyArb.chain((topology) =>
      fc.record({ topology: fc.constant(topology), rounds: roundsArb(topology, opsPerRound), ...schedule }),
    ),
  );

const uniformWith = (opsPerRound: number) => scenarioWith({ choices: choicesArb }, opsPerRound);
const pctWith = (opsPerRound: number) =>
  scenarioWith({ choices: fc.constant([] as number[]), pct: pctArb }, opsPerRound);

export const scenarioArb: fc.Arbitrary<Scenario> = uniformWith(MAX_OPS_PER_ROUND);

export function scenarioSize(s: Scenario): { ops: number; rounds: number; choices: number } {
  return {
    ops: s.rounds.reduce((n, r) => n + r.length, 0),
    rounds: s.rounds.length,
    choices: s.choices.length,
  };
}

/** Scenarios with a PCT schedule instead of uniform choices: priorities and up to 3 change points. */
export const pctScenarioArb: fc.Arbitrary<Scenario> = pctWith(MAX_OPS_PER_ROUND);

/**
 * Scenarios with either kind of schedule, one in two each. Rows differ in which kind finds them
 * (a late interrupt needs a choice stream's many small deviations, a starved reporter PCT's one
 * change point), and a search rarely knows which it needs: mixing them per scenario costs a row
 * at most half the speed of its better kind, where running one kind and then the other costs
 * the first kind's whole budget.
 */
export const mixedScenarioArb: fc.Arbitrary<Scenario> = fc.oneof(scenarioArb, pctScenarioArb);

export type Strategy = 'uniform' | 'pct' | 'both';
export const STRATEGIES: readonly Strategy[] = ['uniform', 'pct', 'both'];

/**
 * The scenario arbitrary of a search strategy; with `opsPerRound`, the same with rounds of at
 * most that many operations (the catalog's shrink redraws small scenarios from it).
 */
export function arbFor(strategy: Strategy, opsPerRound = MAX_OPS_PER_ROUND): fc.Arbitrary<Scenario> {
  if (opsPerRound === MAX_OPS_PER_ROUND)
    return strategy === 'pct' ? pctScenarioArb : strategy === 'both' ? mixedScenarioArb : scenarioArb;
  const [u, p] = [uniformWith(opsPerRound), pctWith(opsPerRound)];
  return strategy === 'pct' ? p : strategy === 'both' ? fc.oneof(u, p) : u;
}
