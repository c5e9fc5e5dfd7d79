/** Same scenario and choices ⇒ the same run, bit for bit; same seed ⇒ the same search. */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ArrayChoices } from '../impl/sim/machine.ts';
import { Variant } from '../impl/variants.ts';
import { fuzz } from './fuzz.ts';
import { runScenario } from './runner.ts';
import { scenarioArb } from './scenario.ts';

const variants = fc.constantFrom('mainline', 'v4', 'v4+late-isr-misclassified', 'v4+done-ignores-result');

describe('determinism', () => {
  test.prop([scenarioArb, variants], { numRuns: 60 })(
    'a scenario runs identically twice, trace and log included',
    (s, name) => {
      const v = Variant.parse(name);
      const a = runScenario(s, v, { trace: true });
      const b = runScenario(s, v, { trace: true });
      expect(b.steps).toBe(a.steps);
      expect(b.violations).toEqual(a.violations);
      expect(b.log).toEqual(a.log);
      expect(b.trace).toEqual(a.trace);
    },
  );

  test.prop([scenarioArb], { numRuns: 40 })('tracing does not change the run', (s) => {
    const v = Variant.parse('v4');
    const a = runScenario(s, v);
    const b = runScenario(s, v, { trace: true });
    expect(b.steps).toBe(a.steps);
    expect(b.violations).toEqual(a.violations);
  });

  test('the same seed and budget give the same fuzz result', () => {
    const v = Variant.parse('v4+late-isr-misclassified');
    const { elapsedMs: _a, shrinkMs: _b, ...one } = fuzz({ variant: v, seed: 7, runs: 500 });
    const { elapsedMs: _c, shrinkMs: _d, ...two } = fuzz({ variant: v, seed: 7, runs: 500 });
    expect(two).toEqual(one);
    expect(one.violation).not.toBeNull();
  });

  test.prop([scenarioArb, variants], { numRuns: 60 })(
    'the normalized choice stream (tail of default picks dropped) replays the same run, trace and log included',
    (s, name) => {
      const v = Variant.parse(name);
      const a = runScenario(s, v, { trace: true });
      const b = runScenario({ ...s, choices: a.normalizedChoices }, v, { trace: true });
      expect(a.normalizedChoices.length).toBeLessThanOrEqual(a.choicesUsed);
      expect(b.steps).toBe(a.steps);
      expect(b.violations).toEqual(a.violations);
      expect(b.log).toEqual(a.log);
      expect(b.trace).toEqual(a.trace);
      expect(b.events).toEqual(a.events);
      // Already minimal: nothing more to take away.
      expect(b.normalizedChoices).toEqual(a.normalizedChoices);
    },
  );

  test('a choice equal to the default pick is dropped from the tail, and only from the tail', () => {
    const c = new ArrayChoices([5, 2, 1, 3]);
    expect(c.next(3, 1)).toBe(2);
    expect(c.next(2, 0)).toBe(0);
    expect(c.next(4, 3)).toBe(1);
    expect(c.next(3, 0)).toBe(0);
    expect(c.normalized).toEqual([2, 0, 1, 0]);
    expect(c.significant).toBe(3);
    // Without the default's pick, a choice is taken to matter.
    const d = new ArrayChoices([0]);
    d.next(2);
    expect(d.significant).toBe(1);
  });

  test('random streams often end in default picks, which the normalized stream drops', () => {
    const v = Variant.parse('v4');
    const runs = fc
      .sample(scenarioArb, { seed: 42, numRuns: 100 })
      .map((s) => runScenario(s, v))
      .filter((r) => r.choicesUsed > 0);
    const trimmed = runs.filter((r) => r.normalizedChoices.length < r.choicesUsed);
    expect(trimmed.length).toBeGreaterThan(runs.length / 10);
  });
});
