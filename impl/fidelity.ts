/**
 * The fidelity table, read from the code itself: every impl function whose doc comment names a
 * kernel function, the patches that branch inside it (`v.patch(n)`: Pnn of seed 002's v4 series;
 * `v.atsPatch(n)`: "000 n/5" of seed 000's; `v.minimal`: where the v4-minimal design departs)
 * and the catalog flags that do (`v.bug('id')`), with the fixes proposed for v4's findings
 * (`v.fix('id')`, shown as fix-id). impl/README.md holds its output; a test keeps it true.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface FidelityRow {
  readonly kernel: string;
  readonly impl: string;
  readonly file: string;
  /** "P12" (seed 002) or "000 3/5" (seed 000). */
  readonly patches: readonly string[];
  readonly flags: readonly string[];
}

const KERNEL_NAME = /^(__?[a-z][a-z0-9_]*|[a-z][a-z0-9_]*)\(\)/;
const DECL = /^(?:export )?function\*? ([A-Za-z_$][\w$]*)/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'sim' ? [] : sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

export function fidelityRows(implDir: string): FidelityRow[] {
  const rows: FidelityRow[] = [];
  for (const file of sourceFiles(implDir).sort()) {
    const lines = readFileSync(file, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]!.startsWith('/**')) continue;
      // A top-level doc comment, then the function it documents on the next line.
      let j = i;
      while (j < lines.length && !lines[j]!.includes('*/')) j++;
      const doc = lines
        .slice(i, j + 1)
        .map((l) => l.replace(/^\s*\/?\*+\/?\s?/, '').replace(/\*\/\s*$/, ''))
        .join(' ')
        .trim();
      const m = KERNEL_NAME.exec(doc);
      const decl = DECL.exec(lines[j + 1] ?? '');
      if (!m || !decl) continue;
      let k = j + 2;
      while (k < lines.length && lines[k] !== '}') k++;
      const body = lines.slice(j + 1, k + 1).join('\n');
      const p002 = [...body.matchAll(/\.patch\((\d+)\)/g)].map((x) => Number(x[1]));
      for (const x of doc.matchAll(/\bP(\d{2})\b/g)) p002.push(Number(x[1]));
      const p000 = [...body.matchAll(/\.atsPatch\((\d+)\)/g)].map((x) => Number(x[1]));
      for (const x of doc.matchAll(/\b000 (\d)\/5\b/g)) p000.push(Number(x[1]));
      const patches = [
        ...[...new Set(p002)].sort((a, b) => a - b).map((n) => `P${String(n).padStart(2, '0')}`),
        ...[...new Set(p000)].sort((a, b) => a - b).map((n) => `000 ${n}/5`),
        ...(/\.v\.minimal\b/.test(body) ? ['v4-minimal'] : []),
      ];
      const flags = [
        ...[...body.matchAll(/\.bug\('([a-z-]+)'\)/g)].map((x) => x[1]!),
        ...[...body.matchAll(/\.fix\('([a-z-]+)'\)/g)].map((x) => `fix-${x[1]!}`),
      ];
      rows.push({
        kernel: m[1]!,
        impl: decl[1]!,
        file: relative(implDir, file),
        patches,
        flags: [...new Set(flags)].sort(),
      });
      i = j;
    }
  }
  return rows;
}

export function fidelityTable(implDir: string): string {
  const out = ['| kernel function | impl function | file | patches | flags |', '|---|---|---|---|---|'];
  for (const r of fidelityRows(implDir)) {
    const p = r.patches.join(', ') || '-';
    out.push(`| \`${r.kernel}\` | \`${r.impl}\` | ${r.file} | ${p} | ${r.flags.join(', ') || '-'} |`);
  }
  return out.join('\n');
}
