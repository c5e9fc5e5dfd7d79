import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ArrayChoices, Machine, type Proc } from './machine.ts';
import { msleep, sleepUntil } from './sync.ts';
import { Work, Workqueue } from './workqueue.ts';

const choicesArb = fc.array(fc.nat(20), { maxLength: 60 });

/** A work item that records which thread ran it and sleeps a little while running. */
function countingWork(m: Machine, runs: string[], sleepMs = 0): Work {
  return new Work('w', function* (): Proc {
    runs.push(m.self().name);
    yield 'work body';
    if (sleepMs > 0) yield* msleep(m, sleepMs);
  });
}

describe('Workqueue', () => {
  test('schedule runs the work once on the scheduling CPU kworker; a pending work is not queued twice', () => {
    const m = new Machine(2, new ArrayChoices([]));
    const wq = new Workqueue(m);
    const runs: string[] = [];
    const w = countingWork(m, runs);
    const results: boolean[] = [];
    m.spawn(
      't',
      1,
      (function* (): Proc {
        results.push(wq.schedule(w), wq.schedule(w));
        yield 'scheduled';
      })(),
    );
    expect(m.runRound()).toBe('quiescent');
    expect(results).toEqual([true, false]);
    expect(runs).toEqual(['kworker/1']);
    expect(w.pending || w.running).toBe(false);
  });

  test.prop([choicesArb], { numRuns: 100 })('after disableSync the work never runs again', (choices) => {
    const m = new Machine(2, new ArrayChoices(choices));
    const wq = new Workqueue(m);
    const runs: string[] = [];
    const w = countingWork(m, runs, 1);
    let runsAtDisable = -1;
    let late: boolean | null = null;
    m.spawn(
      't',
      0,
      (function* (): Proc {
        wq.schedule(w);
        yield 'scheduled';
        yield* wq.disableSync(w);
        runsAtDisable = runs.length;
        late = wq.schedule(w);
        yield* msleep(m, 10);
      })(),
    );
    expect(m.runRound()).toBe('quiescent');
    expect(late).toBe(false);
    expect(runs.length).toBe(runsAtDisable);
    expect(w.running).toBe(false);
  });

  test.prop([choicesArb], { numRuns: 100 })(
    'after cancelSync a later schedule runs the work again',
    (choices) => {
      const m = new Machine(2, new ArrayChoices(choices));
      const wq = new Workqueue(m);
      const runs: string[] = [];
      const w = countingWork(m, runs, 1);
      let runsAtCancel = -1;
      let late: boolean | null = null;
      m.spawn(
        't',
        0,
        (function* (): Proc {
          wq.schedule(w);
          yield 'scheduled';
          yield* wq.cancelSync(w);
          runsAtCancel = runs.length;
          late = wq.schedule(w);
          yield 'rescheduled';
        })(),
      );
      expect(m.runRound()).toBe('quiescent');
      // The difference from disableSync that makes broken-work-uaf possible.
      expect(late).toBe(true);
      expect(runs.length).toBe(runsAtCancel + 1);
    },
  );

  test.prop([choicesArb], { numRuns: 100 })('cancelSync waits for a running work to finish', (choices) => {
    const m = new Machine(2, new ArrayChoices(choices));
    const wq = new Workqueue(m);
    const order: string[] = [];
    const w = new Work('w', function* (): Proc {
      order.push('work starts');
      yield* msleep(m, 5);
      order.push('work ends');
    });
    m.spawn(
      't',
      1,
      (function* (): Proc {
        wq.schedule(w);
        yield* sleepUntil(m, () => w.running, -1, 'work running');
        const wasPending = yield* wq.cancelSync(w);
        order.push(`cancel returns ${wasPending}`);
      })(),
    );
    expect(m.runRound()).toBe('quiescent');
    expect(order).toEqual(['work starts', 'work ends', 'cancel returns false']);
  });

  // A running work is re-queued on the kworker running it (as queue_work() does), so it never
  // runs twice at once and cancel/disable wait for the only run there is.
  test('a work item never runs on two kworkers at once, so cancelSync waits for every run', () => {
    const m = new Machine(2, new ArrayChoices([]));
    const wq = new Workqueue(m);
    const order: string[] = [];
    let active = 0;
    let maxActive = 0;
    const w = new Work('w', function* (): Proc {
      const cpu = m.self().cpu;
      active++;
      maxActive = Math.max(maxActive, active);
      yield* msleep(m, cpu === 0 ? 5 : 10);
      active--;
      order.push(`run on cpu${cpu} ends`);
    });
    m.spawn(
      't0',
      0,
      (function* (): Proc {
        wq.schedule(w);
        yield 'scheduled';
      })(),
    );
    m.spawn(
      't1',
      1,
      (function* (): Proc {
        yield* sleepUntil(m, () => w.running, -1, 'work running on cpu0');
        wq.schedule(w);
        yield* sleepUntil(m, () => order.length > 0, -1, 'first run ended');
        yield* wq.cancelSync(w);
        order.push('cancel returns');
      })(),
    );
    expect(m.runRound()).toBe('quiescent');
    expect(maxActive).toBe(1);
    expect(order.at(-1)).toBe('cancel returns');
  });
});
