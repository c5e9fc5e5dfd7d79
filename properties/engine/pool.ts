/**
 * Executors: where jobs run. {@link InProcess} runs them on the main thread (`--workers 1`: no
 * thread, the path the tests use); {@link WorkerPool} on N worker threads. Either way a job ends
 * in a result or a crash, never in an exception: a crashed job keeps every event it sent.
 */
import type { Worker } from 'node:worker_threads';
import { Control, type Job, type JobEvent, type JobResult, runJob, YIELD_MS } from './jobs.ts';
import { spawnWorker } from './spawn.ts';

export type Outcome =
  { readonly ok: true; readonly result: JobResult } | { readonly ok: false; readonly error: string };

export interface Executor {
  /** How many jobs can run at once. */
  readonly size: number;
  /** Runs `job` in a free slot (the caller never runs more than `size` at once). */
  run(job: Job, onEvent: (e: JobEvent) => void): Promise<Outcome>;
  close(): Promise<void>;
}

export type ToWorker = { readonly id: number; readonly job: Job };
export type FromWorker =
  | { readonly type: 'event'; readonly id: number; readonly event: JobEvent }
  | { readonly type: 'result'; readonly id: number; readonly result: JobResult }
  | { readonly type: 'error'; readonly id: number; readonly message: string };

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class InProcess implements Executor {
  readonly size = 1;
  constructor(private readonly ctl: Control) {}

  async run(job: Job, onEvent: (e: JobEvent) => void): Promise<Outcome> {
    try {
      return { ok: true, result: await runJob(job, this.ctl, onEvent, { yieldMs: YIELD_MS }) };
    } catch (e) {
      return { ok: false, error: errText(e) };
    }
  }

  async close(): Promise<void> {}
}

/** A worker thread running worker.ts (spawn.ts: under tsx too). */
const spawn = (control: SharedArrayBuffer): Worker =>
  spawnWorker(new URL('./worker.ts', import.meta.url), { control });

interface Slot {
  worker: Worker | null;
  busy: boolean;
}

export class WorkerPool implements Executor {
  private readonly slots: Slot[];
  private nextId = 1;

  constructor(
    readonly size: number,
    private readonly ctl: Control,
  ) {
    this.slots = Array.from({ length: size }, () => ({ worker: null, busy: false }));
  }

  run(job: Job, onEvent: (e: JobEvent) => void): Promise<Outcome> {
    const slot = this.slots.find((s) => !s.busy);
    if (slot === undefined) return Promise.resolve({ ok: false, error: 'no free worker (engine bug)' });
    slot.busy = true;
    const worker = (slot.worker ??= spawn(this.ctl.buffer));
    const id = this.nextId++;
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const finish = (o: Outcome, dead: boolean) => {
        if (settled) return;
        settled = true;
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        if (dead) {
          slot.worker = null;
          void worker.terminate();
        }
        slot.busy = false;
        resolve(o);
      };
      const onMessage = (m: FromWorker) => {
        if (m.id !== id) return;
        if (m.type === 'event') onEvent(m.event);
        else if (m.type === 'result') finish({ ok: true, result: m.result }, false);
        else finish({ ok: false, error: m.message }, false);
      };
      const onError = (e: unknown) => finish({ ok: false, error: `worker crashed: ${errText(e)}` }, true);
      const onExit = (code: number) => finish({ ok: false, error: `worker exited with code ${code}` }, true);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage({ id, job } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker?.terminate()));
    for (const s of this.slots) s.worker = null;
  }
}
