/**
 * The regression corpus (properties/corpus/*.json) as the fuzz command sees it: which property +
 * shape pairs it already holds, and adding new counterexamples to it (`--save-corpus`).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../reports/atomic.ts';
import { type CounterexampleFile, parseCounterexample } from '../counterexample-file.ts';
import type { Scenario } from '../scenario.ts';
import { counterexampleId, dedupKey, shapeOf } from './shape.ts';

/** The repository's regression corpus. */
export const CORPUS_DIR = fileURLToPath(new URL('../corpus/', import.meta.url));

export interface CorpusEntry {
  readonly file: string;
  readonly variant: string;
  readonly property: string;
  readonly shape: string;
}

/** The corpus' entries (files that do not parse, or record no property, are left out). */
export function readCorpus(dir: string = CORPUS_DIR): CorpusEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: CorpusEntry[] = [];
  for (const file of names.sort()) {
    try {
      const c = parseCounterexample(readFileSync(join(dir, file), 'utf8'), file);
      if (c.property !== undefined)
        out.push({ file, variant: c.variant, property: c.property, shape: shapeOf(c.scenario) });
    } catch {
      // Not ours to judge here: the corpus test replays every file.
    }
  }
  return out;
}

/**
 * One counterexample file, `<name>.json` in the corpus or in another folder beside it (the
 * retracted findings': `properties/retracted/`), parsed and checked as `npm run replay` does.
 */
export function readCounterexample(
  name: string,
  folder = 'corpus',
): CounterexampleFile & { scenario: Scenario } {
  const file = fileURLToPath(new URL(`../${folder}/${name}.json`, import.meta.url));
  return parseCounterexample(readFileSync(file, 'utf8'), file);
}

/** The corpus entry with this property + shape, if any (whatever its variant). */
export function corpusMatch(
  entries: readonly CorpusEntry[],
  property: string,
  shape: string,
): CorpusEntry | null {
  const key = dedupKey(property, shape);
  return entries.find((e) => dedupKey(e.property, e.shape) === key) ?? null;
}

/** A counterexample file's text: `{id, variant, property, scenario}`, as `npm run replay` reads it. */
export function counterexampleJson(variant: string, property: string, scenario: Scenario): string {
  const id = counterexampleId(variant, property, scenario);
  return `${JSON.stringify({ id, variant, property, scenario }, null, 2)}\n`;
}

/** Formats JSON as the repository's Prettier config does (corpus files are checked by `npm run lint`). */
async function prettierJson(text: string, file: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    const config = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(text, { ...config, filepath: file });
  } catch {
    return text;
  }
}

export interface SaveResult {
  readonly file: string;
  /** added: written now; known: the corpus already has this property + shape (or this file). */
  readonly status: 'added' | 'known';
}

/**
 * Adds a counterexample to the corpus as `<variant>-<property>-<short hash>.json`, unless the
 * corpus already holds one with the same property + shape, or that very file.
 */
export async function saveToCorpus(
  variant: string,
  property: string,
  scenario: Scenario,
  dir: string = CORPUS_DIR,
): Promise<SaveResult> {
  const name = `${counterexampleId(variant, property, scenario)}.json`;
  const known = corpusMatch(readCorpus(dir), property, shapeOf(scenario));
  if (known !== null) return { file: known.file, status: 'known' };
  const path = join(dir, name);
  if (existsSync(path)) return { file: name, status: 'known' };
  writeFileAtomic(path, await prettierJson(counterexampleJson(variant, property, scenario), path));
  return { file: name, status: 'added' };
}
