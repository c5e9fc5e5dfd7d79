import { existsSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './args.ts';

/**
 * Where a long command (fuzz, catalog) writes what it finds: `--out DIR` (empty or new), or a
 * fresh folder under reports/out/. Checked before anything runs, so that bad input writes nothing
 * and a run never writes over an earlier run's finds.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface OutDir {
  /** Absolute. */
  readonly out: string;
  /** As the user gave it, or relative to the working directory. */
  readonly displayOut: string;
}

/** A UTC timestamp for folder names: 20261122T101500Z. */
const stamp = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** reports/out/<timestamp>-<name>[-k]/, the first such folder that does not exist yet. */
function defaultOut(name: string): string {
  const base = join(ROOT, 'reports', 'out', `${stamp(new Date())}-${name}`);
  let dir = base;
  for (let k = 2; existsSync(dir); k++) dir = `${base}-${k}`;
  return dir;
}

/** The folder for `--out` as given (undefined: a fresh default named after `name`); a UsageError if unusable. */
export function outDir(given: string | undefined, name: string): OutDir {
  if (given === undefined) {
    const out = defaultOut(name);
    const rel = relative(process.cwd(), out);
    return { out, displayOut: rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? out : rel };
  }
  if (given === '') throw new UsageError('--out takes a folder');
  const out = resolve(given);
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new UsageError(`--out ${given} is not a folder`);
    if (readdirSync(out).length > 0)
      throw new UsageError(`--out ${given} is not empty (a report folder is written into an empty one)`);
  }
  return { out, displayOut: given.replace(/\/+$/, '') || '/' };
}
