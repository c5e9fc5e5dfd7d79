/**
 * A per-CPU system workqueue: schedule_work, cancel_work_sync, disable_work_sync.
 * Each CPU has one kworker (a daemon task) that runs queued items in order.
 */
import { type Machine, type Proc, Wait } from './machine.ts';
import { sleepUntil } from './sync.ts';

export class Work {
  pending = false;
  running = false;
  /** The CPU whose kworker runs it now: a running work is re-queued there, never run twice at once. */
  cpu = -1;
  disabled = 0;
  constructor(
    readonly name: string,
    readonly fn: (w: Work) => Proc,
  ) {}
}

/**
 * A CPU's kworker: runs the items queued on `q` in order. Declared once, not as a generator
 * function expression per Workqueue: V8 gives each evaluation of such an expression its own
 * prototype and generator map, which makes it slow to create and keeps what it references alive
 * through young-generation GCs until a full GC (every System paid that).
 */
function* kworker(q: Work[], cpu: number): Proc {
  const w = new Wait(() => q.length > 0, -1, false, 'work');
  for (;;) {
    while (q.length === 0) yield w;
    const work = q.shift()!;
    work.pending = false;
    work.running = true;
    work.cpu = cpu;
    yield `run ${work.name}`;
    yield* work.fn(work);
    work.running = false;
    work.cpu = -1;
  }
}

export class Workqueue {
  private readonly queues: Work[][];

  constructor(private readonly m: Machine) {
    this.queues = m.cpus.map(() => []);
    for (const cpu of m.cpus) {
      const q = this.queues[cpu.id]!;
      m.spawn(`kworker/${cpu.id}`, cpu.id, kworker(q, cpu.id), { daemon: true });
    }
  }

  /** schedule_work(): queue on the current CPU unless already pending or disabled. */
  schedule(work: Work): boolean {
    if (work.disabled > 0 || work.pending) return false;
    work.pending = true;
    const local = this.m.hasCurrent() ? Math.max(0, this.m.self().cpu) : 0;
    const cpu = work.running ? work.cpu : local;
    this.queues[cpu]!.push(work);
    return true;
  }

  private dequeue(work: Work): void {
    for (const q of this.queues) {
      const i = q.indexOf(work);
      if (i >= 0) q.splice(i, 1);
    }
    work.pending = false;
  }

  /** cancel_work_sync(): drop a pending run and wait for a running one. Later schedules still work. */
  *cancelSync(work: Work): Proc<boolean> {
    const was = work.pending;
    this.dequeue(work);
    yield `cancel_work_sync(${work.name})`;
    yield* sleepUntil(this.m, () => !work.running, -1, `${work.name} to finish`);
    return was;
  }

  /** disable_work_sync(): like cancel, and every later schedule_work() is refused. */
  *disableSync(work: Work): Proc<boolean> {
    work.disabled++;
    const was = work.pending;
    this.dequeue(work);
    yield `disable_work_sync(${work.name})`;
    yield* sleepUntil(this.m, () => !work.running, -1, `${work.name} to finish`);
    return was;
  }

  idle(): boolean {
    return this.queues.every((q) => q.length === 0);
  }
}
