/**
 * Where each scenario of a fuzz job comes from: seeds, shards and blocks.
 *
 * THE SCHEME (documented here once; everything else follows from it):
 *
 * - A job is (variant, job seed S, shard i/N, budget). Shard i/N searches ONE fast-check stream:
 *   the stream with seed S when N = 1 (so `--shard 1/1` is exactly the search `npm run fuzz` always
 *   ran), and with seed {@link shardSeed}(S, i, N) otherwise. For a given S and N the N shard seeds
 *   are pairwise distinct (a bijective mix of S, N and i), so the shards of one job search
 *   disjoint seed spaces and any CI engine can split one job over N machines.
 * - A shard's stream is cut into consecutive blocks ({@link blockAt}): block sizes depend only
 *   on where the block starts (never on the number of workers or on timing). Workers take blocks
 *   as they fall idle; a block is run by `fc.check` with `path` = its start, which yields exactly
 *   the scenarios at those positions of the stream.
 * - With `--runs R` the shard runs positions 0..R-1, whatever the number of workers; results are
 *   merged in stream order (see engine.ts), so a summary depends on (variant, S, i/N, R) only.
 *   With `--time` only how far the search gets depends on the machine.
 *
 * Starting a block at position p costs p generator jumps (about 0.3 µs each); block sizes grow
 * with p (1/32 of it) so that this stays a few percent of the work whatever the run length.
 */

/** murmur3's 32-bit finalizer: a bijection on 32-bit integers that mixes every bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const GOLDEN = 0x9e3779b9;

export interface Shard {
  /** 1-based, as on the command line: `--shard 2/4` is index 2 of count 4. */
  readonly index: number;
  readonly count: number;
}

export const WHOLE: Shard = { index: 1, count: 1 };

/**
 * The stream seed of shard i/N of job seed S. N = 1: S itself. Otherwise
 * fmix32(fmix32(S ^ N·φ) + i·φ): for fixed S and N, i ↦ seed is injective (φ is odd, fmix32 a
 * bijection), so no two shards of a job share a stream.
 */
export function shardSeed(seed: number, shard: Shard): number {
  if (shard.count === 1) return seed >>> 0;
  const base = fmix32((seed ^ Math.imul(shard.count, GOLDEN)) >>> 0);
  return fmix32((base + Math.imul(shard.index, GOLDEN)) >>> 0);
}

export class ShardError extends Error {}

/** Parses `i/N` (1 <= i <= N <= 1024). */
export function parseShard(spec: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(spec);
  if (m === null) throw new ShardError(`--shard takes i/N (e.g. 2/4), not '${spec}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > 1024) throw new ShardError(`--shard ${spec}: N must be 1..1024`);
  if (index < 1 || index > count) throw new ShardError(`--shard ${spec}: i must be 1..${count}`);
  return { index, count };
}

/** The smallest block: small enough that short budgets still spread over a few workers. */
export const MIN_BLOCK = 250;

export interface Block {
  readonly start: number;
  readonly size: number;
}

/** The block that starts at position `start` of a shard's stream, cut at `limit` (exclusive). */
export function blockAt(start: number, limit = Number.MAX_SAFE_INTEGER): Block | null {
  if (start >= limit) return null;
  const size = Math.min(Math.max(MIN_BLOCK, Math.floor(start / 32)), limit - start);
  return { start, size };
}
