/** Same scenario and choices ⇒ the same run, bit for bit; same seed ⇒ the same search. */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
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

  test.prop([scenarioArb], { numRuns: 40 })('the normalized choice stream replays the same run', (s) => {
    const v = Variant.parse('v4');
    const a = runScenario(s, v);
    const b = runScenario({ ...s, choices: a.normalizedChoices }, v);
    expect(b.steps).toBe(a.steps);
    expect(b.violations).toEqual(a.violations);
  });
});
