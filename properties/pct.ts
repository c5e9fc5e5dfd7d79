/**
 * A PCT-style schedule (probabilistic concurrency testing): every actor (thread, interrupt,
 * hardware agent, time) gets a priority when first seen; the enabled actor with the highest
 * priority always runs; at a few change points the actor picked there drops below everyone.
 * Bugs that need one actor to be starved at one moment (a late worker, a late interrupt) are
 * found with a handful of change points, where a uniform random schedule rarely gets there.
 */
import type { ChoiceSource } from '../impl/sim/machine.ts';

export interface PctSchedule {
  /** Priority of the k-th actor seen (higher runs first); actors beyond the list get 0. */
  readonly priorities: readonly number[];
  /** Decision indices at which the actor picked drops to the lowest priority. */
  readonly changes: readonly number[];
}

export class PctChoices implements ChoiceSource {
  private readonly prio = new Map<string, number>();
  private decision = 0;
  private lowest = -1;
  constructor(private readonly s: PctSchedule) {}

  /** Hardware nondeterminism: PCT leaves it to the default. */
  next(): number {
    return -1;
  }

  nextAmong(actors: readonly string[]): number {
    for (const a of actors) {
      if (!this.prio.has(a)) this.prio.set(a, this.s.priorities[this.prio.size] ?? 0);
    }
    let best = 0;
    for (let i = 1; i < actors.length; i++) {
      // Ties go to the earlier alternative, which is the canonical order: deterministic.
      if (this.prio.get(actors[i]!)! > this.prio.get(actors[best]!)!) best = i;
    }
    if (this.s.changes.includes(this.decision)) this.prio.set(actors[best]!, this.lowest--);
    this.decision++;
    return best;
  }
}
