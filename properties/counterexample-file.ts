/**
 * The counterexample file format (properties/corpus/*.json, and what fuzz reports): everything
 * needed to replay a run exactly. Parsed with a schema so that a malformed file is one clear
 * error, never a half-run.
 */
import { z } from 'zod';
import { GERROR_CAUSES, type GerrorCause } from '../impl/hw/smmu.ts';
import type { Scenario } from './scenario.ts';

const nat = z.number().int().min(0);

const op = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('map'), cpu: nat, domain: nat, iova: nat }),
  z.object({ kind: z.literal('unmap'), cpu: nat, domain: nat, iova: nat }),
  z.object({ kind: z.literal('attach'), cpu: nat, dev: nat, domain: nat }),
  z.object({ kind: z.literal('reset'), cpu: nat, dev: nat, outcome: z.enum(['ok', 'fail']) }),
  z.object({ kind: z.literal('dma'), dev: nat, iova: nat }),
  z.object({ kind: z.literal('hang'), dev: nat }),
  z.object({ kind: z.literal('unplug'), cpu: nat, dev: nat }),
  z.object({ kind: z.literal('probe'), cpu: nat, dev: nat }),
  z.object({ kind: z.literal('aer'), cpu: nat, dev: nat, outcome: z.enum(['ok', 'fail']) }),
  z.object({
    kind: z.literal('gerror'),
    cause: z.enum(GERROR_CAUSES as [GerrorCause, ...GerrorCause[]]),
    delayUs: nat,
  }),
]);

const topology = z.object({
  cpus: z.number().int().min(1).max(8),
  devices: z
    .array(
      z.object({
        ats: z.boolean(),
        sids: z.number().int().min(1).max(4),
        quirk: z.boolean().optional(),
        pf: nat.optional(),
        noAts: z.boolean().optional(),
        flr: z.boolean().optional(),
        acpiRst: z.enum(['works', 'fails']).optional(),
        busReset: z.boolean().optional(),
        afFlr: z.boolean().optional(),
        pmReset: z.boolean().optional(),
        cxlBus: z.boolean().optional(),
        dmaAliasOf: nat.optional(),
      }),
    )
    .min(1)
    .max(8),
  gerrorIrqCpu: nat,
  queueShift: z.number().int().min(1).max(10),
  batchEntries: z.number().int().min(1),
  atcTimeoutUs: z.number().int().min(1),
  iovas: z.number().int().min(1).max(16),
  /** CPUs can stall: time may pass while they are runnable (absent: false). */
  stalls: z.boolean().optional(),
  /** A tegra241 CMDQV: a second command queue whose error interrupt is on `irqCpu` (absent: none). */
  vcmdq: z.object({ irqCpu: nat }).optional(),
});

const scenario = z
  .object({
    topology,
    rounds: z.array(z.array(op).min(1)),
    choices: z.array(nat),
    pct: z.object({ priorities: z.array(nat), changes: z.array(nat) }).optional(),
  })
  .superRefine((s, ctx) => {
    const t = s.topology;
    const bad = (msg: string) => ctx.addIssue({ code: 'custom', message: msg });
    if (t.gerrorIrqCpu >= t.cpus) bad(`gerrorIrqCpu ${t.gerrorIrqCpu} is not one of ${t.cpus} CPUs`);
    if (t.vcmdq !== undefined && t.vcmdq.irqCpu >= t.cpus)
      bad(`vcmdq.irqCpu ${t.vcmdq.irqCpu} is not one of ${t.cpus} CPUs`);
    if (t.batchEntries >= 1 << t.queueShift) bad('a batch plus a CMD_SYNC must fit in the command queue');
    t.devices.forEach((d, i) => {
      // (`?.`: zod runs this refinement even when `pf` already failed `nat`, e.g. -1 or 0.5)
      if (d.pf !== undefined && (d.pf >= i || t.devices[d.pf]?.pf !== undefined))
        bad(`dev${i} is a VF of dev${d.pf}, which must be an earlier device that is not a VF`);
      // An alias of an alias, or of a VF (whose probe may fail), would leave the target's stream
      // IDs unclaimed when this one probes: not modelled.
      const a = d.dmaAliasOf;
      if (
        a !== undefined &&
        (a >= i || t.devices[a]?.pf !== undefined || t.devices[a]?.dmaAliasOf !== undefined)
      )
        bad(
          `dev${i} is a DMA alias of dev${a}, which must be an earlier device that is neither a VF nor a DMA alias`,
        );
    });
    for (const op of s.rounds.flat()) {
      if ('cpu' in op && op.cpu >= t.cpus) bad(`operation on cpu${op.cpu}, but there are ${t.cpus} CPUs`);
      if ('dev' in op && op.dev >= t.devices.length)
        bad(`operation on dev${op.dev}, but there are ${t.devices.length} devices`);
      if ('domain' in op && op.domain >= 2) bad(`domain ${op.domain} does not exist (0 and 1 do)`);
      if ('iova' in op && op.iova >= t.iovas) bad(`iova ${op.iova} is outside 0..${t.iovas - 1}`);
    }
  });

export const counterexampleSchema = z.object({
  id: z.string().optional(),
  /** The variant it was found on. */
  variant: z.string(),
  /** The property it violated there. */
  property: z.string().optional(),
  finding: z.string().optional(),
  scenario,
});

export type CounterexampleFile = z.infer<typeof counterexampleSchema>;

export class CounterexampleError extends Error {}

/** Parses a counterexample file's text; throws CounterexampleError with one readable line. */
export function parseCounterexample(
  text: string,
  where: string,
): CounterexampleFile & { scenario: Scenario } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CounterexampleError(`${where}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const r = counterexampleSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw new CounterexampleError(`${where}: ${path}: ${issue.message}`);
  }
  return r.data as CounterexampleFile & { scenario: Scenario };
}
