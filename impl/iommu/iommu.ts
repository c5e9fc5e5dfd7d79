/**
 * drivers/iommu/iommu.c — groups, group devices, attach, map/unmap, reset prepare/done, and the
 * quarantine of a broken device (P03–P11).
 */
import {
  BLOCKED_BROKEN,
  BLOCKED_NAMES,
  BLOCKED_NO,
  BLOCKED_RESET_FAILED,
  BLOCKED_RESETTING,
  EBUSY,
  ENOTTY,
  errName,
  type GroupDevice,
  type IommuDomain,
  type IommuGroup,
  type Kernel,
  type PciDev,
} from '../kernel.ts';
import { pciAtsSupported } from '../pci/ats.ts';
import { pciForEachDmaAlias } from '../pci/search.ts';
import { kfree, use } from '../sim/lifetime.ts';
import type { Proc } from '../sim/machine.ts';
import {
  armSmmuAttachDev,
  armSmmuDomainInvRange,
  armSmmuProbeDevice,
  armSmmuReleaseDevice,
  armSmmuResetDeviceDone,
} from '../smmuv3/arm-smmu-v3.ts';

/** __dev_to_gdev(): caller holds dev->iommu_group->mutex. */
function __devToGdev(_k: Kernel, dev: PciDev): GroupDevice | null {
  const group = dev.group;
  if (group === null) return null;
  for (const gdev of group.devices) if (gdev.dev === dev) return gdev;
  return null;
}

/** __dev_to_gdev_rcu() (P11): caller is inside rcu_read_lock(). */
function __devToGdevRcu(k: Kernel, dev: PciDev): GroupDevice | null {
  return __devToGdev(k, dev);
}

function setBlocked(k: Kernel, gdev: GroupDevice, to: number): void {
  const from = gdev.blocked;
  gdev.blocked = to;
  k.ev.emit({ kind: 'blocked', dev: gdev.dev.index, from, to });
}

/** __iommu_attach_device(): the driver's attach_dev. */
function* __iommuAttachDevice(k: Kernel, domain: IommuDomain, dev: PciDev): Proc<number> {
  return yield* armSmmuAttachDev(k, domain, dev);
}

/**
 * __iommu_group_set_domain_internal(): the domain the group is on already is a no-op, so the
 * driver's attach_dev is not called again (`group->domain == new_domain`, checked before the
 * recovery); otherwise refused with -EBUSY while a device of the group is being recovered, else
 * every device of the group is attached.
 */
function* __iommuGroupSetDomainInternal(k: Kernel, domain: IommuDomain, group: IommuGroup): Proc<number> {
  if (group.domain === domain) {
    yield `group ${group.id} already on domain ${domain.id}`;
    return 0;
  }
  if (group.recoveryCnt) {
    yield 'attach refused: recovery_cnt != 0';
    return EBUSY;
  }
  for (const gdev of group.devices) yield* __iommuAttachDevice(k, domain, gdev.dev);
  group.domain = domain;
  yield `group ${group.id} now on domain ${domain.id}`;
  return 0;
}

/** iommu_setup_default_domain() at probe: the group is on no domain yet. */
export function* iommuSetupDefaultDomain(k: Kernel, domain: IommuDomain, group: IommuGroup): Proc {
  yield* group.mutex.lock();
  yield* __iommuGroupSetDomainInternal(k, domain, group);
  group.mutex.unlock();
}

/** iommu_attach_group(). */
export function* iommuAttachGroup(k: Kernel, domain: IommuDomain, group: IommuGroup): Proc<number> {
  yield* group.mutex.lock();
  const ret = yield* __iommuGroupSetDomainInternal(k, domain, group);
  group.mutex.unlock();
  return ret;
}

/** iommu_map() of one page. */
export function* iommuMap(k: Kernel, domain: IommuDomain, iova: number): Proc<number> {
  if (domain.pt.has(iova)) return EBUSY;
  const page = k.mem.alloc(domain.id, iova);
  if (page < 0) return EBUSY;
  domain.pt.set(iova, page);
  yield `map domain ${domain.id} iova ${iova} -> page ${page}`;
  return 0;
}

/** iommu_unmap() of one page: clear the PTE, invalidate (iotlb_sync), then free the page. */
export function* iommuUnmap(k: Kernel, domain: IommuDomain, iova: number): Proc<number> {
  const page = domain.pt.get(iova);
  if (page === undefined) return 0;
  domain.pt.delete(iova);
  yield `clear PTE domain ${domain.id} iova ${iova}`;
  yield* armSmmuDomainInvRange(k, domain, iova);
  k.mem.free(page);
  yield `free page ${page} (iommu_put_pages_list)`;
  return 1;
}

/** __iommu_group_alloc_blocking_domain() */
function __iommuGroupAllocBlockingDomain(k: Kernel, group: IommuGroup): number {
  if (group.blockingDomain === null) group.blockingDomain = k.domains.find((d) => d.type === 'blocked')!;
  return 0;
}

/**
 * __iommu_group_block_device() (P10): move the device to the blocking domain while keeping
 * group->domain; escalate the reason if it is already blocked.
 */
function* __iommuGroupBlockDevice(k: Kernel, gdev: GroupDevice, reason: number): Proc<number> {
  const group = gdev.group;
  if (gdev.blocked) {
    // Escalate the severity
    setBlocked(k, gdev, Math.max(gdev.blocked, reason));
    yield `${gdev.dev.name}: blocked escalates to ${BLOCKED_NAMES[gdev.blocked]}`;
    return 0;
  }
  const ret = __iommuGroupAllocBlockingDomain(k, group);
  if (ret) return ret;
  if (group.domain !== group.blockingDomain) {
    const r = yield* __iommuAttachDevice(k, group.blockingDomain!, gdev.dev);
    if (r) return r;
  }
  setBlocked(k, gdev, reason);
  group.recoveryCnt++;
  yield `${gdev.dev.name}: blocked = ${BLOCKED_NAMES[reason]}, recovery_cnt = ${group.recoveryCnt}`;
  return 0;
}

/** pci_dev_reset_iommu_prepare(): block the device's IOMMU path before a reset. */
export function* pciDevResetIommuPrepare(k: Kernel, pdev: PciDev): Proc<number> {
  if (!pciAtsSupported(k, pdev) || !pdev.hasIommu) return 0;
  const group = pdev.group!;
  yield* group.mutex.lock();
  const gdev = __devToGdev(k, pdev);
  if (k.m.warnOn(gdev === null, 'pci_dev_reset_iommu_prepare: no gdev')) {
    group.mutex.unlock();
    return 0;
  }
  if (gdev!.resetDepth++) {
    group.mutex.unlock();
    yield 'nested reset: depth++';
    return 0;
  }
  let ret = 0;
  // P04: the device might be already blocked for a quarantine
  if (!(k.v.patch(4) && gdev!.blocked)) {
    ret = yield* __iommuGroupBlockDevice(k, gdev!, BLOCKED_RESETTING);
    if (ret) gdev!.resetDepth--;
  }
  group.mutex.unlock();
  // Fix (domain-join-leaves-reader-into-flr): blocking drained the array the device left, but
  // an invalidation may still walk an older one that another device's attach replaced; its
  // readers are RCU readers, so a grace period waits for them before the reset starts.
  if (k.v.fix('prepare-grace-period') && !ret) yield* k.rcu.synchronize();
  yield 'pci_dev_reset_iommu_prepare() returns';
  return ret;
}

/**
 * group_device_cmp_dma_alias(): the pci_for_each_dma_alias() callback; `alias` is a RID of the
 * device being unblocked, `sibling` the other group device's function: 1 if one of the
 * sibling's DMA alias RIDs (its own included) is `alias`. The seed shows only this signature and
 * the tail of a call ending in `&alias);`, so the body is reconstructed: a nested walk of the
 * sibling's aliases compared with `alias`.
 */
function groupDeviceCmpDmaAlias(_dev: PciDev, alias: number, sibling: PciDev): number {
  return pciForEachDmaAlias(sibling, (_s, rid, target: number) => (rid === target ? 1 : 0), alias);
}

/**
 * group_device_dma_alias_is_blocked() (mainline): some other device of the group that shares a
 * DMA alias RID with `gdev` is still blocked. Its body is not in the seed, which shows only its
 * signature, lockdep_assert_held(&group->mutex), a sibling loop variable, the callback above and
 * the call in pci_dev_reset_iommu_done(); reconstructed from those. Synchronous (no step): the
 * caller holds group->mutex. On SMMUv3 it can never be true: a DMA alias fails its IOMMU probe
 * (arm_smmu_insert_master()), so aliases never share a group.
 */
export function groupDeviceDmaAliasIsBlocked(gdev: GroupDevice): boolean {
  const group = gdev.group;
  for (const sibling of group.devices) {
    if (sibling === gdev || !sibling.blocked) continue;
    if (pciForEachDmaAlias(gdev.dev, groupDeviceCmpDmaAlias, sibling.dev)) return true;
  }
  return false;
}

/**
 * pci_dev_reset_iommu_done(): after the reset routine. In v4 it takes the reset result (P04) and
 * keeps a device blocked after a failed reset; on success it tells the driver (P05) and drops
 * any stale broken report (P11).
 */
export function* pciDevResetIommuDone(k: Kernel, pdev: PciDev, resetResult: number): Proc {
  const { m, v } = k;
  if (!pciAtsSupported(k, pdev) || !pdev.hasIommu) return;
  const group = pdev.group!;
  yield* group.mutex.lock();
  try {
    const gdev = __devToGdev(k, pdev);
    if (m.warnOn(gdev === null, 'pci_dev_reset_iommu_done: no gdev')) return;
    if (m.warnOn(gdev!.resetDepth === 0, 'pci_dev_reset_iommu_done: unbalanced')) return;
    if (--gdev!.resetDepth) return;
    if (m.warnOn(group.blockingDomain === null, 'pci_dev_reset_iommu_done: no blocking domain')) return;

    // P04: a failed reset leaves the device blocked
    if (v.patch(4) && resetResult && !v.bug('done-ignores-result')) {
      if (resetResult === ENOTTY)
        m.printk('warn', `${pdev.name}: Reset may have been skipped. Keep it blocked conservatively`);
      else m.printk('err', `${pdev.name}: Reset failed. Keep it blocked to protect memory`);
      m.warnOn(
        (yield* __iommuGroupBlockDevice(k, gdev!, BLOCKED_RESET_FAILED)) !== 0,
        'block on failed reset',
      );
      return;
    }
    if (v.patch(4)) {
      if (m.warnOn(!gdev!.blocked, 'pci_dev_reset_iommu_done: not blocked')) return;
    } else if (!gdev!.blocked) {
      return;
    }
    if (groupDeviceDmaAliasIsBlocked(gdev!)) {
      // FIXME (seed): DMA aliased devices share the same RID, which would be convoluted to
      // handle, as "gdev->blocked" is not sufficient: warn, and unblock anyway.
      m.printk('warn', `${pdev.name}: DMA-aliased sibling may be prematurely unblocked`);
    }
    if (v.patch(5) && !v.bug('no-reset-device-done')) {
      // P05: tell the driver the device is clean again
      yield* armSmmuResetDeviceDone(k, pdev);
    }
    if (v.patch(11) && !v.bug('stale-broken-report')) {
      // P11: neutralise any stale pre-reset broken report
      gdev!.brokenPending = false;
      yield `${pdev.name}: broken_pending = false`;
    }
    // Re-attach RID domain back to group->domain
    if (group.domain !== group.blockingDomain) {
      m.warnOn((yield* __iommuAttachDevice(k, group.domain!, pdev)) !== 0, 're-attach after reset');
    }
    const old = gdev!.blocked;
    setBlocked(k, gdev!, BLOCKED_NO);
    if (!m.warnOn(group.recoveryCnt === 0, 'recovery_cnt underflow')) group.recoveryCnt--;
    yield `${pdev.name}: unblocked (reset ${errName(resetResult)}), recovery_cnt = ${group.recoveryCnt}`;
    if (old > BLOCKED_RESETTING) m.printk('info', `${pdev.name}: Device is unblocked after successful reset`);
  } finally {
    group.mutex.unlock();
  }
}

/** iommu_group_broken_worker() (P11) */
export function* iommuGroupBrokenWorker(k: Kernel, gdev: GroupDevice): Proc {
  if (!use(k.m, gdev, 'iommu_group_broken_worker')) return;
  const group = gdev.group;
  const dev = gdev.dev;
  yield* group.mutex.lock();
  try {
    if (!dev.hasIommu) return;
    // A successful reset between schedule_work() and now cleared broken_pending
    if (!gdev.brokenPending) {
      yield 'broken_pending already cleared: skip';
      return;
    }
    if (k.m.warnOn((yield* __iommuGroupBlockDevice(k, gdev, BLOCKED_BROKEN)) !== 0, 'block broken device'))
      return;
    k.m.printk('warn', `${dev.name}: IOMMU has quarantined the device`);
    gdev.brokenPending = false;
    yield 'broken_pending = false';
  } finally {
    group.mutex.unlock();
  }
}

/** iommu_report_device_broken() (P11): safe from any context; the work does the blocking. */
export function* iommuReportDeviceBroken(k: Kernel, dev: PciDev): Proc {
  if (!k.v.patch(11)) return;
  k.rcu.readLock();
  const gdev = __devToGdevRcu(k, dev);
  yield 'rcu lookup of gdev';
  if (gdev !== null && use(k.m, gdev, 'iommu_report_device_broken')) {
    gdev.brokenPending = true;
    k.wq.schedule(gdev.brokenWork);
    yield `${dev.name}: broken_pending = true; schedule_work(broken_work)`;
  }
  k.rcu.readUnlock();
}

/** iommu_deinit_device(): the driver lets go of the device (under group->mutex). */
function* iommuDeinitDevice(k: Kernel, dev: PciDev): Proc {
  __iommuGroupAllocBlockingDomain(k, dev.group!);
  yield* armSmmuReleaseDevice(k, dev, dev.group!.blockingDomain!);
  dev.group = null; // rcu_assign_pointer(dev->iommu_group, NULL)
  dev.hasIommu = false;
  yield `${dev.name}: iommu_deinit_device()`;
}

/**
 * __iommu_group_free_device() (P07–P09, P11): outside the mutex, stop the broken work for good,
 * wait for RCU readers of the list entry, then free it.
 */
function* __iommuGroupFreeDevice(k: Kernel, gdev: GroupDevice): Proc {
  if (k.v.patch(11) && !k.v.bug('broken-work-uaf')) {
    // Disable (not just cancel) broken_work: a racing report must not queue it again.
    yield* k.wq.disableSync(gdev.brokenWork);
  } else if (k.v.patch(11)) {
    yield* k.wq.cancelSync(gdev.brokenWork);
  }
  if (k.v.patch(8)) yield* k.rcu.synchronize();
  kfree(gdev);
  yield `kfree(${gdev.what})`;
}

/** __iommu_group_remove_device() */
function* __iommuGroupRemoveDevice(k: Kernel, dev: PciDev): Proc {
  const group = dev.group!;
  let toFree: GroupDevice | null = null;
  yield* group.mutex.lock();
  const i = group.devices.findIndex((d) => d.dev === dev);
  if (i >= 0) {
    const gdev = group.devices[i]!;
    // P04: must drop the recovery_cnt when removing a blocked device
    if (k.v.patch(4) && !k.v.bug('unplug-leaks-recovery-cnt') && gdev.blocked) {
      if (!k.m.warnOn(group.recoveryCnt === 0, 'recovery_cnt underflow on removal')) group.recoveryCnt--;
    }
    group.devices.splice(i, 1); // list_del_rcu()
    yield `${dev.name}: list_del_rcu(gdev)`;
    yield* iommuDeinitDevice(k, dev);
    toFree = gdev;
  }
  group.mutex.unlock();
  yield 'mutex_unlock(group->mutex)';
  if (toFree !== null) yield* __iommuGroupFreeDevice(k, toFree);
}

/**
 * __iommu_probe_device(): the driver's probe_device() may fail (seed 000: a failed ATS prepare;
 * a DMA alias whose stream IDs another master holds: -ENODEV from arm_smmu_insert_master()),
 * before the device gets a group (ops->device_group() comes after probe_device()); the device
 * then has no IOMMU: no group, no master, its stream IDs keep aborting.
 */
export function* iommuProbeDevice(k: Kernel, dev: PciDev): Proc<number> {
  const ret = armSmmuProbeDevice(k, dev.master!);
  if (ret) {
    const group = dev.group!;
    group.devices.splice(
      group.devices.findIndex((g) => g.dev === dev),
      1,
    );
    dev.group = null;
    dev.master = null;
    dev.hasIommu = false;
    k.m.printk('err', `${dev.name}: iommu probe failed: ${errName(ret)}`);
  }
  yield `${dev.name}: iommu probe = ${errName(ret)}`;
  return ret;
}

/** iommu_release_device(): the device is going away (BUS_NOTIFY_REMOVED_DEVICE). */
export function* iommuReleaseDevice(k: Kernel, dev: PciDev): Proc {
  if (dev.group !== null) yield* __iommuGroupRemoveDevice(k, dev);
}
