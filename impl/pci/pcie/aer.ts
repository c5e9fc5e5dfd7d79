/**
 * drivers/pci/pcie/aer.c — the AER service driver's recovery of an uncorrectable error: the
 * Root Port's threaded interrupt finds the source and runs pcie_do_recovery() with
 * aer_root_reset(), whose reset is a secondary bus reset of the Port (pci_bus_error_reset()).
 */
import type { FlrOutcome } from '../../hw/endpoint.ts';
import { errName, type Kernel, type PciDev } from '../../kernel.ts';
import type { Proc } from '../../sim/machine.ts';
import { pciBusErrorReset } from '../pci.ts';
import { pcieDoRecovery, type PciErsResult } from './err.ts';

/**
 * aer_root_reset(): with the Root Port's AER interrupt off, reset its hierarchy with
 * pci_bus_error_reset(); the endpoint does `outcome`.
 */
function* aerRootReset(k: Kernel, dev: PciDev, outcome: FlrOutcome): Proc<PciErsResult> {
  const rc = yield* pciBusErrorReset(k, dev, outcome);
  k.m.printk('info', `${dev.name}'s port: AER: Root Port link has been reset (${errName(rc)})`);
  return rc ? 'disconnect' : 'recovered';
}

/**
 * handle_error_source() for an uncorrectable fatal error reported by `dev` (aer_isr() ->
 * aer_process_err_devices()): pcie_do_recovery(dev, pci_channel_io_frozen, aer_root_reset).
 */
export function* handleErrorSource(k: Kernel, dev: PciDev, outcome: FlrOutcome): Proc {
  if (dev.removed) {
    yield `${dev.name}: gone, no error to recover`;
    return;
  }
  k.m.printk('err', `${dev.name}: AER: Uncorrectable (Fatal) error message received`);
  yield `${dev.name}: AER: uncorrectable fatal error`;
  yield* pcieDoRecovery(k, dev, 'frozen', (kk, d) => aerRootReset(kk, d, outcome));
}
