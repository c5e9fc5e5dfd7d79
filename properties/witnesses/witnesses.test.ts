import { describe, expect, test } from 'vitest';
import { Variant } from '../../impl/variants.ts';
import { runScenario } from '../runner.ts';
import { WITNESSES } from './witnesses.ts';

describe.each(WITNESSES)('witness for $flag', (w) => {
  test(`fails ${w.property} under v4+${w.flag}`, () => {
    const r = runScenario(w.scenario, Variant.parse(`v4+${w.flag}`));
    expect(r.violations.map((v) => v.property)).toContain(w.property);
  });
  test('passes under v4', () => {
    expect(runScenario(w.scenario, Variant.parse('v4')).violations).toEqual([]);
  });
});
