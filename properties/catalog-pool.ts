/**
 * The catalog on every core: each seed of a row is searched by all workers at once, each with
 * its own fast-check seed (worker 0 the row's seed itself, so that one worker finds what
 * detect() does), and the first to find the row stops the others and shrinks what it found.
 * Time to detect is the finder's wall time from the start of the search; runs count every
 * worker's runs. Workers start (and load the harness) before any search, outside every timing.
 */
import type { Worker } from 'node:worker_threads';
import type { DetectOptions, Detection } from './catalog.ts';
import { Coverage, type CoverageJson } from './coverage.ts';
import { nextMessage, spawnWorker } from './engine/spawn.ts';

export interface ToCatalogWorker {
  readonly id: number;
  readonly flag: string;
  /** The row's seed (what the detection reports) and this worker's own fast-check seed. */
  readonly seed: number;
  readonly partSeed: number;
  readonly opts: Omit<DetectOptions, 'coverage'>;
}

export type FromCatalogWorker =
  | { readonly type: 'ready'; readonly id: 0 }
  | { readonly type: 'found'; readonly id: number }
  | {
      readonly type: 'done';
      readonly id: number;
      readonly detection: Detection;
      readonly coverage: CoverageJson;
    };

/** Worker `part`'s fast-check seed for a row's `seed`: far from every other part's and row's. */
export const partSeed = (seed: number, part: number): number =>
  part === 0 ? seed : (seed + part * 0x9e3779b1) | 0;

export class CatalogPool {
  /** The id of the search to stop (every worker's stop() compares its own). */
  private readonly stop = new SharedArrayBuffer(4);
  private readonly workers: readonly Worker[];
  private nextId = 1;

  private constructor(n: number) {
    this.workers = Array.from({ length: n }, () =>
      spawnWorker(new URL('./catalog-worker.ts', import.meta.url), { stop: this.stop }),
    );
  }

  /** Starts `n` workers and waits until each has loaded the harness. */
  static async start(n: number): Promise<CatalogPool> {
    const pool = new CatalogPool(n);
    await Promise.all(pool.workers.map((w) => nextMessage<FromCatalogWorker>(w, 'catalog worker')));
    return pool;
  }

  /** One seed of a row, searched by every worker; its coverage is merged into `coverage`. */
  async detect(flag: string, seed: number, opts: DetectOptions): Promise<Detection> {
    const id = this.nextId++;
    const { coverage, ...o } = opts;
    const stop = new Int32Array(this.stop);
    const parts = this.workers.map(async (w, part) => {
      const done = nextMessage<FromCatalogWorker>(
        w,
        'catalog worker',
        (m) => m.type === 'done' && m.id === id,
        (m) => {
          // The first find stops the other workers' searches.
          if (m.type === 'found' && m.id === id) Atomics.store(stop, 0, id);
        },
      );
      w.postMessage({ id, flag, seed, partSeed: partSeed(seed, part), opts: o } satisfies ToCatalogWorker);
      return (await done) as Extract<FromCatalogWorker, { type: 'done' }>;
    });
    const results = await Promise.all(parts);
    for (const r of results) coverage?.merge(Coverage.fromJSON(r.coverage));
    const runs = results.reduce((n, r) => n + r.detection.runs, 0);
    const found = results.filter((r) => r.detection.detected).map((r) => r.detection);
    // Two workers may both find it before either sees the other's stop: the faster counts.
    const first = found.sort((a, b) => a.msToDetect - b.msToDetect)[0];
    if (first !== undefined) return { ...first, runs };
    return {
      ...results[0]!.detection,
      runs,
      msToDetect: Math.max(...results.map((r) => r.detection.msToDetect)),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
