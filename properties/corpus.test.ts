/** The regression corpus: every recorded counterexample still reproduces on its variant. */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { Variant } from '../impl/variants.ts';
import { parseCounterexample } from './counterexample-file.ts';
import { runScenario } from './runner.ts';

const dir = new URL('./corpus/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('corpus', () => {
  test('is not empty', () => expect(files.length).toBeGreaterThan(0));
  test.each(files)('%s reproduces its recorded property', (name) => {
    const f = parseCounterexample(readFileSync(new URL(name, dir), 'utf8'), name);
    const r = runScenario(f.scenario, Variant.parse(f.variant));
    expect(r.violations.map((v) => v.property)).toContain(f.property);
  });
});
