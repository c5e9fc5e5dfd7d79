/**
 * drivers/pci/pci.c, pci-acpi.c and quirks.c — pci_reset_function(), the reset methods with their
 * probe mode (P01): a device-specific quirk that wraps FLR (P02), ACPI _RST, FLR, Advanced
 * Features FLR, a PM D3hot->D0 reset, a secondary bus reset and a CXL bus reset (which nests over
 * the bus reset), each fencing the IOMMU around itself (nested fences count depth); the error
 * recovery's bus reset (pci_bus_error_reset(), not fenced); and removal.
 */
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
  return yield* fencedFunctionReset(k, dev, outcome, 'FLR');
}

/**
 * The IOMMU fence every reset method puts around its reset (P04 passes the result to done()):
 * prepare, `reset`, done.
 */
function* fencedReset(k: Kernel, dev: PciDev, reset: () => Proc<number>): Proc<number> {
  // Seed 003 is about resets without this fence: the bug puts that state back.
  const fenced = !k.v.bug('inv-during-flr');
  let ret = fenced ? yield* pciDevResetIommuPrepare(k, dev) : 0;
  if (ret) {
    k.m.printk('err', `${dev.name}: failed to stop IOMMU for a PCI reset: ${errName(ret)}`);
    return ret;
  }
  ret = yield* reset();
  if (fenced) yield* pciDevResetIommuDone(k, dev, ret);
  return ret;
}

/**
 * The reset itself, as FLR, _RST and a bus reset all do it to the function, inside the IOMMU
 * fence. The endpoint does `outcome`.
 */
function* fencedFunctionReset(k: Kernel, dev: PciDev, outcome: FlrOutcome, how: string): Proc<number> {
  return yield* fencedReset(k, dev, function* () {
    dev.ep.startFlr(outcome);
    yield `${dev.name}: initiate ${how}`;
    yield* msleep(k.m, 100);
    return yield* pciDevWait(k, dev, how, PCIE_RESET_READY_POLL_MS);
  });
}

/**
 * pci_dev_acpi_reset() (pci-acpi.c): _RST under the IOMMU fence. A failing evaluation returns
 * -ENOTTY, "no reset was attempted", which done() cannot tell from a failed reset (P04 FIXME).
 */
function* pciDevAcpiReset(k: Kernel, dev: PciDev, probe: boolean, outcome: FlrOutcome): Proc<number> {
  if (dev.acpiRst === null) return ENOTTY;
  if (probe) return 0;
  if (dev.acpiRst === 'works') return yield* fencedFunctionReset(k, dev, outcome, 'ACPI _RST');
  let ret = yield* pciDevResetIommuPrepare(k, dev);
  if (ret) return ret;
  k.m.printk('warn', `${dev.name}: ACPI _RST failed`);
  ret = ENOTTY;
  yield `${dev.name}: _RST evaluation fails: nothing was reset`;
  yield* pciDevResetIommuDone(k, dev, ret);
  return ret;
}

/**
 * pci_reset_bus_function(): a secondary bus reset, for a function alone below its bridge. Before
 * P01 its probe took the IOMMU fence like a reset does. Below a CXL port that masks the SBR it
 * does nothing (-ENOTTY): cxl_reset_bus_function() unmasks it first.
 */
function* pciResetBusFunction(k: Kernel, dev: PciDev, probe: boolean, outcome: FlrOutcome): Proc<number> {
  // if (bridge && pcie_is_cxl(bridge) && cxl_sbr_masked(bridge)) return -ENOTTY;
  if (dev.cxlPort && dev.cxlSbrMasked) return ENOTTY;
  if (!dev.busReset) return ENOTTY;
  if (!probe) return yield* fencedFunctionReset(k, dev, outcome, 'secondary bus reset');
  if (k.v.patch(1) && !k.v.bug('probe-blocks-iommu')) return 0;
  const ret = yield* pciDevResetIommuPrepare(k, dev);
  if (ret) return ret;
  yield* pciDevResetIommuDone(k, dev, 0);
  return 0;
}

/**
 * pci_af_flr(): FLR through the Advanced Features capability (conventional PCI functions). The
 * capability checks answer -ENOTTY before the probe returns; the reset is fenced like pcie_flr()
 * (P04 passes its result to done()).
 */
function* pciAfFlr(k: Kernel, dev: PciDev, probe: boolean, outcome: FlrOutcome): Proc<number> {
  // pci_find_capability(dev, PCI_CAP_ID_AF), PCI_DEV_FLAGS_NO_FLR_RESET, PCI_AF_CAP_TP and _FLR
  if (!dev.afFlr) return ENOTTY;
  if (probe) return 0;
  return yield* fencedFunctionReset(k, dev, outcome, 'AF_FLR');
}

/** PCI_PM_D3HOT_WAIT: pci_dev_d3_sleep() with the default d3hot_delay. */
const PCI_PM_D3HOT_WAIT_MS = 10;

/**
 * pci_pm_reset(): put the function in D3hot and back in D0; with No_Soft_Reset clear the D0
 * transition resets it (ATS Enable clears, the ATC is dropped). Fenced like FLR; done() gets the
 * result of the ready poll (P04). The function is in D0 here (the -EINVAL case never arises).
 */
function* pciPmReset(k: Kernel, dev: PciDev, probe: boolean, outcome: FlrOutcome): Proc<number> {
  // !dev->pm_cap, PCI_DEV_FLAGS_NO_PM_RESET, or csr & PCI_PM_CTRL_NO_SOFT_RESET
  if (!dev.pmReset) return ENOTTY;
  if (probe) return 0;
  return yield* fencedReset(k, dev, function* () {
    yield `${dev.name}: PCI_PM_CTRL = D3hot`;
    yield* msleep(k.m, PCI_PM_D3HOT_WAIT_MS);
    // The D3hot->D0 transition is the reset (No_Soft_Reset clear).
    dev.ep.startFlr(outcome);
    yield `${dev.name}: PCI_PM_CTRL = D0: the function resets`;
    yield* msleep(k.m, PCI_PM_D3HOT_WAIT_MS);
    return yield* pciDevWait(k, dev, 'PM D3hot->D0', PCIE_RESET_READY_POLL_MS);
  });
}

/**
 * cxl_reset_bus_function(): below a CXL port, unmask the secondary bus reset, do the bus reset
 * (pci_reset_bus_function(), with its own fence: the two nest, reset_depth 2), and put the mask
 * back. Its probe returns before the fence, in mainline already (the probe patch leaves it as
 * is); done() gets the bus reset's result (P04).
 */
function* cxlResetBusFunction(k: Kernel, dev: PciDev, probe: boolean, outcome: FlrOutcome): Proc<number> {
  // pci_upstream_bridge(dev) and cxl_port_dvsec(bridge)
  if (!dev.cxlPort) return ENOTTY;
  if (probe) return 0;
  let rc = yield* pciDevResetIommuPrepare(k, dev);
  if (rc) {
    k.m.printk('err', `${dev.name}: failed to stop IOMMU for a PCI reset: ${errName(rc)}`);
    return rc;
  }
  const masked = dev.cxlSbrMasked;
  if (masked) {
    dev.cxlSbrMasked = false;
    yield `${dev.name}: CXL port: PCI_DVSEC_CXL_PORT_CTL |= UNMASK_SBR`;
  }
  rc = yield* pciResetBusFunction(k, dev, probe, outcome);
  if (masked) {
    dev.cxlSbrMasked = true;
    yield `${dev.name}: CXL port: PCI_DVSEC_CXL_PORT_CTL restored (SBR masked)`;
  }
  yield* pciDevResetIommuDone(k, dev, rc);
  return rc;
}

/** A reset method: `probe` asks whether it is supported (0) or not (-ENOTTY), doing nothing. */
type ResetMethod = (k: Kernel, dev: PciDev, probe: boolean, outcome: FlrOutcome) => Proc<number>;

/** pcie_reset_flr(): the FLR method. */
function* pcieResetFlr(k: Kernel, dev: PciDev, probe: boolean, outcome: FlrOutcome): Proc<number> {
  if (!dev.flr) return ENOTTY;
  if (probe) return 0;
  return yield* pcieFlr(k, dev, outcome);
}

/**
 * reset_intel_82599_sfp_virtfn() and its kind (quirks.c): a device-specific method that is an
 * FLR underneath. P02 propagates pcie_flr()'s result; before it, the quirk reported success.
 */
function* resetQuirkFlr(k: Kernel, dev: PciDev, probe: boolean, outcome: FlrOutcome): Proc<number> {
  if (probe) return 0;
  const ret = yield* pcieFlr(k, dev, outcome);
  return k.v.patch(2) && !k.v.bug('flr-result-dropped') ? ret : 0;
}

/** __pci_dev_specific_reset() (quirks.c): the IOMMU fence around a quirk's reset (P01, P04). */
function* __pciDevSpecificReset(k: Kernel, dev: PciDev, probe: boolean, outcome: FlrOutcome): Proc<number> {
  if (!dev.quirk) return ENOTTY; // pci_dev_specific_reset(): no entry in the quirk table
  // P01: probing must not touch the IOMMU
  const fence = !probe || !k.v.patch(1) || k.v.bug('probe-blocks-iommu');
  if (fence) {
    const ret = yield* pciDevResetIommuPrepare(k, dev);
    if (ret) {
      k.m.printk('err', `${dev.name}: failed to stop IOMMU for a PCI reset: ${errName(ret)}`);
      return ret;
    }
  }
  const ret = yield* resetQuirkFlr(k, dev, probe, outcome);
  if (fence) yield* pciDevResetIommuDone(k, dev, ret);
  return ret;
}

/**
 * pci_reset_fn_methods[]: device_specific, acpi, flr, af_flr, pm, bus, cxl_bus. Each method
 * answers -ENOTTY where it does not apply, before any fence (as its probe would have, so that
 * pci_init_reset_methods() left it out of dev->reset_methods), so the list is the same for every
 * function.
 */
const RESET_METHODS: readonly ResetMethod[] = [
  __pciDevSpecificReset,
  pciDevAcpiReset,
  pcieResetFlr,
  pciAfFlr,
  pciPmReset,
  pciResetBusFunction,
  cxlResetBusFunction,
];

/** __pci_reset_function_locked(): try the device's reset methods in order. */
function* __pciResetFunctionLocked(k: Kernel, dev: PciDev, outcome: FlrOutcome): Proc<number> {
  for (const method of RESET_METHODS) {
    const rc = yield* method(k, dev, false, outcome);
    if (!rc) return 0;
    if (rc !== ENOTTY) return rc;
  }
  return ENOTTY;
}

/**
 * pci_init_reset_methods() / reset_method_store(): probe every method, as sysfs does, without
 * the device lock. A probe must change nothing.
 */
export function* pciProbeResetMethods(k: Kernel, dev: PciDev): Proc<number> {
  let supported = 0;
  for (const method of RESET_METHODS) {
    if (dev.removed) break;
    if ((yield* method(k, dev, true, 'ok')) === 0) supported++;
  }
  yield `${dev.name}: ${supported} reset method(s) supported`;
  return supported;
}

/** pci_reset_function(): save state, reset under the device lock, restore state. */
export function* pciResetFunction(k: Kernel, dev: PciDev, outcome: FlrOutcome): Proc<number> {
  yield* dev.deviceLock.lock();
  if (dev.removed) {
    dev.deviceLock.unlock();
    yield `${dev.name}: gone`;
    return ENODEV;
  }
  k.ev.emit({ kind: 'resetFunction', dev: dev.index, running: true });
  const rc = yield* __pciResetFunctionLocked(k, dev, outcome);
  // pci_dev_restore() -> pci_restore_state() -> pci_restore_ats_state()
  pciRestoreAtsState(dev);
  k.ev.emit({ kind: 'resetFunction', dev: dev.index, running: false });
  dev.deviceLock.unlock();
  yield `${dev.name}: pci_reset_function() = ${errName(rc)}`;
  return rc;
}

/**
 * pci_bridge_secondary_bus_reset(): assert and deassert Secondary Bus Reset on the function's
 * upstream port (pcibios_reset_secondary_bus()), then pci_bridge_wait_for_secondary_bus(): the
 * 100 ms the spec asks for, and the ready poll of the function below. No IOMMU fence: the port's
 * reset knows nothing of the functions below it.
 */
function* pciBridgeSecondaryBusReset(k: Kernel, dev: PciDev, outcome: FlrOutcome): Proc<number> {
  dev.ep.startFlr(outcome);
  yield `${dev.name}'s port: PCI_BRIDGE_CTL_BUS_RESET set`;
  yield* msleep(k.m, 2);
  yield `${dev.name}'s port: PCI_BRIDGE_CTL_BUS_RESET cleared`;
  yield* msleep(k.m, 100);
  return yield* pciDevWait(k, dev, 'bus reset', PCIE_RESET_READY_POLL_MS - 100);
}

/**
 * pci_bus_reset() with PCI_RESET_DO_RESET: pci_bus_lock() (the device lock of every function on the
 * bus: here the one function below the port), the secondary bus reset, pci_bus_unlock(). It
 * neither saves nor restores config space: the drivers' slot_reset() callbacks do.
 */
function* pciBusReset(k: Kernel, dev: PciDev, outcome: FlrOutcome): Proc<number> {
  yield* dev.deviceLock.lock();
  // pci_bridge_wait_for_secondary_bus(): no function left below the port, nothing to wait for
  const ret = dev.removed ? 0 : yield* pciBridgeSecondaryBusReset(k, dev, outcome);
  dev.deviceLock.unlock();
  return ret;
}

/**
 * pci_bus_error_reset(): the error recovery's reset of the bridge's subordinate bus: a hotplug
 * slot reset if every slot has one (none is modelled), else a secondary bus reset. Neither calls
 * pci_dev_reset_iommu_prepare()/done(): in mainline the fence is in the pci_reset_fn_methods[]
 * only, and the v4 series adds none here.
 */
export function* pciBusErrorReset(k: Kernel, dev: PciDev, outcome: FlrOutcome): Proc<number> {
  return yield* pciBusReset(k, dev, outcome);
}

/**
 * pci_stop_and_remove_bus_device(): orderly hot unplug. The device is deleted, which releases it
 * from the IOMMU, then the slot powers off and the function leaves the bus. (The device lock
 * serialises it with resets here.) A PF's reset does not take its VFs along here: the model has
 * no SR-IOV re-enable, so resets stay per function.
 */
export function* pciStopAndRemoveBusDevice(k: Kernel, dev: PciDev): Proc {
  yield* dev.deviceLock.lock();
  if (dev.removed) {
    dev.deviceLock.unlock();
    return;
  }
  dev.removed = true;
  // The PF driver's remove disables SR-IOV (sriov_disable()): its VFs leave before it does.
  for (const vf of k.pdevs) if (vf.physfn === dev) yield* pciStopAndRemoveBusDevice(k, vf);
  yield* iommuReleaseDevice(k, dev);
  dev.ep.remove();
  yield `${dev.name}: slot powered off, function gone`;
  dev.deviceLock.unlock();
}
