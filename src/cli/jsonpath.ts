/**
 * kubectl-style JSONPath templates for `-o jsonpath=`, `-o custom-columns=` and `--sort-by`.
 *
 * No maintained npm library implements kubectl's template syntax ({range}/{end}, {"literal"}, text between
 * expressions, paths relative to the current item). So the expressions themselves are evaluated by
 * jsonpath-plus (a maintained, widely used JSONPath engine, with filters like `[?(@.status.state==4)]`),
 * and this module is only the thin template layer kubectl has around it: split the template into text,
 * literals, expressions and range blocks, evaluate each expression against the current object, and print
 * results as kubectl does (several results separated by a space, objects as JSON, strings as they are).
 */
import { JSONPath } from 'jsonpath-plus';
import { CliError } from './errors.ts';

type Node =
  | { t: 'text'; s: string }
  | { t: 'expr'; path: string }
  | { t: 'range'; path: string; body: Node[] };

/** Splits `{...}` blocks out of a template; braces inside quotes do not count. */
function tokens(tpl: string): { text?: string; block?: string }[] {
  const out: { text?: string; block?: string }[] = [];
  let i = 0;
  while (i < tpl.length) {
    const open = tpl.indexOf('{', i);
    if (open < 0) {
      out.push({ text: tpl.slice(i) });
      break;
    }
    if (open > i) out.push({ text: tpl.slice(i, open) });
    let j = open + 1;
    let quote = '';
    for (; j < tpl.length; j++) {
      const c = tpl[j]!;
      if (quote) {
        if (c === '\\') j++;
        else if (c === quote) quote = '';
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '}') break;
    }
    if (j >= tpl.length) throw bad(tpl, `unclosed "{" at position ${open}`);
    out.push({ block: tpl.slice(open + 1, j).trim() });
    i = j + 1;
  }
  return out;
}

function bad(tpl: string, why: string): CliError {
  return new CliError(`error: error parsing jsonpath ${tpl}: ${why}`);
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'" };

function literal(block: string): string | undefined {
  const m = /^(["'])([\s\S]*)\1$/.exec(block);
  return m ? m[2]!.replace(/\\(.)/g, (_, c: string) => ESCAPES[c] ?? c) : undefined;
}

export function parseTemplate(tpl: string): Node[] {
  // kubectl accepts a bare expression for custom-columns and --sort-by; be as lenient for -o jsonpath.
  const src = !tpl.includes('{') && /^[.$@[]/.test(tpl.trim()) ? `{${tpl.trim()}}` : tpl;
  const stack: Node[][] = [[]];
  const ranges: { path: string; body: Node[] }[] = [];
  for (const tok of tokens(src)) {
    const top = stack.at(-1)!;
    if (tok.text !== undefined) {
      top.push({ t: 'text', s: tok.text });
      continue;
    }
    const b = tok.block!;
    const lit = literal(b);
    if (lit !== undefined) top.push({ t: 'text', s: lit });
    else if (b === 'end') {
      if (ranges.length === 0) throw bad(src, 'not in range, nothing to end');
      const r = ranges.pop()!;
      stack.pop();
      stack.at(-1)!.push({ t: 'range', path: r.path, body: r.body });
    } else if (/^range\s/.test(b)) {
      const r = { path: b.slice(6).trim(), body: [] as Node[] };
      ranges.push(r);
      stack.push(r.body);
    } else if (b === '') throw bad(src, 'empty expression "{}"');
    else top.push({ t: 'expr', path: b });
  }
  if (ranges.length) throw bad(src, 'unclosed range (add {end})');
  return stack[0]!;
}

/** A kubectl path (`.a.b`, `$.a`, `@`, `.labels.kubernetes\.io/role`) as a jsonpath-plus path. */
function toJsonPath(p: string): string {
  let s = p.trim();
  if (s === '@' || s === '$' || s === '.') return '$';
  if (s.startsWith('@')) s = s.slice(1);
  if (s.startsWith('$')) s = s.slice(1);
  if (!s.startsWith('.') && !s.startsWith('[')) s = `.${s}`;
  // Escaped dots belong to a key: `.a.b\.c/d` → `.a['b.c/d']`.
  if (s.includes('\\.') || /\.[^.[\]]*[/-]/.test(s)) {
    const parts = s.slice(1).split(/(?<!\\)\.(?![^[]*\])/);
    return `$${parts
      .map((seg) => {
        const m = /^([^[]*)(\[.*)?$/.exec(seg)!;
        const key = m[1]!.replace(/\\\./g, '.');
        const idx = m[2] ?? '';
        if (!key) return idx;
        return (/^[A-Za-z_$][\w$]*$|^\*$/.test(key) ? `.${key}` : `['${key.replace(/'/g, "\\'")}']`) + idx;
      })
      .join('')}`;
  }
  return `$${s}`;
}

/** Every value `path` selects in `obj` (none when a key is missing, like kubectl's allow-missing-keys). */
export function evaluate(path: string, obj: unknown, root: unknown = obj): unknown[] {
  const p = path.trim();
  const json = p.startsWith('$') ? root : obj;
  if (json === null || typeof json !== 'object') return p === '@' || p === '.' ? [json] : [];
  try {
    return JSONPath({ path: toJsonPath(p), json: json as object, wrap: true }) as unknown[];
  } catch (e) {
    throw new CliError(`error: error executing jsonpath "${path}": ${(e as Error).message}`);
  }
}

export function show(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function run(nodes: Node[], obj: unknown, root: unknown): string {
  let out = '';
  for (const n of nodes) {
    if (n.t === 'text') out += n.s;
    else if (n.t === 'expr') out += evaluate(n.path, obj, root).map(show).join(' ');
    else {
      const vals = evaluate(n.path, obj, root);
      const items = vals.length === 1 && Array.isArray(vals[0]) ? (vals[0] as unknown[]) : vals;
      for (const item of items) out += run(n.body, item, root);
    }
  }
  return out;
}

/** Renders a kubectl JSONPath template against an object (a list is `{kind: List, items}` as kubectl has it). */
export function renderTemplate(tpl: string, obj: unknown): string {
  return run(parseTemplate(tpl), obj, obj);
}

/** One column spec `HEADER:.path`, the expression kubectl-relaxed (`{.a}` or `.a`). */
export interface ColumnSpec {
  header: string;
  path: string;
}

export function parseCustomColumns(spec: string): ColumnSpec[] {
  const cols = spec.split(',').map((c) => {
    const i = c.indexOf(':');
    if (i <= 0 || i === c.length - 1)
      throw new CliError(
        `error: custom-columns "${c}": expected HEADER:JSONPATH, e.g. -o custom-columns=NAME:.metadata.name,STATE:.status.state`,
      );
    return { header: c.slice(0, i), path: relaxed(c.slice(i + 1)) };
  });
  return cols;
}

/** `{.a.b}` or `.a.b` or `a.b` → `.a.b` (kubectl's RelaxedJSONPathExpression). */
export function relaxed(p: string): string {
  let s = p.trim();
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1).trim();
  if (!s.startsWith('.') && !s.startsWith('$') && !s.startsWith('@') && !s.startsWith('[')) s = `.${s}`;
  return s;
}

/** The value of a column for one object: several results joined by `,`, nothing as `<none>`. */
export function columnValue(path: string, obj: unknown): string {
  const vals = evaluate(path, obj).filter((v) => v !== undefined && v !== null);
  return vals.length ? vals.map(show).join(',') : '<none>';
}
