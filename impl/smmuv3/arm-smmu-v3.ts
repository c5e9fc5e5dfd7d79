/**
 * drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c — batches, invalidation, STE writes, attach,
 * ATS, and the ATS-broken path of the series (P17–P24).
 */
import type { Cmd } from '../hw/cmd.ts';
import { iommuReportDeviceBroken } from '../iommu/iommu.ts';
import {
  type ArmSmmuCmdq,
  ArmSmmuInvs,
  type ArmSmmuMaster,
  EIO,
  ENODEV,
  errName,
  type IommuDomain,
  type Kernel,
  type PciDev,
} from '../kernel.ts';
import { pciAtsSupported, pciDisableAts, pciEnableAts, pciPrepareAts } from '../pci/ats.ts';
import { kfree, use } from '../sim/lifetime.ts';
import type { Proc } from '../sim/machine.ts';
import { spinUntil } from '../sim/sync.ts';
import { armSmmuCmdqIssueCmdlist, armSmmuCmdqSupportsCmd } from './cmdq.ts';
import { tegra241CmdqvGetCmdq } from './tegra241-cmdqv.ts';

/** struct arm_smmu_cmdq_batch */
export interface ArmSmmuCmdqBatch {
  cmds: Cmd[];
  cmdq: ArmSmmuCmdq;
  /** P19 */
  invs: ArmSmmuInvs | null;
  /** P19 */
  hasAts: boolean;
}

/**
 * The command a batch is initialised with, where only its opcode matters (which queue takes it):
 * made once, so that picking a queue allocates nothing.
 */
const CFGI_STE_CMD: Cmd = { op: 'CFGI_STE', sid: 0 };
const ATC_INV_ALL_CMD: Cmd = { op: 'ATC_INV', sid: 0, iova: 0, all: true };
const TLBI_CMD: Cmd = { op: 'TLBI', domain: 0, iova: 0, all: false };

/**
 * arm_smmu_get_cmdq(): the queue a command goes to — the implementation's secondary queue when
 * it has one for this command (tegra241 CMDQV: the CPU's VCMDQ), else smmu->cmdq.
 */
function armSmmuGetCmdq(k: Kernel, cmd: Cmd): ArmSmmuCmdq {
  const cmdqv = k.smmu.cmdqv;
  if (cmdqv === null) return k.smmu.cmdq;
  return tegra241CmdqvGetCmdq(k, cmdqv, cmd) ?? k.smmu.cmdq;
}

/** arm_smmu_cmdq_batch_init_cmd(): the batch goes to the queue its first command picks. */
function armSmmuCmdqBatchInitCmd(k: Kernel, cmd: Cmd, invs: ArmSmmuInvs | null): ArmSmmuCmdqBatch {
  // v4-minimal keeps the array too: its error path marks the entries it was walking
  return {
    cmds: [],
    cmdq: armSmmuGetCmdq(k, cmd),
    invs: k.v.patch(19) || k.v.minimal ? invs : null,
    hasAts: false,
  };
}

/** arm_smmu_cmdq_batch_issue() (P20, retry in P24) */
function* armSmmuCmdqBatchIssue(k: Kernel, cmds: ArmSmmuCmdqBatch, sync: boolean): Proc<number> {
  const ret = yield* armSmmuCmdqIssueCmdlist(k, cmds.cmdq, cmds.cmds, sync);
  // P24: identify the timed-out master via cmds->invs
  if (k.v.patch(24) && !k.v.minimal && ret === EIO && cmds.invs)
    yield* armSmmuCmdqBatchRetry(k, cmds.invs, cmds);
  // v4-minimal: no retry; "assume all the ATCs in the batch have failed"
  if (k.v.minimal && ret === EIO && cmds.hasAts) yield* armSmmuCmdqBatchFenceAll(k, cmds);
  return ret;
}

/** arm_smmu_find_master(): the stream ID's master, from the stream table (rbtree, spinlocked). */
function armSmmuFindMaster(k: Kernel, sid: number): ArmSmmuMaster | null {
  for (const pdev of k.pdevs) if (pdev.master?.sids.includes(sid)) return pdev.master;
  return null;
}

/**
 * v4-minimal's error path of arm_smmu_cmdq_batch_issue(): every master with an ATS stream ID in
 * the failed batch loses EATS, and its entries in the invs array the batch came from are marked
 * broken (the flag the review asks for instead of master->ats_broken), healthy or not.
 */
function* armSmmuCmdqBatchFenceAll(k: Kernel, cmds: ArmSmmuCmdqBatch): Proc {
  const masters: ArmSmmuMaster[] = [];
  for (const c of cmds.cmds) {
    const master = c.op === 'ATC_INV' ? armSmmuFindMaster(k, c.sid) : null;
    if (master !== null && !masters.includes(master)) masters.push(master);
  }
  for (const master of masters) {
    yield* clearMasterEats(k, master);
    for (const inv of cmds.invs?.inv ?? [])
      if (inv.type === 'ATS' && master.sids.includes(inv.id)) inv.broken = true;
    k.ev.emit({ kind: 'atsFenced', dev: master.dev.index });
    yield `${master.dev.name}: ATS fenced${cmds.invs ? ', its invs entries marked broken' : ''}`;
  }
}

/** arm_smmu_cmdq_batch_add_cmd_p() */
function* armSmmuCmdqBatchAddCmd(k: Kernel, cmds: ArmSmmuCmdqBatch, cmd: Cmd): Proc {
  const smmu = k.smmu;
  const forceSync = cmds.cmds.length === smmu.batchEntries - 1 && smmu.optForceSync;
  // A command the batch's queue does not take (a VCMDQ's filter): flush, and go where it goes.
  const unsupportedCmd = !armSmmuCmdqSupportsCmd(cmds.cmdq, cmd);
  if (forceSync || unsupportedCmd) {
    yield* armSmmuCmdqBatchIssue(k, cmds, true);
    Object.assign(cmds, armSmmuCmdqBatchInitCmd(k, cmd, cmds.invs));
  }
  if (cmds.cmds.length === smmu.batchEntries) {
    // P24: force a sync for ATS-bearing batches so the timeout is caught here
    yield* armSmmuCmdqBatchIssue(
      k,
      cmds,
      k.v.patch(24) && !k.v.bug('async-batch-flush') ? cmds.hasAts : false,
    );
    Object.assign(cmds, armSmmuCmdqBatchInitCmd(k, cmd, cmds.invs));
  }
  if (cmd.op === 'ATC_INV') cmds.hasAts = true;
  cmds.cmds.push(cmd);
}

/** arm_smmu_cmdq_batch_submit() */
function* armSmmuCmdqBatchSubmit(k: Kernel, cmds: ArmSmmuCmdqBatch): Proc<number> {
  return yield* armSmmuCmdqBatchIssue(k, cmds, true);
}

/** arm_smmu_cmdq_issue_cmd_with_sync() */
function* armSmmuCmdqIssueCmdWithSync(k: Kernel, cmd: Cmd): Proc<number> {
  return yield* armSmmuCmdqIssueCmdlist(k, armSmmuGetCmdq(k, cmd), [cmd], true);
}

/** arm_smmu_invs_find_ats_master() (P24) */
function armSmmuInvsFindAtsMaster(k: Kernel, invs: ArmSmmuInvs, sid: number): ArmSmmuMaster | null {
  if (!invs.hasAts) return null;
  for (const cur of invs.inv) {
    if (cur.type === 'ATS' && cur.id === sid) {
      use(k.m, cur.master!, 'arm_smmu_invs_find_ats_master() returns inv->master');
      return cur.master;
    }
  }
  return null;
}

/** arm_smmu_master_disable_ats() (P24): called with master->ats_broken_lock held. */
function* armSmmuMasterDisableAts(k: Kernel, master: ArmSmmuMaster): Proc {
  if (yield* clearMasterEats(k, master)) k.m.printk('err', 'arm-smmu-v3: failed to disable ATS for master');
  master.atsBroken = true;
  k.ev.emit({ kind: 'atsFenced', dev: master.dev.index });
  yield `${master.dev.name}: ats_broken = true`;
  // Lastly, report to the core to schedule a full blocking procedure
  yield* iommuReportDeviceBroken(k, master.dev);
}

/**
 * The STE half of arm_smmu_master_disable_ats(), which v4-minimal's batch fence shares: EATS off
 * on each of the master's stream IDs (safe to update in place), then CFGI_STE and a sync.
 */
function* clearMasterEats(k: Kernel, master: ArmSmmuMaster): Proc<number> {
  const cmds = armSmmuCmdqBatchInitCmd(k, CFGI_STE_CMD, null);
  for (const sid of master.sids) {
    k.smmu.hw.ste.get(sid)!.eats = false;
    yield `clear STE.EATS sid ${sid}`;
    yield* armSmmuCmdqBatchAddCmd(k, cmds, { op: 'CFGI_STE', sid });
  }
  return yield* armSmmuCmdqBatchSubmit(k, cmds);
}

/** arm_smmu_cmdq_batch_retry() (P24): re-issue one ATC_INV per stream ID to find the culprit. */
function* armSmmuCmdqBatchRetry(k: Kernel, invs: ArmSmmuInvs, cmds: ArmSmmuCmdqBatch): Proc {
  if (!invs.hasAts) return;
  if (k.v.bug('blame-first-sid')) {
    // The bug: no re-issue per stream ID; the first ATS stream ID of the batch takes the blame.
    const first = cmds.cmds.find((c) => c.op === 'ATC_INV');
    const master = first && first.op === 'ATC_INV' ? armSmmuInvsFindAtsMaster(k, invs, first.sid) : null;
    if (master === null) return;
    yield* master.atsBrokenLock.lock(true);
    if (!master.atsBroken) yield* armSmmuMasterDisableAts(k, master);
    yield* master.atsBrokenLock.unlock(true);
    return;
  }
  let lastSid = -1;
  for (const cmd of cmds.cmds) {
    if (cmd.op !== 'ATC_INV') continue;
    if (lastSid >= 0 && cmd.sid === lastSid) continue;
    const master = armSmmuInvsFindAtsMaster(k, invs, cmd.sid);
    if (k.m.warnOn(master === null, 'arm_smmu_cmdq_batch_retry: no master for sid')) continue;
    lastSid = cmd.sid;
    yield* master!.atsBrokenLock.lock(true);
    if (master!.atsBroken) {
      yield* master!.atsBrokenLock.unlock(true);
      continue;
    }
    const ret = yield* armSmmuCmdqIssueCmdlist(k, cmds.cmdq, [cmd], true);
    if (ret === EIO) yield* armSmmuMasterDisableAts(k, master!);
    yield* master!.atsBrokenLock.unlock(true);
  }
}

/** arm_smmu_atc_inv_master() */
export function* armSmmuAtcInvMaster(k: Kernel, master: ArmSmmuMaster): Proc<number> {
  // P18: do not issue ATC_INV that will definitely time out
  if (k.v.patch(18) && !k.v.bug('atc-inv-to-broken') && master.atsBroken) return 0;
  // cmd = arm_smmu_make_cmd_atc_inv_all(0, IOMMU_NO_PASID)
  const cmds = armSmmuCmdqBatchInitCmd(k, ATC_INV_ALL_CMD, k.v.patch(22) ? master.atsInvs : null);
  for (const inv of master.atsInvs.inv) {
    yield* armSmmuCmdqBatchAddCmd(k, cmds, { op: 'ATC_INV', sid: inv.id, iova: 0, all: true });
  }
  return yield* armSmmuCmdqBatchSubmit(k, cmds);
}

/** __arm_smmu_domain_inv_range() */
function* __armSmmuDomainInvRange(k: Kernel, domain: IommuDomain, invs: ArmSmmuInvs, iova: number): Proc {
  // The batch starts on the queue of the domain's TLB invalidation command.
  const cmds = armSmmuCmdqBatchInitCmd(k, TLBI_CMD, invs);
  for (const cur of invs.inv) {
    switch (cur.type) {
      case 'S2_VMID':
        yield* armSmmuCmdqBatchAddCmd(k, cmds, { op: 'TLBI', domain: domain.id, iova, all: false });
        break;
      case 'ATS':
        // v4-minimal: the flag lives in the entry (review of P18), so no master is read here
        if (k.v.minimal && cur.broken) break;
        // P18: do not issue ATC_INV that will definitely time out
        if (k.v.patch(18) && !k.v.bug('atc-inv-to-broken')) {
          use(k.m, cur.master!, '__arm_smmu_domain_inv_range() reads inv->master->ats_broken');
          if (cur.master!.atsBroken) break;
        }
        yield* armSmmuCmdqBatchAddCmd(k, cmds, { op: 'ATC_INV', sid: cur.id, iova, all: false });
        break;
    }
  }
  if (cmds.cmds.length > 0) yield* armSmmuCmdqBatchSubmit(k, cmds);
}

/** arm_smmu_domain_inv_range(): the iotlb_sync of an unmap. */
export function* armSmmuDomainInvRange(k: Kernel, domain: IommuDomain, iova: number): Proc {
  k.rcu.readLock();
  let invs: ArmSmmuInvs;
  let locked = false;
  for (;;) {
    invs = domain.invs; // rcu_dereference(smmu_domain->invs)
    yield 'rcu_dereference(domain->invs)';
    // Lock only when ATS is in use: no ATS invalidation can be going on after a detach.
    if (invs.hasAts || invs.old) {
      const cur = invs;
      const self = k.m.self();
      self.preemptOff++; // read_lock() disables preemption
      yield* spinUntil(k.m, () => !cur.writer, -1, 'read_lock(invs->rwlock)');
      cur.readers++;
      if (cur.old) {
        cur.readers--;
        self.preemptOff--;
        yield 'invs replaced meanwhile: respin';
        continue;
      }
      locked = true;
    }
    break;
  }
  yield* __armSmmuDomainInvRange(k, domain, invs, iova);
  if (locked) {
    invs.readers--;
    k.m.self().preemptOff--;
  }
  k.rcu.readUnlock();
}

/**
 * Publish a domain's new invs array. With `drain` (the attach turns the master's ATS off, or the
 * master leaves this domain, arm_smmu_invs_unref()), wait (write lock) for every ATS invalidation
 * still walking the old array; either way mark the old one old. (Moving between domains does not
 * wait for readers of the *new* domain's old array: a merge fences nothing, which is why
 * release_device waits a grace period, P17.)
 */
function* armSmmuInstallDomainInvs(k: Kernel, domain: IommuDomain, next: ArmSmmuInvs, drain: boolean): Proc {
  const prev = domain.invs;
  domain.invs = next; // rcu_assign_pointer
  yield `domain ${domain.id}: publish invs`;
  if (!drain) {
    prev.old = true;
    return;
  }
  const self = k.m.self();
  self.irqOff++; // write_lock_irqsave()
  self.preemptOff++;
  yield* spinUntil(k.m, () => prev.readers === 0 && !prev.writer, -1, 'write_lock(old invs->rwlock)');
  prev.writer = true;
  prev.old = true;
  prev.writer = false;
  self.preemptOff--;
  self.irqOff--;
  yield `domain ${domain.id}: old invs drained and marked old`;
}

export interface SteTarget {
  config: 'abort' | 'translate';
  domain: number;
  eats: boolean;
}

/** arm_smmu_write_ste(): write the STE and sync it with CFGI_STE. */
function* armSmmuWriteSte(k: Kernel, master: ArmSmmuMaster, sid: number, target: SteTarget): Proc {
  const ste = k.smmu.hw.ste.get(sid)!;
  // P23: fence against the ATS-broken path overwriting STE.EATS
  const locked = k.v.patch(23) && !k.v.bug('eats-lost-update');
  if (locked) yield* master.atsBrokenLock.lock(true);
  const local = { ...target };
  if (locked && master.atsBroken) local.eats = false;
  if (local.eats && !ste.eats) k.ev.emit({ kind: 'eatsEnabled', dev: master.dev.index });
  ste.config = local.config;
  ste.domain = local.domain;
  ste.eats = local.eats;
  yield `write STE sid ${sid}: ${local.config}${local.config === 'translate' ? ` domain ${local.domain}` : ''} EATS=${local.eats ? 1 : 0}`;
  yield* armSmmuCmdqIssueCmdWithSync(k, { op: 'CFGI_STE', sid });
  if (locked) yield* master.atsBrokenLock.unlock(true);
}

/** arm_smmu_install_ste_for_dev() */
function* armSmmuInstallSteForDev(k: Kernel, master: ArmSmmuMaster, target: SteTarget): Proc {
  for (const sid of master.sids) yield* armSmmuWriteSte(k, master, sid, target);
}

/** arm_smmu_reset_device_done() (P05, P18, P23) */
export function* armSmmuResetDeviceDone(k: Kernel, dev: PciDev): Proc {
  const master = dev.master;
  if (k.m.warnOn(master === null, 'arm_smmu_reset_device_done: no master')) return;
  // P23: ensure the device recovery is seen, to flush any pre-reset fault
  const locked = k.v.patch(23) && !k.v.bug('reset-clears-broken-midway');
  if (locked) yield* master!.atsBrokenLock.lock(true);
  master!.atsBroken = false;
  yield `${dev.name}: ats_broken = false`;
  if (locked) yield* master!.atsBrokenLock.unlock(true);
}

/** arm_smmu_ats_supported() */
function armSmmuAtsSupported(k: Kernel, master: ArmSmmuMaster): boolean {
  // P18: do not enable ATS on a master whose ATS is broken until a reset
  if (k.v.patch(18) && !k.v.bug('ats-reenabled-while-broken') && master.atsBroken) return false;
  return pciAtsSupported(k, master.dev);
}

/** __ffs(smmu->pgsize_bitmap): the SMMU's smallest page, 4 KiB, is the STU every ATS user gets. */
const SMMU_STU = 12;

/**
 * arm_smmu_master_prepare_ats() (probe): program the STU while a failure can still fail the
 * probe. Seed 000 3/5: drivers check pci_ats_supported() first and fail the probe on an error,
 * so that a master reaching attach cannot fail pci_enable_ats().
 */
function armSmmuMasterPrepareAts(k: Kernel, master: ArmSmmuMaster): number {
  if (!armSmmuAtsSupported(k, master)) return 0;
  const ret = pciPrepareAts(k, master.dev, SMMU_STU);
  if (ret) k.m.printk('err', `${master.dev.name}: failed to prepare ATS (STU ${SMMU_STU}): ${errName(ret)}`);
  return ret;
}

/**
 * arm_smmu_insert_master() (mainline): the master's stream IDs, sorted, go into smmu->streams.
 * A stream ID another master already holds fails the probe with -ENODEV and takes back the ones
 * inserted so far (commit 2d00c34d665b "iommu/arm-smmu-v3: Fail aliasing StreamIDs more
 * gracefully"); one this master holds twice is skipped ("Bridged PCI devices may end up with
 * duplicated IDs"). So a function that DMA-aliases an already probed one never gets an IOMMU,
 * nor a group. (An out-of-tree patch posted 2025-10, "iommu/arm-smmu-v3: fix probe device bug
 * due to duplicated stream IDS", would accept such aliases; it is not mainline and not
 * modelled.) Allocating the streams and the invs arrays cannot fail here.
 */
function armSmmuInsertMaster(k: Kernel, master: ArmSmmuMaster): number {
  const streams = k.smmu.streams;
  // sort(master->streams, ..., arm_smmu_stream_id_cmp)
  const sids = [...master.sids].sort((a, b) => a - b);
  const inserted: number[] = [];
  let ret = 0;
  for (const sid of sids) {
    const existing = streams.get(sid);
    if (existing === undefined) {
      streams.set(sid, master);
      inserted.push(sid);
      continue;
    }
    // Bridged PCI devices may end up with duplicated IDs
    if (existing === master) continue;
    k.m.printk(
      'warn',
      `${master.dev.name}: Aliasing StreamID 0x${sid.toString(16)} (from ${existing.dev.name}) unsupported, expect DMA to be broken`,
    );
    ret = ENODEV;
    break;
  }
  if (ret) for (const sid of inserted) streams.delete(sid);
  return ret;
}

/** arm_smmu_remove_master(): the master's stream IDs leave smmu->streams. */
function armSmmuRemoveMaster(k: Kernel, master: ArmSmmuMaster): void {
  for (const sid of master.sids) if (k.smmu.streams.get(sid) === master) k.smmu.streams.delete(sid);
}

/**
 * arm_smmu_probe_device(): insert the master's stream IDs, then (000 3/5) prepare ATS. A non-zero
 * return fails the IOMMU probe; a failed ATS prepare takes the stream IDs back out, as the
 * kernel's error path after a successful arm_smmu_insert_master() does. There is no later probe
 * in the harness: every device probes once, at setup, in index order, so the stream IDs an
 * unplug frees (arm_smmu_remove_master() in release) are never claimed again.
 */
export function armSmmuProbeDevice(k: Kernel, master: ArmSmmuMaster): number {
  const ret = armSmmuInsertMaster(k, master);
  if (ret) return ret;
  if (k.v.atsPatch(3) && !k.v.bug('enable-ats-failure-desync')) {
    const r = armSmmuMasterPrepareAts(k, master);
    if (r) armSmmuRemoveMaster(k, master);
    return r;
  }
  return 0;
}

/** arm_smmu_enable_ats() */
function* armSmmuEnableAts(k: Kernel, master: ArmSmmuMaster): Proc {
  yield* armSmmuAtcInvMaster(k, master);
  const ret = pciEnableAts(k, master.dev, SMMU_STU);
  // 000 3/5: the probe-time prepare rules failures out, so one here is a kernel bug
  if (k.v.atsPatch(3) && !k.v.bug('enable-ats-failure-desync')) {
    k.m.warnOn(ret !== 0, `${master.dev.name}: Failed to enable ATS (STU ${SMMU_STU})`);
  } else if (ret) {
    k.m.printk('err', `${master.dev.name}: Failed to enable ATS (STU ${SMMU_STU})`);
  }
  yield `${master.dev.name}: pci_enable_ats() = ${errName(ret)}`;
}

function withoutMaster(invs: ArmSmmuInvs, master: ArmSmmuMaster): ArmSmmuInvs {
  const inv = invs.inv.filter((i) => i.master !== master);
  return new ArmSmmuInvs(
    inv,
    inv.some((i) => i.type === 'ATS'),
  );
}

function withMaster(
  invs: ArmSmmuInvs,
  domain: IommuDomain,
  master: ArmSmmuMaster,
  ats: boolean,
): ArmSmmuInvs {
  const inv = [...withoutMaster(invs, master).inv];
  if (!inv.some((i) => i.type === 'S2_VMID')) inv.push({ type: 'S2_VMID', id: domain.id, master: null });
  // arm_smmu_invs_merge() builds a new array of new entries
  if (ats) for (const a of master.atsInvs.inv) inv.push({ type: a.type, id: a.id, master: a.master });
  // The invs array is kept sorted (type, id): ATC_INVs of one batch come in stream-ID order.
  inv.sort((a, b) => (a.type === b.type ? a.id - b.id : a.type === 'S2_VMID' ? -1 : 1));
  return new ArmSmmuInvs(
    inv,
    inv.some((i) => i.type === 'ATS'),
  );
}

/**
 * arm_smmu_attach_dev() / arm_smmu_attach_dev_blocked(): prepare (decide ATS, add invs, disable
 * ATS at the device if it goes off), install the STE, commit (enable ATS / flush the ATC,
 * drop the old domain's invs).
 */
export function* armSmmuAttachDev(k: Kernel, domain: IommuDomain, dev: PciDev): Proc<number> {
  // arm_smmu_asid_lock: attaches of different groups rewrite a domain's invs one after the
  // other; one turning ATS off waits for the readers of the array it replaces, holding it.
  // (Uncontended, taking it is part of the next step: only another attach can be waiting.)
  yield* k.smmu.asidLock.lock(false);
  try {
    const master = dev.master!;
    const old = master.domain;
    const paging = domain.type === 'paging';
    // arm_smmu_attach_prepare()
    const atsEnabled = paging && armSmmuAtsSupported(k, master);
    const atsDisabled = master.atsEnabled && !atsEnabled;
    if (paging) {
      yield* armSmmuInstallDomainInvs(
        k,
        domain,
        withMaster(domain.invs, domain, master, atsEnabled),
        atsDisabled,
      );
      if (atsEnabled) domain.nrAtsMasters++;
      yield `${dev.name}: add invs to domain ${domain.id}${atsEnabled ? ' (with ATS)' : ''}`;
    }
    if (!atsEnabled && master.atsEnabled) {
      pciDisableAts(k, dev);
      yield `${dev.name}: pci_disable_ats()`;
    }
    yield* armSmmuInstallSteForDev(k, master, {
      config: paging ? 'translate' : 'abort',
      domain: paging ? domain.id : -1,
      eats: atsEnabled,
    });
    // arm_smmu_attach_commit()
    if (atsEnabled && !master.atsEnabled) {
      yield* armSmmuEnableAts(k, master);
    } else if (atsEnabled && master.atsEnabled) {
      yield* armSmmuAtcInvMaster(k, master);
    } else if (!atsEnabled && master.atsEnabled) {
      yield* armSmmuAtcInvMaster(k, master);
    }
    master.atsEnabled = atsEnabled;
    if (old && old !== domain && old.type === 'paging') {
      const leftWithAts = old.invs.inv.some((i) => i.master === master);
      if (leftWithAts) old.nrAtsMasters--;
      // arm_smmu_invs_unref() takes the old array's write lock whatever ATS does next ("The lock
      // is required to fence concurrent ATS operations", invs v3 on and mainline), and for a
      // master without ATS too (its ASID/VMID entry is unref'd the same way): no ATC_INV still
      // walking the array reaches anything after this attach. (Until the thirteenth session this
      // drained only when ATS went off, and the left-domain finding was that gap: retracted; until
      // the fifteenth, only when the master had ATS entries in it.)
      yield* armSmmuInstallDomainInvs(k, old, withoutMaster(old.invs, master), true);
      yield `${dev.name}: drop invs from domain ${old.id}`;
    }
    master.domain = domain;
    return 0;
  } finally {
    k.smmu.asidLock.unlock();
  }
}

/**
 * arm_smmu_release_device(): put the STE back to abort (attach the blocked domain, which drops
 * the master from its domain's invs), take its stream IDs out of smmu->streams, then free the
 * master — after a grace period (P17), since an invalidation may still be walking an old invs
 * array that points at it.
 */
export function* armSmmuReleaseDevice(k: Kernel, dev: PciDev, blocked: IommuDomain): Proc {
  const master = dev.master!;
  yield* armSmmuAttachDev(k, blocked, dev);
  armSmmuRemoveMaster(k, master);
  if (k.v.patch(17) && !k.v.bug('master-freed-under-rcu')) yield* k.rcu.synchronize();
  kfree(master);
  dev.master = null;
  yield `${dev.name}: kfree(master)`;
}
