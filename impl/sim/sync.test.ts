import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ArrayChoices, Machine, type Proc } from './machine.ts';
import { Mutex, msleep, Rcu, SpinLock, sleepUntil, spinUntil } from './sync.ts';

const choicesArb = fc.array(fc.nat(20), { maxLength: 80 });

type Guard = 'mutex' | 'spinlock' | 'none';
const PER_THREAD = 3;

/** Three threads on two CPUs each do PER_THREAD read-yield-write increments under `guard`. */
function counterRun(guard: Guard, choices: number[]): { m: Machine; count: number; result: string } {
  const m = new Machine(2, new ArrayChoices(choices));
  const mu = new Mutex(m, 'mu');
  const sl = new SpinLock(m, 'sl');
  let count = 0;
  function* inc(): Proc {
    for (let i = 0; i < PER_THREAD; i++) {
      if (guard === 'mutex') yield* mu.lock();
      if (guard === 'spinlock') yield* sl.lock(false);
      const v = count;
      yield 'read';
      count = v + 1;
      if (guard === 'mutex') mu.unlock();
      if (guard === 'spinlock') yield* sl.unlock(false);
      yield 'out';
    }
  }
  m.spawn('a', 0, inc());
  m.spawn('b', 1, inc());
  m.spawn('c', 1, inc());
  const result = m.runRound();
  return { m, count, result };
}

describe('Mutex and SpinLock', () => {
  for (const guard of ['mutex', 'spinlock'] as const) {
    test.prop([choicesArb], { numRuns: 100 })(`${guard} gives mutual exclusion`, (choices) => {
      const { m, count, result } = counterRun(guard, choices);
      expect(result).toBe('quiescent');
      expect(m.violations).toEqual([]);
      expect(count).toBe(3 * PER_THREAD);
    });
  }

  test('without a lock some schedule loses an update', () => {
    // Deterministic search: the counter test above would catch a lock that does not exclude.
    const rng = fc.sample(choicesArb, { numRuns: 200, seed: 42 });
    const lost = rng.filter((c) => counterRun('none', c).count < 3 * PER_THREAD);
    expect(lost.length).toBeGreaterThan(0);
  });

  function irqVersusTask(irqsave: boolean): { m: Machine; handled: () => boolean } {
    const m = new Machine(1, new ArrayChoices([]));
    const sl = new SpinLock(m, 'sl');
    let handled = false;
    const irq = m.addIrq('irq0', 0, function* (): Proc {
      yield* sl.lock(false);
      handled = true;
      yield* sl.unlock(false);
    });
    m.spawn(
      'task',
      0,
      (function* (): Proc {
        yield* sl.lock(irqsave);
        m.raise(irq);
        yield 'critical section';
        yield* sl.unlock(irqsave);
      })(),
    );
    return { m, handled: () => handled };
  }

  test('an IRQ spinning on a lock its interrupted task holds is a deadlock', () => {
    const { m, handled } = irqVersusTask(false);
    expect(m.runRound()).toBe('violation');
    expect(m.violations.map((v) => v.property)).toEqual(['no-deadlock']);
    expect(m.violations[0]!.message).toContain('which it interrupted');
    expect(handled()).toBe(false);
  });

  test('with spin_lock_irqsave the same scenario completes', () => {
    const { m, handled } = irqVersusTask(true);
    expect(m.runRound()).toBe('quiescent');
    expect(m.violations).toEqual([]);
    expect(handled()).toBe(true);
  });

  test('sleeping on a mutex while holding a spinlock is scheduling while atomic', () => {
    const m = new Machine(2, new ArrayChoices([]));
    const mu = new Mutex(m, 'mu');
    const sl = new SpinLock(m, 'sl');
    m.spawn(
      'holder',
      1,
      (function* (): Proc {
        yield* mu.lock();
        yield* msleep(m, 1);
        mu.unlock();
      })(),
    );
    m.spawn(
      'atomic',
      0,
      (function* (): Proc {
        yield* sleepUntil(m, () => mu.held(), -1, 'holder has mu');
        yield* sl.lock(false);
        yield* mu.lock();
        mu.unlock();
        yield* sl.unlock(false);
      })(),
    );
    expect(m.runRound()).toBe('violation');
    expect(m.violations[0]!.message).toContain('scheduling while atomic');
  });
});

describe('RCU', () => {
  test.prop([choicesArb], { numRuns: 100 })('synchronize_rcu waits for old readers only', (choices) => {
    const m = new Machine(3, new ArrayChoices(choices));
    const rcu = new Rcu(m);
    const order: string[] = [];
    let syncStarted = false;
    let syncDone = false;
    m.spawn(
      'old-reader',
      0,
      (function* (): Proc {
        rcu.readLock();
        yield 'reading';
        yield* spinUntil(m, () => syncStarted, -1, 'writer started');
        yield 'still reading';
        order.push('old reader leaves');
        rcu.readUnlock();
      })(),
    );
    m.spawn(
      'writer',
      1,
      (function* (): Proc {
        yield* spinUntil(m, () => m.threads[0]!.rcuDepth > 0, -1, 'old reader inside');
        syncStarted = true;
        yield* rcu.synchronize();
        syncDone = true;
        order.push('sync done');
      })(),
    );
    // Enters after the grace period began and stays until it ends: waiting for it would deadlock.
    m.spawn(
      'new-reader',
      2,
      (function* (): Proc {
        yield* spinUntil(m, () => syncStarted, -1, 'writer started');
        rcu.readLock();
        yield* spinUntil(m, () => syncDone, -1, 'sync done');
        order.push('new reader leaves');
        rcu.readUnlock();
      })(),
    );
    expect(m.runRound()).toBe('quiescent');
    expect(order).toEqual(['old reader leaves', 'sync done', 'new reader leaves']);
  });

  test.prop([choicesArb], { numRuns: 100 })(
    'callRcu runs its callback after the old reader leaves',
    (choices) => {
      const m = new Machine(2, new ArrayChoices(choices));
      const rcu = new Rcu(m);
      const order: string[] = [];
      let queued = false;
      m.spawn(
        'reader',
        0,
        (function* (): Proc {
          rcu.readLock();
          yield* spinUntil(m, () => queued, -1, 'callback queued');
          yield 'still reading';
          order.push('reader leaves');
          rcu.readUnlock();
        })(),
      );
      m.spawn(
        'freer',
        1,
        (function* (): Proc {
          yield* spinUntil(m, () => m.threads[0]!.rcuDepth > 0, -1, 'reader inside');
          rcu.callRcu(() => order.push('callback'));
          queued = true;
          yield 'queued';
        })(),
      );
      expect(m.runRound()).toBe('quiescent');
      expect(order).toEqual(['reader leaves', 'callback']);
    },
  );
});
