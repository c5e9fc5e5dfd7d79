/**
 * Kernel locking with kernel semantics on the simulated machine: mutex (sleeps), spinlock and
 * raw_spinlock (disable preemption; the irqsave forms disable IRQs on the CPU), local_irq_save,
 * RCU read sections, synchronize_rcu and kfree_rcu-style deferred frees.
 */
import { type Machine, type Proc, type Thread, Wait } from './machine.ts';

const never = -1;

export function* preemptionPoint(label: string): Proc {
  yield label;
}

export class Mutex {
  owner: Thread | null = null;
  /** What a step of lock() yields and what a waiter waits on, made once (labels are per lock). */
  private readonly lockLabel: string;
  private waitFree: Wait | null = null;
  constructor(
    private readonly m: Machine,
    readonly name: string,
  ) {
    this.lockLabel = `mutex_lock(${name})`;
  }

  /** mutex_lock(): taking the mutex is a step of its own (`step` false: part of the next one). */
  *lock(step = true): Proc {
    const self = this.m.self();
    // might_sleep(): mutex_lock() in atomic context is a bug even when the mutex is free.
    if (self.irqOff > 0 || self.preemptOff > 0 || self.rcuDepth > 0) {
      this.m.violate('no-unexpected-warn', `BUG: scheduling while atomic: ${self.name} takes ${this.name}`);
    }
    if (this.owner === self) {
      this.m.violate('no-deadlock', `deadlock: ${self.name} takes ${this.name} recursively`);
      yield new Wait(() => false, never, false, `${this.name} (recursive)`);
    }
    if (this.owner !== null) {
      const w = (this.waitFree ??= new Wait(() => this.owner === null, never, false, `mutex ${this.name}`));
      while (this.owner !== null) yield w;
    }
    this.owner = self;
    if (step) yield this.lockLabel;
  }

  unlock(): void {
    this.owner = null;
  }

  held(): boolean {
    return this.owner !== null;
  }

  heldBySelf(): boolean {
    return this.owner !== null && this.m.hasCurrent() && this.owner === this.m.self();
  }
}

export class SpinLock {
  owner: Thread | null = null;
  /** The labels its steps yield, made once. */
  private readonly lockLabel: string;
  private readonly lockIrqsaveLabel: string;
  private readonly unlockLabel: string;
  constructor(
    private readonly m: Machine,
    readonly name: string,
  ) {
    this.lockLabel = `spin_lock(${name})`;
    this.lockIrqsaveLabel = `spin_lock_irqsave(${name})`;
    this.unlockLabel = `spin_unlock(${name})`;
  }

  /** spin_lock / spin_lock_irqsave / raw_spin_lock_irqsave. */
  *lock(irqsave: boolean): Proc {
    const self = this.m.self();
    if (irqsave) self.irqOff++;
    self.preemptOff++;
    yield irqsave ? this.lockIrqsaveLabel : this.lockLabel;
    if (this.owner !== null) {
      const owner = this.owner;
      if (owner === self || (owner.cpu === self.cpu && this.m.interruptedOnSameCpu(owner, self.cpu))) {
        this.m.violate(
          'no-deadlock',
          `deadlock: ${self.name} on cpu${self.cpu} spins on ${this.name} held by ${owner === self ? 'itself' : `${owner.name}, which it interrupted`}`,
        );
      }
      const w = new Wait(
        () => this.owner === null,
        never,
        true,
        `spinlock ${this.name} (held by ${owner.name})`,
      );
      while (this.owner !== null) yield w;
    }
    this.owner = self;
  }

  *unlock(irqrestore: boolean): Proc {
    const self = this.m.self();
    this.owner = null;
    self.preemptOff--;
    if (irqrestore) self.irqOff--;
    yield this.unlockLabel;
  }

  held(): boolean {
    return this.owner !== null;
  }
}

/** local_irq_save / local_irq_restore on the current CPU. */
export function localIrqSave(m: Machine): void {
  m.self().irqOff++;
}
export function localIrqRestore(m: Machine): void {
  m.self().irqOff--;
}

/** Spin (busy-poll) until `cond` or the absolute deadline; returns whether cond held. */
export function* spinUntil(m: Machine, cond: () => boolean, deadline: number, what: string): Proc<boolean> {
  // The Wait is made only if the condition does not already hold (the uncontended case is common).
  let w: Wait | null = null;
  while (!cond()) {
    if (deadline >= 0 && m.now >= deadline) return false;
    yield (w ??= new Wait(cond, deadline, true, what));
  }
  return true;
}

/** Sleep until `cond` or the absolute deadline; returns whether cond held. */
export function* sleepUntil(m: Machine, cond: () => boolean, deadline: number, what: string): Proc<boolean> {
  let w: Wait | null = null;
  while (!cond()) {
    if (deadline >= 0 && m.now >= deadline) return false;
    yield (w ??= new Wait(cond, deadline, false, what));
  }
  return true;
}

export function* msleep(m: Machine, ms: number): Proc {
  const until = m.now + ms * 1000;
  yield new Wait(() => m.now >= until, until, false, `msleep(${ms})`);
}

/** RCU: read sections per thread; a grace period ends when every pre-existing reader has left. */
export class Rcu {
  constructor(private readonly m: Machine) {}

  readLock(): void {
    this.m.self().rcuDepth++;
  }

  readUnlock(): void {
    const t = this.m.self();
    t.rcuDepth--;
    if (t.rcuDepth === 0) t.rcuExits++;
  }

  /** The readers a grace period started now must wait for. */
  private snapshot(): Array<{ t: Thread; exits: number }> {
    return this.m.threads.filter((t) => t.rcuDepth > 0 && !t.done).map((t) => ({ t, exits: t.rcuExits }));
  }

  private static over(snap: Array<{ t: Thread; exits: number }>): boolean {
    return snap.every((r) => r.t.rcuExits > r.exits || r.t.done);
  }

  *synchronize(): Proc {
    const snap = this.snapshot();
    yield 'synchronize_rcu()';
    yield* sleepUntil(this.m, () => Rcu.over(snap), never, 'synchronize_rcu grace period');
  }

  /** kfree_rcu / call_rcu: run `fn` once every reader present now has left its section. */
  callRcu(fn: () => void): void {
    const snap = this.snapshot();
    this.pending.push({ snap, fn });
    this.ensureAgent();
  }

  private readonly pending: Array<{ snap: Array<{ t: Thread; exits: number }>; fn: () => void }> = [];
  private agentStarted = false;

  private ensureAgent(): void {
    if (this.agentStarted) return;
    this.agentStarted = true;
    this.m.agent('rcu-gp', this.callbacks());
  }

  /** The grace-period machinery: runs each callback once its readers are gone. */
  private *callbacks(): Proc {
    const pending = this.pending;
    const ready = () => pending.some((p) => Rcu.over(p.snap));
    const w = new Wait(ready, never, true, 'RCU callbacks');
    for (;;) {
      while (!ready()) yield w;
      const [p] = pending.splice(
        pending.findIndex((x) => Rcu.over(x.snap)),
        1,
      );
      p!.fn();
      yield 'RCU callback runs';
    }
  }
}
