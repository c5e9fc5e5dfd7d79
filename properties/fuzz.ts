/**
 * The fuzz engine: random scenarios until the first violation or the budget, then a shrink
 * that keeps the same property violated (fast-check's, then the reducer's: reduce.ts), then a
 * minimal choice stream.
 *
 * This is the sequential reference: `npm run fuzz` runs the same search in blocks on worker
 * threads (properties/engine/), and its outcome for a seed and a `--runs` budget is the one
 * {@link fuzz} gives (engine.test.ts checks it).
 */
import fc from 'fast-check';
import type { Variant } from '../impl/variants.ts';
import { Coverage, type CoverageJson } from './coverage.ts';
import { isSafety } from './invariants.ts';
import { reduce, type ReduceOptions } from './reduce.ts';
import { type RunResult, runScenario } from './runner.ts';
import { type Scenario, scenarioArb, scenarioSize } from './scenario.ts';

export interface FuzzOptions {
  readonly variant: Variant;
  readonly seed: number;
  /** Stop after this many scenarios. */
  readonly runs?: number;
  /** Stop after this much wall time (the only nondeterminism: how far the search gets). */
  readonly timeMs?: number;
  /** Upper bound on shrinking wall time. */
  readonly shrinkTimeMs?: number;
  readonly arbitrary?: fc.Arbitrary<Scenario>;
  /** Record the search's protocol coverage (coverage.ts), stamped with each run's index. */
  readonly coverage?: boolean;
}

export interface FoundViolation {
  readonly property: string;
  readonly message: string;
  readonly scenario: Scenario;
  readonly choices: readonly number[];
  readonly original: { ops: number; rounds: number; choices: number };
  readonly shrunk: { ops: number; rounds: number; choices: number };
  /** Scenarios run until the first violation (1-based). */
  readonly runsToDetect: number;
  readonly shrinkRuns: number;
}

export interface FuzzResult {
  readonly variant: string;
  readonly seed: number;
  readonly runs: number;
  readonly steps: number;
  readonly elapsedMs: number;
  readonly shrinkMs: number;
  readonly violation: FoundViolation | null;
  /** The search runs' coverage (shrinking not included), when asked for. */
  readonly coverage?: CoverageJson;
}

/** Runs spent looking for a safety violation after a conformance one (at least). */
export const SAFETY_GRACE_RUNS = 50;

/**
 * After a conformance violation first seen at run index `i` (0-based), a run that violates
 * conformance again ends the search once this many runs have been made.
 */
export const conformanceStopAt = (i: number): number => Math.max(2 * (i + 1), i + 1 + SAFETY_GRACE_RUNS);

class StopSearch extends Error {}

export const violates = (r: RunResult, property: string): boolean =>
  r.violations.some((v) => v.property === property);

/**
 * What the post-shrink reducer (reduce.ts) keeps: `property` still violated under `v`; and its
 * options: the choice stream normalised under `v`, a `until` deadline (performance.now() ms).
 * fuzz() and the engine's shrink job (engine/jobs.ts) both reduce with these, so they agree.
 */
export function reduceSpec(
  v: Variant,
  property: string,
  until: number,
): { keeps: (s: Scenario) => boolean; opts: ReduceOptions } {
  return {
    keeps: (s) => violates(runScenario(s, v), property),
    opts: { until, normalizeChoices: (s) => runScenario(s, v).normalizedChoices },
  };
}

/**
 * The last step of a shrink: keep only the choices that were consumed, reduced to their smallest
 * equivalent, when that still violates `property`; and the message of that violation.
 */
export function finishShrink(
  candidate: Scenario,
  v: Variant,
  property: string,
): { scenario: Scenario; message: string } {
  let scenario = candidate;
  const final = runScenario(scenario, v);
  const trimmed: Scenario = { ...scenario, choices: final.normalizedChoices };
  if (violates(runScenario(trimmed, v), property)) scenario = trimmed;
  const result = runScenario(scenario, v);
  const message = result.violations.find((x) => x.property === property)?.message ?? '';
  return { scenario, message };
}

export function fuzz(opts: FuzzOptions): FuzzResult {
  const v = opts.variant;
  const arb = opts.arbitrary ?? scenarioArb;
  const t0 = performance.now();
  let runs = 0;
  let steps = 0;
  // A conformance violation (the impl departs from the model) is confirmed by a short further
  // search for a safety violation, which is what a reviewer needs to see first.
  let firstConformance = -1;
  const stopAt = conformanceStopAt;
  const cov = opts.coverage ? new Coverage() : undefined;
  const search = fc.check(
    fc.property(arb, (s) => {
      // The grace window after a conformance violation ends after exactly stopAt(first) runs.
      if (firstConformance >= 0 && runs >= stopAt(firstConformance)) throw new StopSearch();
      const index = runs++;
      if (cov) cov.stamp = index;
      const r = runScenario(s, v, { coverage: cov });
      steps += r.steps;
      if (r.violations.length === 0) return true;
      if (isSafety(r.violations[0]!.property)) return false;
      if (firstConformance < 0) firstConformance = index;
      if (runs >= stopAt(firstConformance)) throw new StopSearch();
      return true;
    }),
    {
      seed: opts.seed,
      numRuns: opts.runs ?? Number.MAX_SAFE_INTEGER,
      interruptAfterTimeLimit: opts.timeMs,
      markInterruptAsFailure: false,
      endOnFailure: true,
    },
  );
  const elapsedMs = Math.round(performance.now() - t0);
  const base = { variant: v.name, seed: opts.seed, runs, steps, ...(cov ? { coverage: cov.toJSON() } : {}) };
  const safetyFound = search.failed && !(search.errorInstance instanceof StopSearch);
  let path: string;
  if (safetyFound && search.counterexamplePath !== null) path = search.counterexamplePath;
  else if (firstConformance >= 0) path = String(firstConformance);
  else return { ...base, elapsedMs, shrinkMs: 0, violation: null };
  const first = fc.sample(arb, { seed: opts.seed, path, numRuns: 1 })[0]!;
  const property = runScenario(first, v).violations[0]!.property;

  // Shrink from the same path, keeping the same property violated.
  const t1 = performance.now();
  let shrinkRuns = 0;
  const shrink = fc.check(
    fc.property(arb, (s) => {
      shrinkRuns++;
      return !violates(runScenario(s, v), property);
    }),
    {
      seed: opts.seed,
      path,
      numRuns: 1,
      interruptAfterTimeLimit: opts.shrinkTimeMs ?? 60_000,
      markInterruptAsFailure: false,
    },
  );
  // fast-check shrinks the rounds only with the topology they were drawn for: reduce further.
  const r = reduceSpec(v, property, t1 + (opts.shrinkTimeMs ?? 60_000));
  const reduced = reduce(shrink.counterexample?.[0] ?? first, r.keeps, r.opts);
  shrinkRuns += reduced.runs;
  const { scenario, message } = finishShrink(reduced.scenario, v, property);
  return {
    ...base,
    elapsedMs,
    shrinkMs: Math.round(performance.now() - t1),
    violation: {
      property,
      message,
      scenario,
      choices: scenario.choices,
      original: scenarioSize(first),
      shrunk: scenarioSize(scenario),
      runsToDetect: runs,
      shrinkRuns,
    },
  };
}
