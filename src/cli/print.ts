/**
 * Output formats of `get` and `describe`: aligned tables like kubectl (with `--no-headers`,
 * `--show-labels`, `-o wide`, `-o custom-columns=`), `-o name`, `-o jsonpath=`, or JSON/YAML documents.
 * Every value that goes to a terminal as text passes through safe.ts, since it may carry escape codes
 * from a forged packet; JSON is already escaped by JSON.stringify.
 */
import { stringify } from 'yaml';
import type { KindDef } from '../core/resources/kinds.ts';
import type { Resource, StrataEvent } from '../core/resources/types.ts';
import { CliError } from './errors.ts';
import { columnValue, parseCustomColumns, renderTemplate } from './jsonpath.ts';
import { safeText, safeValue } from './safe.ts';

/** Aligned columns; `widths` (kept from an earlier table) lets later rows line up with it, as in get -w. */
export function table(rows: (string | number | undefined)[][], widths: number[] = []): string {
  if (!rows.length) return '';
  const cells = rows.map((r) => r.map((c) => safeValue(c)));
  cells[0]!.forEach((_, i) => {
    widths[i] = Math.max(widths[i] ?? 0, ...cells.map((r) => r[i]!.length));
  });
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

export interface PrintOptions {
  output: string;
  /** One object asked for by name: printed as itself in JSON, not as a list. */
  single?: boolean;
  noHeaders?: boolean;
  showLabels?: boolean;
  /** Prefix names with `kind/` (several kinds in one get). */
  withKind?: boolean;
  /** Column widths shared across calls (updated in place), so a watch's rows line up. */
  widths?: number[];
}

const FORMATS = ['table', 'wide', 'json', 'yaml', 'name', 'jsonpath=…', 'custom-columns=…'];

/** Checks `-o` before anything is fetched, so a typo fails fast with the list of formats. */
export function checkOutput(output: string): void {
  if (['table', 'wide', 'json', 'yaml', 'name'].includes(output)) return;
  if (output.startsWith('jsonpath=') || output.startsWith('custom-columns=')) return;
  throw new CliError(`error: unknown output format "${output}" (one of: ${FORMATS.join(', ')})`);
}

export function nameOf(def: KindDef, r: Resource): string {
  return `${def.kind.toLowerCase()}/${r.metadata.name}`;
}

export function labelsOf(r: Resource): string {
  const l = Object.entries(r.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  return l.length ? l.join(',') : '<none>';
}

/** Table rows (header first unless `noHeaders`) of one kind. */
export function tableRows(
  def: KindDef,
  items: Resource[],
  o: PrintOptions,
  header = !o.noHeaders,
): string[][] {
  const rows: string[][] = [];
  if (o.output.startsWith('custom-columns=')) {
    const cols = parseCustomColumns(o.output.slice('custom-columns='.length));
    if (header) rows.push(cols.map((c) => c.header));
    for (const i of items) rows.push(cols.map((c) => columnValue(c.path, i)));
    return rows;
  }
  const wide = o.output === 'wide';
  const cols = def.columns.filter((c) => wide || !c.wide);
  if (header) rows.push(['NAME', ...cols.map((c) => c.header), 'AGE', ...(o.showLabels ? ['LABELS'] : [])]);
  for (const i of items)
    rows.push([
      o.withKind ? nameOf(def, i) : i.metadata.name,
      ...cols.map((c) => String(c.value(i) ?? '')),
      age(i.metadata.creationTimestamp),
      ...(o.showLabels ? [labelsOf(i)] : []),
    ]);
  return rows;
}

/** The text of a get of one kind (or of several kinds' objects given as a flat list for json/yaml/name). */
export function printResources(
  def: KindDef,
  items: Resource[],
  format: string | PrintOptions,
  single = false,
): string {
  const o: PrintOptions = typeof format === 'string' ? { output: format, single } : format;
  const output = o.output;
  if (output === 'json') return JSON.stringify(o.single ? items[0] : { kind: 'List', items }, null, 2);
  if (output === 'yaml')
    return safeText(
      items
        .map((i) => stringify(i, { lineWidth: 0 }))
        .join('---\n')
        .trimEnd(),
    );
  if (output === 'name') return items.map((i) => safeValue(nameOf(def, i))).join('\n');
  if (output.startsWith('jsonpath='))
    return safeText(
      renderTemplate(
        output.slice('jsonpath='.length),
        o.single ? items[0] : { apiVersion: 'v1', kind: 'List', items },
      ),
    );
  return table(tableRows(def, items, o), o.widths);
}

export function formatEvent(e: StrataEvent): string {
  const t = e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  return `${safeValue(t)}  ${e.type === 'Warning' ? 'Warning' : 'Normal '}  ${safeValue(e.step ?? '-').padEnd(18)} ${safeValue(e.reason).padEnd(16)} ${safeValue(e.message)}  (${safeValue(e.source)})`;
}

export function describe(r: Resource, events: StrataEvent[]): string {
  const lines: string[] = [];
  const v = safeValue;
  lines.push(`Name:         ${v(r.metadata.name)}`);
  lines.push(`Kind:         ${v(r.kind)}`);
  const labels = Object.entries(r.metadata.labels ?? {}).map(([k, x]) => v(`${k}=${x}`));
  lines.push(`Labels:       ${labels.length ? labels.join(', ') : '<none>'}`);
  const annotations = Object.entries(r.metadata.annotations ?? {}).map(([k, x]) => v(`${k}=${x}`));
  lines.push(`Annotations:  ${annotations.length ? annotations.join(', ') : '<none>'}`);
  lines.push(`Created:      ${v(r.metadata.creationTimestamp ?? '-')}`);
  lines.push(`Version:      ${v(r.metadata.resourceVersion ?? '-')}`);
  if (r.metadata.deletionTimestamp) lines.push(`Deleting:     since ${v(r.metadata.deletionTimestamp)}`);
  lines.push('Spec:');
  lines.push(indent(stringify(r.spec, { lineWidth: 0 }).trimEnd(), 2));
  const st = (r.status ?? {}) as Record<string, unknown>;
  lines.push('Status:');
  lines.push(Object.keys(st).length ? indent(stringify(st, { lineWidth: 0 }).trimEnd(), 2) : '  <none>');
  const step = st.step as { lastError?: string; attempts?: number; nextAttemptAt?: string } | undefined;
  if (step?.lastError)
    lines.push(
      `Last error:   ${v(step.lastError)} (attempt ${v(step.attempts)}, next try ${v(step.nextAttemptAt ?? '-')})`,
    );
  lines.push('Events:');
  if (!events.length) lines.push('  <none>');
  for (const e of events.slice(-30)) lines.push(`  ${formatEvent(e)}`);
  return safeText(lines.join('\n'));
}

function indent(s: string, n: number): string {
  return s
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');
}
