/**
 * drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c — the command queue: issue, poll, CMDQ_ERR
 * skipping, the GERROR handler and the per-cmdq cmdq_err_handler. Every function here takes the
 * queue it works on: smmu->cmdq, or a tegra241 VCMDQ (smmuv3/tegra241-cmdqv.ts).
 */
import type { Cmd } from '../hw/cmd.ts';
import {
  CMDQ_CONS_ERR_SHIFT,
  CMDQ_ERR_CERROR_ABT_IDX,
  CMDQ_ERR_CERROR_ATC_INV_IDX,
  CMDQ_ERR_CERROR_ILL_IDX,
  CMDQ_ERR_CERROR_NONE_IDX,
  GERROR_CMDQ_ERR,
  GERROR_ERR_MASK,
  GERROR_EVTQ_ABT_ERR,
  GERROR_MSI_CMDQ_ABT_ERR,
  GERROR_MSI_EVTQ_ABT_ERR,
  GERROR_MSI_GERROR_ABT_ERR,
  GERROR_MSI_PRIQ_ABT_ERR,
  GERROR_PRIQ_ABT_ERR,
  GERROR_SFM_ERR,
} from '../hw/smmu.ts';
import { type ArmSmmuCmdq, EIO, ETIMEDOUT, type Kernel, type LlQueue } from '../kernel.ts';
import type { Proc } from '../sim/machine.ts';
import { localIrqRestore, localIrqSave, spinUntil } from '../sim/sync.ts';
import {
  CMDQ_PROD_OWNED_FLAG,
  hex,
  qIdx,
  queueConsumed,
  queueFull,
  queueHasSpace,
  queueIncProdN,
  qWrp,
} from './queue.ts';

/** ARM_SMMU_POLL_TIMEOUT_US */
export const ARM_SMMU_POLL_TIMEOUT_US = 1_000_000;

const INT_MIN = -0x80000000;

/** The CONS register's index and wrap bit, without its error field. */
const consPtr = (cmdq: ArmSmmuCmdq): number => cmdq.hw.cons & ~(0x7f << CMDQ_CONS_ERR_SHIFT);

/** arm_smmu_cmdq_supports_cmd() (arm-smmu-v3.h): a queue without a filter takes every command. */
export function armSmmuCmdqSupportsCmd(cmdq: ArmSmmuCmdq, cmd: Cmd): boolean {
  return cmdq.supportsCmd === null || cmdq.supportsCmd(cmd);
}

function* armSmmuCmdqSharedLock(k: Kernel, cmdq: ArmSmmuCmdq): Proc {
  // atomic_fetch_inc_relaxed() >= 0, else wait for the exclusive holder to leave.
  yield* spinUntil(k.m, () => cmdq.lock >= 0, -1, 'cmdq shared lock');
  cmdq.lock++;
  yield 'cmdq shared lock';
}

function armSmmuCmdqSharedTryunlock(cmdq: ArmSmmuCmdq): boolean {
  if (cmdq.lock === 1) return false;
  cmdq.lock--;
  return true;
}

/** arm_smmu_cmdq_poll_until_not_full() */
function* armSmmuCmdqPollUntilNotFull(k: Kernel, cmdq: ArmSmmuCmdq, llq: LlQueue): Proc<number> {
  const shift = cmdq.maxNShift;
  // Exclusive trylock succeeds with no CMD_SYNC waiter: refresh the shadow cons from hardware.
  if (cmdq.lock === 0) {
    cmdq.lock = INT_MIN;
    cmdq.llq.cons = cmdq.hw.cons;
    cmdq.lock = 0;
    llq.prod = cmdq.llq.prod;
    llq.cons = cmdq.llq.cons;
    yield 'refresh cons from hardware';
    if (!queueFull(shift, llq)) return 0;
  }
  // Someone else owns the cons update: wait for the shadow queue to show room.
  const deadline = k.m.now + ARM_SMMU_POLL_TIMEOUT_US;
  const ok = yield* spinUntil(k.m, () => !queueFull(shift, cmdq.llq), deadline, 'queue not full');
  llq.prod = cmdq.llq.prod;
  llq.cons = cmdq.llq.cons;
  return ok ? 0 : ETIMEDOUT;
}

/** arm_smmu_cmdq_poll_until_sync(), polling CONS (__arm_smmu_cmdq_poll_until_consumed). */
function* armSmmuCmdqPollUntilSync(k: Kernel, cmdq: ArmSmmuCmdq, llq: LlQueue): Proc<number> {
  const shift = cmdq.maxNShift;
  const prod = llq.prod;
  const deadline = k.m.now + ARM_SMMU_POLL_TIMEOUT_US;
  const ok = yield* spinUntil(
    k.m,
    () => queueConsumed(shift, { prod, cons: cmdq.hw.cons }, prod),
    deadline,
    `CMD_SYNC at ${hex(prod)} consumed`,
  );
  llq.cons = cmdq.hw.cons;
  return ok ? 0 : ETIMEDOUT;
}

/**
 * arm_smmu_cmdq_issue_cmdlist(): reserve space with a CAS on prod, write the commands (and a
 * CMD_SYNC), mark them valid, publish PROD if we own the queue, then wait for our CMD_SYNC.
 */
export function* armSmmuCmdqIssueCmdlist(
  k: Kernel,
  cmdq: ArmSmmuCmdq,
  cmds: readonly Cmd[],
  sync: boolean,
): Proc<number> {
  const { m, v } = k;
  const shift = cmdq.maxNShift;
  const n = cmds.length;
  const s = sync ? 1 : 0;
  let ret = 0;

  // 1. Allocate some space in the queue
  localIrqSave(m);
  const llq: LlQueue = { prod: cmdq.llq.prod, cons: cmdq.llq.cons };
  yield 'read cmdq->q.llq';
  let head: LlQueue;
  for (;;) {
    while (!queueHasSpace(shift, llq, n + s)) {
      localIrqRestore(m);
      // P16: a stalled queue may be waiting for an unhandled CMDQ_ERR
      if (v.patch(16) && !v.bug('full-queue-stall') && cmdq.cmdqErrHandler)
        yield* cmdq.cmdqErrHandler(k, cmdq);
      const seenHw = cmdq.hw.cons;
      const seenShadow = cmdq.llq.cons;
      if ((yield* armSmmuCmdqPollUntilNotFull(k, cmdq, llq)) !== 0)
        m.printk('err', 'arm-smmu-v3: CMDQ timeout');
      else if (!queueHasSpace(shift, llq, n + s)) {
        // Not full, but no room for us yet: the kernel spins here until CONS moves; let time pass.
        yield* spinUntil(
          m,
          () => cmdq.hw.cons !== seenHw || cmdq.llq.cons !== seenShadow,
          m.now + ARM_SMMU_POLL_TIMEOUT_US,
          'room in the queue',
        );
      }
      localIrqSave(m);
    }
    head = { cons: llq.cons, prod: (queueIncProdN(shift, llq, n + s) | CMDQ_PROD_OWNED_FLAG) >>> 0 };
    // cmpxchg_relaxed(&cmdq->q.llq.val, llq.val, head.val)
    const old = { prod: cmdq.llq.prod, cons: cmdq.llq.cons };
    if (old.prod === llq.prod && old.cons === llq.cons) {
      cmdq.llq.prod = head.prod;
      cmdq.llq.cons = head.cons;
      yield `reserve ${n + s} slots at ${hex(llq.prod & ~CMDQ_PROD_OWNED_FLAG)}${cmdq.where}`;
      break;
    }
    llq.prod = old.prod;
    llq.cons = old.cons;
    yield 'cmpxchg on prod lost, retry';
  }
  const owner = (llq.prod & CMDQ_PROD_OWNED_FLAG) === 0;
  head.prod = (head.prod & ~CMDQ_PROD_OWNED_FLAG) >>> 0;
  llq.prod = (llq.prod & ~CMDQ_PROD_OWNED_FLAG) >>> 0;

  // 2. Write our commands into the queue
  for (let i = 0; i < n; i++) cmdq.hw.ring[qIdx(shift, llq.prod + i)] = cmds[i]!;
  let syncProd = 0;
  if (sync) {
    syncProd = queueIncProdN(shift, llq, n);
    cmdq.hw.ring[qIdx(shift, syncProd)] = { op: 'CMD_SYNC' };
    // P12: clear a stale ATC-timeout bit of this slot before the SMMU can see the slot
    if (v.patch(12) && !v.bug('stale-atc-timeout-bit') && !v.bug('atc-bit-cleared-after-publish')) {
      cmdq.atcSyncTimeouts[qIdx(shift, syncProd)] = false;
    }
  }
  yield `write ${n} command(s)${sync ? ' + CMD_SYNC' : ''}`;
  if (sync) yield* armSmmuCmdqSharedLock(k, cmdq);

  // 3. Mark our slots as valid
  for (let p = llq.prod; p !== head.prod; p = queueIncProdN(shift, { prod: p, cons: 0 }, 1)) {
    cmdq.validMap[qIdx(shift, p)] = qWrp(shift, p);
  }
  yield 'set valid map';

  // 4. If we are the owner, take control of the SMMU hardware
  if (owner) {
    const myProd = llq.prod;
    yield* spinUntil(m, () => cmdq.ownerProd === myProd, -1, 'previous owner');
    const prod = (cmdq.llq.prod & ~CMDQ_PROD_OWNED_FLAG) >>> 0;
    cmdq.llq.prod = prod;
    yield 'stop gathering: clear OWNED';
    const validUpTo = () => {
      for (let p = myProd; p !== prod; p = queueIncProdN(shift, { prod: p, cons: 0 }, 1)) {
        if (cmdq.validMap[qIdx(shift, p)] !== qWrp(shift, p)) return false;
      }
      return true;
    };
    yield* spinUntil(m, validUpTo, -1, 'gathered slots valid');
    cmdq.hw.prod = prod;
    yield `write PROD ${hex(prod)}${cmdq.where}`;
    cmdq.ownerProd = prod;
    yield 'hand over ownership';
  }

  if (sync && v.bug('atc-bit-cleared-after-publish')) {
    // The bug: clearing once the slot may already be in the SMMU's hands.
    cmdq.atcSyncTimeouts[qIdx(shift, syncProd)] = false;
    yield 'clear ATC-timeout bit';
  }

  // 5. If we are inserting a CMD_SYNC, we must wait for it to complete
  if (sync) {
    llq.prod = syncProd;
    for (;;) {
      // Fix (sync-queued-behind-failure): what the queue looks like as this poll starts
      const before = v.fix('sync-behind-failure')
        ? {
            cons: consPtr(cmdq),
            skipped: cmdq.nrErrsSkipped,
            published: queueConsumed(shift, { prod: syncProd, cons: cmdq.ownerProd }, syncProd),
          }
        : null;
      ret = yield* armSmmuCmdqPollUntilSync(k, cmdq, llq);

      // P15: a late GERROR IRQ must not hide our ATC timeout: drain CMDQ_ERR ourselves
      if (v.patch(15) && !v.bug('late-isr-misclassified') && ret && cmdq.cmdqErrHandler) {
        yield* cmdq.cmdqErrHandler(k, cmdq);
      }

      // Fix (sync-queued-behind-failure): a poll timeout is the SMMU's only if the SMMU had our
      // CMD_SYNC for the whole poll (the owner had handed PROD over past it when it started) and
      // the queue made no progress meanwhile: CONS did not move and no CMDQ error was skipped (by
      // the GERROR handler or by a drain, ours above included). Otherwise our CMD_SYNC waited
      // behind someone else's stall: poll again for its own outcome. (Bit set: -EIO below.)
      if (!ret || before === null || cmdq.atcSyncTimeouts[qIdx(shift, syncProd)]) break;
      const consumed = queueConsumed(shift, { prod: syncProd, cons: cmdq.hw.cons }, syncProd);
      const still = consPtr(cmdq) === before.cons && cmdq.nrErrsSkipped === before.skipped;
      if (before.published && !consumed && still) break;
    }

    if (v.patch(12) && cmdq.atcSyncTimeouts[qIdx(shift, syncProd)]) {
      // test_and_clear_bit()
      cmdq.atcSyncTimeouts[qIdx(shift, syncProd)] = false;
      m.printk('err', `arm-smmu-v3: CMD_SYNC for ATC_INV timeout at prod=${hex(syncProd)}`);
      ret = EIO;
    } else if (ret) {
      m.printk(
        'err',
        `arm-smmu-v3: CMD_SYNC timeout at ${hex(syncProd)} [hwprod ${hex(cmdq.hw.prod)}, hwcons ${hex(cmdq.hw.cons)}]`,
      );
    }
    k.ev.emit(
      cmdq.where === ''
        ? { kind: 'syncReturn', prod: syncProd, ret }
        : { kind: 'syncReturn', prod: syncProd, ret, cmdq: cmdq.hw.name },
    );
    yield 'test ATC-timeout bit';

    if (!armSmmuCmdqSharedTryunlock(cmdq)) {
      cmdq.llq.cons = llq.cons;
      cmdq.lock--;
    }
    yield 'cmdq shared unlock';
  }
  localIrqRestore(m);
  return ret;
}

const cerrorStr = ['No error', 'Illegal command', 'Abort on command fetch', 'ATC invalidate timeout'];

/** __arm_smmu_cmdq_skip_err() */
export function __armSmmuCmdqSkipErr(k: Kernel, cmdq: ArmSmmuCmdq): void {
  const { m, v } = k;
  const cons = cmdq.hw.cons;
  // Fix (sync-queued-behind-failure): count the CMDQ errors skipped, for pollers behind them
  if (v.fix('sync-behind-failure')) cmdq.nrErrsSkipped++;
  const idx = (cons >>> CMDQ_CONS_ERR_SHIFT) & 0x7f;
  m.printk('err', `arm-smmu-v3: CMDQ error (cons ${hex(cons)}): ${cerrorStr[idx] ?? 'Unknown'}`);
  switch (idx) {
    case CMDQ_ERR_CERROR_ABT_IDX:
      m.printk('err', 'arm-smmu-v3: retrying command fetch');
      return;
    case CMDQ_ERR_CERROR_NONE_IDX:
      return;
    case CMDQ_ERR_CERROR_ATC_INV_IDX:
      // CONS still points at the CMD_SYNC; it will be retried.
      // P12: mark the faulty batch for the issuer to match
      if (v.patch(12)) cmdq.atcSyncTimeouts[qIdx(cmdq.maxNShift, cons)] = true;
      return;
    case CMDQ_ERR_CERROR_ILL_IDX:
      break;
  }
  m.printk('err', 'arm-smmu-v3: skipping command in error state');
  cmdq.hw.ring[qIdx(cmdq.maxNShift, cons)] = { op: 'CMD_SYNC' };
}

/** arm_smmu_cmdq_err_handler() (P15): drain a pending CMDQ_ERR from the issuer. */
export function* armSmmuCmdqErrHandler(k: Kernel, cmdq: ArmSmmuCmdq): Proc {
  yield* cmdq.cmdqErrLock.lock(true);
  const gerror = cmdq.hw.gerror;
  const gerrorn = cmdq.hw.gerrorn;
  yield 'read GERROR/GERRORN';
  if ((gerror ^ gerrorn) & GERROR_CMDQ_ERR) {
    __armSmmuCmdqSkipErr(k, cmdq);
    // Toggle only the CMDQ_ERR bit; other bits are left for the ISR.
    cmdq.hw.gerrorn = gerrorn ^ GERROR_CMDQ_ERR;
    yield 'skip CMDQ_ERR; toggle GERRORN.CMDQ_ERR';
  }
  yield* cmdq.cmdqErrLock.unlock(true);
}

/** arm_smmu_gerror_handler(): the GERROR interrupt. */
export function* armSmmuGerrorHandler(k: Kernel): Proc {
  const { m, v } = k;
  const cmdq = k.smmu.cmdq;
  const hw = cmdq.hw;
  const locked = v.patch(14);
  // P14: serialise with the issuer's drain
  if (locked) yield* cmdq.cmdqErrLock.lock(true);
  const gerror = hw.gerror;
  const gerrorn = hw.gerrorn;
  yield 'read GERROR/GERRORN';
  const active = gerror ^ gerrorn;
  if (!(active & GERROR_ERR_MASK)) {
    if (locked) yield* cmdq.cmdqErrLock.unlock(true);
    return; // IRQ_NONE
  }
  m.printk('warn', `arm-smmu-v3: unexpected global error reported (${hex(active)}), this could be serious`);
  if (active & GERROR_SFM_ERR) {
    if (v.patch(13)) {
      // P13: the SMMU is being disabled, so other errors don't matter
      // Fix (sfm-drops-reported-atc-timeout): except an ATC timeout the issuer will read from
      // the bitmap (P12): mark it before acknowledging, as the full path below does.
      if (v.fix('sfm-skip-err') && active & GERROR_CMDQ_ERR) __armSmmuCmdqSkipErr(k, cmdq);
      hw.gerrorn = gerror;
      if (locked) yield* cmdq.cmdqErrLock.unlock(true);
      m.printk('err', 'arm-smmu-v3: device has entered Service Failure Mode!');
      k.smmu.hw.disable();
      yield 'arm_smmu_device_disable()';
      return;
    }
    m.printk('err', 'arm-smmu-v3: device has entered Service Failure Mode!');
    k.smmu.hw.disable();
  }
  if (active & GERROR_MSI_GERROR_ABT_ERR) m.printk('warn', 'arm-smmu-v3: GERROR MSI write aborted');
  if (active & GERROR_MSI_PRIQ_ABT_ERR) m.printk('warn', 'arm-smmu-v3: PRIQ MSI write aborted');
  if (active & GERROR_MSI_EVTQ_ABT_ERR) m.printk('warn', 'arm-smmu-v3: EVTQ MSI write aborted');
  if (active & GERROR_MSI_CMDQ_ABT_ERR) m.printk('warn', 'arm-smmu-v3: CMDQ MSI write aborted');
  if (active & GERROR_PRIQ_ABT_ERR)
    m.printk('err', 'arm-smmu-v3: PRIQ write aborted -- events may have been lost');
  if (active & GERROR_EVTQ_ABT_ERR)
    m.printk('err', 'arm-smmu-v3: EVTQ write aborted -- events may have been lost');
  if (active & GERROR_CMDQ_ERR) __armSmmuCmdqSkipErr(k, cmdq);
  hw.gerrorn = gerror;
  yield 'write GERRORN';
  if (locked) yield* cmdq.cmdqErrLock.unlock(true);
}
