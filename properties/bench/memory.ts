/**
 * The memory figure: a child process (this file, spawned by the benchmark) fuzzes for a fixed
 * wall time on N worker threads, search after search, and prints one JSON line with its peak
 * resident set (getrusage maxRSS, and VmHWM from /proc where there is one) and how far it got.
 *
 *   tsx properties/bench/memory.ts SECONDS WORKERS VARIANT FIRST_SEED
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { nextMessage, startWorker } from './workers.ts';

export interface MemoryFigures {
  readonly seconds: number;
  readonly workers: number;
  readonly variant: string;
  /** Peak resident set of the whole process (all its threads), MB. */
  readonly peakRssMB: number;
  /** The same from /proc/self/status VmHWM (Linux), or null. */
  readonly vmHwmMB: number | null;
  readonly elapsedMs: number;
  readonly runs: number;
  readonly steps: number;
  readonly searches: number;
  readonly violations: number;
  /** Fuzz-loop throughput: scenario generation, checks, shrinks and all. */
  readonly scenariosPerSec: number;
}

function vmHwmKB(): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function child(seconds: number, workers: number, variant: string, firstSeed: number): Promise<void> {
  const t0 = Date.now();
  const until = t0 + seconds * 1000;
  const ws = Array.from({ length: workers }, (_, part) =>
    startWorker({ task: 'fuzz', variant, firstSeed, part, of: workers, until }),
  );
  const done = await Promise.all(ws.map((w) => nextMessage(w)));
  const elapsedMs = Date.now() - t0;
  await Promise.all(ws.map((w) => w.terminate()));
  const sum = (k: 'runs' | 'steps' | 'searches' | 'violations') =>
    done.reduce((n, m) => n + (m.type === 'fuzzed' ? m[k] : 0), 0);
  const hwm = vmHwmKB();
  const figures: MemoryFigures = {
    seconds,
    workers,
    variant,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    vmHwmMB: hwm === null ? null : hwm / 1024,
    elapsedMs,
    runs: sum('runs'),
    steps: sum('steps'),
    searches: sum('searches'),
    violations: sum('violations'),
    scenariosPerSec: (sum('runs') / elapsedMs) * 1000,
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

/** Runs the memory child (with the same loader as this process) and returns its figures. */
export function measureMemory(opts: {
  readonly seconds: number;
  readonly workers: number;
  readonly variant: string;
  readonly firstSeed: number;
}): Promise<MemoryFigures> {
  const self = fileURLToPath(import.meta.url);
  const args = [...process.execArgv, self, String(opts.seconds), String(opts.workers), opts.variant];
  args.push(String(opts.firstSeed));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      out += d;
    });
    p.on('error', reject);
    p.on('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || last === '') {
        reject(new Error(`memory child exited with code ${code}`));
        return;
      }
      resolve(JSON.parse(last) as MemoryFigures);
    });
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [seconds, workers, variant, firstSeed] = process.argv.slice(2);
  await child(Number(seconds), Number(workers), variant ?? 'v4', Number(firstSeed ?? 1));
}
