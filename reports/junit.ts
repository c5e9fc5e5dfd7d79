/**
 * junit.xml for CI systems: one test suite per fuzz job, one failing test case per reported
 * violation (its timeline.txt as the failure text), one erroring test case per crash, and one
 * passing test case when there is neither.
 */
import type { Summary } from './summary.ts';

/** Text safe in XML content and attribute values (characters XML 1.0 forbids are dropped). */
export function xmlEscape(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

export function renderJunit(s: Summary, timelines: ReadonlyMap<string, string> = new Map()): string {
  const suite = `fuzz ${s.variant} seed ${s.seeds.job} shard ${s.shard.index}/${s.shard.count}`;
  const classname = `atc-harness.fuzz.${s.variant}`;
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const cases: string[] = [];
  for (const v of s.violations) {
    const name = `${v.property}: ${v.shape}`;
    const body = timelines.get(v.id) ?? v.message;
    cases.push(
      `    <testcase classname="${xmlEscape(classname)}" name="${xmlEscape(name)}" time="0">\n` +
        `      <failure type="${xmlEscape(v.property)}" message="${xmlEscape(v.message)}">${xmlEscape(body)}</failure>\n` +
        `    </testcase>`,
    );
  }
  for (const c of s.crashes) {
    cases.push(
      `    <testcase classname="${xmlEscape(classname)}" name="${xmlEscape(`worker crash in ${c.job}`)}" time="0">\n` +
        `      <error type="crash" message="${xmlEscape(c.error.split('\n')[0]!)}">${xmlEscape(c.error)}</error>\n` +
        `    </testcase>`,
    );
  }
  if (cases.length === 0) {
    cases.push(
      `    <testcase classname="${xmlEscape(classname)}" name="${xmlEscape(`no violation in ${s.counts.runs} scenarios`)}" time="${secs(s.timing.elapsedMs)}"/>`,
    );
  }
  const failures = s.violations.length;
  const errors = s.crashes.length;
  const tests = Math.max(1, failures + errors);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="atc-harness fuzz" tests="${tests}" failures="${failures}" errors="${errors}" time="${secs(s.timing.elapsedMs)}">`,
    `  <testsuite name="${xmlEscape(suite)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="0" time="${secs(s.timing.elapsedMs)}" timestamp="${xmlEscape(s.timing.startedAt)}">`,
    '    <properties>',
    ...[
      ['variant', s.variant],
      ['seed', String(s.seeds.job)],
      ['shard', `${s.shard.index}/${s.shard.count}`],
      ['runs', String(s.counts.runs)],
      ['revision', s.harness.revision],
      ['rerun', s.rerun],
    ].map(([k, v]) => `      <property name="${xmlEscape(k!)}" value="${xmlEscape(v!)}"/>`),
    '    </properties>',
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
