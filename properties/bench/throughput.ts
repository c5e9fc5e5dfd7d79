/**
 * Throughput of runScenario on a fixed list of scenarios: simulated steps and scenarios per
 * second on the calling thread, every scenario run to its end whatever its verdict.
 */
import type { Variant } from '../../impl/variants.ts';
import { runScenario } from '../runner.ts';
import type { Scenario } from '../scenario.ts';

export interface Pass {
  readonly steps: number;
  readonly ms: number;
  /** Scenarios with at least one violation (they are measured like the others). */
  readonly violating: number;
}

/** One pass over the list. */
export function runPass(list: readonly Scenario[], v: Variant, observers = true): Pass {
  let steps = 0;
  let violating = 0;
  const t0 = performance.now();
  for (const s of list) {
    const r = runScenario(s, v, { observers });
    steps += r.steps;
    if (r.violations.length > 0) violating++;
  }
  return { steps, ms: performance.now() - t0, violating };
}

export interface Throughput {
  readonly scenarios: number;
  readonly steps: number;
  /** The fastest pass (the least disturbed by anything else on the machine). */
  readonly bestMs: number;
  readonly passesMs: readonly number[];
  readonly stepsPerSec: number;
  readonly scenariosPerSec: number;
  readonly violating: number;
}

export function summarize(scenarios: number, passes: readonly Pass[]): Throughput {
  const best = passes.reduce((a, b) => (b.ms < a.ms ? b : a));
  return {
    scenarios,
    steps: best.steps,
    bestMs: best.ms,
    passesMs: passes.map((p) => p.ms),
    stepsPerSec: (best.steps / best.ms) * 1000,
    scenariosPerSec: (scenarios / best.ms) * 1000,
    violating: best.violating,
  };
}

/**
 * With and without the observers, alternating passes so that both see the same conditions
 * (after one warm-up pass of each, which is not counted). The figure of each is its fastest
 * pass: the one least disturbed by whatever else the machine was doing.
 */
export function measureSingleCore(
  list: readonly Scenario[],
  v: Variant,
  passes: number,
): { on: Throughput; off: Throughput } {
  runPass(list, v, true);
  runPass(list, v, false);
  const on: Pass[] = [];
  const off: Pass[] = [];
  for (let i = 0; i < passes; i++) {
    on.push(runPass(list, v, true));
    off.push(runPass(list, v, false));
  }
  return { on: summarize(list.length, on), off: summarize(list.length, off) };
}
