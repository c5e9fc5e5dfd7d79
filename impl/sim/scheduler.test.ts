/**
 * The scheduler keeps per-CPU run lists, drops returned interrupt handlers and, once the choices
 * run out, finds the fair default's pick without counting the alternatives. These tests check
 * every one of its decisions against a straightforward reference: the original algorithm, which
 * scans every thread for every CPU at every step and then applies the default policy to the
 * whole list. Same alternatives, in the same order, and the same pick, on random programs and
 * random choice arrays, and on the harness's own scenarios under every variant. The reference
 * knows one later addition, stalls (time may advance while CPUs are runnable, never while
 * hardware is): off, it is the original algorithm.
 */
import { fc, test } from '@fast-check/vitest';
import { afterEach, describe, expect } from 'vitest';
import { listVariants, Variant } from '../variants.ts';
import { runScenario } from '../../properties/runner.ts';
import { pctScenarioArb, scenarioArb } from '../../properties/scenario.ts';
import {
  ArrayChoices,
  type ChoiceSource,
  Machine,
  MAX_STALLS_PER_ROUND,
  type Pick,
  type Proc,
  type Thread,
  Wait,
} from './machine.ts';
import { localIrqRestore, localIrqSave, Mutex, msleep, SpinLock, sleepUntil, spinUntil } from './sync.ts';

type RefAction = { kind: 'thread'; t: Thread } | { kind: 'irq'; irq: number } | { kind: 'time' };

/** The reference: the scheduler as first written, over the machine's public state. */
function referenceActions(m: Machine): RefAction[] {
  const acts: RefAction[] = [];
  for (const cpu of m.cpus) {
    const top = cpu.top();
    if (top !== null && top.kind === 'irq') {
      if (top.enabled(m.now)) acts.push({ kind: 'thread', t: top });
      continue;
    }
    const run = cpu.running;
    const pinned =
      run !== null && !run.done && (run.preemptOff > 0 || run.irqOff > 0 || (run.wait?.spin ?? false));
    if (pinned) {
      if (run.enabled(m.now)) acts.push({ kind: 'thread', t: run });
    } else {
      for (const t of m.threads) {
        if (t.cpu === cpu.id && t.kind === 'task' && t.enabled(m.now)) acts.push({ kind: 'thread', t });
      }
    }
    if (cpu.irqsEnabled()) {
      m.irqs.forEach((irq, i) => {
        if (irq.pending && irq.cpu === cpu.id) acts.push({ kind: 'irq', irq: i });
      });
    }
  }
  for (const t of m.threads) if (t.kind === 'agent' && t.enabled(m.now)) acts.push({ kind: 'thread', t });
  let deadline = -1;
  for (const t of m.threads) {
    const w = t.wait;
    if (!t.done && w !== null && w.deadline > m.now && (deadline < 0 || w.deadline < deadline)) {
      deadline = w.deadline;
    }
  }
  const threads = acts.some((a) => a.kind === 'thread');
  const agents = acts.some((a) => a.kind === 'thread' && a.t.kind === 'agent');
  if ((m.stalls && m.stallsLeft > 0 ? !agents : !threads) && deadline >= 0) acts.push({ kind: 'time' });
  return acts;
}

function referenceDefault(acts: readonly RefAction[]): number {
  let best = -1;
  let bestKey = Number.POSITIVE_INFINITY;
  acts.forEach((a, i) => {
    const key =
      a.kind === 'time'
        ? Number.MAX_SAFE_INTEGER
        : a.kind === 'irq'
          ? -3
          : a.t.kind === 'agent'
            ? -2 + a.t.lastRun / 1e12
            : a.t.lastRun;
    if (key < bestKey) {
      bestKey = key;
      best = i;
    }
  });
  return best;
}

const same = (a: RefAction, p: Pick): boolean =>
  a.kind === 'time' ? p.time : a.kind === 'irq' ? p.irq === a.irq : p.thread === a.t;

const describeAction = (a: RefAction | undefined): string =>
  a === undefined ? 'nothing' : a.kind === 'thread' ? `${a.t.name}#${a.t.id}` : a.kind;

/** Checks each decision against the reference; returns how many were checked. */
function checkEveryPick(): { picks: number; lazy: number; counted: number; stalls: number } {
  const stats = { picks: 0, lazy: 0, counted: 0, stalls: 0 };
  Machine.pickHook = (m, p) => {
    const acts = referenceActions(m);
    let expected: number;
    if (p.alternatives < 0) {
      // Picked without counting: only the default's pick is defined.
      stats.lazy++;
      expected = referenceDefault(acts);
    } else {
      stats.counted++;
      expect(p.alternatives).toBe(acts.length);
      expected = p.choice === null ? 0 : p.choice >= 0 ? p.choice : referenceDefault(acts);
      if (p.choice !== null) expect(p.choice).toBeLessThan(acts.length);
    }
    const want = acts[expected];
    // A stall is time advancing while some task or handler is runnable: only with the knob on,
    // and only when a choice asks for it (the fair default never stalls).
    expect(p.stall).toBe(p.time && acts.some((a) => a.kind === 'thread'));
    if (p.stall) {
      expect(m.stalls).toBe(true);
      expect(p.choice).toBeGreaterThanOrEqual(0);
      stats.stalls++;
    }
    if (want === undefined || !same(want, p)) {
      const got = p.thread ? `${p.thread.name}#${p.thread.id}` : p.time ? 'time' : `irq ${p.irq}`;
      throw new Error(
        `step ${m.stepCount}: scheduler picked ${got}, reference ${describeAction(want)} of [${acts.map(describeAction).join(', ')}]`,
      );
    }
    stats.picks++;
  };
  return stats;
}

afterEach(() => {
  Machine.pickHook = null;
});

// ---- random programs ------------------------------------------------------------------------

type Instr =
  | { op: 'step' }
  | { op: 'mutex'; lock: number; hold: number }
  | { op: 'spin'; lock: number; irqsave: boolean; hold: number }
  | { op: 'msleep'; ms: number }
  | { op: 'raise'; irq: number }
  | { op: 'irqoff'; steps: number }
  | { op: 'flag'; flag: number }
  | { op: 'spinUntil'; flag: number; timeoutUs: number }
  | { op: 'sleepUntil'; flag: number; timeoutUs: number };

interface ThreadSpec {
  readonly agent: boolean;
  readonly cpu: number;
  readonly daemon: boolean;
  readonly round: number;
  readonly body: readonly Instr[];
}

interface Program {
  readonly cpus: number;
  readonly stalls: boolean;
  readonly irqCpus: readonly number[];
  readonly threads: readonly ThreadSpec[];
  readonly choices: readonly number[];
}

const instrArb: fc.Arbitrary<Instr> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ op: 'step' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('mutex' as const), lock: fc.nat(1), hold: fc.nat(2) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('spin' as const),
      lock: fc.nat(1),
      irqsave: fc.boolean(),
      hold: fc.nat(2),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('msleep' as const), ms: fc.integer({ min: 1, max: 3 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('raise' as const), irq: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('irqoff' as const), steps: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('flag' as const), flag: fc.nat(1) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('spinUntil' as const),
      flag: fc.nat(1),
      timeoutUs: fc.constantFrom(-1, 500, 5_000),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('sleepUntil' as const),
      flag: fc.nat(1),
      timeoutUs: fc.constantFrom(-1, 500, 5_000),
    }),
  },
);

const programArb: fc.Arbitrary<Program> = fc.integer({ min: 1, max: 3 }).chain((cpus) =>
  fc.record({
    cpus: fc.constant(cpus),
    stalls: fc.boolean(),
    irqCpus: fc.array(fc.nat(cpus - 1), { minLength: 1, maxLength: 2 }),
    threads: fc.array(
      fc.record({
        agent: fc.boolean(),
        // Now and then a CPU the machine does not have: such a task never runs.
        cpu: fc.oneof({ weight: 9, arbitrary: fc.nat(cpus - 1) }, fc.constant(cpus)),
        daemon: fc.boolean(),
        round: fc.nat(1),
        body: fc.array(instrArb, { maxLength: 8 }),
      }),
      { minLength: 1, maxLength: 6 },
    ),
    choices: fc.array(fc.nat(20), { maxLength: 60 }),
  }),
);

/** Runs a random program for two rounds; the scheduler's decisions are what is under test. */
function runProgram(p: Program): Machine {
  const m = new Machine(
    p.cpus,
    new ArrayChoices(p.choices),
    { maxStepsPerRound: 2_000, maxTimePerRound: 1e9 },
    { stalls: p.stalls },
  );
  m.tracing = true;
  const mutexes = [new Mutex(m, 'm0'), new Mutex(m, 'm1')];
  const spins = [new SpinLock(m, 's0'), new SpinLock(m, 's1')];
  const flags = [false, false];
  const irqs = p.irqCpus.map((cpu, i) =>
    m.addIrq(`irq${i}`, cpu, function* (): Proc {
      flags[i % 2] = !flags[i % 2];
      yield 'handler';
      if (i === 1) {
        // A handler that spins, possibly on a lock its CPU's task holds: a deadlock to report.
        yield* spins[1]!.lock(true);
        yield 'handler under s1';
        yield* spins[1]!.unlock(true);
      }
    }),
  );
  function* body(code: readonly Instr[], agent: boolean): Proc {
    for (const ins of code) {
      switch (ins.op) {
        case 'step':
          yield 'step';
          break;
        case 'mutex':
          if (agent) break;
          yield* mutexes[ins.lock]!.lock();
          for (let i = 0; i < ins.hold; i++) yield 'hold mutex';
          mutexes[ins.lock]!.unlock();
          break;
        case 'spin':
          if (agent) break;
          yield* spins[ins.lock]!.lock(ins.irqsave);
          for (let i = 0; i < ins.hold; i++) yield 'hold spinlock';
          yield* spins[ins.lock]!.unlock(ins.irqsave);
          break;
        case 'msleep':
          if (agent) yield new Wait(() => false, m.now + ins.ms * 1000, true, 'agent timer');
          else yield* msleep(m, ins.ms);
          break;
        case 'raise':
          m.raise(irqs[ins.irq % irqs.length]!);
          yield 'raise';
          break;
        case 'irqoff':
          if (agent) break;
          localIrqSave(m);
          for (let i = 0; i < ins.steps; i++) yield 'irqs off';
          localIrqRestore(m);
          break;
        case 'flag':
          flags[ins.flag] = !flags[ins.flag];
          yield 'flip';
          break;
        case 'spinUntil': {
          const f = ins.flag;
          yield* spinUntil(m, () => flags[f]!, ins.timeoutUs < 0 ? -1 : m.now + ins.timeoutUs, `flag ${f}`);
          break;
        }
        case 'sleepUntil': {
          if (agent) break;
          const f = ins.flag;
          yield* sleepUntil(m, () => flags[f]!, ins.timeoutUs < 0 ? -1 : m.now + ins.timeoutUs, `flag ${f}`);
          break;
        }
      }
    }
  }
  for (let round = 0; round < 2; round++) {
    p.threads.forEach((t, i) => {
      if (t.round !== round) return;
      if (t.agent) m.agent(`a${i}`, body(t.body, true), { daemon: t.daemon });
      else m.spawn(`t${i}`, t.cpu, body(t.body, false), { daemon: t.daemon });
    });
    if (m.runRound() !== 'quiescent') break;
  }
  return m;
}

describe('scheduler against the reference', () => {
  test.prop([programArb], { numRuns: 300 })(
    'random programs and choices: same alternatives, same order, same pick',
    (p) => {
      const stats = checkEveryPick();
      const m = runProgram(p);
      expect(stats.picks).toBe(m.stepCount);
    },
  );

  test('random programs exercise both the counted and the uncounted pick', () => {
    const stats = checkEveryPick();
    for (const p of fc.sample(programArb, { seed: 5, numRuns: 200 })) runProgram(p);
    expect(stats.counted).toBeGreaterThan(100);
    expect(stats.lazy).toBeGreaterThan(1000);
  });

  const variants = fc.constantFrom(...listVariants());
  const scenarios = fc.oneof(scenarioArb, pctScenarioArb);
  test.prop([scenarios, variants], { numRuns: 80 })('harness scenarios under every variant', (s, name) => {
    const stats = checkEveryPick();
    const r = runScenario(s, Variant.parse(name));
    expect(stats.picks).toBe(r.steps);
  });

  test('a returned interrupt handler leaves the thread list; tasks and agents stay', () => {
    const m = new Machine(1, new ArrayChoices([]));
    m.tracing = true;
    const irq = m.addIrq('irq0', 0, function* (): Proc {
      yield 'handler';
    });
    m.spawn(
      't',
      0,
      (function* (): Proc {
        for (let i = 0; i < 3; i++) {
          m.raise(irq);
          yield 'raised';
        }
      })(),
    );
    m.agent(
      'hw',
      (function* (): Proc {
        yield 'once';
      })(),
      { daemon: false },
    );
    expect(m.runRound()).toBe('quiescent');
    expect(m.threads.map((t) => t.name)).toEqual(['t', 'hw']);
    expect(m.trace.filter((s) => s.kind === 'irq-entry')).toHaveLength(3);
  });
});

describe('stalls', () => {
  /** A task with two steps, and a hardware timer armed for 1 ms once it has run once. */
  function stallMachine(stalls: boolean | undefined, choices: number[]): Machine {
    const m = new Machine(1, new ArrayChoices(choices), undefined, stalls === undefined ? {} : { stalls });
    m.tracing = true;
    m.spawn(
      't',
      0,
      (function* (): Proc {
        yield 'a';
        yield 'b';
      })(),
    );
    m.agent(
      'hw',
      (function* (): Proc {
        yield new Wait(() => false, 1000, true, 'timer');
        yield 'fired';
      })(),
      { daemon: false },
    );
    return m;
  }
  const labels = (m: Machine): string[] => m.trace.map((s) => `${s.actor}: ${s.label}`);

  test('a chosen stall advances time while a task stays runnable', () => {
    const alternatives: number[] = [];
    Machine.pickHook = (_m, p) => alternatives.push(p.alternatives);
    // 1: the timer agent before t (no stall while hardware can step); 1: time, not t.
    const m = stallMachine(true, [1, 1]);
    expect(m.runRound()).toBe('quiescent');
    expect(alternatives.slice(0, 2)).toEqual([2, 2]);
    expect(labels(m).slice(0, 3)).toEqual([
      'hw: waits: timer',
      'time: time advances to 1.0 ms (runnable CPUs stalled)',
      'hw: fired',
    ]);
    expect(m.trace[1]!.time).toBe(1000);
    expect(m.trace.filter((s) => s.actor === 't' && s.time === 0)).toEqual([]);
  });

  test('off, the same choices cannot stall: time waits for the task', () => {
    const alternatives: number[] = [];
    Machine.pickHook = (_m, p) => alternatives.push(p.alternatives);
    for (const m of [stallMachine(false, [1, 1]), stallMachine(undefined, [1, 1])]) {
      alternatives.length = 0;
      expect(m.runRound()).toBe('quiescent');
      // After the agent waits, t is the only alternative until it returns; then time.
      expect(alternatives.slice(0, 2)).toEqual([2, 1]);
      expect(labels(m)).toEqual([
        'hw: waits: timer',
        't: a',
        't: b',
        't: returns',
        'time: time advances to 1.0 ms',
        'hw: fired',
        'hw: returns',
      ]);
    }
  });

  test.prop([programArb], { numRuns: 150 })(
    'the fair default never stalls: with no choices, stalls on runs exactly as stalls off',
    (p) => {
      const on = runProgram({ ...p, stalls: true, choices: [] });
      const off = runProgram({ ...p, stalls: false, choices: [] });
      expect(on.trace).toEqual(off.trace);
      expect(on.violations).toEqual(off.violations);
      expect(on.trace.some((s) => s.label.includes('stalled'))).toBe(false);
    },
  );

  test.prop([programArb], { numRuns: 150 })(
    'with the knob off, no choice stream stalls; the knob absent is the knob off',
    (p) => {
      const stats = checkEveryPick();
      const off = runProgram({ ...p, stalls: false });
      expect(stats.stalls).toBe(0);
      Machine.pickHook = null;
      const absent = new Machine(p.cpus, new ArrayChoices([]));
      expect(absent.stalls).toBe(false);
      expect(off.trace.some((s) => s.label.includes('stalled'))).toBe(false);
    },
  );

  test(`at most ${MAX_STALLS_PER_ROUND} stalls a round, however often a choice asks`, () => {
    // A schedule that always takes the last alternative: time, whenever it is offered.
    const last: ChoiceSource = { next: (n) => n - 1 };
    const m = new Machine(1, last, undefined, { stalls: true });
    m.tracing = true;
    const stalled = () => m.trace.filter((s) => s.label.endsWith('(runnable CPUs stalled)')).length;
    for (let round = 0; round < 2; round++) {
      m.spawn(
        `t${round}`,
        0,
        (function* (): Proc {
          for (let i = 0; i < 20; i++) yield 'step';
        })(),
      );
      m.agent(
        `timer${round}`,
        (function* (): Proc {
          for (let i = 1; i <= 10; i++) yield new Wait(() => false, m.now + 1000, true, 'tick');
        })(),
        { daemon: false },
      );
      expect(m.runRound()).toBe('quiescent');
      expect(stalled()).toBe(MAX_STALLS_PER_ROUND * (round + 1));
    }
  });

  test('random programs with stalls on do stall, and only where a choice asks', () => {
    const stats = checkEveryPick();
    for (const p of fc.sample(programArb, { seed: 7, numRuns: 300 })) runProgram({ ...p, stalls: true });
    expect(stats.stalls).toBeGreaterThan(10);
  });
});
