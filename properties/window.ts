/**
 * A row's schedule window: of N random schedules of its witness's own scenario (topology and
 * rounds as written, each schedule drawn as the catalog's search draws it), how many make the
 * row's differential hold. It separates the two reasons a row is hard to find: a wide window with
 * a rare round (the generator is the bottleneck) from a narrow window (the schedule is: even a
 * search handed the round waits about `runs / hits` runs for it).
 */
import fc from 'fast-check';
import { Variant } from '../impl/variants.ts';
import { type Base, baselineOf, failingVariantOf } from './catalog.ts';
import { runScenario } from './runner.ts';
import { choicesArb, pctArb, type Scenario } from './scenario.ts';
import { LIMITS, witnessOf } from './witnesses/witnesses.ts';

export interface Hits {
  readonly hits: number;
  readonly runs: number;
}

export interface RowWindow {
  readonly id: string;
  readonly base: Base;
  readonly uniform: Hits;
  readonly pct: Hits;
}

/**
 * The pair a row's differential compares: `failing` must violate a property under `variant`,
 * `passing` none under `baseline`. For a flag both are the witness (under base+flag and the
 * base); for a known limit, the witness and its control, both under the base. Null when the
 * row has no such pair in this model.
 */
function pairOf(
  id: string,
  base: Base,
): { failing: Scenario; passing: Scenario; variant: Variant; baseline: Variant } | null {
  const witness = witnessOf(id, base);
  if (witness === undefined) throw new Error(`unknown row '${id}'`);
  const limit = LIMITS.find((l) => l.id === id);
  const passing = limit === undefined ? witness : limit.control;
  if (witness === null || passing === null) return null;
  return {
    failing: witness,
    passing,
    variant: Variant.parse(failingVariantOf(id, base)),
    baseline: Variant.parse(baselineOf(id, base)),
  };
}

/**
 * `runs` uniform choice streams and `runs` PCT schedules from `seed` (the same for every row),
 * each put on the witness in place of its own schedule; null when the row has no witness pair.
 */
export function scheduleWindow(id: string, base: Base, runs: number, seed: number): RowWindow | null {
  const pair = pairOf(id, base);
  if (pair === null) return null;
  const holds = (schedule: Pick<Scenario, 'choices' | 'pct'>): boolean => {
    const on = (s: Scenario): Scenario => ({ topology: s.topology, rounds: s.rounds, ...schedule });
    return (
      runScenario(on(pair.failing), pair.variant).violations.length > 0 &&
      runScenario(on(pair.passing), pair.baseline).violations.length === 0
    );
  };
  const count = (schedules: Pick<Scenario, 'choices' | 'pct'>[]): Hits => ({
    hits: schedules.filter(holds).length,
    runs: schedules.length,
  });
  const opts = { seed, numRuns: runs };
  return {
    id,
    base,
    uniform: count(fc.sample(choicesArb, opts).map((choices) => ({ choices }))),
    pct: count(fc.sample(pctArb, opts).map((pct) => ({ choices: [], pct }))),
  };
}

/**
 * Runs a search that drew only the witness's round would wait, on average, for the differential
 * with the catalog's mixed schedules (one in two of each kind); null when no schedule hit.
 */
export const runsPerHit = (w: RowWindow): number | null => {
  const hits = w.uniform.hits + w.pct.hits;
  return hits === 0 ? null : (w.uniform.runs + w.pct.runs) / hits;
};
