import { describe, expect, test } from 'vitest';
import { kfree, Tracked, use } from './lifetime.ts';
import { ArrayChoices, Machine, type Proc } from './machine.ts';

describe('Tracked lifetimes', () => {
  test('use of a live object is fine', () => {
    const m = new Machine(1, new ArrayChoices([]));
    const obj = new Tracked('group');
    expect(use(m, obj, 'reader')).toBe(true);
    expect(m.violations).toEqual([]);
  });

  test('use after kfree records no-use-after-free and stops the round', () => {
    const m = new Machine(1, new ArrayChoices([]));
    const obj = new Tracked('group');
    const seen: boolean[] = [];
    m.spawn(
      't',
      0,
      (function* (): Proc {
        seen.push(use(m, obj, 'before free'));
        kfree(obj);
        yield 'freed';
        seen.push(use(m, obj, 'after free'));
        yield 'touched';
        seen.push(use(m, obj, 'never reached'));
      })(),
    );
    expect(m.runRound()).toBe('violation');
    expect(seen).toEqual([true, false]);
    expect(m.violations).toHaveLength(1);
    expect(m.violations[0]).toMatchObject({ property: 'no-use-after-free', severity: 'fatal' });
    expect(m.violations[0]!.message).toContain('after free touches freed group');
  });
});
