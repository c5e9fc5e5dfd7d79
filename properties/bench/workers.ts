/**
 * Worker threads for the benchmark: one per core, each on its own slice of the work (started
 * under tsx as properties/engine/spawn.ts does).
 */
import type { Worker } from 'node:worker_threads';
import { nextMessage as awaitMessage, spawnWorker } from '../engine/spawn.ts';
import type { Throughput } from './throughput.ts';

export type WorkerTask =
  | {
      readonly task: 'throughput';
      readonly variant: string;
      readonly scenarios: number;
      readonly seed: number;
      readonly part: number;
      readonly of: number;
    }
  | {
      readonly task: 'fuzz';
      readonly variant: string;
      /** Worker `part` of `of` searches seeds firstSeed + part, firstSeed + part + of, ... */
      readonly firstSeed: number;
      readonly part: number;
      readonly of: number;
      /** Wall-clock end (Date.now() scale). */
      readonly until: number;
    };

export type ToWorker = { readonly type: 'go' };

export type FromWorker =
  | { readonly type: 'ready'; readonly scenarios: number }
  | { readonly type: 'pass'; readonly steps: number; readonly ms: number; readonly violating: number }
  | {
      readonly type: 'fuzzed';
      readonly runs: number;
      readonly steps: number;
      readonly searches: number;
      readonly violations: number;
    };

export const startWorker = (task: WorkerTask): Worker =>
  spawnWorker(new URL('./worker.ts', import.meta.url), task);

/** The next message of `w`; a worker error or exit rejects. */
export const nextMessage = (w: Worker): Promise<FromWorker> => awaitMessage<FromWorker>(w, 'bench worker');

/**
 * The throughput figures of all cores together (no verdict count: the workers only run); a pass
 * is timed from the start signal to the last worker done.
 */
export interface AllCores extends Omit<Throughput, 'violating'> {
  readonly workers: number;
}

/**
 * Every worker builds the same scenario list and runs its slice (index mod workers): a warm-up
 * pass when it starts, then one timed pass per start signal. The figure is the fastest pass.
 */
export async function measureAllCores(opts: {
  readonly workers: number;
  readonly variant: string;
  readonly scenarios: number;
  readonly seed: number;
  readonly passes: number;
}): Promise<AllCores> {
  const ws = Array.from({ length: opts.workers }, (_, part) =>
    startWorker({
      task: 'throughput',
      variant: opts.variant,
      scenarios: opts.scenarios,
      seed: opts.seed,
      part,
      of: opts.workers,
    }),
  );
  try {
    await Promise.all(ws.map((w) => nextMessage(w)));
    const passesMs: number[] = [];
    let steps = 0;
    let bestMs = Number.POSITIVE_INFINITY;
    for (let p = 0; p < opts.passes; p++) {
      const t0 = performance.now();
      const done = ws.map((w) => nextMessage(w));
      for (const w of ws) w.postMessage({ type: 'go' } satisfies ToWorker);
      const results = await Promise.all(done);
      const ms = performance.now() - t0;
      passesMs.push(ms);
      if (ms < bestMs) {
        bestMs = ms;
        steps = results.reduce((n, r) => n + (r.type === 'pass' ? r.steps : 0), 0);
      }
    }
    return {
      workers: opts.workers,
      scenarios: opts.scenarios,
      steps,
      bestMs,
      passesMs,
      stepsPerSec: (steps / bestMs) * 1000,
      scenariosPerSec: (opts.scenarios / bestMs) * 1000,
    };
  } finally {
    await Promise.all(ws.map((w) => w.terminate()));
  }
}
