/**
 * A fuzz worker thread: runs the jobs the coordinator posts (one at a time) and posts back every
 * event as it happens, then the result. Started by pool.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Control, type Job, runJob } from './jobs.ts';
import type { FromWorker, ToWorker } from './pool.ts';

const port = parentPort;
if (port === null) throw new Error('worker.ts runs as a worker thread (see pool.ts)');
const ctl = new Control((workerData as { control: SharedArrayBuffer }).control);

/**
 * Test hook: the worker that is about to run this stream position dies on the spot, without a
 * word, as a worker killed by the OOM killer or a native crash would (see the CLI tests).
 */
const crashAt = process.env.ATC_HARNESS_TEST_CRASH_AT;
const beforeRun =
  crashAt !== undefined && /^\d+$/.test(crashAt)
    ? (ordinal: number) => {
        if (ordinal === Number(crashAt)) process.exit(70);
      }
    : undefined;

const post = (m: FromWorker) => port.postMessage(m);

port.on('message', (msg: ToWorker) => {
  const { id, job } = msg as { id: number; job: Job };
  runJob(job, ctl, (event) => post({ type: 'event', id, event }), { yieldMs: Infinity, beforeRun }).then(
    (result) => post({ type: 'result', id, result }),
    (e: unknown) => post({ type: 'error', id, message: e instanceof Error ? e.message : String(e) }),
  );
});
