/**
 * drivers/pci/pcie/err.c — pcie_do_recovery(): the PCIe error recovery the AER (and DPC) service
 * drivers run for an uncorrectable error. Recovery runs on everything below the Port above the
 * function; here that is the one function (each device is alone below its Port, and a PF's
 * recovery does not take its VFs along, as with its resets).
 *
 * The bound driver is not modelled beyond its error handlers, taken to be the common ones:
 * error_detected() asks for a reset, slot_reset() restores config space (pci_restore_state(),
 * which restores ATS) and reports the function recovered, resume() restarts its I/O.
 */
import { type Kernel, type PciDev } from '../../kernel.ts';
import type { Proc } from '../../sim/machine.ts';
import { pciRestoreAtsState } from '../ats.ts';

/** enum pci_ers_result (the values recovery uses here). */
export type PciErsResult = 'can_recover' | 'need_reset' | 'recovered' | 'disconnect';

/** pci_channel_state_t: a fatal error freezes the link, a non-fatal one leaves it normal. */
export type PciChannelState = 'frozen' | 'normal';

/** pcie_ers_merge_result(): the votes of the devices below the Port, merged. */
function pcieErsMergeResult(orig: PciErsResult, vote: PciErsResult): PciErsResult {
  if (orig === 'can_recover' || orig === 'recovered') return vote;
  if (orig === 'disconnect' && vote === 'need_reset') return 'need_reset';
  return orig;
}

/**
 * report_error_detected(): under the device lock, the function's channel state changes and its
 * driver's error_detected() votes (a reset, here). A function already gone is not on the bus.
 */
function* reportErrorDetected(
  k: Kernel,
  dev: PciDev,
  state: PciChannelState,
  result: PciErsResult,
): Proc<PciErsResult> {
  yield* dev.deviceLock.lock();
  if (dev.removed) {
    dev.deviceLock.unlock();
    return result;
  }
  const vote: PciErsResult = 'need_reset';
  yield `${dev.name}: error_detected(${state}) = PCI_ERS_RESULT_NEED_RESET`;
  dev.deviceLock.unlock();
  k.m.printk('info', `${dev.name}: AER: error_detected: the driver stops its I/O and asks for a reset`);
  return pcieErsMergeResult(result, vote);
}

/** report_slot_reset(): the driver's slot_reset() restores config space after the reset. */
function* reportSlotReset(_k: Kernel, dev: PciDev, result: PciErsResult): Proc<PciErsResult> {
  yield* dev.deviceLock.lock();
  if (dev.removed) {
    dev.deviceLock.unlock();
    return result;
  }
  // pci_dev_set_io_state(dev, pci_channel_io_normal); pci_restore_state() -> pci_restore_ats_state()
  pciRestoreAtsState(dev);
  yield `${dev.name}: slot_reset(): pci_restore_state() = PCI_ERS_RESULT_RECOVERED`;
  dev.deviceLock.unlock();
  return pcieErsMergeResult(result, 'recovered');
}

/** report_resume(): the driver's resume() restarts its I/O. */
function* reportResume(_k: Kernel, dev: PciDev): Proc {
  yield* dev.deviceLock.lock();
  if (!dev.removed) yield `${dev.name}: resume()`;
  dev.deviceLock.unlock();
}

/** report_perm_failure_detected(): the driver hears the function is lost for good. */
function* reportPermFailureDetected(_k: Kernel, dev: PciDev): Proc {
  yield* dev.deviceLock.lock();
  if (!dev.removed) yield `${dev.name}: error_detected(perm_failure)`;
  dev.deviceLock.unlock();
}

/**
 * pcie_do_recovery(): broadcast error_detected; for a frozen link, or when a driver asked for
 * it, reset the subordinates (`resetSubordinates`, e.g. aer_root_reset()); then slot_reset and
 * resume, or perm_failure if the reset failed. It calls no pci_dev_reset_iommu_prepare()/done()
 * of its own, nor does any reset_subordinates in mainline or in the v4 series.
 */
export function* pcieDoRecovery(
  k: Kernel,
  dev: PciDev,
  state: PciChannelState,
  resetSubordinates: (k: Kernel, dev: PciDev) => Proc<PciErsResult>,
): Proc<PciErsResult> {
  let status: PciErsResult = 'can_recover';
  yield `${dev.name}'s port: AER: broadcast error_detected message`;
  status = yield* reportErrorDetected(k, dev, state, status);
  if (status === 'can_recover') status = 'recovered'; // no mmio_enabled() is modelled
  let failed = false;
  if (status === 'need_reset' || state === 'frozen') {
    failed = (yield* resetSubordinates(k, dev)) !== 'recovered';
    if (failed) k.m.printk('warn', `${dev.name}'s port: AER: subordinate device reset failed`);
  }
  if (!failed && status === 'need_reset') {
    status = 'recovered';
    status = yield* reportSlotReset(k, dev, status);
  }
  // failed:
  if (failed || status !== 'recovered') {
    yield* reportPermFailureDetected(k, dev);
    k.m.printk('info', `${dev.name}'s port: AER: device recovery failed`);
    return status;
  }
  yield* reportResume(k, dev);
  k.m.printk('info', `${dev.name}'s port: AER: device recovery successful`);
  return status;
}
