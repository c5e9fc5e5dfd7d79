/**
 * Runs one scenario on the impl under a variant with every observer on, and the refinement
 * check at each quiescent point. Pure: same scenario and variant ⇒ same result.
 */
import type { SimEvent } from '../impl/events.ts';
import {
  ArrayChoices,
  type ChoiceSource,
  type LogLine,
  type TraceStep,
  type Violation,
} from '../impl/sim/machine.ts';
import { System } from '../impl/system.ts';
import type { Variant } from '../impl/variants.ts';
import { init, type State } from '../model/model.ts';
import type { Coverage } from './coverage.ts';
import { recordRound, watchOpStarts } from './coverage-probe.ts';
import { PctChoices } from './pct.ts';
import { Observers, propertyRank } from './invariants.ts';
import { abstraction, checkRound, consts, describeMismatch } from './refinement.ts';
import type { Scenario } from './scenario.ts';

/** The events a run keeps: what the findings' signatures read (properties/findings.ts). */
const RECORDED: ReadonlySet<SimEvent['kind']> = new Set([
  'syncReturn',
  'syncAtcError',
  'invalidationIntoFlr',
  'atsFenced',
  'eatsEnabled',
]);

export interface RunResult {
  /** All violations, most severe first. */
  readonly violations: readonly Violation[];
  readonly steps: number;
  /** Rounds that reached quiescence. */
  readonly roundsDone: number;
  /** Choices actually consumed; the rest of the stream did not matter. */
  readonly choicesUsed: number;
  /**
   * The consumed choices reduced modulo their alternatives, without the longest tail of choices
   * that each picked what the fair default would have picked: an equivalent, smaller stream
   * (replayed, the same run step for step).
   */
  readonly normalizedChoices: readonly number[];
  readonly log: readonly LogLine[];
  readonly trace: readonly TraceStep[];
  /** The step at which each round started (for rendering). */
  readonly roundStarts: readonly number[];
  /** What the hardware and kernel reported, in order (for finding signatures). */
  readonly events: readonly SimEvent[];
}

export interface RunOptions {
  readonly trace?: boolean;
  /**
   * The per-step invariant checks and the quiescent checks (refinement included); default on.
   * Off only to measure what they cost (npm run bench): the run then reports only what the
   * machine and the kernel code detect themselves (deadlock, livelock, use-after-free, sleeping
   * in atomic context), and goes on where a check would have stopped it.
   */
  readonly observers?: boolean;
  /** Records the run's protocol coverage here (coverage.ts); absent, the run pays nothing for it. */
  readonly coverage?: Coverage;
  /** Called with the system before it probes: a read-only observer may subscribe (tradeoffs.ts). */
  readonly onSystem?: (sys: System) => void;
  /** Schedules the rounds instead of the scenario's own choices or PCT schedule (project.ts). */
  readonly schedule?: ChoiceSource;
}

export function runScenario(s: Scenario, v: Variant, opts: RunOptions = {}): RunResult {
  const setupChoices = new ArrayChoices([]);
  const sys = new System(s.topology, v, setupChoices);
  opts.onSystem?.(sys);
  sys.m.tracing = opts.trace ?? false;
  const checks = opts.observers ?? true;
  const obs = checks ? new Observers(sys, Math.max(0, ...s.rounds.map((r) => r.length))) : null;
  const events: SimEvent[] = [];
  sys.k.ev.on((e) => {
    if (RECORDED.has(e.kind)) events.push(e);
  });
  const c = consts(sys);
  const roundStarts: number[] = [];
  let roundsDone = 0;
  const choices = new ArrayChoices(s.choices);

  let model: State | null = null;
  if (sys.setup() === 'quiescent') {
    const r = checks ? checkRound(c, initialModel(sys), [], abstraction(sys)) : null;
    if (r?.ok) model = r.state;
    else if (r)
      sys.m.violate('refinement', `after probe: ${describeMismatch(r.impl, r.candidates)}`, 'error');
    sys.m.setChoices(opts.schedule ?? (s.pct ? new PctChoices(s.pct) : choices));
    let opIndex = 0;
    for (const ops of s.rounds) {
      roundStarts.push(sys.m.stepCount);
      const unwatch = opts.coverage ? watchOpStarts(sys, ops, opIndex, opts.coverage) : null;
      const end = sys.runRound(ops, opIndex);
      unwatch?.();
      if (end !== 'quiescent') break;
      opIndex += ops.length;
      roundsDone++;
      obs?.atQuiescence();
      if (model !== null) {
        const res = checkRound(c, model, ops, abstraction(sys));
        if (res.ok) {
          if (opts.coverage) recordRound(opts.coverage, c, model, ops, res.order, res.state);
          model = res.state;
        } else {
          sys.m.violate(
            'refinement',
            `after round ${roundsDone}: no order of {${ops.map((o) => o.kind).join(', ')}} explains the state: ${describeMismatch(res.impl, res.candidates)}`,
            'error',
          );
          model = null;
        }
      }
      if (sys.m.fatal()) break;
    }
  }
  const violations = [...sys.m.violations].sort(
    (a, b) => propertyRank(a.property) - propertyRank(b.property) || a.step - b.step,
  );
  return {
    violations,
    steps: sys.m.stepCount,
    roundsDone,
    choicesUsed: choices.used,
    normalizedChoices: choices.normalized.slice(0, choices.significant),
    log: sys.m.log,
    trace: sys.m.trace,
    roundStarts,
    events,
  };
}

function initialModel(sys: System): State {
  return init(consts(sys));
}
