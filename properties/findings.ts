/**
 * Signatures of the v4 findings (reports/findings/): facts about a run, not properties. They say
 * whether a violation is explained by a finding already recorded.
 */
import type { SimEvent } from '../impl/events.ts';
import { ETIMEDOUT } from '../impl/kernel.ts';

/**
 * `sync-queued-behind-failure`: an issuer returned a plain -ETIMEDOUT for a CMD_SYNC that the SMMU
 * later failed with CERROR_ATC_INV_SYNC — an ATC timeout taken for a software poll timeout.
 */
export function atcTimeoutReportedAsPlainTimeout(events: readonly SimEvent[]): boolean {
  const timedOut = new Set<number>();
  for (const e of events) {
    if (e.kind === 'syncReturn' && e.ret === ETIMEDOUT) timedOut.add(e.prod);
    if (e.kind === 'syncAtcError' && timedOut.has(e.prod)) return true;
  }
  return false;
}
