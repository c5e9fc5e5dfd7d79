/**
 * The interleaving of a traced run as a Mermaid sequence diagram, for a Markdown page (GitHub,
 * GitLab and most mail-to-web archives render it): one participant per lane of the text timeline
 * (CPUn, CPUn irq, hardware), each trace step a message of its lane to itself, time advancing a
 * note across all lanes, kernel log lines notes over the lane that printed them.
 *
 * The same steps and lanes as {@link renderTimeline} (its default selection), so that the two
 * views of one counterexample agree line for line.
 */
import type { LogLine, TraceStep } from '../impl/sim/machine.ts';
import { byStep, defaultSelect, laneKey, laneOf, logLanes, logTag } from './timeline.ts';

export interface MermaidOptions {
  /** At most this many messages and notes; the rest is summarized in one note. Default 400. */
  maxItems?: number;
}

const ENTITY: Record<string, string> = { '#': '#35;', ';': '#59;', '<': '#lt;', '>': '#gt;' };

/**
 * Text safe inside a Mermaid sequence message, note or participant alias: Mermaid ends a
 * statement at `;` and a line break and reads `#name;` as an entity, so those (and the HTML
 * brackets) are written as entities; whitespace collapses to one space.
 */
export function mermaidText(s: string): string {
  return s
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[#;<>]/g, (c) => ENTITY[c]!);
}

export function renderMermaid(
  trace: readonly TraceStep[],
  log: readonly LogLine[],
  opts: MermaidOptions = {},
): string {
  const maxItems = opts.maxItems ?? 400;
  const steps = defaultSelect(byStep(trace));
  const logs = byStep(log);

  const lanes = new Map<string, { key: number; actors: string[] }>();
  for (const s of steps) {
    const name = laneOf(s);
    if (name === null) continue;
    const lane = lanes.get(name) ?? { key: laneKey(s), actors: [] };
    if (!lane.actors.includes(s.actor)) lane.actors.push(s.actor);
    lanes.set(name, lane);
  }
  const logLane = logLanes(steps, logs);
  for (const name of logLane) if (!lanes.has(name)) lanes.set(name, { key: laneKeyOfName(name), actors: [] });
  const order = [...lanes.entries()].sort((a, b) => a[1].key - b[1].key);
  const id = new Map(order.map(([name], i) => [name, `L${i}`]));

  const out = ['sequenceDiagram'];
  for (const [name, lane] of order) {
    const only = lane.actors.length === 1 ? lane.actors[0]! : null;
    const header = only !== null && only !== name ? `${name} (${only})` : name;
    out.push(`  participant ${id.get(name)} as ${mermaidText(header)}`);
  }
  const first = order[0] === undefined ? null : id.get(order[0][0])!;
  const last = order.at(-1) === undefined ? null : id.get(order.at(-1)![0])!;
  const across = first === null ? null : first === last ? first : `${first},${last}`;

  type Ev = { step: number; row: TraceStep | null; log: number | null };
  const evs: Ev[] = [
    ...steps.map((s) => ({ step: s.step, row: s, log: null })),
    ...logs.map((l, i) => ({ step: l.step, row: null, log: i })),
  ];
  evs.sort((a, b) => a.step - b.step || (a.row === null ? 1 : 0) - (b.row === null ? 1 : 0));

  const lastActor = new Map<string, string>();
  let items = 0;
  for (const ev of evs) {
    if (items === maxItems) {
      if (across !== null)
        out.push(`  Note over ${across}: ${evs.length - items} more steps and log lines: see timeline.txt`);
      break;
    }
    items++;
    if (ev.log !== null) {
      const l = logs[ev.log]!;
      out.push(`  Note over ${id.get(logLane[ev.log]!)}: ${mermaidText(`! ${logTag(l)}${l.text}`)}`);
      continue;
    }
    const s = ev.row!;
    const name = laneOf(s);
    if (name === null) {
      if (across !== null) out.push(`  Note over ${across}: ${mermaidText(timeLabel(s.label))}`);
      continue;
    }
    const lane = lanes.get(name)!;
    const prefixed = lane.actors.length > 1 && lastActor.get(name) !== s.actor;
    lastActor.set(name, s.actor);
    const who = id.get(name)!;
    out.push(`  ${who}->>${who}: ${mermaidText(prefixed ? `[${s.actor}] ${s.label}` : s.label)}`);
  }
  return out.join('\n');
}

function timeLabel(label: string): string {
  const t = label.replace(/^time advances to\s*/, '').trim();
  return `time advances to ${t}`;
}

function laneKeyOfName(name: string): number {
  const m = /^CPU(\d+)( irq)?$/.exec(name);
  return m === null ? 1e9 : Number(m[1]) * 2 + (m[2] === undefined ? 0 : 1);
}
