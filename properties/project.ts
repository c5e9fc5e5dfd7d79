/**
 * Schedule projection: a failing run's schedule carried over to its scenario with some
 * operations dropped. Dropping an operation shifts every later choice of a uniform stream (and
 * every later decision of a PCT schedule), so the smaller scenario runs another interleaving, and
 * when the failure hangs on one long schedule no fresh schedule finds it again either
 * (master-freed-under-rcu found with 36–100 choices and 6 operations). So record which actor
 * (thread, interrupt or time) ran at each step of the failing run, and replay the smaller scenario
 * picking, at each decision, the first actor of the recording's next few steps that can run: the
 * dropped operations' threads left out, later operations' threads renamed to their new indices,
 * the hardware's own choices in their order. The replay's decisions become the smaller
 * scenario's choice stream: a plain uniform scenario, which replays the same run.
 */
import { ArrayChoices, type ChoiceSource, Machine, type Pick } from '../impl/sim/machine.ts';
import type { Variant } from '../impl/variants.ts';
import { PctChoices } from './pct.ts';
import { dropOps } from './reduce.ts';
import { runScenario } from './runner.ts';
import type { Scenario } from './scenario.ts';

/** How many recorded steps ahead of its place a replay looks for an actor that can run. */
export const PROJECTION_WINDOW = 16;

/** A run's schedule: who ran at each step, where its own schedule ran out, the hardware's picks. */
export interface Recording {
  readonly actors: readonly string[];
  /** Steps recorded before the run's schedule ran out (after it, the fair default ran). */
  readonly cut: number;
  readonly hw: readonly number[];
}

const actorOf = (m: Machine, p: Pick): string =>
  p.time ? 'time' : p.thread !== null ? p.thread.name : m.irqs[p.irq]!.name;

function withPicks<T>(hook: (m: Machine, p: Pick) => void, run: () => T): T {
  const before = Machine.pickHook;
  Machine.pickHook = hook;
  try {
    return run();
  } finally {
    Machine.pickHook = before;
  }
}

/** Wraps a scenario's schedule, noting every pick and the hardware's choices. */
class Recorder implements ChoiceSource {
  readonly actors: string[] = [];
  readonly hw: number[] = [];
  cut = -1;
  readonly nextAmong?: (actors: readonly string[]) => number;
  private calls: number[] = [];
  constructor(private readonly inner: ChoiceSource) {
    if (inner.nextAmong) this.nextAmong = (a) => inner.nextAmong!(a);
  }
  next(n: number, dflt?: number): number {
    const c = this.inner.next(n, dflt);
    this.calls.push(Math.max(0, c));
    return c;
  }
  exhausted(): boolean {
    const done = this.inner.exhausted?.() ?? false;
    if (done && this.cut < 0) this.cut = this.actors.length;
    return done;
  }
  pick(m: Machine, p: Pick): void {
    // A stream's scheduling call comes just before its pick; the calls before it were the
    // hardware's (during the previous step). A priority schedule decides through nextAmong.
    const scheduled = p.choice !== null && this.nextAmong === undefined;
    this.hw.push(...(scheduled ? this.calls.slice(0, -1) : this.calls));
    this.calls = [];
    this.actors.push(actorOf(m, p));
  }
  finish(): Recording {
    this.hw.push(...this.calls);
    return { actors: this.actors, cut: this.cut < 0 ? this.actors.length : this.cut, hw: this.hw };
  }
}

/** The schedule `s` ran under `variant`, step by step (setup included: it is the same). */
export function record(s: Scenario, variant: Variant): Recording {
  const rec = new Recorder(s.pct ? new PctChoices(s.pct) : new ArrayChoices(s.choices));
  withPicks(
    (m, p) => rec.pick(m, p),
    () => runScenario(s, variant, { schedule: rec }),
  );
  return rec.finish();
}

/** Replays a recording on another scenario, writing down its decisions as a choice stream. */
class Replay implements ChoiceSource {
  readonly out: number[] = [];
  private at = 0;
  private h = 0;
  constructor(private readonly rec: Recording) {}
  /** Only the hardware asks here: scheduling decisions go through nextAmong. */
  next(n: number): number {
    const c = this.h < this.rec.hw.length ? this.rec.hw[this.h++]! % n : 0;
    this.out.push(c);
    return c;
  }
  nextAmong(names: readonly string[]): number {
    const end = Math.min(this.at + PROJECTION_WINDOW, this.rec.cut);
    for (let q = this.at; q < end; q++) {
      const i = names.indexOf(this.rec.actors[q]!);
      if (i >= 0) return i;
    }
    return -1;
  }
  exhausted(): boolean {
    return this.at >= this.rec.cut && this.h >= this.rec.hw.length;
  }
  pick(m: Machine, p: Pick): void {
    if (p.choice !== null) this.out.push(p.index);
    const a = actorOf(m, p);
    const end = Math.min(this.at + PROJECTION_WINDOW, this.rec.actors.length);
    for (let q = this.at; q < end; q++) {
      if (this.rec.actors[q] === a) {
        this.at = q + 1;
        return;
      }
    }
  }
}

/** Operation threads are named `kind#index` (System.start). */
const OP_THREAD = /^([a-z]+)#(\d+)$/;

/**
 * The recording with the operations at `dropped` (indices over the scenario's operations in
 * order) left out: their threads' steps removed, later operations' threads renumbered.
 */
export function withoutOps(rec: Recording, dropped: ReadonlySet<number>): Recording {
  const sorted = [...dropped].sort((a, b) => a - b);
  const renamed = (name: string): string | null => {
    const m = OP_THREAD.exec(name);
    if (m === null) return name;
    const i = Number(m[2]);
    if (dropped.has(i)) return null;
    return `${m[1]}#${i - sorted.filter((d) => d < i).length}`;
  };
  const actors: string[] = [];
  let cut = 0;
  rec.actors.forEach((a, q) => {
    const r = renamed(a);
    if (r !== null) actors.push(r);
    if (q < rec.cut) cut = actors.length;
  });
  return { actors, cut: rec.cut === 0 ? 0 : cut, hw: rec.hw };
}

/**
 * `s` without the operations at `dropped`, with the schedule projected from `rec` (its run's
 * recording under `variant`): a uniform scenario. Null when every operation would go.
 */
export function projectDrop(
  s: Scenario,
  rec: Recording,
  dropped: ReadonlySet<number>,
  variant: Variant,
): Scenario | null {
  const left = dropOps(s, dropped);
  if (left === null) return null;
  const smaller: Scenario = { topology: s.topology, rounds: left.rounds, choices: [] };
  const replay = new Replay(withoutOps(rec, dropped));
  withPicks(
    (m, p) => replay.pick(m, p),
    () => runScenario(smaller, variant, { schedule: replay }),
  );
  // Cut the tail the fair default would have picked anyway: the baseline reads the same stream,
  // and there a tail of explicit choices would steer a run the failing one left to the default.
  const choices = runScenario({ ...smaller, choices: replay.out }, variant).normalizedChoices;
  return { ...smaller, choices };
}
