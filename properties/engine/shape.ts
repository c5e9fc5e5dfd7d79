/**
 * Identities of counterexamples. The *shape* of a (shrunk) scenario is what a reviewer would call
 * "the same bug": the kinds of operation in each round (a round's operations run concurrently, so
 * their order within it does not count), e.g. `hang / attach+dma / dma`. CPU, device and IOVA
 * numbers, the topology and the schedule are left out. Violations are deduplicated, and the
 * corpus is checked for new findings, by property + shape.
 */
import { createHash } from 'node:crypto';
import type { Scenario } from '../scenario.ts';

export function shapeOf(s: Scenario): string {
  return s.rounds
    .map((r) =>
      r
        .map((op) => op.kind)
        .sort()
        .join('+'),
    )
    .join(' / ');
}

/** JSON with object keys sorted, so that equal values hash equally whatever their key order. */
export function canonicalJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(',')}]`;
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(x);
}

/** The first 8 hex digits of the SHA-256 of a value's canonical JSON. */
export function shortHash(x: unknown): string {
  return createHash('sha256').update(canonicalJson(x)).digest('hex').slice(0, 8);
}

export const dedupKey = (property: string, shape: string): string => `${property} @ ${shape}`;

/** A file name part: letters, digits, `+`, `.`, `_` and `-` only. */
export const fileSafe = (s: string): string => s.replace(/[^A-Za-z0-9+._-]/g, '_');

/** `<variant>-<property>-<short hash of the scenario>`: a counterexample's id and corpus file name. */
export const counterexampleId = (variant: string, property: string, s: Scenario): string =>
  fileSafe(`${variant}-${property}-${shortHash(s)}`);
