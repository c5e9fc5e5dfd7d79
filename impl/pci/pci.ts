/** drivers/pci/pci.c — pci_reset_function() and the FLR method (P02, P04 change pcie_flr). */
import type { FlrOutcome } from '../hw/endpoint.ts';
import { iommuReleaseDevice, pciDevResetIommuDone, pciDevResetIommuPrepare } from '../iommu/iommu.ts';
import { ENODEV, ENOTTY, errName, type Kernel, type PciDev } from '../kernel.ts';
import type { Proc } from '../sim/machine.ts';
import { msleep, sleepUntil } from '../sim/sync.ts';
import { pciRestoreAtsState } from './ats.ts';

/** PCIE_RESET_READY_POLL_MS */
export const PCIE_RESET_READY_POLL_MS = 60_000;

/** pci_dev_wait(): poll config space until the device answers, or -ENOTTY. */
function* pciDevWait(k: Kernel, dev: PciDev, reset: string, timeoutMs: number): Proc<number> {
  const ok = yield* sleepUntil(
    k.m,
    () => dev.ep.ready,
    k.m.now + timeoutMs * 1000,
    `${dev.name} ready after ${reset}`,
  );
  if (!ok) {
    k.m.printk('warn', `${dev.name}: not ready ${timeoutMs}ms after ${reset}; giving up`);
    return ENOTTY;
  }
  return 0;
}

/** pcie_flr(): the device does `outcome` when told to reset (the scenario decides). */
export function* pcieFlr(k: Kernel, dev: PciDev, outcome: FlrOutcome): Proc<number> {
  // Seed 003 is about resets without this fence: the bug puts that state back.
  const fenced = !k.v.bug('inv-during-flr');
  let ret = fenced ? yield* pciDevResetIommuPrepare(k, dev) : 0;
  if (ret) {
    k.m.printk('err', `${dev.name}: failed to stop IOMMU for a PCI reset: ${errName(ret)}`);
    return ret;
  }
  dev.ep.startFlr(outcome);
  yield `${dev.name}: initiate FLR`;
  yield* msleep(k.m, 100);
  ret = yield* pciDevWait(k, dev, 'FLR', PCIE_RESET_READY_POLL_MS);
  if (fenced) yield* pciDevResetIommuDone(k, dev, ret);
  return ret;
}

/** __pci_reset_function_locked(): try the device's reset methods in order. */
function* __pciResetFunctionLocked(k: Kernel, dev: PciDev, outcome: FlrOutcome): Proc<number> {
  const methods = [(d: PciDev) => pcieFlr(k, d, outcome)];
  for (const method of methods) {
    const rc = yield* method(dev);
    if (!rc) return 0;
    if (rc !== ENOTTY) return rc;
  }
  return ENOTTY;
}

/** pci_reset_function(): save state, reset under the device lock, restore state. */
export function* pciResetFunction(k: Kernel, dev: PciDev, outcome: FlrOutcome): Proc<number> {
  yield* dev.deviceLock.lock();
  if (dev.removed) {
    dev.deviceLock.unlock();
    yield `${dev.name}: gone`;
    return ENODEV;
  }
  const rc = yield* __pciResetFunctionLocked(k, dev, outcome);
  // pci_dev_restore() -> pci_restore_state() -> pci_restore_ats_state()
  pciRestoreAtsState(dev);
  dev.deviceLock.unlock();
  yield `${dev.name}: pci_reset_function() = ${errName(rc)}`;
  return rc;
}

/**
 * pci_stop_and_remove_bus_device(): orderly hot unplug. The device is deleted, which releases it
 * from the IOMMU, then the slot powers off and the function leaves the bus. (The device lock
 * serialises it with resets here.)
 */
export function* pciStopAndRemoveBusDevice(k: Kernel, dev: PciDev): Proc {
  yield* dev.deviceLock.lock();
  if (dev.removed) {
    dev.deviceLock.unlock();
    return;
  }
  dev.removed = true;
  yield* iommuReleaseDevice(k, dev);
  dev.ep.remove();
  yield `${dev.name}: slot powered off, function gone`;
  dev.deviceLock.unlock();
}
