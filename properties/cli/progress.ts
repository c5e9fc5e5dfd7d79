/**
 * Progress of a fuzz run on stderr: a bar redrawn in place on a terminal (runs, runs/s,
 * violations, time left); a plain line every {@link LINE_EVERY_MS} otherwise (CI logs); nothing
 * with --json.
 */

export interface ProgressState {
  readonly runs: number;
  readonly violatingRuns: number;
  /** Distinct violations reported so far. */
  readonly violations: number;
  readonly elapsedMs: number;
  readonly stopping: boolean;
}

export interface ProgressBudget {
  readonly runs?: number;
  readonly timeMs?: number;
}

export const LINE_EVERY_MS = 10_000;
const BAR_EVERY_MS = 200;
const BAR_WIDTH = 16;

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function fmtDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Fraction done (0..1) and milliseconds left, or null when unknown. */
export function estimate(p: ProgressState, b: ProgressBudget): { done: number; leftMs: number | null } {
  if (b.timeMs !== undefined) {
    const done = Math.min(1, p.elapsedMs / b.timeMs);
    return { done, leftMs: Math.max(0, b.timeMs - p.elapsedMs) };
  }
  if (b.runs !== undefined) {
    const done = Math.min(1, p.runs / b.runs);
    const rate = p.runs / Math.max(1, p.elapsedMs);
    return { done, leftMs: rate > 0 ? (b.runs - p.runs) / rate : null };
  }
  return { done: 0, leftMs: null };
}

function parts(p: ProgressState, b: ProgressBudget): string[] {
  const rate = Math.round((p.runs * 1000) / Math.max(1, p.elapsedMs));
  const { leftMs } = estimate(p, b);
  const v =
    p.violations > 0 || p.violatingRuns > 0
      ? `${plural(p.violations, 'violation')} (${plural(p.violatingRuns, 'violating run')})`
      : '0 violations';
  return [
    `${p.runs.toLocaleString('en-US')} runs`,
    `${rate.toLocaleString('en-US')} runs/s`,
    v,
    p.stopping
      ? 'stopping: shrinking and writing the report'
      : leftMs === null
        ? ''
        : `${fmtDuration(leftMs)} left`,
  ].filter((x) => x !== '');
}

/** The terminal bar, cut to `columns`. */
export function fmtBar(p: ProgressState, b: ProgressBudget, columns = 80): string {
  const { done } = estimate(p, b);
  const filled = Math.round(done * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(done * 100)).padStart(3)}%`;
  const line = `${bar}  ${parts(p, b).join('  ')}`;
  return line.length > columns - 1 ? line.slice(0, Math.max(0, columns - 1)) : line;
}

/** The plain periodic line. */
export function fmtLine(p: ProgressState, b: ProgressBudget): string {
  return `fuzz: ${parts(p, b).join(', ')}`;
}

export class Progress {
  private timer: NodeJS.Timeout | null = null;
  private lastLine = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly mode: 'bar' | 'lines' | 'off',
    private readonly budget: ProgressBudget,
    private readonly get: () => ProgressState,
  ) {}

  start(): void {
    if (this.mode === 'off') return;
    this.lastLine = Date.now();
    this.timer = setInterval(() => this.tick(), this.mode === 'bar' ? BAR_EVERY_MS : 1000);
    this.timer.unref();
  }

  private tick(): void {
    const p = this.get();
    if (this.mode === 'bar') {
      const columns = this.out.columns !== undefined && this.out.columns >= 20 ? this.out.columns : 80;
      this.out.write(`\r\x1b[2K${fmtBar(p, this.budget, columns)}`);
      this.drawn = true;
    } else if (Date.now() - this.lastLine >= LINE_EVERY_MS) {
      this.lastLine = Date.now();
      this.out.write(`${fmtLine(p, this.budget)}\n`);
    }
  }

  /** Writes a line of its own (the bar is redrawn on the next tick). */
  say(line: string): void {
    if (this.drawn) this.out.write('\r\x1b[2K');
    this.drawn = false;
    this.out.write(`${line}\n`);
  }

  /** Stops and clears the bar. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.drawn) this.out.write('\r\x1b[2K');
    this.drawn = false;
  }
}
