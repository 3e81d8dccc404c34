/**
 * Manifest parsing and validation. Every problem is reported with the file, the resource, the field path
 * and what was expected, and all problems of a multi-document apply are collected before anything is
 * written, so a refused apply writes nothing.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Composer, LineCounter, Parser } from 'yaml';
import type { z } from 'zod';
import { type FieldIssue, invalid } from './errors.ts';
import { annotations as annotationsSchema, labels as labelsSchema, resourceName } from './fields.ts';
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
    } else if (i.code === 'invalid_key') {
      const key = i.path[i.path.length - 1];
      message = `invalid key ${JSON.stringify(String(key))}: ${i.issues[0]?.message ?? i.message}`;
    } else if (i.code === 'invalid_value' && 'values' in i) {
      message = `expected one of ${(i.values as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    }
    return { ...base, path: formatPath([prefix, ...i.path]), message };
  });
}

/**
 * The raw documents of a YAML or JSON text (several `---` documents, or a `kind: List`), one YAML
 * document at a time: the yaml library's streaming parser lets a caller give others a turn between
 * documents of a long manifest.
 */
function* rawDocuments(text: string, file?: string): Generator<{ doc?: unknown; issue?: FieldIssue }> {
  const lines = new LineCounter();
  let n = 0;
  for (const d of new Composer().compose(new Parser(lines.addNewLine).parse(text))) {
    n++;
    if (d.errors.length) {
      const e = d.errors[0]!;
      const { line, col } = lines.linePos(e.pos[0]);
      yield {
        issue: {
          file,
          resource: `document ${n}`,
          path: '',
          message: `not valid YAML/JSON: ${e.message} at line ${line}, column ${col}`,
        },
      };
      continue;
    }
    let v: unknown;
    try {
      // Parsing succeeded, but building values can still fail: an alias to no anchor (`*x`), or aliases
      // past yaml's expansion limit (a "billion laughs" document).
      v = d.toJS();
    } catch (err) {
      yield {
        issue: {
          file,
          resource: `document ${n}`,
          path: '',
          message: `not valid YAML/JSON: ${(err as Error).message}`,
        },
      };
      continue;
    }
    if (v === null || v === undefined) continue;
    if (typeof v === 'object' && !Array.isArray(v) && (v as { kind?: unknown }).kind === 'List') {
      for (const doc of ((v as { items?: unknown[] }).items ?? []) as unknown[]) yield { doc };
    } else if (Array.isArray(v)) for (const doc of v) yield { doc };
    else yield { doc: v };
  }
}

/** Splits a YAML or JSON text (several `---` documents, or a `kind: List`) into raw documents. */
export function parseManifestText(text: string, file?: string): { docs: unknown[]; issues: FieldIssue[] } {
  const docs: unknown[] = [];
  const issues: FieldIssue[] = [];
  for (const r of rawDocuments(text, file)) {
    if (r.issue) issues.push(r.issue);
    else docs.push(r.doc);
  }
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
  const a = annotationsSchema.optional().safeParse(meta.annotations);
  if (!a.success)
    issues.push(
      ...zodIssues(a.error, 'metadata.annotations', { ...(file ? { file } : {}), resource: label }),
    );
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
      labels: l.data ?? {},
      annotations: a.data ?? {},
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
  for (const f of files) for (const _ of loadInto(f.text, f.name, out, issues, seen));
  if (issues.length) throw invalid(issues);
  return out;
}

/**
 * `loadManifests` for a server: the same result, but it gives the event loop a turn every few
 * milliseconds, so parsing a 5,000-node manifest does not stall every other request.
 */
export async function readManifests(
  files: { name?: string | undefined; text: string }[],
): Promise<Resource[]> {
  const out: Resource[] = [];
  const issues: FieldIssue[] = [];
  const seen = new Map<string, string>();
  let since = performance.now();
  for (const f of files) {
    for (const _ of loadInto(f.text, f.name, out, issues, seen)) {
      if (performance.now() - since > 10) {
        await yieldToLoop();
        since = performance.now();
      }
    }
  }
  if (issues.length) throw invalid(issues);
  return out;
}

/** Validates the documents of one file into `out`/`issues`, yielding after each document. */
function* loadInto(
  text: string,
  file: string | undefined,
  out: Resource[],
  issues: FieldIssue[],
  seen: Map<string, string>,
): Generator<void> {
  let i = 0;
  for (const raw of rawDocuments(text, file)) {
    yield;
    if (raw.issue) {
      issues.push(raw.issue);
      continue;
    }
    const index = i++;
    const r = validateDocument(raw.doc, file, index);
    issues.push(...r.issues);
    if (!r.resource) continue;
    const key = `${r.resource.kind}/${r.resource.metadata.name}`;
    const here = `${file ?? '<stdin>'} document ${index + 1}`;
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
  }
}
