/**
 * Starting a worker thread on a TypeScript module. Under tsx (every npm script) a worker does not
 * inherit the TypeScript hooks, and on Node 20 `execArgv: ['--import', 'tsx']` does not reach the
 * worker's entry module either: a one-line bootstrap registers tsx's ESM hooks in the worker,
 * then imports the entry. Compiled to JavaScript, the entry is started as it is.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** A worker running `entry` (a URL next to the caller: `new URL('./x.ts', import.meta.url)`). */
export function spawnWorker(entry: URL, workerData: unknown): Worker {
  if (!entry.href.endsWith('.ts')) return new Worker(entry, { workerData });
  const code = `import(${JSON.stringify(tsxApi())}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(code, { eval: true, workerData });
}

/** The URL of tsx's ESM API (import.meta.resolve is synchronous from Node 20.6 on). */
function tsxApi(): string {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href;
  }
}

/**
 * The next message of `w` that `until` accepts (each one before it goes to `seen`); an error in
 * the worker, or its exit ("`label` exited with code N"), rejects.
 */
export function nextMessage<T>(
  w: Worker,
  label: string,
  until: (m: T) => boolean = () => true,
  seen: (m: T) => void = () => {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
    };
    const onMessage = (m: T) => {
      if (!until(m)) return seen(m);
      cleanup();
      resolve(m);
    };
    const onError = (e: unknown) => {
      cleanup();
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`${label} exited with code ${code}`));
    };
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
  });
}
