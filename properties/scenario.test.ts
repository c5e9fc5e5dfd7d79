/** The scenario arbitraries' shaping: each bias is there, and none is all there is. */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { PAGING_DOMAINS } from '../impl/system.ts';
import {
  arbFor,
  mixedScenarioArb,
  pctScenarioArb,
  resolveAttaches,
  scenarioArb,
  type Scenario,
} from './scenario.ts';

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

describe('attaches drawn relative to where the device is', () => {
  /** Each attach's domain against the one its device was on, in listing order. */
  const moves = (rounds: Scenario['rounds']): boolean[] => {
    const on = new Map<number, number>();
    return rounds.flat().flatMap((o) => {
      if (o.kind !== 'attach') return [];
      const moved = o.domain !== (on.get(o.dev) ?? 0);
      on.set(o.dev, o.domain);
      return [moved];
    });
  };

  test('resolveAttaches: 0 moves the device to another domain, 1 keeps it; nothing else changes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.array(
            fc.oneof(
              fc.record({
                kind: fc.constant('attach' as const),
                cpu: fc.nat(2),
                dev: fc.nat(2),
                domain: fc.nat(1),
              }),
              fc.record({ kind: fc.constant('hang' as const), dev: fc.nat(2) }),
            ),
            { maxLength: 4 },
          ),
          { maxLength: 4 },
        ),
        (rounds) => {
          const resolved = resolveAttaches(rounds);
          expect(resolved.map((r) => r.length)).toEqual(rounds.map((r) => r.length));
          const drawn = rounds.flat().filter((o) => o.kind === 'attach');
          expect(moves(resolved)).toEqual(drawn.map((o) => o.domain === 0));
          for (const o of resolved.flat())
            if (o.kind === 'attach') expect(o.domain).toBeLessThan(PAGING_DOMAINS);
          rounds.flat().forEach((o, i) => {
            if (o.kind !== 'attach') expect(resolved.flat()[i]).toEqual(o);
          });
        },
      ),
    );
  });

  test('the search draws moves about three attaches in four, and stays too', () => {
    const all = sample(scenarioArb, 3).flatMap((s) => moves(s.rounds));
    const moved = all.filter(Boolean).length / all.length;
    expect(moved).toBeGreaterThan(0.65);
    expect(moved).toBeLessThan(0.85);
  });
});
