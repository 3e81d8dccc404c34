/**
 * Manifest parsing and validation. Every problem is reported with the file, the resource, the field path
 * and what was expected, and all problems of a multi-document apply are collected before anything is
 * written, so a refused apply writes nothing.
 */
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { type FieldIssue, invalid } from './errors.ts';
import { labels as labelsSchema, resourceName } from './fields.ts';
import { allKinds, getKind } from './kinds.ts';
import { API_VERSION, type Resource } from './types.ts';

/** Formats a zod path (`['spec','macAddresses',0]`) as `spec.macAddresses[0]`. */
export function formatPath(parts: readonly PropertyKey[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

function zodIssues(
  err: z.ZodError,
  prefix: string,
  base: Omit<FieldIssue, 'path' | 'message'>,
): FieldIssue[] {
  return err.issues.map((i) => {
    let message = i.message;
    if (i.code === 'unrecognized_keys')
      message = `unknown field(s) ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    else if (i.code === 'invalid_type' && /received undefined/.test(i.message)) {
      message = `required field is missing (expected ${i.expected})`;
    } else if (i.code === 'invalid_value' && 'values' in i) {
      message = `expected one of ${(i.values as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    }
    return { ...base, path: formatPath([prefix, ...i.path]), message };
  });
}

/** Splits a YAML or JSON text (several `---` documents, or a `kind: List`) into raw documents. */
export function parseManifestText(text: string, file?: string): { docs: unknown[]; issues: FieldIssue[] } {
  const docs: unknown[] = [];
  const issues: FieldIssue[] = [];
  const parsed = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(parsed) ? parsed : [parsed];
  list.forEach((d, i) => {
    if (d.errors.length) {
      issues.push({
        file,
        resource: `document ${i + 1}`,
        path: '',
        message: `not valid YAML/JSON: ${d.errors[0]!.message}`,
      });
      return;
    }
    let v: unknown;
    try {
      // Parsing succeeded, but building values can still fail: an alias to no anchor (`*x`), or aliases
      // past yaml's expansion limit (a "billion laughs" document).
      v = d.toJS();
    } catch (err) {
      issues.push({
        file,
        resource: `document ${i + 1}`,
        path: '',
        message: `not valid YAML/JSON: ${(err as Error).message}`,
      });
      return;
    }
    if (v === null || v === undefined) return;
    if (typeof v === 'object' && !Array.isArray(v) && (v as { kind?: unknown }).kind === 'List') {
      docs.push(...(((v as { items?: unknown[] }).items ?? []) as unknown[]));
    } else if (Array.isArray(v)) docs.push(...v);
    else docs.push(v);
  });
  return { docs, issues };
}

/** Validates one raw document; returns the normalised resource (defaults applied) or issues. */
export function validateDocument(
  raw: unknown,
  file: string | undefined,
  index: number,
): { resource?: Resource; issues: FieldIssue[] } {
  const where = (resource: string, path: string, message: string): FieldIssue =>
    file ? { file, resource, path, message } : { resource, path, message };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return {
      issues: [
        where(`document ${index + 1}`, '', 'expected a mapping with apiVersion, kind, metadata, spec'),
      ],
    };
  }
  const doc = raw as Record<string, unknown>;
  const meta = (doc.metadata ?? {}) as Record<string, unknown>;
  const name = typeof meta.name === 'string' ? meta.name : undefined;
  const label = `${typeof doc.kind === 'string' ? doc.kind : 'document'}/${name ?? `#${index + 1}`}`;
  const issues: FieldIssue[] = [];
  if (doc.apiVersion !== API_VERSION) {
    issues.push(
      where(label, 'apiVersion', `expected "${API_VERSION}", got ${JSON.stringify(doc.apiVersion)}`),
    );
  }
  const def = typeof doc.kind === 'string' ? getKind(doc.kind) : undefined;
  if (!def) {
    const known = allKinds()
      .map((k) => k.kind)
      .join(', ');
    issues.push(where(label, 'kind', `unknown kind ${JSON.stringify(doc.kind)}: expected one of ${known}`));
    return { issues };
  }
  if (typeof doc.metadata !== 'object' || doc.metadata === null) {
    issues.push(where(label, 'metadata', 'required field is missing (expected a mapping with name)'));
  }
  const n = resourceName.safeParse(meta.name);
  if (!n.success)
    issues.push(...zodIssues(n.error, 'metadata.name', { ...(file ? { file } : {}), resource: label }));
  const l = labelsSchema.optional().safeParse(meta.labels);
  if (!l.success)
    issues.push(...zodIssues(l.error, 'metadata.labels', { ...(file ? { file } : {}), resource: label }));
  for (const k of Object.keys(doc)) {
    if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(k)) {
      issues.push(where(label, k, `unknown top-level field "${k}"`));
    }
  }
  const spec = def.spec.safeParse(doc.spec ?? {});
  if (!spec.success)
    issues.push(...zodIssues(spec.error, 'spec', { ...(file ? { file } : {}), resource: label }));
  if (issues.length) return { issues };
  const resource: Resource = {
    apiVersion: API_VERSION,
    kind: def.kind,
    metadata: {
      name: name!,
      labels: (meta.labels as Record<string, string> | undefined) ?? {},
      ...(meta.annotations ? { annotations: meta.annotations as Record<string, string> } : {}),
      ...(typeof meta.resourceVersion === 'string' ? { resourceVersion: meta.resourceVersion } : {}),
    },
    spec: spec.data as Record<string, unknown>,
  };
  if (def.validate) {
    issues.push(...def.validate(resource, (path) => where(label, path, '')));
  }
  return issues.length ? { issues } : { resource, issues };
}

/** Parses and validates a whole manifest; throws one `Invalid` error listing every problem. */
export function loadManifest(text: string, file?: string): Resource[] {
  return loadManifests([{ name: file, text }]);
}

/** Several files applied as one: every problem of every file is reported, names are unique across all. */
export function loadManifests(files: { name?: string | undefined; text: string }[]): Resource[] {
  const out: Resource[] = [];
  const issues: FieldIssue[] = [];
  const seen = new Map<string, string>();
  for (const f of files) loadInto(f.text, f.name, out, issues, seen);
  if (issues.length) throw invalid(issues);
  return out;
}

function loadInto(
  text: string,
  file: string | undefined,
  out: Resource[],
  issues: FieldIssue[],
  seen: Map<string, string>,
): void {
  const parsed = parseManifestText(text, file);
  issues.push(...parsed.issues);
  parsed.docs.forEach((d, i) => {
    const r = validateDocument(d, file, i);
    issues.push(...r.issues);
    if (!r.resource) return;
    const key = `${r.resource.kind}/${r.resource.metadata.name}`;
    const here = `${file ?? '<stdin>'} document ${i + 1}`;
    if (seen.has(key)) {
      issues.push({
        ...(file ? { file } : {}),
        resource: key,
        path: 'metadata.name',
        message: `duplicate name: ${key} is also defined in ${seen.get(key)}; names must be unique per kind`,
      });
    }
    seen.set(key, here);
    out.push(r.resource);
  });
}
