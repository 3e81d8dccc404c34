/** Output formats of `get` and `describe`: aligned tables like kubectl, or JSON/YAML documents. */
import { stringify } from 'yaml';
import type { KindDef } from '../core/resources/kinds.ts';
import type { Resource, StrataEvent } from '../core/resources/types.ts';

export function table(rows: (string | number | undefined)[][]): string {
  const cells = rows.map((r) => r.map((c) => String(c ?? '')));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

export function age(ts: string | undefined, now = Date.now()): string {
  if (!ts) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** `single`: one object asked for by name (printed as itself); otherwise a list, even of one. */
export function printResources(def: KindDef, items: Resource[], output: string, single = false): string {
  if (output === 'json') return JSON.stringify(single ? items[0] : { kind: 'List', items }, null, 2);
  if (output === 'yaml')
    return items
      .map((i) => stringify(i, { lineWidth: 0 }))
      .join('---\n')
      .trimEnd();
  if (output === 'name') return items.map((i) => `${def.plural}/${i.metadata.name}`).join('\n');
  const wide = output === 'wide';
  const cols = def.columns.filter((c) => wide || !c.wide);
  const rows = [['NAME', ...cols.map((c) => c.header), 'AGE']];
  for (const i of items)
    rows.push([
      i.metadata.name,
      ...cols.map((c) => String(c.value(i) ?? '')),
      age(i.metadata.creationTimestamp),
    ]);
  return table(rows);
}

export function formatEvent(e: StrataEvent): string {
  const t = e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  return `${t}  ${e.type === 'Warning' ? 'Warning' : 'Normal '}  ${(e.step ?? '-').padEnd(18)} ${e.reason.padEnd(16)} ${e.message}  (${e.source})`;
}

export function describe(r: Resource, events: StrataEvent[]): string {
  const lines: string[] = [];
  lines.push(`Name:         ${r.metadata.name}`);
  lines.push(`Kind:         ${r.kind}`);
  const labels = Object.entries(r.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  lines.push(`Labels:       ${labels.length ? labels.join(', ') : '<none>'}`);
  lines.push(`Created:      ${r.metadata.creationTimestamp ?? '-'}`);
  lines.push(`Version:      ${r.metadata.resourceVersion ?? '-'}`);
  if (r.metadata.deletionTimestamp) lines.push(`Deleting:     since ${r.metadata.deletionTimestamp}`);
  lines.push('Spec:');
  lines.push(indent(stringify(r.spec, { lineWidth: 0 }).trimEnd(), 2));
  const st = (r.status ?? {}) as Record<string, unknown>;
  lines.push('Status:');
  lines.push(Object.keys(st).length ? indent(stringify(st, { lineWidth: 0 }).trimEnd(), 2) : '  <none>');
  const step = st.step as { lastError?: string; attempts?: number; nextAttemptAt?: string } | undefined;
  if (step?.lastError)
    lines.push(
      `Last error:   ${step.lastError} (attempt ${step.attempts}, next try ${step.nextAttemptAt ?? '-'})`,
    );
  lines.push('Events:');
  if (!events.length) lines.push('  <none>');
  for (const e of events.slice(-30)) lines.push(`  ${formatEvent(e)}`);
  return lines.join('\n');
}

function indent(s: string, n: number): string {
  return s
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');
}
