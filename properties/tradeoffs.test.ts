/** npm run tradeoffs: what v4 and v4-minimal give up, read from the events. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect, test } from 'vitest';
import type { SimEvent } from '../impl/events.ts';
import { BLOCKED_BROKEN, BLOCKED_NO, BLOCKED_RESETTING } from '../impl/kernel.ts';
import { Variant } from '../impl/variants.ts';
import { scenarioArb, type Scenario } from './scenario.ts';
import { oneDevice } from './witnesses/witnesses.ts';
import {
  DESIGNS,
  measureScenario,
  renderTable,
  type RunTally,
  sampleScenarios,
  tallyEvents,
  type TradeoffReport,
  tradeoffs,
} from './tradeoffs.ts';
import { expectUsageError } from './cli/expect-usage.ts';

const tally = (...es: SimEvent[]): RunTally => tallyEvents(es.map((e, i) => ({ at: i * 10, e })));

describe('tallyEvents', () => {
  test("v4's driver fence and core quarantine of one timeout are one fence, a true one", () => {
    const t = tally(
      { kind: 'hang', dev: 0 },
      { kind: 'syncAtcError', pos: 4, prod: 4, devs: [0], sentAt: [5] },
      { kind: 'syncAtcError', pos: 6, prod: 6, devs: [0], sentAt: [15] },
      { kind: 'atsFenced', dev: 0 },
      { kind: 'blocked', dev: 0, from: BLOCKED_NO, to: BLOCKED_BROKEN },
    );
    expect(t).toMatchObject({ fences: 1, trueFences: 1, falseFences: 0, coreQuarantines: 1, missed: 0 });
    expect(t.episodes).toEqual([
      { dev: 0, timeouts: 2, reenables: 0, timeoutsAfterReenable: 0, fenced: true, open: true },
    ]);
  });

  test('a co-batched healthy device fenced is false; re-enabled and fenced again counts twice', () => {
    const t = tally(
      { kind: 'hang', dev: 0 },
      { kind: 'syncAtcError', pos: 4, prod: 4, devs: [0], sentAt: [5] },
      { kind: 'atsFenced', dev: 0 },
      { kind: 'atsFenced', dev: 1 },
      { kind: 'eatsEnabled', dev: 1 },
      { kind: 'eatsEnabled', dev: 0 }, // at 50
      { kind: 'syncAtcError', pos: 9, prod: 1, devs: [0], sentAt: [40] }, // sent before the re-enable
      { kind: 'syncAtcError', pos: 12, prod: 4, devs: [0], sentAt: [60] },
      { kind: 'atsFenced', dev: 0 },
      { kind: 'atsFenced', dev: 1 },
    );
    expect(t).toMatchObject({ fences: 4, trueFences: 2, falseFences: 2, coreQuarantines: 0, missed: 0 });
    expect(t.episodes).toEqual([
      { dev: 0, timeouts: 3, reenables: 1, timeoutsAfterReenable: 1, fenced: true, open: true },
    ]);
  });

  test('a working reset ends the episode and the fence; a failed one does neither', () => {
    const t = tally(
      { kind: 'hang', dev: 0 },
      { kind: 'syncAtcError', pos: 4, prod: 4, devs: [0], sentAt: [5] },
      { kind: 'atsFenced', dev: 0 },
      { kind: 'blocked', dev: 0, from: BLOCKED_BROKEN, to: BLOCKED_RESETTING },
      { kind: 'endpointReset', dev: 0, ok: false },
      { kind: 'blocked', dev: 0, from: BLOCKED_RESETTING, to: BLOCKED_BROKEN },
      { kind: 'endpointReset', dev: 0, ok: true },
      // Fenced again after it works: that is a healthy device fenced, and a core quarantine of it.
      { kind: 'blocked', dev: 0, from: BLOCKED_NO, to: BLOCKED_BROKEN },
    );
    expect(t).toMatchObject({ fences: 2, trueFences: 1, falseFences: 1, coreQuarantines: 2 });
    expect(t.falseCoreQuarantines).toBe(1);
    expect(t.episodes).toEqual([
      { dev: 0, timeouts: 1, reenables: 0, timeoutsAfterReenable: 0, fenced: true, open: false },
    ]);
  });

  test('inside a reset the device is not usable: a late fence there is counted apart, not false', () => {
    // The reset's own ATC flush timed out on the hung device; the FLR works; the broken worker
    // then quarantines it before done() unblocks (a v4 run of the default tradeoffs sample).
    const late = tally(
      { kind: 'hang', dev: 0 },
      { kind: 'syncAtcError', pos: 4, prod: 4, devs: [0], sentAt: [5] },
      { kind: 'atsFenced', dev: 0 },
      { kind: 'blocked', dev: 0, from: BLOCKED_NO, to: BLOCKED_RESETTING },
      { kind: 'endpointReset', dev: 0, ok: true },
      { kind: 'blocked', dev: 0, from: BLOCKED_RESETTING, to: BLOCKED_BROKEN },
      { kind: 'blocked', dev: 0, from: BLOCKED_BROKEN, to: BLOCKED_NO },
    );
    expect(late).toMatchObject({ fences: 1, trueFences: 1, falseFences: 0, fencesInReset: 1 });
    expect(late).toMatchObject({ coreQuarantines: 1, falseCoreQuarantines: 0 });
    // A device that never hung: an invalidation sent into its FLR fails after the FLR worked, and
    // its ATS is fenced before done() turns it back on.
    const intoFlr = tally(
      { kind: 'blocked', dev: 1, from: BLOCKED_NO, to: BLOCKED_RESETTING },
      { kind: 'endpointReset', dev: 1, ok: true },
      { kind: 'syncAtcError', pos: 9, prod: 1, devs: [1], sentAt: [5] },
      { kind: 'atsFenced', dev: 1 },
      { kind: 'eatsEnabled', dev: 1 },
      { kind: 'blocked', dev: 1, from: BLOCKED_RESETTING, to: BLOCKED_NO },
      // Once unblocked it is usable: fencing it now is a false fence.
      { kind: 'atsFenced', dev: 1 },
    );
    expect(intoFlr).toMatchObject({ fences: 1, falseFences: 1, fencesInReset: 1, coreQuarantines: 0 });
  });

  test('a hung device fenced and quarantined inside its failed reset is a fence in reset only', () => {
    // A random seed's counterexample (eleventh session): no fence outside the reset at all.
    const t = tally(
      { kind: 'hang', dev: 1 },
      { kind: 'syncAtcError', pos: 4, prod: 4, devs: [1], sentAt: [5] },
      { kind: 'blocked', dev: 1, from: BLOCKED_NO, to: BLOCKED_RESETTING },
      { kind: 'endpointReset', dev: 1, ok: false },
      { kind: 'atsFenced', dev: 1 },
      { kind: 'blocked', dev: 1, from: BLOCKED_RESETTING, to: BLOCKED_BROKEN },
    );
    expect(t).toMatchObject({ fences: 0, fencesInReset: 1, coreQuarantines: 1, falseCoreQuarantines: 0 });
  });

  test('an invalidation sent into the FLR that fails after it worked is the ended episode’s', () => {
    const t = tally(
      { kind: 'hang', dev: 0 }, // at 0
      { kind: 'endpointReset', dev: 0, ok: true }, // at 10
      { kind: 'syncAtcError', pos: 4, prod: 4, devs: [0], sentAt: [5] },
      { kind: 'hang', dev: 0 },
    );
    expect(t).toMatchObject({ timeoutsOutsideEpisodes: 0, missed: 0 });
    expect(t.episodes.map((e) => [e.timeouts, e.open])).toEqual([
      [1, false],
      [0, true],
    ]);
  });

  test('a timeout before the hang (after a failed reset) is outside episodes, not a miss of the hang', () => {
    // A CI seed's counterexample: dev2's reset fails, an invalidation to it times out unfenced,
    // and only then does it hang, with no timeout in that episode.
    const t = tally(
      { kind: 'endpointReset', dev: 2, ok: false },
      { kind: 'syncAtcError', pos: 4, prod: 4, devs: [2], sentAt: [5] },
      { kind: 'hang', dev: 2 },
    );
    expect(t).toMatchObject({ timeoutsOutsideEpisodes: 1, missed: 0 });
    expect(t.episodes.map((e) => [e.timeouts, e.open])).toEqual([[0, true]]);
    // The same timeout after the hang is the episode's, and unanswered.
    const after = tally(
      { kind: 'endpointReset', dev: 2, ok: false },
      { kind: 'hang', dev: 2 },
      { kind: 'syncAtcError', pos: 4, prod: 4, devs: [2], sentAt: [25] },
    );
    expect(after).toMatchObject({ timeoutsOutsideEpisodes: 0, missed: 1 });
  });

  test('a hung device whose timeout no fence followed is missed; one that timed out when fenced is not', () => {
    const t = tally(
      { kind: 'hang', dev: 0 },
      { kind: 'hang', dev: 1 },
      { kind: 'syncAtcError', pos: 4, prod: 4, devs: [0, 1], sentAt: [5, 5] },
      { kind: 'atsFenced', dev: 1 },
      { kind: 'syncAtcError', pos: 4, prod: 4, devs: [1], sentAt: [50] }, // refetched SYNC
      { kind: 'syncAtcError', pos: 7, prod: 7, devs: [2], sentAt: [50] }, // not hung
    );
    expect(t.missed).toBe(1);
    expect(t.timeoutsOutsideEpisodes).toBe(1);
    expect(t.episodes.map((e) => [e.dev, e.timeouts, e.fenced])).toEqual([
      [0, 1, false],
      [1, 1, true],
    ]);
  });
});

/** Two ATS devices on domain 0; device 0 hangs; an unmap invalidates both ATCs in one batch. */
const coBatched: Scenario = {
  topology: oneDevice({
    devices: [
      { ats: true, sids: 1 },
      { ats: true, sids: 1 },
    ],
    batchEntries: 4,
  }),
  rounds: [
    [{ kind: 'hang', dev: 0 }],
    [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
    // The attach that turns the hung device's ATS back on under v4-minimal (v4 refuses it); to
    // another domain, as an attach to the group's own domain is a no-op in Linux.
    [{ kind: 'attach', cpu: 0, dev: 0, domain: 1 }],
    [{ kind: 'map', cpu: 0, domain: 1, iova: 0 }],
    [{ kind: 'unmap', cpu: 0, domain: 1, iova: 0 }],
  ],
  choices: [],
};

describe('measured on a hand-built scenario', () => {
  test('v4-minimal fences the healthy co-batched device, v4 only the hung one', () => {
    const v4 = measureScenario(coBatched, Variant.parse('v4')).tally;
    const min = measureScenario(coBatched, Variant.parse('v4-minimal')).tally;
    expect(v4).toMatchObject({ fences: 1, trueFences: 1, falseFences: 0, coreQuarantines: 1, missed: 0 });
    expect(min.falseFences).toBeGreaterThanOrEqual(1);
    expect(min.trueFences).toBeGreaterThanOrEqual(1);
    expect(min.coreQuarantines).toBe(0);
    expect(min.missed).toBe(0);
  });

  test('v4-minimal re-enables ATS on the hung device and it times out once more; v4 does not', () => {
    const [v4] = measureScenario(coBatched, Variant.parse('v4')).tally.episodes;
    const [min] = measureScenario(coBatched, Variant.parse('v4-minimal')).tally.episodes;
    expect(v4).toMatchObject({ dev: 0, reenables: 0, timeoutsAfterReenable: 0, fenced: true, open: true });
    expect(min).toMatchObject({ dev: 0, reenables: 1, fenced: true, open: true });
    expect(min!.timeoutsAfterReenable).toBeGreaterThanOrEqual(1);
    expect(min!.timeouts).toBeGreaterThan(min!.timeoutsAfterReenable);
  });
});

describe('per run', () => {
  fcTest.prop([scenarioArb, fc.constantFrom(...DESIGNS)], { numRuns: 60 })(
    'counts are consistent and v4-minimal never quarantines in the core',
    (s, name) => {
      const { tally: t } = measureScenario(s, Variant.parse(name));
      expect(t.falseFences + t.trueFences).toBe(t.fences);
      expect(t.falseCoreQuarantines).toBeLessThanOrEqual(t.coreQuarantines);
      // A quarantine inside a reset is counted with the fences in reset (tallyEvents).
      expect(t.coreQuarantines).toBeLessThanOrEqual(2 * (t.fences + t.fencesInReset));
      for (const ep of t.episodes) expect(ep.timeoutsAfterReenable).toBeLessThanOrEqual(ep.timeouts);
      expect(t.missed).toBeLessThanOrEqual(t.episodes.filter((e) => e.open && e.timeouts > 0).length);
      if (name === 'v4-minimal') expect(t.coreQuarantines).toBe(0);
    },
  );
});

describe('tradeoffs', () => {
  const runs = 300;
  const report: TradeoffReport = tradeoffs({ runs, seed: 11 });
  const [v4, min] = report.designs;

  test('the same seed gives the same report; the sample is the same for both designs', () => {
    expect(tradeoffs({ runs, seed: 11 })).toEqual(report);
    expect(sampleScenarios(50, 11)).toEqual(sampleScenarios(runs, 11).slice(0, 50));
    // Each design's row comes from the sample alone, not from which designs run beside it. (Its
    // episodes may differ from the other design's: a reset racing an unplug reaches the endpoint
    // under one design and not the other, and a later hang then opens one more episode.)
    expect(tradeoffs({ runs, seed: 11, designs: ['v4-minimal'] }).designs).toEqual([min]);
  });

  test('sums are consistent', () => {
    for (const d of report.designs) {
      expect(d.scenarios).toBe(runs);
      expect(d.falseFences + d.trueFences).toBe(d.fences);
      expect(d.scenariosWithFalseFence).toBeLessThanOrEqual(d.falseFences);
      expect(d.reachedEpisodes).toBeLessThanOrEqual(d.episodes);
      expect(d.timeouts).toBeLessThanOrEqual(d.maxTimeoutsPerEpisode * d.reachedEpisodes);
      expect(d.timeoutsAfterReenable).toBeLessThanOrEqual(d.timeouts);
      expect(d.episodesReenabled).toBeLessThanOrEqual(d.reenables);
      for (const v of d.violations) expect(v.scenarios).toBeGreaterThan(0);
    }
  });

  test('v4 fences no healthy device and re-enables no hung one; v4-minimal does both, without the core', () => {
    expect(v4!.falseFences).toBe(0);
    expect(v4!.reenables).toBe(0);
    expect(v4!.coreQuarantines).toBeGreaterThan(0);
    expect(min!.falseFences).toBeGreaterThan(0);
    expect(min!.reenables).toBeGreaterThan(0);
    expect(min!.coreQuarantines).toBe(0);
  });

  test('the table has one column per design and a row per violated property', () => {
    const t = renderTable(report);
    expect(t.split('\n')[0]).toBe(`| ${runs} scenarios, seed 11 | \`v4\` | \`v4-minimal\` |`);
    for (const d of report.designs)
      for (const v of d.violations) expect(t).toContain(`violated: ${v.property}`);
  });
});

describe('npm run tradeoffs', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
  const cli = (...args: string[]) => {
    const r = spawnSync(tsx, ['properties/cli/tradeoffs.ts', ...args], { cwd: root, encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  test('--json prints the report', () => {
    const r = cli('--runs', '20', '--seed', '5', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual(JSON.parse(JSON.stringify(tradeoffs({ runs: 20, seed: 5 }))));
  });

  test.each([
    [['--runs', '0'], /^tradeoffs: --runs takes a whole number >= 1/],
    [['--seed', 'x'], /^tradeoffs: --seed takes a whole number >= 0/],
    [['--bogus'], /^tradeoffs: Unknown option '--bogus'/],
  ])('%j is one line and exit 2', (args, msg) => {
    const r = cli(...args);
    expectUsageError(r, msg);
  });
});
