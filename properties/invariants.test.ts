/**
 * Every property can fire: for each, a run that violates it (a witness, a finding, or mainline),
 * so that none of them is vacuous. Properties about the machine itself (deadlock, livelock,
 * use-after-free) are shown to fire by impl/sim's own tests and by the scenarios below where the
 * kernel paths reach them.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { Variant } from '../impl/variants.ts';
import { parseCounterexample } from './counterexample-file.ts';
import { PROPERTIES, STORM_OPS_FLOOR, stormBound } from './invariants.ts';
import { runScenario } from './runner.ts';
import type { Scenario } from './scenario.ts';
import { LIMITS, oneDevice, WITNESSES } from './witnesses/witnesses.ts';

const mainlineStorm: Scenario = {
  topology: oneDevice({ iovas: 3 }),
  rounds: [
    [{ kind: 'hang', dev: 0 }],
    [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
    [{ kind: 'unmap', cpu: 0, domain: 0, iova: 1 }],
    [{ kind: 'unmap', cpu: 0, domain: 0, iova: 2 }],
    [{ kind: 'map', cpu: 0, domain: 0, iova: 0 }],
    [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
    [{ kind: 'map', cpu: 0, domain: 0, iova: 1 }],
    [{ kind: 'unmap', cpu: 0, domain: 0, iova: 1 }],
  ],
  choices: [],
};

/** Runs known to violate each property. */
function examples(): Array<{ property: string; variant: string; scenario: Scenario }> {
  const out = WITNESSES.map((w) => ({ property: w.property, variant: `v4+${w.flag}`, scenario: w.scenario }));
  for (const l of LIMITS)
    if (l.scenario) out.push({ property: l.property, variant: 'v4', scenario: l.scenario });
  const f = parseCounterexample(
    readFileSync(new URL('./corpus/v4-sync-queued-behind-failure.json', import.meta.url), 'utf8'),
    'corpus',
  );
  out.push({ property: f.property!, variant: f.variant, scenario: f.scenario });
  out.push({ property: 'bounded-atc-errors', variant: 'mainline', scenario: mainlineStorm });
  return out;
}

const MACHINE_LEVEL = new Set(['no-use-after-free', 'no-deadlock', 'no-livelock', 'no-unexpected-warn']);

describe('every property can be violated', () => {
  const ex = examples();
  test.each(PROPERTIES.filter((p) => !MACHINE_LEVEL.has(p.id)).map((p) => p.id))('%s', (id) => {
    const e = ex.find((x) => x.property === id);
    expect(e, `an example violating ${id}`).toBeDefined();
    const r = runScenario(e!.scenario, Variant.parse(e!.variant));
    expect(r.violations.map((v) => v.property)).toContain(id);
  });
});

describe('the storm bound', () => {
  test('grows with the largest round beyond the floor of 3, and only there', () => {
    for (const sids of [1, 2]) {
      for (const largest of [0, 1, 2, 3])
        expect(stormBound(sids, largest)).toBe((1 + STORM_OPS_FLOOR) * sids);
      expect(stormBound(sids, 4)).toBe(5 * sids);
    }
  });

  test("atc-inv-to-broken's witness (rounds of at most 3) breaks the old bound of 4 for its one SID", () => {
    const w = WITNESSES.find((x) => x.flag === 'atc-inv-to-broken')!;
    const flagged = Variant.parse('v4+atc-inv-to-broken');
    const storm = (s: Scenario) =>
      runScenario(s, flagged)
        .violations.filter((v) => v.property === 'bounded-atc-errors')
        .map((v) => v.message);
    expect(storm(w.scenario)[0]).toMatch(/bound 4\)/);
  });
});
