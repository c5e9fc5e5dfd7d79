/**
 * A catalog worker thread: searches one part of a row's seed (catalog-pool.ts), tells the pool
 * the moment it finds the row, then shrinks what it found and posts the detection.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { search, shrinkFound } from './catalog.ts';
import type { FromCatalogWorker, ToCatalogWorker } from './catalog-pool.ts';
import { Coverage } from './coverage.ts';

const port = parentPort;
if (port === null) throw new Error('catalog-worker.ts runs as a worker thread (see catalog-pool.ts)');
const stopped = new Int32Array((workerData as { stop: SharedArrayBuffer }).stop);
const post = (m: FromCatalogWorker) => port.postMessage(m);

port.on('message', ({ id, flag, seed, partSeed, opts }: ToCatalogWorker) => {
  const coverage = new Coverage();
  const o = { ...opts, coverage };
  const s = search(flag, partSeed, { ...o, stop: () => Atomics.load(stopped, 0) === id });
  if (s.found !== null) post({ type: 'found', id });
  const detection = shrinkFound(s, o, seed);
  post({ type: 'done', id, detection, coverage: coverage.toJSON() });
});
post({ type: 'ready', id: 0 });
