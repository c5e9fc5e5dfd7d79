/**
 * The scheduler keeps per-CPU run lists, drops returned interrupt handlers and, once the choices
 * run out, finds the fair default's pick without counting the alternatives. These tests check
 * every one of its decisions against a straightforward reference: the original algorithm, which
 * scans every thread for every CPU at every step and then applies the default policy to the
 * whole list. Same alternatives, in the same order, and the same pick, on random programs and
 * random choice arrays, and on the harness's own scenarios under every variant.
 */
import { fc, test } from '@fast-check/vitest';
import { afterEach, describe, expect } from 'vitest';
import { listVariants, Variant } from '../variants.ts';
import { runScenario } from '../../properties/runner.ts';
import { pctScenarioArb, scenarioArb } from '../../properties/scenario.ts';
import { ArrayChoices, Machine, type Pick, type Proc, type Thread, Wait } from './machine.ts';
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
  if (!acts.some((a) => a.kind === 'thread') && deadline >= 0) acts.push({ kind: 'time' });
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
function checkEveryPick(): { picks: number; lazy: number; counted: number } {
  const stats = { picks: 0, lazy: 0, counted: 0 };
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
  const m = new Machine(p.cpus, new ArrayChoices(p.choices), {
    maxStepsPerRound: 2_000,
    maxTimePerRound: 1e9,
  });
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
