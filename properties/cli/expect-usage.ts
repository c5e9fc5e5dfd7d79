import { expect } from 'vitest';

/** What a command returned, as the CLI tests capture it. */
export interface CliResult {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** The command lines' bad-input contract (args.ts exitUsage): exit 2, nothing on stdout, one line on stderr. */
export function expectUsageError(r: CliResult, msg: RegExp): void {
  expect(r.code).toBe(2);
  expect(r.out).toBe('');
  expect(r.err.trim().split('\n')).toHaveLength(1);
  expect(r.err).toMatch(msg);
}
