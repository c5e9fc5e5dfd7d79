/**
 * Catalog detection: for a flag, search random scenarios (the generic arbitraries, nothing
 * per row) for one that violates some property under `v4+flag` and none under `v4`, then shrink
 * (fast-check, then the reducer: reduce.ts) keeping both. Differential, because v4 as posted has findings of its own: a scenario that
 * fails on v4 too shows v4's bug, not the flag's.
 */
import fc from 'fast-check';
import { FLAGS, Variant } from '../impl/variants.ts';
import type { Coverage } from './coverage.ts';
import { reduce } from './reduce.ts';
import { runScenario } from './runner.ts';
import { pctScenarioArb, type Scenario, scenarioArb, scenarioSize } from './scenario.ts';

export interface Detection {
  readonly flag: string;
  readonly seed: number;
  readonly detected: boolean;
  readonly property: string | null;
  readonly message: string | null;
  /** Scenarios run until the first differential violation (all of the budget if none). */
  readonly runs: number;
  readonly msToDetect: number;
  readonly shrinkMs: number;
  readonly scenario: Scenario | null;
  readonly shrunk: { ops: number; rounds: number; choices: number } | null;
}

export interface DetectOptions {
  readonly runs: number;
  /** Schedules: uniform choice streams (default) or PCT priorities with change points. */
  readonly strategy?: 'uniform' | 'pct';
  readonly timeMs?: number;
  readonly shrinkTimeMs?: number;
  /** Predicate calls the post-shrink reducer may make (reduce.ts; default its own default). */
  readonly reduceRuns?: number;
  readonly baseline?: Variant;
  /** Records the search's runs under `v4+flag` (not the baseline's, not the shrink's) here. */
  readonly coverage?: Coverage;
}

/** The most severe property violated under `flagged` and not under `baseline`, or null. */
function differential(
  s: Scenario,
  flagged: Variant,
  baseline: Variant,
  coverage?: Coverage,
): { property: string; message: string } | null {
  const r = runScenario(s, flagged, { coverage });
  if (r.violations.length === 0) return null;
  const base = new Set(runScenario(s, baseline).violations.map((v) => v.property));
  // The baseline must pass outright: any baseline violation means the scenario is not the flag's.
  if (base.size > 0) return null;
  const v = r.violations[0]!;
  return { property: v.property, message: v.message };
}

export function detect(flag: string, seed: number, opts: DetectOptions): Detection {
  const flagged = Variant.parse(`v4+${flag}`);
  const baseline = opts.baseline ?? Variant.parse('v4');
  const arb = opts.strategy === 'pct' ? pctScenarioArb : scenarioArb;
  const t0 = performance.now();
  let runs = 0;
  const search = fc.check(
    fc.property(arb, (s) => {
      if (opts.coverage) opts.coverage.stamp = runs;
      runs++;
      return differential(s, flagged, baseline, opts.coverage) === null;
    }),
    {
      seed,
      numRuns: opts.runs,
      interruptAfterTimeLimit: opts.timeMs,
      markInterruptAsFailure: false,
      endOnFailure: true,
    },
  );
  const msToDetect = performance.now() - t0;
  if (!search.failed || search.counterexample === null || search.counterexamplePath === null) {
    return {
      flag,
      seed,
      detected: false,
      property: null,
      message: null,
      runs,
      msToDetect,
      shrinkMs: 0,
      scenario: null,
      shrunk: null,
    };
  }
  const property = differential(search.counterexample[0], flagged, baseline)!.property;
  const keeps = (s: Scenario) => differential(s, flagged, baseline)?.property === property;
  const t1 = performance.now();
  const shrink = fc.check(
    fc.property(arb, (s) => !keeps(s)),
    {
      seed,
      path: search.counterexamplePath,
      numRuns: 1,
      interruptAfterTimeLimit: opts.shrinkTimeMs ?? 30_000,
      markInterruptAsFailure: false,
    },
  );
  // fast-check shrinks the rounds only with the topology they were drawn for: reduce further,
  // keeping the differential (the same property under the flag, nothing under v4).
  let scenario = reduce(shrink.counterexample?.[0] ?? search.counterexample[0], keeps, {
    maxRuns: opts.reduceRuns,
    until: t1 + (opts.shrinkTimeMs ?? 30_000),
    normalizeChoices: (s) => runScenario(s, flagged).normalizedChoices,
  }).scenario;
  if (!scenario.pct) {
    const trimmed: Scenario = { ...scenario, choices: runScenario(scenario, flagged).normalizedChoices };
    if (keeps(trimmed)) scenario = trimmed;
  }
  return {
    flag,
    seed,
    detected: true,
    property,
    message: differential(scenario, flagged, baseline)!.message,
    runs,
    msToDetect,
    shrinkMs: performance.now() - t1,
    scenario,
    shrunk: scenarioSize(scenario),
  };
}

export const catalogFlags = (): string[] => FLAGS.map((f) => f.id);
