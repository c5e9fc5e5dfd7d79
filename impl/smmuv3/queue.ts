/**
 * Queue pointer arithmetic of arm-smmu-v3.h / arm-smmu-v3.c: an index in the low max_n_shift
 * bits, a wrap bit just above it, and the overflow bit (bit 31) reused as CMDQ_PROD_OWNED_FLAG.
 */
import type { LlQueue } from '../kernel.ts';

export const CMDQ_PROD_OWNED_FLAG = 0x80000000;

/** Q_IDX */
export const qIdx = (shift: number, p: number): number => p & ((1 << shift) - 1);
/** Q_WRP */
export const qWrp = (shift: number, p: number): number => p & (1 << shift);
/** Q_OVF */
export const qOvf = (p: number): number => (p & CMDQ_PROD_OWNED_FLAG) >>> 0;

/** queue_has_space() */
export function queueHasSpace(shift: number, q: LlQueue, n: number): boolean {
  const prod = qIdx(shift, q.prod);
  const cons = qIdx(shift, q.cons);
  const space = qWrp(shift, q.prod) === qWrp(shift, q.cons) ? (1 << shift) - (prod - cons) : cons - prod;
  return space >= n;
}

/** queue_full() */
export function queueFull(shift: number, q: LlQueue): boolean {
  return qIdx(shift, q.prod) === qIdx(shift, q.cons) && qWrp(shift, q.prod) !== qWrp(shift, q.cons);
}

/** queue_inc_prod_n() */
export function queueIncProdN(shift: number, q: LlQueue, n: number): number {
  const prod = (qWrp(shift, q.prod) | qIdx(shift, q.prod)) + n;
  return (qOvf(q.prod) | qWrp(shift, prod) | qIdx(shift, prod)) >>> 0;
}

/** queue_consumed(): has CONS moved past `prod`? */
export function queueConsumed(shift: number, q: LlQueue, prod: number): boolean {
  return (
    (qWrp(shift, q.cons) === qWrp(shift, prod) && qIdx(shift, q.cons) > qIdx(shift, prod)) ||
    (qWrp(shift, q.cons) !== qWrp(shift, prod) && qIdx(shift, q.cons) <= qIdx(shift, prod))
  );
}

export const hex = (v: number): string => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
