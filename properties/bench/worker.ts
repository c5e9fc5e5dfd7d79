/** A benchmark worker thread (started by workers.ts): a throughput slice or a fuzz loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { Variant } from '../../impl/variants.ts';
import { fuzz } from '../fuzz.ts';
import { slice, standardScenarios } from './mix.ts';
import { runPass } from './throughput.ts';
import type { FromWorker, ToWorker, WorkerTask } from './workers.ts';

const port = parentPort;
if (port === null) throw new Error('worker.ts runs as a worker thread (see workers.ts)');
const task = workerData as WorkerTask;
const post = (m: FromWorker) => port.postMessage(m);
const v = Variant.parse(task.variant);

if (task.task === 'throughput') {
  const list = slice(standardScenarios(task.scenarios, task.seed), task.part, task.of);
  // Warm up as long as the one-core measurement does (two passes over as many scenarios).
  for (let i = 0; i < 2 * task.of; i++) runPass(list, v);
  port.on('message', (m: ToWorker) => {
    if (m.type !== 'go') return;
    const p = runPass(list, v);
    post({ type: 'pass', steps: p.steps, ms: p.ms, violating: p.violating });
  });
  post({ type: 'ready', scenarios: list.length });
} else {
  // Search after search (each stops at its first violation and shrinks it) until the deadline.
  let runs = 0;
  let steps = 0;
  let searches = 0;
  let violations = 0;
  for (let seed = task.firstSeed + task.part; Date.now() < task.until; seed += task.of) {
    const left = task.until - Date.now();
    const r = fuzz({ variant: v, seed, timeMs: left, shrinkTimeMs: Math.max(1, task.until - Date.now()) });
    runs += r.runs;
    steps += r.steps;
    searches++;
    if (r.violation !== null) violations++;
  }
  post({ type: 'fuzzed', runs, steps, searches, violations });
}
