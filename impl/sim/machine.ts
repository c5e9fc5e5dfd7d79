/**
 * The deterministic simulated machine: CPUs, threads as generators, interrupts, virtual time,
 * a scheduler driven by a choice stream, the kernel log, WARN and violations.
 *
 * Every `yield` in a kernel function is one atomic step and a preemption point. A thread yields
 * either a label (a plain step) or a {@link Wait} (blocked until a condition or a deadline).
 * Nothing here reads a clock or a random source: the same threads and the same choices give the
 * same run, step for step.
 */

/**
 * A thread blocked until `cond()` holds or virtual time reaches `deadline`. `cond` must only
 * read state: the scheduler evaluates it as often as it likes, or not at all when the thread
 * cannot be picked anyway.
 */
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
  /**
   * Pick among `n` (> 1) alternatives, or return -1 to let the default policy decide. `dflt`, when
   * given, is the alternative the default policy would take here (the fair default's pick for a
   * scheduling decision, 0 for hardware nondeterminism): a source may note that a choice equal to
   * it changed nothing (see {@link ArrayChoices.significant}).
   */
  next(n: number, dflt?: number): number;
  /**
   * Optional: true when every later next() returns -1 and changes nothing. The scheduler then
   * need not count the alternatives, only find the one the fair default takes.
   */
  exhausted?(): boolean;
  /**
   * Optional: pick among the named actors (thread, interrupt or 'time' names, stable from run
   * to run). A priority schedule (PCT) needs to know who it is choosing between; when defined,
   * it is used instead of next().
   */
  nextAmong?(actors: readonly string[]): number;
}

export class ArrayChoices implements ChoiceSource {
  private i = 0;
  /** How many choices were actually consumed (the rest would be default anyway). */
  used = 0;
  /** The consumed choices, each reduced to the smallest value that picks the same action. */
  readonly normalized: number[] = [];
  /**
   * How many of the consumed choices matter: every consumed choice after the first `significant`
   * picked what the default policy picks at that point. The machine's state evolves the same
   * whether a pick came from a choice or from the default (a step is a step: `lastRun`, the stall
   * budget and the rest are updated by performing it, not by how it was chosen), so the stream
   * cut after `significant` choices replays the same run (determinism.test.ts checks it).
   */
  significant = 0;
  constructor(private readonly choices: readonly number[]) {}
  next(n: number, dflt?: number): number {
    if (this.i >= this.choices.length) return -1;
    this.used = ++this.i;
    const c = this.choices[this.i - 1]! % n;
    this.normalized.push(c);
    if (c !== dflt) this.significant = this.i;
    return c;
  }
  exhausted(): boolean {
    return this.i >= this.choices.length;
  }
}

/** What the scheduler is about to do (see {@link Machine.pickHook}). */
export interface Pick {
  /** The thread that steps, or null. */
  readonly thread: Thread | null;
  /** The interrupt (index in `irqs`) that is taken, or -1. */
  readonly irq: number;
  /** Virtual time advances to the next deadline. */
  readonly time: boolean;
  /** ... while some task or interrupt handler is runnable (a stall; see {@link MachineOptions}). */
  readonly stall: boolean;
  /** How many alternatives were counted, or -1 when the fair default picked without counting. */
  readonly alternatives: number;
  /** What the choice source returned for this pick (-1: default policy), or null if not asked. */
  readonly choice: number | null;
  /** The index of the action taken among the alternatives (when they were counted). */
  readonly index: number;
}

/** How the machine may behave beyond the protocol's own nondeterminism. */
export interface MachineOptions {
  /**
   * CPUs can be stalled (a vCPU preempted by the hypervisor, an NMI or SMI, a long stretch with
   * IRQs off): where tasks or interrupt handlers are runnable but no hardware agent is, letting
   * virtual time advance to the next deadline is one more alternative, after all the others. The
   * fair default never takes it; only a choice does. Hardware stays fast: never while an agent can
   * step. A stall is bounded: at most {@link MAX_STALLS_PER_ROUND} per round, so that a schedule
   * that always prefers time (a PCT priority) cannot starve a CPU for ever. Off (the default):
   * time advances only when nothing else can happen.
   */
  readonly stalls?: boolean;
}

/**
 * Stalls one round may contain. Each lets time run to the next deadline (an ATC completion
 * timeout, a 1 s poll, the FLR's 100 ms); a CPU held up through more than a few of them is a
 * starved CPU, not a kernel livelock.
 */
export const MAX_STALLS_PER_ROUND = 3;

export interface MachineLimits {
  /** Steps one round may take before it is declared a livelock. */
  maxStepsPerRound: number;
  /** Virtual µs one round may take before it is declared a livelock. */
  maxTimePerRound: number;
}

/** Action codes: a thread step, time advancing, or an IRQ delivery (its index in `irqs`). */
const ACT_THREAD = -2;
const ACT_TIME = -1;

/**
 * Removes `t` from a list kept in id order. Lists are short (a few threads per CPU), so a
 * search from the end (where recent threads sit) and a splice are cheaper than any index.
 */
function removeFrom(list: Thread[], t: Thread): void {
  const i = list.lastIndexOf(t);
  if (i >= 0) list.splice(i, 1);
}

function anyPending(irqs: readonly Irq[]): boolean {
  for (let i = 0; i < irqs.length; i++) if (irqs[i]!.pending) return true;
  return false;
}

/** min(d, the earliest deadline after `now` some thread of `list` waits for); -1 is none. */
function earliestDeadline(list: readonly Thread[], now: number, d: number): number {
  for (let i = 0; i < list.length; i++) {
    const w = list[i]!.wait;
    if (w !== null && w.deadline > now && (d < 0 || w.deadline < d)) d = w.deadline;
  }
  return d;
}

export class Machine {
  /**
   * Test hook: told of every scheduling decision before it is carried out, on every machine.
   * The scheduler tests check each one against a straightforward reference implementation.
   */
  static pickHook: ((m: Machine, p: Pick) => void) | null = null;
  now = 0;
  stepCount = 0;
  readonly cpus: Cpu[];
  /**
   * Every task and agent ever spawned, and the interrupt handlers that are running, in id
   * (creation) order. A handler leaves the list when it returns; tasks and agents stay, done.
   */
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
  /** Per CPU: its tasks that have not returned, in id order. */
  private readonly cpuTasks: Thread[][];
  /** Tasks spawned on a CPU the machine does not have: never runnable, never done. */
  private readonly strayTasks: Thread[] = [];
  /** Hardware agents that have not returned, in id order. */
  private readonly liveAgents: Thread[] = [];
  /** Threads that are not done and not daemons (they hold up quiescence). */
  private liveNonDaemon = 0;
  /**
   * The enabled actions of the current step, in their canonical order (per CPU: its threads,
   * then its deliverable interrupts; then agents; then time), as parallel arrays reused from
   * step to step: `actCode` is ACT_THREAD (the thread is in `actThread`), ACT_TIME or an IRQ
   * index. `nActs` entries are valid.
   */
  private readonly actCode: number[] = [];
  private readonly actThread: (Thread | null)[] = [];
  private nActs = 0;
  private roundStartStep = 0;
  private roundStartTime = 0;
  /** See {@link MachineOptions.stalls}. */
  readonly stalls: boolean;
  private stallBudget = MAX_STALLS_PER_ROUND;
  /** Whether the time action of the current step, if taken, stalls runnable CPUs. */
  private timeStalls = false;

  constructor(
    ncpus: number,
    private choices: ChoiceSource,
    // Three failed resets in one round take 3 × 60 s of polling; a livelock spins far longer.
    readonly limits: MachineLimits = { maxStepsPerRound: 20_000, maxTimePerRound: 400_000_000 },
    opts: MachineOptions = {},
  ) {
    this.stalls = opts.stalls === true;
    this.cpus = Array.from({ length: ncpus }, (_, i) => new Cpu(i));
    this.cpuTasks = Array.from({ length: ncpus }, () => []);
  }

  /** Stalls this round may still take (see {@link MAX_STALLS_PER_ROUND}). */
  get stallsLeft(): number {
    return this.stallBudget;
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
    (this.cpuTasks[cpu] ?? this.strayTasks).push(t);
    if (!t.daemon) this.liveNonDaemon++;
    return t;
  }

  /** A hardware actor with no CPU: a daemon (the SMMU consumer) or one bounded action (a DMA). */
  agent(name: string, body: Proc<unknown>, opts: { daemon?: boolean } = {}): Thread {
    const t = new Thread(this.nextId++, name, 'agent', -1, body, opts.daemon ?? true);
    this.threads.push(t);
    this.liveAgents.push(t);
    if (!t.daemon) this.liveNonDaemon++;
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
    const c = this.choices.next(n, 0);
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
    for (const v of this.violations) if (v.severity === 'fatal') return true;
    return false;
  }

  // ---- scheduling --------------------------------------------------------------------------

  private pushAct(code: number, t: Thread | null): void {
    const n = this.nActs++;
    this.actCode[n] = code;
    this.actThread[n] = t;
  }

  /** Fills the enabled actions in canonical order; returns how many there are. */
  private collectActions(): number {
    this.nActs = 0;
    const now = this.now;
    const cpus = this.cpus;
    const irqs = this.irqs;
    let threadEnabled = false;
    for (let c = 0; c < cpus.length; c++) {
      const cpu = cpus[c]!;
      const stack = cpu.irqStack;
      if (stack.length > 0) {
        // An interrupt handler is on top: only it can run here, and no interrupt is taken.
        const top = stack[stack.length - 1]!;
        if (top.enabled(now)) {
          this.pushAct(ACT_THREAD, top);
          threadEnabled = true;
        }
        continue;
      }
      const run = cpu.running;
      if (
        run !== null &&
        !run.done &&
        (run.preemptOff > 0 || run.irqOff > 0 || (run.wait !== null && run.wait.spin))
      ) {
        // Pinned: it keeps the CPU.
        if (run.enabled(now)) {
          this.pushAct(ACT_THREAD, run);
          threadEnabled = true;
        }
      } else {
        const tasks = this.cpuTasks[c]!;
        for (let i = 0; i < tasks.length; i++) {
          const t = tasks[i]!;
          if (t.enabled(now)) {
            this.pushAct(ACT_THREAD, t);
            threadEnabled = true;
          }
        }
      }
      if (run === null || run.irqOff === 0) {
        for (let i = 0; i < irqs.length; i++) {
          const irq = irqs[i]!;
          if (irq.pending && irq.cpu === c) this.pushAct(i, null);
        }
      }
    }
    let agentEnabled = false;
    const agents = this.liveAgents;
    for (let i = 0; i < agents.length; i++) {
      const t = agents[i]!;
      if (t.enabled(now)) {
        this.pushAct(ACT_THREAD, t);
        agentEnabled = true;
      }
    }
    // Time moves only when every thread and agent waits: hardware is fast, and a late
    // interrupt (pending but not yet taken) is the one delay the protocol must survive. With
    // stalls, a runnable CPU may be held up too (but hardware never is), a few times a round.
    const timeOk = this.stalls && this.stallBudget > 0 ? !agentEnabled : !threadEnabled && !agentEnabled;
    if (timeOk && this.nextDeadline() >= 0) {
      this.pushAct(ACT_TIME, null);
      this.timeStalls = threadEnabled;
    }
    return this.nActs;
  }

  /** The earliest armed deadline after now, or -1: the time the clock advances to. */
  private nextDeadline(): number {
    let d = -1;
    for (let c = 0; c < this.cpus.length; c++) {
      d = earliestDeadline(this.cpuTasks[c]!, this.now, d);
      d = earliestDeadline(this.cpus[c]!.irqStack, this.now, d);
    }
    return earliestDeadline(this.liveAgents, this.now, d);
  }

  /** Fair default: interrupts first, then hardware, then the least recently run thread, then time. */
  /** The names of the collected actions, for a choice source that picks by actor. */
  private actorNames(n: number): string[] {
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const a = this.actCode[i]!;
      names.push(a === ACT_TIME ? 'time' : a === ACT_THREAD ? this.actThread[i]!.name : this.irqs[a]!.name);
    }
    return names;
  }

  private defaultPick(): number {
    let best = -1;
    let bestKey = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.nActs; i++) {
      const a = this.actCode[i]!;
      let key: number;
      if (a === ACT_TIME) key = Number.MAX_SAFE_INTEGER;
      else if (a >= 0) key = -3;
      else {
        const t = this.actThread[i]!;
        key = t.kind === 'agent' ? -2 + t.lastRun / 1e12 : t.lastRun;
      }
      if (key < bestKey) {
        bestKey = key;
        best = i;
      }
    }
    return best;
  }

  /**
   * The fair default's pick when the alternatives need not be counted (no choice is left): the
   * same action defaultPick() takes from the full list, found in key order, evaluating a wait
   * condition only for a thread that would beat the best found so far. Returns the number of
   * actions it filled (1), or 0 when nothing can happen.
   */
  private collectDefaultPick(): number {
    this.nActs = 0;
    this.timeStalls = false;
    const now = this.now;
    const cpus = this.cpus;
    const irqs = this.irqs;
    // 1. An interrupt (key -3): the first deliverable one in canonical order.
    if (anyPending(irqs)) {
      for (let c = 0; c < cpus.length; c++) {
        const cpu = cpus[c]!;
        const run = cpu.running;
        if (cpu.irqStack.length > 0 || (run !== null && run.irqOff !== 0)) continue;
        for (let i = 0; i < irqs.length; i++) {
          const irq = irqs[i]!;
          if (irq.pending && irq.cpu === c) {
            this.pushAct(i, null);
            return 1;
          }
        }
      }
    }
    // 2. A hardware agent (key -2 + lastRun / 1e12, below any thread's): the least recently
    //    run enabled one, the first in canonical order on a tie (only never-run ones tie).
    let best: Thread | null = null;
    let bestRun = Number.POSITIVE_INFINITY;
    const agents = this.liveAgents;
    for (let i = 0; i < agents.length; i++) {
      const t = agents[i]!;
      if (t.lastRun < bestRun && t.enabled(now)) {
        best = t;
        bestRun = t.lastRun;
      }
    }
    if (best === null) {
      // 3. A task or interrupt handler (key lastRun), the same way.
      for (let c = 0; c < cpus.length; c++) {
        const cpu = cpus[c]!;
        const stack = cpu.irqStack;
        if (stack.length > 0) {
          const top = stack[stack.length - 1]!;
          if (top.lastRun < bestRun && top.enabled(now)) {
            best = top;
            bestRun = top.lastRun;
          }
          continue;
        }
        const run = cpu.running;
        if (
          run !== null &&
          !run.done &&
          (run.preemptOff > 0 || run.irqOff > 0 || (run.wait !== null && run.wait.spin))
        ) {
          if (run.lastRun < bestRun && run.enabled(now)) {
            best = run;
            bestRun = run.lastRun;
          }
          continue;
        }
        const tasks = this.cpuTasks[c]!;
        for (let i = 0; i < tasks.length; i++) {
          const t = tasks[i]!;
          if (t.lastRun < bestRun && t.enabled(now)) {
            best = t;
            bestRun = t.lastRun;
          }
        }
      }
    }
    if (best !== null) {
      this.pushAct(ACT_THREAD, best);
      return 1;
    }
    // 4. Time, when every thread waits and some timer is armed.
    if (this.nextDeadline() >= 0) {
      this.pushAct(ACT_TIME, null);
      return 1;
    }
    return 0;
  }

  /** Runs until every non-daemon thread is done and nothing but idle daemons remain. */
  runRound(): 'quiescent' | 'violation' {
    this.roundStartStep = this.stepCount;
    this.roundStartTime = this.now;
    this.stallBudget = MAX_STALLS_PER_ROUND;
    const { maxStepsPerRound, maxTimePerRound } = this.limits;
    for (;;) {
      if (this.violations.length > 0 && this.fatal()) return 'violation';
      // With no choice left, only the default's pick matters, not how many alternatives there are.
      const lazy = this.choices.exhausted?.() ?? false;
      const n = lazy ? this.collectDefaultPick() : this.collectActions();
      if (n === 0) {
        if (this.liveNonDaemon === 0 && !anyPending(this.irqs)) return 'quiescent';
        this.violate('no-deadlock', `deadlock: nothing can run; ${this.describeWaits()}`);
        return 'violation';
      }
      // Something can run, so the round goes on (with no thread or interrupt enabled, time is,
      // and only while some timer is armed).
      // A choice from a stream is told the default's pick, so that the stream can tell which of
      // its choices changed something (ArrayChoices.significant); lazy, it is never asked.
      let dflt = -1;
      const choice =
        n === 1
          ? 0
          : this.choices.nextAmong
            ? this.choices.nextAmong(this.actorNames(n))
            : this.choices.next(n, (dflt = this.defaultPick()));
      const pick = choice >= 0 ? choice : dflt >= 0 ? dflt : this.defaultPick();
      if (Machine.pickHook !== null) this.reportPick(pick, lazy ? -1 : n, n === 1 ? null : choice);
      this.perform(pick);
      if (this.stepCount - this.roundStartStep > maxStepsPerRound) {
        this.violate(
          'no-livelock',
          `livelock: no quiescence within ${maxStepsPerRound} steps; ${this.describeWaits()}`,
        );
        return 'violation';
      }
      if (this.now - this.roundStartTime > maxTimePerRound) {
        this.violate(
          'no-livelock',
          `livelock: no quiescence within ${maxTimePerRound / 1e6} s of virtual time; ${this.describeWaits()}`,
        );
        return 'violation';
      }
    }
  }

  private reportPick(i: number, alternatives: number, choice: number | null): void {
    const a = this.actCode[i]!;
    Machine.pickHook?.(this, {
      thread: a === ACT_THREAD ? this.actThread[i]! : null,
      irq: a >= 0 ? a : -1,
      time: a === ACT_TIME,
      stall: a === ACT_TIME && this.timeStalls,
      alternatives,
      choice,
      index: i,
    });
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

  /** Performs the enabled action at index `i` of the current step. */
  private perform(i: number): void {
    this.stepCount++;
    const a = this.actCode[i]!;
    if (a === ACT_THREAD) {
      this.step(this.actThread[i]!);
      return;
    }
    if (a === ACT_TIME) {
      const d = this.nextDeadline();
      this.now = d;
      if (this.timeStalls) this.stallBudget--;
      if (this.tracing) {
        const stall = this.timeStalls ? ' (runnable CPUs stalled)' : '';
        this.traceStep('time', -1, 'time', `time advances to ${fmtTime(d)}${stall}`);
      }
      this.afterStep?.();
      return;
    }
    const irq = this.irqs[a]!;
    irq.pending = false;
    const t = new Thread(this.nextId++, irq.name, 'irq', irq.cpu, irq.handler(), false);
    t.irqOff = 1;
    this.threads.push(t);
    this.liveNonDaemon++;
    this.cpus[irq.cpu]!.irqStack.push(t);
    if (this.tracing) this.traceStep(irq.name, irq.cpu, 'irq-entry', 'interrupt taken');
    this.afterStep?.();
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
      if (!t.daemon) this.liveNonDaemon--;
      if (t.kind === 'irq') {
        this.cpus[t.cpu]!.irqStack.pop();
        // A handler that returned is gone for good: nothing refers to it any more.
        removeFrom(this.threads, t);
      } else if (t.kind === 'task') {
        removeFrom(this.cpuTasks[t.cpu]!, t);
        if (t.irqOff || t.preemptOff || t.rcuDepth) {
          this.violate(
            'no-unexpected-warn',
            `${t.name} returned with IRQs or preemption disabled or in an RCU section`,
          );
        }
        const cpu = this.cpus[t.cpu]!;
        if (cpu.running === t) cpu.running = null;
      } else {
        removeFrom(this.liveAgents, t);
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
        if (this.tracing) this.traceStep(t.name, t.cpu, t.kind, `waits: ${v.what}`);
      }
    }
    this.afterStep?.();
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
