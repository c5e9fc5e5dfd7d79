/**
 * The properties every run is checked against. Safety properties are checked at every step
 * (from hardware events and from state whose lock is free); liveness and availability at
 * quiescent points. None of them knows about any catalog row.
 */
import type { SimEvent } from '../impl/events.ts';
import { BLOCKED_BROKEN, BLOCKED_NO, BLOCKED_RESET_FAILED, BLOCKED_RESETTING } from '../impl/kernel.ts';
import type { Severity } from '../impl/sim/machine.ts';
import type { System } from '../impl/system.ts';
import { consts } from './refinement.ts';

export interface PropertyInfo {
  readonly id: string;
  readonly severity: Severity;
  /** Safety: harm or a kernel bug on its own. Conformance: the impl departs from the model. */
  readonly kind: 'safety' | 'conformance';
  readonly summary: string;
}

/**
 * The storm bound's floor on operations in flight: rounds had at most 3 operations until the
 * eighth session, and the bound was 1 + 3. It stays, so that only a scenario with a larger round
 * has a larger bound (one batch per stream ID for each operation more): no other verdict changes.
 */
export const STORM_OPS_FLOOR = 3;

/** Most severe first: a run that violates several is reported (and shrunk) by the first. */
export const PROPERTIES: readonly PropertyInfo[] = [
  {
    id: 'no-corruption',
    kind: 'safety',
    severity: 'fatal',
    summary: 'no DMA write reaches a page not mapped at that IOVA for the device',
  },
  {
    id: 'no-use-after-free',
    kind: 'safety',
    severity: 'fatal',
    summary: 'no freed kernel object is touched',
  },
  {
    id: 'no-deadlock',
    kind: 'safety',
    severity: 'fatal',
    summary: 'something can always run until quiescence',
  },
  {
    id: 'no-livelock',
    kind: 'safety',
    severity: 'fatal',
    summary: 'every round reaches quiescence within its step and time bound',
  },
  {
    id: 'quarantine-lifted-only-by-reset',
    kind: 'safety',
    severity: 'fatal',
    summary:
      'a device quarantined for a fault (reset failed, broken) is unblocked only after a reset that worked',
  },
  {
    id: 'bounded-atc-errors',
    kind: 'safety',
    severity: 'error',
    summary: `at most (1 + the operations of the scenario's largest round, at least ${STORM_OPS_FLOOR}) × (its stream IDs) distinct CMD_SYNCs fail on one hung device per episode (no error storm)`,
  },
  {
    id: 'no-unexpected-warn',
    kind: 'safety',
    severity: 'error',
    summary: 'no WARN and no scheduling while atomic',
  },
  {
    id: 'reset-fence-only-in-reset',
    kind: 'safety',
    severity: 'error',
    summary: 'a device is fenced for a reset (BLOCKED_RESETTING) only while a reset of it runs',
  },
  {
    id: 'no-eats-while-ats-broken',
    kind: 'safety',
    severity: 'error',
    summary:
      "STE.EATS is never set while the driver fences the device's ATS (master->ats_broken; in v4-minimal, the stream ID's entry in its domain's invs marked broken)",
  },
  {
    id: 'recovery-cnt-matches',
    kind: 'safety',
    severity: 'error',
    summary: 'recovery_cnt equals the number of blocked group devices',
  },
  {
    id: 'liveness-after-reset',
    kind: 'conformance',
    severity: 'error',
    summary: 'after a reset that worked, a responsive device is back on its domain with ATS on',
  },
  {
    id: 'refinement',
    kind: 'conformance',
    severity: 'error',
    summary: 'the impl state is explained by some order of the round',
  },
  {
    id: 'availability',
    kind: 'conformance',
    severity: 'error',
    summary: 'no device that never hung is quarantined as broken',
  },
];

export const isSafety = (id: string): boolean => PROPERTIES.find((p) => p.id === id)?.kind !== 'conformance';

export const propertyRank = (id: string): number => {
  const i = PROPERTIES.findIndex((p) => p.id === id);
  return i < 0 ? PROPERTIES.length : i;
};

/**
 * Each operation in flight may have built one batch per stream ID before the timeout was known,
 * and the driver may retry once: beyond that, failures grow with time, not with the topology.
 * At most a round's operations are in flight at once (floored: {@link STORM_OPS_FLOOR}).
 */
export const stormBound = (sids: number, largestRound: number): number =>
  (1 + Math.max(STORM_OPS_FLOOR, largestRound)) * sids;

interface DevHistory {
  /** Successful endpoint resets seen. */
  okResets: number;
  /** okResets at the last fault (an ATC timeout on it, a reset of it that failed). */
  okResetsAtFault: number;
  /** Quarantined for a fault (blocked as reset_failed or broken) since it was last unblocked. */
  quarantined: boolean;
  /** Distinct failing CMD_SYNCs attributed to it since its last working reset. */
  syncErrors: Set<number>;
  everHung: boolean;
  /** The last reset outcome at the device, or null if none yet. */
  lastReset: boolean | null;
  /** An ATC error was attributed to it after its last working reset. */
  errorSinceReset: boolean;
  /** When its last working reset completed (µs), or -1. */
  okResetAt: number;
  /** pci_reset_function() is running for it. */
  resetting: boolean;
  /** When an STE write last turned its EATS on (µs), or -1: a new ATS episode. */
  eatsEnabledAt: number;
  /** The driver fenced its ATS since its last working reset. */
  fencedSinceReset: boolean;
}

export class Observers {
  private readonly hist: DevHistory[];
  /** Where ATS should be usable, by the reference rules (not the variant's own check). */
  private readonly atsUsable: readonly boolean[];

  /** `largestRound`: the most operations a round of the scenario starts at once (stormBound). */
  constructor(
    private readonly sys: System,
    private readonly largestRound: number,
  ) {
    this.atsUsable = consts(sys).ats;
    this.hist = sys.topo.devices.map(() => ({
      okResets: 0,
      okResetsAtFault: -1,
      quarantined: false,
      syncErrors: new Set<number>(),
      everHung: false,
      lastReset: null,
      errorSinceReset: false,
      okResetAt: -1,
      eatsEnabledAt: -1,
      fencedSinceReset: false,
      resetting: false,
    }));
    sys.k.ev.on((e) => this.onEvent(e));
    sys.m.onWarn = (what) => sys.m.violate('no-unexpected-warn', `WARN: ${what}`, 'error');
    sys.m.afterStep = () => this.afterStep();
  }

  private onEvent(e: SimEvent): void {
    const m = this.sys.m;
    switch (e.kind) {
      case 'dmaWrite': {
        // The page must be mapped at that IOVA in a domain the device may use now: the one its
        // STE points to, or the one an attach in progress is moving it away from.
        const { k } = this.sys;
        const from = k.pdevs[e.dev]!.master?.domain?.id ?? -1;
        if (!k.mem.ownedBy(e.page, e.steDomain, e.iova) && !k.mem.ownedBy(e.page, from, e.iova)) {
          m.violate(
            'no-corruption',
            `dev${e.dev} DMA to iova ${e.iova} ${e.viaAtc ? 'through a stale ATC entry ' : ''}wrote page ${e.page}, which is ${k.mem.describe(e.page)} (dev${e.dev} is on domain ${e.steDomain})`,
          );
        }
        return;
      }
      case 'syncAtcError':
        e.devs.forEach((d, i) => {
          const h = this.hist[d]!;
          // An invalidation sent before the device's last working reset, or before the driver
          // last turned its ATS back on (v4-minimal's attach may), is that old episode's.
          if (e.sentAt[i]! < h.okResetAt || e.sentAt[i]! < h.eatsEnabledAt) return;
          h.syncErrors.add(e.pos);
          h.errorSinceReset = true;
          h.okResetsAtFault = h.okResets;
          const bound = stormBound(this.sys.topo.devices[d]!.sids, this.largestRound);
          if (h.syncErrors.size > bound) {
            m.violate(
              'bounded-atc-errors',
              `error storm: ${h.syncErrors.size} distinct CMD_SYNCs failed on hung dev${d} in one episode (bound ${bound})`,
              'error',
            );
          }
        });
        return;
      case 'endpointReset': {
        const h = this.hist[e.dev]!;
        h.lastReset = e.ok;
        if (!e.ok) h.okResetsAtFault = h.okResets;
        if (e.ok) {
          h.okResets++;
          h.okResetAt = m.now;
          h.syncErrors.clear();
          h.everHung = false;
          h.errorSinceReset = false;
          h.fencedSinceReset = false;
        }
        return;
      }
      case 'hang':
        this.hist[e.dev]!.everHung = true;
        return;
      case 'eatsEnabled': {
        const h = this.hist[e.dev]!;
        h.eatsEnabledAt = m.now;
        h.syncErrors.clear();
        return;
      }
      case 'atsFenced':
        this.hist[e.dev]!.fencedSinceReset = true;
        return;
      case 'invalidationIntoFlr':
        return;
      case 'blocked': {
        const h = this.hist[e.dev]!;
        // The fence held during a reset (BLOCKED_RESETTING) is not a quarantine: what a failed
        // reset must do to it is the model's business (refinement), not this safety property's.
        // A quarantine may be recorded late (by a worker); what counts is a reset that worked
        // after the fault itself.
        if (e.to >= BLOCKED_RESET_FAILED) h.quarantined = true;
        if (e.to === BLOCKED_RESETTING && !h.resetting) {
          m.violate(
            'reset-fence-only-in-reset',
            `dev${e.dev} fenced for a reset while no reset of it runs`,
            'error',
          );
        }
        if (e.to === BLOCKED_NO) {
          if (h.quarantined && h.okResetsAtFault === h.okResets) {
            m.violate(
              'quarantine-lifted-only-by-reset',
              `dev${e.dev} unblocked although no reset of it has worked since its last fault`,
            );
          }
          h.quarantined = false;
        }
        return;
      }
      case 'resetFunction':
        this.hist[e.dev]!.resetting = e.running;
        return;
      case 'warn':
      case 'syncReturn':
        return;
    }
  }

  /** Lock-protected invariants, checked whenever their lock is free. */
  private afterStep(): void {
    const { k, m } = this.sys;
    for (const g of k.groups) {
      if (g.mutex.held()) continue;
      let blocked = 0;
      for (const x of g.devices) if (x.blocked !== BLOCKED_NO) blocked++;
      if (g.recoveryCnt !== blocked) {
        m.violate(
          'recovery-cnt-matches',
          `group${g.id}: recovery_cnt ${g.recoveryCnt} but ${blocked} blocked device(s)`,
          'error',
        );
      }
    }
    if (this.sys.v.minimal) this.checkMinimalFence();
    for (const pdev of k.pdevs) {
      const master = pdev.master;
      if (master === null || !master.atsBroken || master.atsBrokenLock.held()) continue;
      for (const sid of pdev.ep.sids) {
        if (k.smmu.hw.ste.get(sid)?.eats) {
          m.violate(
            'no-eats-while-ats-broken',
            `${pdev.name} sid ${sid}: STE.EATS=1 while ats_broken`,
            'error',
          );
        }
      }
    }
  }

  /**
   * v4-minimal fences in the invalidation entries: translated requests allowed (EATS=1) for a
   * stream ID whose entry in that domain's invs is broken would never have their ATC invalidated.
   */
  private checkMinimalFence(): void {
    const { k, m } = this.sys;
    for (const [sid, ste] of k.smmu.hw.ste) {
      if (!ste.eats || ste.config !== 'translate') continue;
      const inv = k.domains[ste.domain]?.invs.inv.find((i) => i.type === 'ATS' && i.id === sid);
      if (inv?.broken) {
        m.violate(
          'no-eats-while-ats-broken',
          `sid ${sid}: STE.EATS=1 on domain ${ste.domain}, whose invs entry for it is marked broken`,
          'error',
        );
      }
    }
  }

  /** Checked at every quiescent point. */
  atQuiescence(): void {
    const { k, m } = this.sys;
    k.pdevs.forEach((pdev, d) => {
      if (pdev.removed || !pdev.hasIommu) return;
      const h = this.hist[d]!;
      const gdev = k.gdevs[d]!;
      // v4-minimal fences every ATS device of a timed-out batch, healthy ones too, until an
      // attach or a reset: the availability it trades away by design (measured by tradeoffs).
      const blamedByDesign = this.sys.v.minimal && h.fencedSinceReset;
      if (h.lastReset === true && pdev.ep.responsive && !h.errorSinceReset && !blamedByDesign) {
        const eats = pdev.ep.sids.every((sid) => k.smmu.hw.ste.get(sid)?.eats === true);
        const ste = k.smmu.hw.ste.get(pdev.ep.sids[0]!);
        const onDomain = ste?.config === 'translate' && ste.domain === pdev.group!.domain!.id;
        const atsOk = !this.atsUsable[d]! || (pdev.ep.atsEnabled && eats);
        if (gdev.blocked !== BLOCKED_NO || !onDomain || !atsOk) {
          m.violate(
            'liveness-after-reset',
            `dev${d} was reset successfully and answers invalidations, but is ${gdev.blocked !== BLOCKED_NO ? 'still blocked' : !onDomain ? 'not on its domain' : 'without ATS'}`,
            'error',
          );
        }
      }
      if (!h.everHung && h.lastReset !== false && gdev.blocked === BLOCKED_BROKEN) {
        m.violate('availability', `dev${d} never hung, yet it is quarantined as broken`, 'error');
      }
    });
  }
}
