/**
 * Signatures of the v4 findings (reports/findings/): facts about a run, not properties. They say
 * whether a violation is explained by a finding already recorded.
 */
import type { SimEvent } from '../impl/events.ts';
import { ETIMEDOUT } from '../impl/kernel.ts';
import type { Violation } from '../impl/sim/machine.ts';

/**
 * `sync-queued-behind-failure`: an issuer returned a plain -ETIMEDOUT for a CMD_SYNC that the SMMU
 * later failed with CERROR_ATC_INV_SYNC — an ATC timeout taken for a software poll timeout.
 */
export function atcTimeoutReportedAsPlainTimeout(events: readonly SimEvent[]): boolean {
  // A slot is named by its queue (absent: the SMMU's own; a tegra241 VCMDQ otherwise) and prod.
  const timedOut = new Set<string>();
  for (const e of events) {
    if (e.kind === 'syncReturn' && e.ret === ETIMEDOUT) timedOut.add(`${e.cmdq ?? ''}:${e.prod}`);
    if (e.kind === 'syncAtcError' && timedOut.has(`${e.cmdq ?? ''}:${e.prod}`)) return true;
  }
  return false;
}

/**
 * `minimal-fence-lost-to-attach` (v4-minimal): translated requests are allowed (EATS=1) for a
 * stream ID whose invalidation entry the batch error path marked broken — an attach re-set EATS
 * after the fence, so that device's ATC is never invalidated again.
 */
export function fenceLostToAttach(violations: readonly Violation[]): boolean {
  return violations.some(
    (v) => v.property === 'no-eats-while-ats-broken' && v.message.includes('marked broken'),
  );
}

/**
 * `invalidation-from-left-domain-into-flr`: an ATS invalidation reached a function in the middle
 * of its FLR (and was lost) although the reset's IOMMU fence was up.
 */
export function invalidationIntoFlr(events: readonly SimEvent[]): boolean {
  return events.some((e) => e.kind === 'invalidationIntoFlr');
}

/**
 * `minimal-reenable-honours-stale-atc` (v4-minimal): the driver fenced a device's ATS after a
 * timeout, and an STE write later turned EATS back on for it (an attach re-enabling ATS), so
 * translated requests from an ATC that could not be invalidated were honoured again.
 */
export function reenabledAfterFence(events: readonly SimEvent[]): boolean {
  const fenced = new Set<number>();
  for (const e of events) {
    if (e.kind === 'atsFenced') fenced.add(e.dev);
    if (e.kind === 'eatsEnabled' && fenced.has(e.dev)) return true;
  }
  return false;
}
