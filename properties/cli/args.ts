import { type ParseArgsConfig, parseArgs } from 'node:util';

/**
 * What the command lines share: bad input is one line on stderr and exit 2, never anything else;
 * whole-number options are checked the same way everywhere.
 */

export class UsageError extends Error {}

/** The most worker threads a --workers flag takes (fuzz, catalog). */
export const MAX_WORKERS = 256;

/** Exit 2 with one line, `cmd: msg`. */
export function exitUsage(cmd: string, msg: string): never {
  process.stderr.write(`${cmd}: ${msg}\n`);
  process.exit(2);
}

/** The first line of an error (node:util parseArgs messages run to several). */
export function firstLine(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}

/** node:util parseArgs over this process's arguments, strict; a parse error is `cmd: ...`, exit 2. */
export function parseCli<T extends ParseArgsConfig>(cmd: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ ...config, args: process.argv.slice(2), strict: true });
  } catch (e) {
    return exitUsage(cmd, firstLine(e));
  }
}

/** A whole-number option in [min, max], or undefined when not given. */
export function intArg(
  name: string,
  v: string | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
    throw new UsageError(
      `--${name} takes a whole number >= ${min}${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''}, not '${v}'`,
    );
  return Number(v);
}
