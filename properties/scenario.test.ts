/** The scenario arbitraries' shaping: each bias is there, and none is all there is. */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { arbFor, mixedScenarioArb, pctScenarioArb, scenarioArb, type Scenario } from './scenario.ts';

const sample = (arb: fc.Arbitrary<Scenario>, seed: number) => fc.sample(arb, { seed, numRuns: 2000 });

describe('scenario arbitraries', () => {
  test('both: each scenario has one kind of schedule, and both kinds are drawn', () => {
    const ss = sample(mixedScenarioArb, 1);
    const pct = ss.filter((s) => s.pct !== undefined);
    expect(pct.every((s) => s.choices.length === 0)).toBe(true);
    expect(pct.length / ss.length).toBeGreaterThan(0.4);
    expect(pct.length / ss.length).toBeLessThan(0.6);
    expect(arbFor('both')).toBe(mixedScenarioArb);
  });

  test.each([
    ['uniform', scenarioArb],
    ['pct', pctScenarioArb],
  ] as const)("%s: the GERROR interrupt is often, not always, on the first unmap's CPU", (_, arb) => {
    const withUnmap = sample(arb, 2)
      .filter((s) => s.topology.cpus > 1)
      .map((s) => ({ s, unmap: s.rounds.flat().find((o) => o.kind === 'unmap') }))
      .filter((x) => x.unmap !== undefined);
    const on = withUnmap.filter((x) => x.s.topology.gerrorIrqCpu === (x.unmap as { cpu: number }).cpu);
    // Drawn independently it would be 1 in 2 or 3; the option makes it about 3 in 4.
    expect(on.length / withUnmap.length).toBeGreaterThan(0.6);
    expect(on.length).toBeLessThan(withUnmap.length);
  });
});
