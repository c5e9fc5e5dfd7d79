/**
 * Interleaving diagrams of a simulated run, in the style kernel developers paste into commit
 * messages and reviews: one column (lane) per CPU task context, per CPU interrupt context and per
 * kind of hardware agent; one row per step that matters; kernel log lines inline; at most 80
 * columns wide.
 *
 *  CPU0 (unmap#2)       | CPU1 irq            | SMMU
 *  ---------------------+---------------------+---------------------
 *  write 1 command(s) + |                     |
 *    CMD_SYNC           |                     |
 *  ---- 50.0 ms ------------------------------------------------------
 *                       |                     | CMD_SYNC fails: ...
 *
 * Nothing here truncates: long cell text wraps within its lane (continuation lines indented by
 * two spaces), long log lines wrap at the full width, and lanes that do not fit side by side are
 * split into several diagrams, one after another.
 */
import { fmtTime, type LogLine, type TraceStep } from '../impl/sim/machine.ts';

export interface TimelineOptions {
  /** Maximum line length, in characters (code points). Default 80; at least 20. */
  width?: number;
  /**
   * Which steps get a row. Replaces the default, which drops {@link NOISY_LABELS} and a
   * `waits: X` row when the same actor's previous row was the same `waits: X`.
   */
  filter?: (s: TraceStep) => boolean;
}

/** Labels the default filter drops: bookkeeping steps that add rows but no insight. */
export const NOISY_LABELS: ReadonlySet<string> = new Set([
  'read cmdq->q.llq',
  'set valid map',
  'hand over ownership',
  'cmdq shared lock',
  'cmdq shared unlock',
  'returns',
  'rcu_dereference(domain->invs)',
  'stop gathering: clear OWNED',
  'cmpxchg on prod lost, retry',
  'waits: commands',
  'waits: invalidations',
  'waits: work',
]);

/** The narrowest a lane may be made before lanes are split into several diagrams. */
export const MIN_LANE_WIDTH = 16;
const MIN_WIDTH = 20;
/** Continuation lines of a wrapped cell or log line are indented by this much. */
const INDENT = 2;
const TIME_PREFIX = 'time advances to ';

// ---- text helpers ----------------------------------------------------------------------------

/** Display length, counted in code points so that `µs` is two characters, not three. */
function cpLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function pad(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - cpLen(s)));
}

const BREAK_AFTER = '(/_,.:;=-';

/** Splits a word longer than `room`, preferring a break after punctuation in the second half. */
function splitWord(word: string, room: number): [string, string] {
  const cps = [...word];
  let cut = room;
  for (let i = room - 1; i >= Math.floor(room / 2) && i > 0; i--) {
    if (BREAK_AFTER.includes(cps[i]!)) {
      cut = i + 1;
      break;
    }
  }
  return [cps.slice(0, cut).join(''), cps.slice(cut).join('')];
}

/**
 * Word-wraps `text` into lines of at most `width` characters; continuation lines are indented
 * by `indent` (which must be smaller than `width`). Runs of whitespace collapse to one space;
 * a word longer than a line is broken, never dropped.
 */
export function wrapText(text: string, width: number, indent = 0): string[] {
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  const lines: string[] = [];
  let cur = '';
  // Never less than one character a line, so wrapping always makes progress.
  const room = () => Math.max(1, lines.length === 0 ? width : width - indent);
  const flush = () => {
    lines.push(lines.length === 0 ? cur : ' '.repeat(indent) + cur);
    cur = '';
  };
  for (const w of words) {
    if (cur !== '' && cpLen(cur) + 1 + cpLen(w) <= room()) {
      cur += ' ' + w;
      continue;
    }
    if (cur !== '') flush();
    let rest = w;
    while (cpLen(rest) > room()) {
      const [head, tail] = splitWord(rest, room());
      cur = head;
      flush();
      rest = tail;
    }
    cur = rest;
  }
  if (cur !== '' || lines.length === 0) flush();
  return lines;
}

export function logTag(l: LogLine): string {
  return l.level === 'err' || l.level === 'WARN' ? `${l.level}: ` : '';
}

/** A kernel log line, full width: `  ! err: text`, continuation lines indented. */
function logLines(l: LogLine, width: number): string[] {
  return wrapText(logTag(l) + l.text, width - 4, INDENT).map((s, i) => (i === 0 ? '  ! ' : '    ') + s);
}

function timeText(s: TraceStep): string {
  const t = s.label.startsWith(TIME_PREFIX) ? s.label.slice(TIME_PREFIX.length).trim() : s.label.trim();
  return t === '' ? fmtTime(s.time) : t;
}

/** `---- 50.0 ms ------...` across the diagram (at least `---- 50.0 ms --`). */
function timeLines(s: TraceStep, lineWidth: number, width: number): string[] {
  return wrapText(timeText(s), width - 8).map((c) => {
    const base = `---- ${c} `;
    return base + '-'.repeat(Math.max(2, lineWidth - cpLen(base)));
  });
}

// ---- lanes -----------------------------------------------------------------------------------

/** The lane a step belongs in, or null for a time row. */
export function laneOf(s: TraceStep): string | null {
  if (s.kind === 'time') return null;
  if (s.kind === 'agent' || s.cpu < 0) return 'hardware';
  if (s.kind === 'irq' || s.kind === 'irq-entry') return `CPU${s.cpu} irq`;
  return `CPU${s.cpu}`;
}

/** Lane order: CPU0, CPU0 irq, CPU1, CPU1 irq, ..., hardware. */
export function laneKey(s: TraceStep): number {
  if (s.kind === 'agent' || s.cpu < 0) return 1e9;
  return s.cpu * 2 + (s.kind === 'task' ? 0 : 1);
}

interface Lane {
  readonly name: string;
  readonly key: number;
  readonly actors: string[];
  header: string;
  /** Widest cell text (or header word): the width at which no cell in the lane wraps. */
  need: number;
  /** The width at which nothing in the lane wraps, not even the header. */
  full: number;
}

/** The default selection: drops noisy labels and a repeated `waits: X` of the same actor. */
export function defaultSelect(trace: readonly TraceStep[]): TraceStep[] {
  const prevLabel = new Map<string, string>();
  const out: TraceStep[] = [];
  for (const s of trace) {
    if (s.kind !== 'time') {
      if (NOISY_LABELS.has(s.label)) continue;
      if (s.label.startsWith('waits: ') && prevLabel.get(s.actor) === s.label) continue;
      prevLabel.set(s.actor, s.label);
    }
    out.push(s);
  }
  return out;
}

/** Sorted by step, stable. */
export function byStep<T extends { step: number }>(xs: readonly T[]): T[] {
  return xs
    .map((x, i) => ({ x, i }))
    .sort((a, b) => a.x.step - b.x.step || a.i - b.i)
    .map((e) => e.x);
}

/** Line length of a diagram with these lane widths: ` a | b | c`. */
function lineWidthOf(widths: readonly number[]): number {
  return widths.length === 0 ? 0 : 1 + widths.reduce((a, b) => a + b, 0) + 3 * (widths.length - 1);
}

/** Splits lanes into the fewest contiguous, evenly sized groups that each fit the width. */
function groupLanes(lanes: readonly Lane[], width: number): Lane[][] {
  const n = lanes.length;
  for (let g = 1; g <= n; g++) {
    const groups: Lane[][] = [];
    let at = 0;
    for (let i = 0; i < g; i++) {
      const size = Math.floor(n / g) + (i < n % g ? 1 : 0);
      groups.push(lanes.slice(at, at + size));
      at += size;
    }
    if (groups.every((gr) => lineWidthOf(gr.map((l) => Math.min(l.need, MIN_LANE_WIDTH))) <= width))
      return groups;
  }
  return lanes.map((l) => [l]);
}

/**
 * Max-min fair widths: a lane that needs little gets what it needs, the rest share what is
 * left equally (at least {@link MIN_LANE_WIDTH} each, which {@link groupLanes} guarantees).
 */
function allocate(group: readonly Lane[], width: number): number[] {
  const n = group.length;
  const avail = width - 1 - 3 * (n - 1);
  const needs = group.map((l) => Math.max(1, l.need));
  if (needs.reduce((a, b) => a + b, 0) <= avail) {
    // Room to spare: unwrap headers too, left to right.
    let spare = avail - needs.reduce((a, b) => a + b, 0);
    return needs.map((w, i) => {
      const more = Math.min(spare, Math.max(0, group[i]!.full - w));
      spare -= more;
      return w + more;
    });
  }
  const widths = new Array<number>(n).fill(0);
  const order = needs.map((_, i) => i).sort((a, b) => needs[a]! - needs[b]! || a - b);
  let remaining = avail;
  let k = 0;
  for (; k < n; k++) {
    const i = order[k]!;
    const share = Math.floor(remaining / (n - k));
    if (needs[i]! > share) break;
    widths[i] = needs[i]!;
    remaining -= needs[i]!;
  }
  // The lanes still unserved all need more than an equal share: give them the share, and the
  // few characters of rounding to the leftmost of them.
  const rest = order.slice(k).sort((a, b) => a - b);
  const share = Math.floor(remaining / Math.max(1, rest.length));
  let extra = remaining - share * rest.length;
  for (const i of rest) {
    widths[i] = share + (extra > 0 ? 1 : 0);
    if (extra > 0) extra--;
  }
  return widths;
}

/** Lines of grid cells: ` a | b | c`, each column padded to its width, no trailing spaces. */
function gridLines(cols: readonly (readonly string[])[], widths: readonly number[]): string[] {
  const h = Math.max(0, ...cols.map((c) => c.length));
  const out: string[] = [];
  for (let r = 0; r < h; r++) {
    out.push((' ' + cols.map((c, i) => pad(c[r] ?? '', widths[i]!)).join(' | ')).trimEnd());
  }
  return out;
}

function ruleLine(widths: readonly number[]): string {
  const n = widths.length;
  return ' ' + widths.map((w, i) => '-'.repeat(w + (i > 0 ? 1 : 0) + (i < n - 1 ? 1 : 0))).join('+');
}

/**
 * The lane each log line belongs to (same order as `logs`, which must be sorted by step): its
 * step's lane, else its actor's lane at the time, else its actor's first lane, else its CPU's.
 */
export function logLanes(steps: readonly TraceStep[], logs: readonly LogLine[]): string[] {
  const laneAtStep = new Map<number, string>();
  const lanes = new Set<string>();
  for (const s of steps) {
    const name = laneOf(s);
    if (name !== null) {
      laneAtStep.set(s.step, name);
      lanes.add(name);
    }
  }
  const actorLane = new Map<string, string>();
  let si = 0;
  return logs.map((l) => {
    for (; si < steps.length && steps[si]!.step <= l.step; si++) {
      const name = laneOf(steps[si]!);
      if (name !== null) actorLane.set(steps[si]!.actor, name);
    }
    return (
      laneAtStep.get(l.step) ??
      actorLane.get(l.actor) ??
      steps.map(laneOf).find((name, i) => name !== null && steps[i]!.actor === l.actor) ??
      (lanes.has(`CPU${l.cpu}`) ? `CPU${l.cpu}` : `CPU${l.cpu} irq`)
    );
  });
}

// ---- the diagram -----------------------------------------------------------------------------

/**
 * Renders an interleaving diagram of `trace` with the kernel `log` inline.
 *
 * - Lanes: `CPUn` (task context), `CPUn irq` (interrupt context), `hardware` (the SMMU, the
 *   endpoints, their DMAs and hangs), in that order, only those that occur. A lane
 *   with a single actor names it in its header (`CPU0 (unmap#2)`); otherwise a cell starts with
 *   `[actor]` whenever the actor changes within the lane.
 * - One row per selected step (see {@link TimelineOptions.filter}); a time step is a separator
 *   line `---- 50.0 ms ----` across the diagram.
 * - A log line follows the row of the step it was printed in (or, when that step has no row,
 *   sits where its step falls in order), full width, as `  ! text`, `  ! err: text` or
 *   `  ! WARN: text`.
 * - Every line is at most `width` characters with no trailing spaces. When the lanes do not
 *   fit at {@link MIN_LANE_WIDTH} characters each, they are split into several diagrams, the
 *   later ones introduced by `(continued: lanes ...)`; time separators repeat in each, and a
 *   log line goes with the diagram holding its step's lane.
 */
export function renderTimeline(
  trace: readonly TraceStep[],
  log: readonly LogLine[],
  opts: TimelineOptions = {},
): string {
  const width = opts.width ?? 80;
  if (!Number.isInteger(width) || width < MIN_WIDTH) {
    throw new RangeError(`timeline width must be an integer >= ${MIN_WIDTH}, got ${width}`);
  }
  const filter = opts.filter;
  const steps = filter === undefined ? defaultSelect(byStep(trace)) : byStep(trace).filter((s) => filter(s));
  const logs = byStep(log);

  // Lanes, and the text of each cell.
  const lanesByName = new Map<string, Lane>();
  for (const s of steps) {
    const name = laneOf(s);
    if (name === null) continue;
    let lane = lanesByName.get(name);
    if (lane === undefined) {
      lane = { name, key: laneKey(s), actors: [], header: name, need: 0, full: 0 };
      lanesByName.set(name, lane);
    }
    if (!lane.actors.includes(s.actor)) lane.actors.push(s.actor);
  }
  const lanes = [...lanesByName.values()].sort((a, b) => a.key - b.key);
  for (const lane of lanes) {
    const only = lane.actors.length === 1 ? lane.actors[0]! : null;
    lane.header = only !== null && only !== lane.name ? `${lane.name} (${only})` : lane.name;
    // A header may wrap (`CPU1 irq` / `(smmu-gerror-irq)`): it asks only for its longest word.
    lane.need = Math.max(...lane.header.split(' ').map(cpLen));
    lane.full = cpLen(lane.header);
  }
  const cellText = new Map<TraceStep, string>();
  const lastActor = new Map<string, string>();
  for (const s of steps) {
    const name = laneOf(s);
    if (name === null) continue;
    const lane = lanesByName.get(name)!;
    const prefixed = lane.actors.length > 1 && lastActor.get(name) !== s.actor;
    lastActor.set(name, s.actor);
    const text = prefixed ? `[${s.actor}] ${s.label}` : s.label;
    cellText.set(s, text);
    lane.need = Math.max(lane.need, cpLen(wrapText(text, Number.MAX_SAFE_INTEGER)[0]!));
  }
  for (const lane of lanes) lane.full = Math.max(lane.full, lane.need);

  const groups = lanes.length === 0 ? [[]] : groupLanes(lanes, width);
  const groupOf = new Map<string, number>();
  groups.forEach((g, gi) => {
    for (const l of g) groupOf.set(l.name, gi);
  });

  // Which diagram each log line goes with: the one holding its lane.
  const logsOf: LogLine[][] = groups.map(() => []);
  const logLane = logLanes(steps, logs);
  logs.forEach((l, i) => logsOf[groupOf.get(logLane[i]!) ?? 0]!.push(l));

  const out: string[] = [];
  groups.forEach((group, gi) => {
    const widths = allocate(group, width);
    const lineWidth = lineWidthOf(widths);
    const names = group.map((l) => l.name);
    if (gi > 0) {
      out.push('');
      out.push(...wrapText(`(continued: lanes ${names.join(', ')})`, width, INDENT));
    }
    if (group.length > 0) {
      out.push(
        ...gridLines(
          group.map((l, i) => wrapText(l.header, widths[i]!)),
          widths,
        ),
      );
      out.push(ruleLine(widths));
    }
    type Ev = { step: number; row: TraceStep | null; log: LogLine | null };
    const evs: Ev[] = [];
    for (const s of steps) {
      const name = laneOf(s);
      if (name === null || groupOf.get(name) === gi) evs.push({ step: s.step, row: s, log: null });
    }
    for (const l of logsOf[gi]!) evs.push({ step: l.step, row: null, log: l });
    // Stable: rows keep trace order, logs keep log order, and a step's row precedes its logs.
    evs.sort((a, b) => a.step - b.step || (a.row === null ? 1 : 0) - (b.row === null ? 1 : 0));
    for (const ev of evs) {
      if (ev.log !== null) {
        out.push(...logLines(ev.log, width));
        continue;
      }
      const s = ev.row!;
      const name = laneOf(s);
      if (name === null) {
        out.push(...timeLines(s, lineWidth, width));
        continue;
      }
      const cols = names.map((n, i) => {
        if (n !== name) return [];
        const w = widths[i]!;
        return wrapText(cellText.get(s)!, w, w > INDENT ? INDENT : 0);
      });
      out.push(...gridLines(cols, widths));
    }
  });
  return out.map((l) => l.trimEnd()).join('\n');
}

/**
 * The plain form: one line per step, `#step t=<µs> actor@cpuN: label` (no `@cpuN` for hardware
 * agents and time), every step kept, log lines interleaved after their step as in
 * {@link renderTimeline}, nothing wrapped.
 */
export function renderSteps(trace: readonly TraceStep[], log: readonly LogLine[]): string {
  const evs: { step: number; line: string; isLog: boolean }[] = [];
  for (const s of byStep(trace)) {
    const where = s.cpu >= 0 ? `@cpu${s.cpu}` : '';
    evs.push({ step: s.step, isLog: false, line: `#${s.step} t=${s.time} ${s.actor}${where}: ${s.label}` });
  }
  for (const l of byStep(log)) evs.push({ step: l.step, isLog: true, line: `  ! ${logTag(l)}${l.text}` });
  evs.sort((a, b) => a.step - b.step || Number(a.isLog) - Number(b.isLog));
  return evs.map((e) => e.line.trimEnd()).join('\n');
}
