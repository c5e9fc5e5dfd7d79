import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ArrayChoices, Machine, type Proc, Wait } from './machine.ts';
import { localIrqRestore, localIrqSave, Mutex, msleep } from './sync.ts';

const choicesArb = fc.array(fc.nat(20), { maxLength: 60 });

/** A small but busy scenario: two CPUs, a mutex, an interrupt, a sleep and a hardware agent. */
function busyMachine(choices: number[]): Machine {
  const m = new Machine(2, new ArrayChoices(choices));
  m.tracing = true;
  const mu = new Mutex(m, 'mu');
  let shared = 0;
  const irq = m.addIrq('irq0', 0, function* (): Proc {
    shared += 100;
    yield 'handler';
  });
  function* worker(n: number): Proc {
    for (let i = 0; i < n; i++) {
      yield* mu.lock();
      const v = shared;
      yield 'read';
      shared = v + 1;
      mu.unlock();
      if (i === 1) m.raise(irq);
      yield 'unlocked';
    }
  }
  m.spawn('a', 0, worker(3));
  m.spawn('b', 1, worker(2));
  m.spawn('c', 1, msleep(m, 5));
  m.agent(
    'dma',
    (function* (): Proc {
      yield 'dma write';
      yield 'dma done';
    })(),
    { daemon: false },
  );
  return m;
}

describe('Machine', () => {
  test.prop([choicesArb], { numRuns: 100 })('same threads and choices give the same run', (choices) => {
    const m1 = busyMachine(choices);
    const m2 = busyMachine(choices);
    expect(m1.runRound()).toBe(m2.runRound());
    expect(m1.stepCount).toBe(m2.stepCount);
    expect(m1.trace).toEqual(m2.trace);
    expect(m1.trace.length).toBeGreaterThan(10);
  });

  test.prop([choicesArb], { numRuns: 100 })(
    'fair default finishes every thread once choices run out',
    (choices) => {
      const m = busyMachine(choices);
      expect(m.runRound()).toBe('quiescent');
      expect(m.violations).toEqual([]);
      expect(m.threads.every((t) => t.done)).toBe(true);
    },
  );

  test('a wait that can never end is a deadlock, not a hang', () => {
    const m = new Machine(1, new ArrayChoices([]));
    m.spawn(
      'stuck',
      0,
      (function* (): Proc {
        yield new Wait(() => false, -1, false, 'the moon');
      })(),
    );
    expect(m.runRound()).toBe('violation');
    expect(m.violations.map((v) => v.property)).toEqual(['no-deadlock']);
    expect(m.violations[0]!.message).toContain('stuck@cpu0 waits on the moon');
  });

  test('a thread that never stops stepping is a livelock', () => {
    const m = new Machine(1, new ArrayChoices([]), { maxStepsPerRound: 500, maxTimePerRound: 1e9 });
    m.spawn(
      'spinner',
      0,
      (function* (): Proc {
        for (;;) yield 'again';
      })(),
    );
    expect(m.runRound()).toBe('violation');
    expect(m.violations.map((v) => v.property)).toEqual(['no-livelock']);
    expect(m.stepCount).toBe(501);
  });

  test('endless sleeping is a livelock by virtual time', () => {
    const m = new Machine(1, new ArrayChoices([]), { maxStepsPerRound: 1e9, maxTimePerRound: 1_000_000 });
    m.spawn(
      'napper',
      0,
      (function* (): Proc {
        for (;;) yield* msleep(m, 10);
      })(),
    );
    expect(m.runRound()).toBe('violation');
    expect(m.violations.map((v) => v.property)).toEqual(['no-livelock']);
    expect(m.now).toBeGreaterThan(1_000_000);
    expect(m.now).toBeLessThanOrEqual(1_010_000);
  });

  test.prop([choicesArb], { numRuns: 100 })('an IRQ waits while its CPU has IRQs off', (choices) => {
    const m = new Machine(2, new ArrayChoices(choices));
    const order: string[] = [];
    const irq = m.addIrq('irq0', 0, function* (): Proc {
      order.push(`irq on cpu${m.self().cpu}`);
      yield 'handler';
    });
    m.spawn(
      't0',
      0,
      (function* (): Proc {
        localIrqSave(m);
        m.raise(irq);
        for (let i = 0; i < 5; i++) yield 'irqs off';
        order.push(irq.pending ? 'still pending' : 'delivered early');
        localIrqRestore(m);
        yield 'irqs on';
        order.push('t0 end');
      })(),
    );
    // Another CPU with IRQs on must not take cpu0's interrupt.
    m.spawn(
      't1',
      1,
      (function* (): Proc {
        for (let i = 0; i < 5; i++) yield 't1';
      })(),
    );
    expect(m.runRound()).toBe('quiescent');
    expect(order[0]).toBe('still pending');
    expect(order).toContain('irq on cpu0');
    expect(order).toHaveLength(3);
  });

  test.prop([choicesArb], { numRuns: 100 })('time advances only when nothing can run', (choices) => {
    const m = new Machine(2, new ArrayChoices(choices));
    let woke = -1;
    const busyTimes: number[] = [];
    m.spawn(
      'sleeper',
      0,
      (function* (): Proc {
        yield* msleep(m, 100);
        woke = m.now;
      })(),
    );
    for (const cpu of [0, 1]) {
      m.spawn(
        `busy${cpu}`,
        cpu,
        (function* (): Proc {
          for (let i = 0; i < 30; i++) {
            yield 'work';
            busyTimes.push(m.now);
          }
        })(),
      );
    }
    expect(m.runRound()).toBe('quiescent');
    expect(woke).toBe(100_000);
    expect(m.now).toBe(100_000);
    expect(busyTimes).toHaveLength(60);
    expect(busyTimes.every((t) => t === 0)).toBe(true);
  });
});
