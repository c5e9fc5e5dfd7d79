import { describe, expect, test } from 'vitest';
import { FLAGS, Variant } from '../../impl/variants.ts';
import { runScenario } from '../runner.ts';
import { LIMITS, MASKED, NOT_ON_FIXED, ON_FIXED, WITNESSES, witnessOf } from './witnesses.ts';

describe.each(WITNESSES)('witness for $flag', (w) => {
  test(`fails ${w.property} under v4+${w.flag}`, () => {
    const r = runScenario(w.scenario, Variant.parse(`v4+${w.flag}`));
    expect(r.violations.map((v) => v.property)).toContain(w.property);
  });
  test('passes under v4', () => {
    expect(runScenario(w.scenario, Variant.parse('v4')).violations).toEqual([]);
  });
});

test('every flag has a witness or is explained as masked, never both', () => {
  const witnessed = new Set(WITNESSES.map((w) => w.flag));
  for (const m of MASKED) expect(witnessed.has(m.flag), m.flag).toBe(false);
  const covered = new Set([...witnessed, ...MASKED.map((m) => m.flag)]);
  expect(FLAGS.map((f) => f.id).filter((id) => !covered.has(id))).toEqual([]);
});

// A masked row's witness needs the masking code out (unmaskedBy); with it in, the witness passes.
describe.each(MASKED)('masked $flag, with its mask taken out', (m) => {
  const unmasked = ['v4', ...m.unmaskedBy].join('+');
  test(`fails its property under ${unmasked}+${m.flag}`, () => {
    const r = runScenario(m.witness.scenario, Variant.parse(`${unmasked}+${m.flag}`));
    expect(r.violations.map((v) => v.property)).toContain(m.witness.property);
  });
  test(`passes under ${unmasked}`, () => {
    expect(runScenario(m.witness.scenario, Variant.parse(unmasked)).violations).toEqual([]);
  });
  test('passes under v4 with the flag alone: the mask at work', () => {
    expect(runScenario(m.witness.scenario, Variant.parse(`v4+${m.flag}`)).violations).toEqual([]);
    expect(runScenario(m.witness.scenario, Variant.parse('v4')).violations).toEqual([]);
  });
  test('and the same holds on v4-fixed', () => {
    const fixed = unmasked.replace(/^v4/, 'v4-fixed');
    const r = runScenario(m.witness.scenario, Variant.parse(`${fixed}+${m.flag}`));
    expect(r.violations.map((v) => v.property)).toContain(m.witness.property);
    expect(runScenario(m.witness.scenario, Variant.parse(fixed)).violations).toEqual([]);
  });
  test('the unmasking flags are catalog flags with witnesses of their own', () => {
    for (const u of m.unmaskedBy) expect(WITNESSES.map((w) => w.flag)).toContain(u);
  });
});

test('every witness names a known flag, at most one witness per flag', () => {
  const ids = WITNESSES.map((w) => w.flag);
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) expect(FLAGS.map((f) => f.id)).toContain(id);
});

describe.each(LIMITS.filter((l) => l.scenario !== null))('known limit $id', (l) => {
  test(`fails ${l.property} under v4 itself`, () => {
    const r = runScenario(l.scenario!, Variant.parse('v4'));
    expect(r.violations.map((v) => v.property)).toContain(l.property);
  });
  test('and its control, without the condition the limit needs, passes under v4', () => {
    expect(runScenario(l.control!, Variant.parse('v4')).violations).toEqual([]);
  });
});

// On v4 with its own findings fixed, every flag's bug still shows (its witness, or the one
// ON_FIXED gives), except the one NOT_ON_FIXED explains: a flag is not only a way into one of v4's bugs.
describe.each(
  WITNESSES.filter((w) => !NOT_ON_FIXED.some((n) => n.flag === w.flag)).map(
    (w) => ON_FIXED.find((f) => f.flag === w.flag) ?? w,
  ),
)('on v4-fixed, the witness for $flag', (w) => {
  test(`fails ${w.property} under v4-fixed+${w.flag}`, () => {
    const r = runScenario(w.scenario, Variant.parse(`v4-fixed+${w.flag}`));
    expect(r.violations.map((v) => v.property)).toContain(w.property);
  });
  test('passes under v4-fixed', () => {
    expect(runScenario(w.scenario, Variant.parse('v4-fixed')).violations).toEqual([]);
  });
});

test('ON_FIXED replaces only witnesses that v4-fixed hides; NOT_ON_FIXED only flags with a witness', () => {
  for (const f of ON_FIXED) {
    const w = WITNESSES.find((x) => x.flag === f.flag)!;
    expect(runScenario(w.scenario, Variant.parse(`v4-fixed+${f.flag}`)).violations, f.flag).toEqual([]);
  }
  for (const n of NOT_ON_FIXED) {
    const w = WITNESSES.find((x) => x.flag === n.flag)!;
    expect(runScenario(w.scenario, Variant.parse(`v4-fixed+${n.flag}`)).violations, n.flag).toEqual([]);
    expect(ON_FIXED.some((f) => f.flag === n.flag)).toBe(false);
  }
});

test("witnessOf: on v4-fixed a flag's ON_FIXED witness where it has one, its own otherwise", () => {
  for (const w of WITNESSES) {
    const onFixed = ON_FIXED.find((f) => f.flag === w.flag)?.scenario ?? w.scenario;
    expect(witnessOf(w.flag, 'v4-fixed'), w.flag).toBe(onFixed);
    expect(witnessOf(w.flag), w.flag).toBe(w.scenario);
  }
  expect(ON_FIXED.some((f) => witnessOf(f.flag, 'v4-fixed') !== witnessOf(f.flag))).toBe(true);
});
