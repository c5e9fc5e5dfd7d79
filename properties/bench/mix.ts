/**
 * The standard scenario mix of the benchmark: fixed here, independent of the fuzzer's own
 * arbitraries (properties/scenario.ts), so that figures from two revisions measure the same work.
 * It is the fuzzer's mix as of the benchmark's introduction (six operation kinds).
 */
import fc from 'fast-check';
import type { Op, Topology } from '../../impl/system.ts';
import type { Scenario } from '../scenario.ts';

/** The declaration printed with every result (and recorded in --json). */
export const STANDARD_MIX = {
  seed: 1,
  scenarios: 2000,
  topology: {
    cpus: [1, 3],
    devices: [1, 3],
    atsShare: 0.8,
    sidsPerDevice: [1, 2],
    /** The command queue (ring) has 2^queueShift slots: 4 to 16. */
    queueShift: [2, 4],
    /** CMDQ_BATCH_ENTRIES, at most ring size - 1. */
    batchEntries: [2, 4],
    atcTimeoutUs: [50_000, 200_000],
    iovas: [1, 3],
  },
  rounds: [1, 8],
  opsPerRound: [1, 3],
  /** Relative weights of the operation kinds. */
  ops: { unmap: 3, map: 2, dma: 3, hang: 2, reset: 2, attach: 2 },
  /** Choice stream: values 0..7, up to 300 long (fast-check size 'small': 10 at most in practice). */
  choices: { max: 7, maxLength: 300 },
  paging_domains: 2,
} as const;

const M = STANDARD_MIX;
const T = M.topology;

const topologyArb: fc.Arbitrary<Topology> = fc
  .record({
    cpus: fc.integer({ min: T.cpus[0], max: T.cpus[1] }),
    devices: fc.array(
      fc.record({
        ats: fc.oneof(
          { weight: 4, arbitrary: fc.constant(true) },
          { weight: 1, arbitrary: fc.constant(false) },
        ),
        sids: fc.integer({ min: T.sidsPerDevice[0], max: T.sidsPerDevice[1] }),
      }),
      { minLength: T.devices[0], maxLength: T.devices[1], size: 'small' },
    ),
    gerrorIrqCpu: fc.nat(T.cpus[1] - 1),
    queueShift: fc.integer({ min: T.queueShift[0], max: T.queueShift[1] }),
    batchEntries: fc.integer({ min: T.batchEntries[0], max: T.batchEntries[1] }),
    atcTimeoutUs: fc.constantFrom(...T.atcTimeoutUs),
    iovas: fc.integer({ min: T.iovas[0], max: T.iovas[1] }),
  })
  .map((t) => ({
    ...t,
    gerrorIrqCpu: t.gerrorIrqCpu % t.cpus,
    batchEntries: Math.min(t.batchEntries, (1 << t.queueShift) - 1),
  }));

function opArb(t: Topology): fc.Arbitrary<Op> {
  const cpu = fc.nat(t.cpus - 1);
  const dev = fc.nat(t.devices.length - 1);
  const domain = fc.nat(M.paging_domains - 1);
  const iova = fc.nat(t.iovas - 1);
  const w = M.ops;
  return fc.oneof(
    { weight: w.unmap, arbitrary: fc.record({ kind: fc.constant('unmap' as const), cpu, domain, iova }) },
    { weight: w.map, arbitrary: fc.record({ kind: fc.constant('map' as const), cpu, domain, iova }) },
    { weight: w.dma, arbitrary: fc.record({ kind: fc.constant('dma' as const), dev, iova }) },
    { weight: w.hang, arbitrary: fc.record({ kind: fc.constant('hang' as const), dev }) },
    {
      weight: w.reset,
      arbitrary: fc.record({
        kind: fc.constant('reset' as const),
        cpu,
        dev,
        outcome: fc.constantFrom('ok' as const, 'fail' as const),
      }),
    },
    { weight: w.attach, arbitrary: fc.record({ kind: fc.constant('attach' as const), cpu, dev, domain }) },
  );
}

export const standardMixArb: fc.Arbitrary<Scenario> = topologyArb.chain((topology) =>
  fc.record({
    topology: fc.constant(topology),
    rounds: fc.array(
      fc.array(opArb(topology), { minLength: M.opsPerRound[0], maxLength: M.opsPerRound[1], size: 'small' }),
      { minLength: M.rounds[0], maxLength: M.rounds[1], size: 'small' },
    ),
    choices: fc.array(fc.nat(M.choices.max), { maxLength: M.choices.maxLength, size: 'small' }),
  }),
);

/** The first `count` scenarios of the mix for `seed`: the same list on every run and machine. */
export function standardScenarios(count: number = M.scenarios, seed: number = M.seed): Scenario[] {
  return fc.sample(standardMixArb, { seed, numRuns: count });
}

/** Scenarios `index % of === part` of a list: disjoint slices for `of` workers. */
export function slice<T>(list: readonly T[], part: number, of: number): T[] {
  return list.filter((_, i) => i % of === part);
}
