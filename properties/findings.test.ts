/**
 * Findings against v4 as posted (reports/findings/): each reproduces without any flag, and every
 * violation v4 shows in a bounded search is explained by one of them.
 */
import { describe, expect, test } from 'vitest';
import { Variant, v4FixedBut } from '../impl/variants.ts';
import { readCounterexample as corpus } from './engine/corpus.ts';
import {
  atcTimeoutReportedAsPlainTimeout,
  fenceLostToAttach,
  invalidationIntoFlr,
  reenabledAfterFence,
} from './findings.ts';
import { fuzz } from './fuzz.ts';
import { runScenario } from './runner.ts';
import type { Scenario } from './scenario.ts';

/** The scenario with each operation in a round of its own: no concurrency left. */
const oneAtATime = (s: Scenario): Scenario => ({
  ...s,
  rounds: s.rounds.flatMap((r) => r.map((op) => [op])),
});

/** The scenario with every reset working. */
const resetsWork = (s: Scenario): Scenario => ({
  ...s,
  rounds: s.rounds.map((r) => r.map((op) => (op.kind === 'reset' ? { ...op, outcome: 'ok' } : op))),
});

describe('finding: a CMD_SYNC queued behind a failing one is taken for a plain timeout', () => {
  const f = corpus('v4-sync-queued-behind-failure');

  test('v4 as posted corrupts memory in the recorded scenario', () => {
    const r = runScenario(f.scenario, Variant.parse('v4'));
    expect(r.violations[0]?.property).toBe(f.property);
    expect(atcTimeoutReportedAsPlainTimeout(r.events)).toBe(true);
  });

  test('the same operations one at a time are safe under v4', () => {
    const serial = oneAtATime(f.scenario);
    expect(runScenario(serial, Variant.parse('v4')).violations).toEqual([]);
  });

  test('mainline corrupts memory in the same scenario too (the series narrows the window, not closes it)', () => {
    const r = runScenario(f.scenario, Variant.parse('mainline'));
    expect(r.violations.map((v) => v.property)).toContain('no-corruption');
  });
});

/**
 * Retracted (thirteenth session): the simulated driver drained a left domain's invs readers only
 * when ATS went off, but arm_smmu_invs_unref() takes the old array's write lock whatever ATS does
 * (invs v3 on, and mainline). Its scenario stays, as a check of that fence.
 */
describe('retracted finding: an invalidation still walking a domain the device left reaches it in FLR', () => {
  const f = corpus('v4-invalidation-from-left-domain-into-flr', 'retracted');

  test("v4 is right: the attach's unref drains the unmap before dev0's FLR starts", () => {
    const r = runScenario(f.scenario, Variant.parse('v4'));
    expect(r.violations).toEqual([]);
    expect(invalidationIntoFlr(r.events)).toBe(false);
  });
});

describe('finding: a device joining the domain leaves an invalidation that reaches another device in FLR', () => {
  const f = corpus('v4-domain-join-leaves-reader-into-flr');
  // v4-fixed but this finding's own fix (fixes.test.ts checks that fix).
  const othersFixed = v4FixedBut('prepare-grace-period');
  const fixed = Variant.parse(othersFixed);

  test.each(['v4', othersFixed])(
    '%s quarantines the failed-reset device as broken, from an invalidation lost in its FLR',
    (v) => {
      const r = runScenario(f.scenario, Variant.parse(v));
      expect(r.violations.map((x) => x.property)).toEqual([f.property]);
      expect(invalidationIntoFlr(r.events)).toBe(true);
    },
  );

  test('one operation at a time, or with an FLR that works, the other fixes are right', () => {
    expect(runScenario(oneAtATime(f.scenario), fixed).violations).toEqual([]);
    expect(runScenario(resetsWork(f.scenario), fixed).violations).toEqual([]);
  });

  test('the join is the hole: without dev2 joining domain 0 again, the other fixes are right', () => {
    const [moved, race] = f.scenario.rounds;
    const join = race!.filter((op) => op.kind === 'attach');
    expect(moved).toEqual([{ kind: 'attach', cpu: 0, dev: 2, domain: 1 }]);
    expect(join).toEqual([{ kind: 'attach', cpu: 1, dev: 2, domain: 0 }]);
    const noJoin = { ...f.scenario, rounds: [moved!, race!.filter((op) => op.kind !== 'attach')] };
    expect(runScenario(noJoin, fixed).violations).toEqual([]);
  });
});

describe('v4 as posted: a bounded search finds nothing a recorded finding does not explain', () => {
  test.each([1, 2, 3])('seed %i', (seed) => {
    const v4 = Variant.parse('v4');
    const r = fuzz({ variant: v4, seed, runs: 1500 });
    if (r.violation === null) return;
    const events = runScenario(r.violation.scenario, v4).events;
    expect(atcTimeoutReportedAsPlainTimeout(events) || invalidationIntoFlr(events)).toBe(true);
  });
});

describe('finding (v4-minimal): a batch fence lost to a concurrent attach', () => {
  const f = corpus('v4-minimal-fence-lost-to-attach');
  const minimal = Variant.parse('v4-minimal');

  test('v4-minimal lets a healthy device keep ATS with broken invalidation entries, then corrupts memory', () => {
    const r = runScenario(f.scenario, minimal);
    expect(fenceLostToAttach(r.violations)).toBe(true);
    expect(r.violations.map((v) => v.property)).toContain('no-corruption');
  });

  test('v4 (ats_broken_lock around STE writes, per-SID retry) is safe in the same scenario', () => {
    expect(runScenario(f.scenario, Variant.parse('v4')).violations).toEqual([]);
  });

  test('the same operations one at a time are safe under v4-minimal', () => {
    const serial = oneAtATime(f.scenario);
    expect(runScenario(serial, minimal).violations).toEqual([]);
  });
});

describe('finding (v4-minimal): an attach re-enabling ATS honours the stale ATC of a hung device', () => {
  const f = corpus('v4-minimal-reenable-honours-stale-atc');
  const minimal = Variant.parse('v4-minimal');

  test('v4-minimal turns EATS back on for the fenced, hung device, and a stale translation is used', () => {
    const r = runScenario(f.scenario, minimal);
    expect(r.violations.map((v) => v.property)).toContain('no-corruption');
    expect(reenabledAfterFence(r.events)).toBe(true);
  });

  test('v4 (P18: no ATS for a broken master until a reset) is safe in the same scenario', () => {
    expect(runScenario(f.scenario, Variant.parse('v4')).violations).toEqual([]);
  });
});

describe('v4-minimal: a bounded search finds nothing a recorded finding does not explain', () => {
  test.each([1, 2, 3])('seed %i', (seed) => {
    const minimal = Variant.parse('v4-minimal');
    const r = fuzz({ variant: minimal, seed, runs: 1500 });
    if (r.violation === null) return;
    const run = runScenario(r.violation.scenario, minimal);
    expect(
      atcTimeoutReportedAsPlainTimeout(run.events) ||
        fenceLostToAttach(run.violations) ||
        reenabledAfterFence(run.events),
    ).toBe(true);
  });
});
