/**
 * `explain KIND[.field.path]`: the documentation of a kind's fields, read locally from the kind registry's
 * zod schemas (their `.describe()` texts), so it needs no server and cannot drift from what apply checks.
 * The output follows kubectl explain: KIND, VERSION, FIELD with its type, DESCRIPTION, then FIELDS.
 */
import type { Command } from 'commander';
import { API_VERSION } from '../../core/resources/types.ts';
import { CliError } from '../client.ts';
import { examples, kindArg, out } from '../common.ts';

interface ZodLike {
  description?: string;
  _zod: { def: Record<string, unknown> & { type: string } };
}

interface Field {
  type: string;
  description?: string;
  fields?: Record<string, ZodLike>;
  default?: unknown;
  required: boolean;
  values?: unknown[];
}

/** Looks through optional/default/pipe wrappers to the field's real type, keeping the first description. */
export function inspect(s: ZodLike): Field {
  let cur = s;
  let description = s.description;
  let required = true;
  let dflt: unknown;
  for (;;) {
    const d = cur._zod.def;
    if (d.type === 'optional' || d.type === 'nullable') required = false;
    if (d.type === 'default') {
      required = false;
      dflt = typeof d.defaultValue === 'function' ? (d.defaultValue as () => unknown)() : d.defaultValue;
    }
    const next = (d.innerType ?? (d.type === 'pipe' ? d.in : undefined)) as ZodLike | undefined;
    if (!next) break;
    cur = next;
    description ??= cur.description;
  }
  const d = cur._zod.def;
  const f: Field = { type: d.type, required, ...(description ? { description } : {}) };
  if (dflt !== undefined) f.default = dflt;
  if (d.type === 'object') f.fields = d.shape as Record<string, ZodLike>;
  if (d.type === 'enum') f.values = Object.values(d.entries as Record<string, unknown>);
  if (d.type === 'array') {
    const el = inspect(d.element as ZodLike);
    f.type = `[]${el.type}`;
    if (el.fields) f.fields = el.fields;
    f.description ??= el.description;
  }
  if (d.type === 'record') f.type = 'map[string]string';
  return f;
}

const typeName = (t: string) =>
  ({ object: 'Object', string: 'string', number: 'integer', boolean: 'boolean', enum: 'string' })[t] ?? t;

function wrap(text: string, indent: string, width = 76): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + w.length + 1 > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.map((l) => indent + l).join('\n');
}

function fieldLine(name: string, f: Field): string {
  const extra = [
    f.required ? '-required-' : '',
    f.values ? `one of: ${f.values.join(', ')}` : '',
    f.default !== undefined && !(Array.isArray(f.default) && !f.default.length)
      ? `default: ${JSON.stringify(f.default)}`
      : '',
  ]
    .filter(Boolean)
    .join('; ');
  return `  ${name}\t<${typeName(f.type)}>${extra ? `  (${extra})` : ''}\n${wrap(f.description ?? '<no description>', '    ')}`;
}

export function explain(path: string): string {
  const [kindName, ...parts] = path.split('.');
  const def = kindArg(kindName!);
  const top: Record<string, Field> = {
    apiVersion: { type: 'string', required: true, description: `Always ${API_VERSION}.` },
    kind: { type: 'string', required: true, description: `Always ${def.kind}.` },
    metadata: {
      type: 'object',
      required: true,
      description:
        'The name (an RFC 1123 label), labels and annotations of the object; the server adds resourceVersion, creationTimestamp and finalizers.',
    },
    spec: {
      description: `What the user declares for a ${def.kind}; Strata reconciles toward it.`,
      ...inspect(def.spec as unknown as ZodLike),
      required: true,
    },
    status: {
      type: 'object',
      required: false,
      description: 'What Strata last measured. Set by the server, never by apply.',
    },
  };
  const lines = [`KIND:     ${def.kind}`, `VERSION:  ${API_VERSION}`, ''];
  if (!parts.length) {
    lines.push('DESCRIPTION:', wrap(def.description, '  '), '', 'FIELDS:');
    for (const [k, f] of Object.entries(top)) lines.push(fieldLine(k, f), '');
    return lines.join('\n').trimEnd();
  }
  let f: Field | undefined = top[parts[0]!];
  for (let i = 1; f && i < parts.length; i++) {
    const child: ZodLike | undefined = f.fields?.[parts[i]!];
    f = child ? inspect(child) : undefined;
  }
  if (!f)
    throw new CliError(
      `error: field "${parts.join('.')}" does not exist in ${def.kind} (see strata explain ${def.kind.toLowerCase()}${parts.length > 1 ? `.${parts.slice(0, -1).join('.')}` : ''})`,
    );
  lines.push(
    `FIELD: ${parts.at(-1)} <${typeName(f.type)}>`,
    '',
    'DESCRIPTION:',
    wrap(f.description ?? '<no description>', '  '),
  );
  if (f.values) lines.push('', `  One of: ${f.values.join(', ')}`);
  if (f.fields) {
    lines.push('', 'FIELDS:');
    for (const [k, z] of Object.entries(f.fields)) lines.push(fieldLine(k, inspect(z)), '');
  }
  return lines.join('\n').trimEnd();
}

export function registerExplainCommand(program: Command): void {
  examples(
    program
      .command('explain')
      .description('document a kind and its fields (read from the schemas apply checks against)')
      .argument('<kind.field.path>', 'e.g. node, node.spec, node.spec.providers.hardware'),
    ['strata explain node', 'strata explain node.spec.targetState', 'strata explain network.spec.pool'],
  ).action((path: string) => {
    out(explain(path));
  });
}
