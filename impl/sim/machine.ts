/**
 * The deterministic simulated machine: CPUs, threads as generators, interrupts, virtual time,
 * a scheduler driven by a choice stream, the kernel log, WARN and violations.
 *
 * Every `yield` in a kernel function is one atomic step and a preemption point. A thread yields
 * either a label (a plain step) or a {@link Wait} (blocked until a condition or a deadline).
 * Nothing here reads a clock or a random source: the same threads and the same choices give the
 * same run, step for step.
 */

/** A thread blocked until `cond()` holds or virtual time reaches `deadline`. */
export class Wait {
  constructor(
    readonly cond: () => boolean,
    /** Absolute virtual time in µs, or -1 for none. */
    readonly deadline: number,
    /** Spinning keeps the CPU (no other task runs there); sleeping gives it up. */
    readonly spin: boolean,
    readonly what: string,
  ) {}
}

export type Yielded = string | Wait;
export type Proc<T = void> = Generator<Yielded, T, void>;

export type ThreadKind = 'task' | 'irq' | 'agent';

export class Thread {
  done = false;
  wait: Wait | null = null;
  irqOff = 0;
  preemptOff = 0;
  rcuDepth = 0;
  /** Bumped each time the thread leaves an RCU read section; synchronize_rcu waits on it. */
  rcuExits = 0;
  lastRun = -1;
  constructor(
    readonly id: number,
    readonly name: string,
    readonly kind: ThreadKind,
    /** The CPU a task or IRQ handler runs on; -1 for a hardware agent. */
    readonly cpu: number,
    readonly gen: Proc<unknown>,
    /** Daemons (hardware agents, kworkers) never finish and do not hold up quiescence. */
    readonly daemon: boolean,
  ) {}

  enabled(now: number): boolean {
    if (this.done) return false;
    const w = this.wait;
    return w === null || w.cond() || (w.deadline >= 0 && now >= w.deadline);
  }
}

export interface Irq {
  readonly name: string;
  cpu: number;
  pending: boolean;
  readonly handler: () => Proc<unknown>;
}

export class Cpu {
  running: Thread | null = null;
  readonly irqStack: Thread[] = [];
  constructor(readonly id: number) {}
  top(): Thread | null {
    return this.irqStack.length > 0 ? this.irqStack[this.irqStack.length - 1]! : this.running;
  }
  irqsEnabled(): boolean {
    const t = this.top();
    return t === null || (t.kind === 'task' && t.irqOff === 0);
  }
}

export type Severity = 'fatal' | 'error';

export interface Violation {
  property: string;
  message: string;
  step: number;
  time: number;
  severity: Severity;
}

export interface LogLine {
  step: number;
  time: number;
  cpu: number;
  actor: string;
  level: 'err' | 'warn' | 'info' | 'WARN';
  text: string;
}

export interface TraceStep {
  step: number;
  time: number;
  actor: string;
  cpu: number;
  kind: ThreadKind | 'time' | 'irq-entry';
  label: string;
}

/** A source of scheduling decisions: the fuzzer's choices, then a fair default. */
export interface ChoiceSource {
  /** Pick among `n` (> 1) alternatives, or return -1 to let the default policy decide. */
  next(n: number): number;
}

export class ArrayChoices implements ChoiceSource {
  private i = 0;
  /** How many choices were actually consumed (the rest would be default anyway). */
  used = 0;
  /** The consumed choices, each reduced to the smallest value that picks the same action. */
  readonly normalized: number[] = [];
  constructor(private readonly choices: readonly number[]) {}
  next(n: number): number {
    if (this.i >= this.choices.length) return -1;
    this.used = ++this.i;
    const c = this.choices[this.i - 1]! % n;
    this.normalized.push(c);
    return c;
  }
}

export interface MachineLimits {
  /** Steps one round may take before it is declared a livelock. */
  maxStepsPerRound: number;
  /** Virtual µs one round may take before it is declared a livelock. */
  maxTimePerRound: number;
}

const ACT_TIME = -1;
/** IRQ delivery actions are encoded as -2 - irqIndex. */
const actIrq = (i: number) => -2 - i;

export class Machine {
  now = 0;
  stepCount = 0;
  readonly cpus: Cpu[];
  readonly threads: Thread[] = [];
  readonly irqs: Irq[] = [];
  readonly log: LogLine[] = [];
  readonly violations: Violation[] = [];
  readonly trace: TraceStep[] = [];
  tracing = false;
  /** Called after every step; observers check invariants here. */
  afterStep: (() => void) | null = null;
  private current: Thread | null = null;
  private nextId = 0;
  private readonly actions: number[] = [];
  private roundStartStep = 0;
  private roundStartTime = 0;

  constructor(
    ncpus: number,
    private choices: ChoiceSource,
    // Three failed resets in one round take 3 × 60 s of polling; a livelock spins far longer.
    readonly limits: MachineLimits = { maxStepsPerRound: 20_000, maxTimePerRound: 400_000_000 },
  ) {
    this.cpus = Array.from({ length: ncpus }, (_, i) => new Cpu(i));
  }

  setChoices(c: ChoiceSource): void {
    this.choices = c;
  }

  /** The thread whose step is running now (kernel `current`, or the IRQ handler). */
  self(): Thread {
    if (this.current === null) throw new Error('no current thread: called outside a step');
    return this.current;
  }

  hasCurrent(): boolean {
    return this.current !== null;
  }

  spawn(name: string, cpu: number, body: Proc<unknown>, opts: { daemon?: boolean } = {}): Thread {
    const t = new Thread(this.nextId++, name, 'task', cpu, body, opts.daemon ?? false);
    this.threads.push(t);
    return t;
  }

  /** A hardware actor with no CPU: a daemon (the SMMU consumer) or one bounded action (a DMA). */
  agent(name: string, body: Proc<unknown>, opts: { daemon?: boolean } = {}): Thread {
    const t = new Thread(this.nextId++, name, 'agent', -1, body, opts.daemon ?? true);
    this.threads.push(t);
    return t;
  }

  addIrq(name: string, cpu: number, handler: () => Proc<unknown>): Irq {
    const irq: Irq = { name, cpu, pending: false, handler };
    this.irqs.push(irq);
    return irq;
  }

  raise(irq: Irq): void {
    irq.pending = true;
  }

  /** Choice for hardware nondeterminism, drawn from the same stream; 0 when it runs out. */
  choose(n: number): number {
    if (n <= 1) return 0;
    const c = this.choices.next(n);
    return Math.max(0, c);
  }

  printk(level: LogLine['level'], text: string): void {
    const t = this.current;
    this.log.push({
      step: this.stepCount,
      time: this.now,
      cpu: t ? t.cpu : -1,
      actor: t ? t.name : 'machine',
      level,
      text,
    });
  }

  /** WARN_ON(cond): returns cond, records a warning with a backtrace-like label. */
  warnOn(cond: boolean, what: string): boolean {
    if (cond) {
      this.printk('WARN', `WARNING: ${what}`);
      this.onWarn?.(what);
    }
    return cond;
  }
  onWarn: ((what: string) => void) | null = null;

  violate(property: string, message: string, severity: Severity = 'fatal'): void {
    // One report per property per run is enough; the first is the one that explains the rest.
    if (this.violations.some((v) => v.property === property)) return;
    this.violations.push({ property, message, step: this.stepCount, time: this.now, severity });
  }

  fatal(): boolean {
    return this.violations.some((v) => v.severity === 'fatal');
  }

  // ---- scheduling --------------------------------------------------------------------------

  private collectActions(): void {
    const acts = this.actions;
    acts.length = 0;
    const now = this.now;
    for (const cpu of this.cpus) {
      const top = cpu.top();
      if (top !== null && top.kind === 'irq') {
        if (top.enabled(now)) acts.push(top.id);
        continue;
      }
      const run = cpu.running;
      const pinned =
        run !== null && !run.done && (run.preemptOff > 0 || run.irqOff > 0 || (run.wait?.spin ?? false));
      if (pinned) {
        if (run.enabled(now)) acts.push(run.id);
      } else {
        for (const t of this.threads) {
          if (t.cpu === cpu.id && t.kind === 'task' && t.enabled(now)) acts.push(t.id);
        }
      }
      if (cpu.irqsEnabled()) {
        for (let i = 0; i < this.irqs.length; i++) {
          const irq = this.irqs[i]!;
          if (irq.pending && irq.cpu === cpu.id) acts.push(actIrq(i));
        }
      }
    }
    for (const t of this.threads) if (t.kind === 'agent' && t.enabled(now)) acts.push(t.id);
    // Time moves only when every thread and agent waits: hardware is fast, and a late
    // interrupt (pending but not yet taken) is the one delay the protocol must survive.
    let threadEnabled = false;
    for (const a of acts) if (a >= 0) threadEnabled = true;
    if (!threadEnabled && this.nextDeadline() >= 0) acts.push(ACT_TIME);
  }

  private nextDeadline(): number {
    let d = -1;
    for (const t of this.threads) {
      const w = t.wait;
      if (!t.done && w !== null && w.deadline > this.now && (d < 0 || w.deadline < d)) d = w.deadline;
    }
    return d;
  }

  /** Fair default: interrupts first, then hardware, then the least recently run thread, then time. */
  private defaultPick(): number {
    const acts = this.actions;
    let best = -1;
    let bestKey = Number.POSITIVE_INFINITY;
    for (let i = 0; i < acts.length; i++) {
      const a = acts[i]!;
      let key: number;
      if (a === ACT_TIME) key = Number.MAX_SAFE_INTEGER;
      else if (a < 0) key = -3;
      else {
        const t = this.threads[a]!;
        key = t.kind === 'agent' ? -2 + t.lastRun / 1e12 : t.lastRun;
      }
      if (key < bestKey) {
        bestKey = key;
        best = i;
      }
    }
    return best;
  }

  /** Runs until every non-daemon thread is done and nothing but idle daemons remain. */
  runRound(): 'quiescent' | 'violation' {
    this.roundStartStep = this.stepCount;
    this.roundStartTime = this.now;
    for (;;) {
      if (this.fatal()) return 'violation';
      this.collectActions();
      const acts = this.actions;
      if (acts.length === 0) {
        const stuck = this.threads.filter((t) => !t.done && !t.daemon);
        if (stuck.length === 0 && !this.irqs.some((i) => i.pending)) return 'quiescent';
        this.violate('no-deadlock', `deadlock: nothing can run; ${this.describeWaits()}`);
        return 'violation';
      }
      if (!this.threads.some((t) => !t.done && !t.daemon) && this.quiescentDaemons()) return 'quiescent';
      let pick = acts.length === 1 ? 0 : this.choices.next(acts.length);
      if (pick < 0) pick = this.defaultPick();
      this.perform(acts[pick]!);
      if (this.stepCount - this.roundStartStep > this.limits.maxStepsPerRound) {
        this.violate(
          'no-livelock',
          `livelock: no quiescence within ${this.limits.maxStepsPerRound} steps; ${this.describeWaits()}`,
        );
        return 'violation';
      }
      if (this.now - this.roundStartTime > this.limits.maxTimePerRound) {
        this.violate(
          'no-livelock',
          `livelock: no quiescence within ${this.limits.maxTimePerRound / 1e6} s of virtual time; ${this.describeWaits()}`,
        );
        return 'violation';
      }
    }
  }

  /** Daemons are quiescent when none can step, no interrupt is pending and no timer is armed. */
  private quiescentDaemons(): boolean {
    for (const a of this.actions) {
      if (a !== ACT_TIME) return false;
    }
    return this.nextDeadline() < 0;
  }

  describeWaits(): string {
    const parts: string[] = [];
    for (const t of this.threads) {
      if (t.done || (t.daemon && (t.wait === null || t.wait.deadline < 0) && !t.enabled(this.now))) continue;
      parts.push(`${t.name}${t.cpu >= 0 ? `@cpu${t.cpu}` : ''} waits on ${t.wait ? t.wait.what : 'nothing'}`);
    }
    for (const i of this.irqs) if (i.pending) parts.push(`${i.name} pending on cpu${i.cpu}`);
    return parts.join('; ');
  }

  private perform(a: number): void {
    this.stepCount++;
    if (a === ACT_TIME) {
      const d = this.nextDeadline();
      this.now = d;
      if (this.tracing) this.traceStep('time', -1, 'time', `time advances to ${fmtTime(d)}`);
      this.afterStep?.();
      return;
    }
    if (a < 0) {
      const irq = this.irqs[-2 - a]!;
      irq.pending = false;
      const t = new Thread(this.nextId++, irq.name, 'irq', irq.cpu, irq.handler(), false);
      t.irqOff = 1;
      this.threads.push(t);
      this.cpus[irq.cpu]!.irqStack.push(t);
      if (this.tracing) this.traceStep(irq.name, irq.cpu, 'irq-entry', 'interrupt taken');
      this.afterStep?.();
      return;
    }
    this.step(this.threads[a]!);
  }

  private step(t: Thread): void {
    if (t.kind === 'task') this.cpus[t.cpu]!.running = t;
    t.lastRun = this.stepCount;
    this.current = t;
    let r: IteratorResult<Yielded, unknown>;
    try {
      r = t.gen.next();
    } finally {
      this.current = null;
    }
    if (r.done) {
      t.done = true;
      t.wait = null;
      if (t.kind === 'irq') {
        this.cpus[t.cpu]!.irqStack.pop();
        this.removeThread(t);
      } else if (t.kind === 'task') {
        if (t.irqOff || t.preemptOff || t.rcuDepth) {
          this.violate(
            'no-unexpected-warn',
            `${t.name} returned with IRQs or preemption disabled or in an RCU section`,
          );
        }
        const cpu = this.cpus[t.cpu]!;
        if (cpu.running === t) cpu.running = null;
      }
      if (this.tracing) this.traceStep(t.name, t.cpu, t.kind, 'returns');
    } else {
      const v = r.value;
      if (typeof v === 'string') {
        t.wait = null;
        if (this.tracing) this.traceStep(t.name, t.cpu, t.kind, v);
      } else {
        t.wait = v;
        if (!v.spin && t.kind === 'task') {
          if (t.irqOff > 0 || t.preemptOff > 0 || t.rcuDepth > 0) {
            this.violate('no-unexpected-warn', `BUG: scheduling while atomic: ${t.name} sleeps on ${v.what}`);
          }
          const cpu = this.cpus[t.cpu]!;
          if (cpu.running === t) cpu.running = null;
        }
        if (v.spin && t.kind === 'irq' && !v.cond() && v.deadline < 0) this.checkSelfDeadlock(t, v);
        if (this.tracing) this.traceStep(t.name, t.cpu, t.kind, `waits: ${v.what}`);
      }
    }
    this.afterStep?.();
  }

  private checkSelfDeadlock(_t: Thread, _v: Wait): void {
    // Same-CPU spin deadlocks are detected by the lock that knows its owner (see sync.ts).
  }

  private removeThread(t: Thread): void {
    const i = this.threads.indexOf(t);
    // Thread ids index `threads`; keep the slot so ids stay valid, mark it done.
    if (i >= 0) this.threads[i] = t;
  }

  private traceStep(actor: string, cpu: number, kind: TraceStep['kind'], label: string): void {
    this.trace.push({ step: this.stepCount, time: this.now, actor, cpu, kind, label });
  }

  /** Is some context on `cpu` below the top one (i.e. interrupted) this thread? */
  interruptedOnSameCpu(owner: Thread, cpu: number): boolean {
    const c = this.cpus[cpu];
    if (c === undefined) return false;
    const top = c.top();
    if (top === owner) return false;
    return c.running === owner || c.irqStack.includes(owner);
  }
}

export function fmtTime(us: number): string {
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(3)} s`;
  if (us >= 1_000) return `${(us / 1_000).toFixed(1)} ms`;
  return `${us} µs`;
}
