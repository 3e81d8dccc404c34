/**
 * Label selectors in the Kubernetes grammar (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`,
 * `!k`, comma = AND), because kubectl users type them from habit and a selector the server misreads must
 * never become a silent empty (or full) list: anything unparseable is refused with the bad term named.
 * Labels are looked up as own properties only, so a key like `__proto__` matches nothing it does not have.
 */
import { StrataError } from './errors.ts';
import { LABEL_KEY_RE, LABEL_VALUE_RE } from './label-syntax.ts';

export type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!exists' };

export type Selector = Requirement[];

function bad(selector: string, term: string, why: string): StrataError {
  return new StrataError(
    400,
    'BadRequest',
    `invalid label selector "${selector}": term "${term.trim()}" ${why}; expected k=v, k==v, k!=v, ` +
      'k in (a,b), k notin (a,b), k or !k, joined by commas',
  );
}

/** Splits on commas outside parentheses. */
function terms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

const SET_RE = /^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$/;
const EQ_RE = /^\s*([^=!\s]+)\s*(==|=|!=)\s*(\S*)\s*$/;
const EXISTS_RE = /^\s*(!?)\s*([^=!\s()]+)\s*$/;

/** Parses a selector; an empty or absent one selects everything. Throws 400 BadRequest naming the term. */
export function parseSelector(s: string | null | undefined): Selector {
  if (!s?.trim()) return [];
  const out: Selector = [];
  for (const term of terms(s)) {
    const key = (k: string) => {
      if (!LABEL_KEY_RE.test(k)) throw bad(s, term, `has an invalid label key "${k}"`);
      return k;
    };
    const value = (v: string) => {
      if (!LABEL_VALUE_RE.test(v)) throw bad(s, term, `has an invalid label value "${v}"`);
      return v;
    };
    let m = SET_RE.exec(term);
    if (m) {
      const values = m[3]!.split(',').map((v) => v.trim());
      if (values.some((v) => v === '')) throw bad(s, term, 'has an empty value in its set');
      out.push({ key: key(m[1]!), op: m[2] as 'in' | 'notin', values: values.map(value) });
      continue;
    }
    m = EQ_RE.exec(term);
    if (m) {
      out.push({ key: key(m[1]!), op: m[2] === '!=' ? 'notin' : 'in', values: [value(m[3]!)] });
      continue;
    }
    m = EXISTS_RE.exec(term);
    if (m) {
      out.push({ key: key(m[2]!), op: m[1] ? '!exists' : 'exists' });
      continue;
    }
    throw bad(s, term, 'cannot be parsed');
  }
  return out;
}

/** True when `labels` satisfy every requirement (own properties only). */
export function matchesSelector(labels: Record<string, string> | undefined, sel: Selector): boolean {
  const have = labels ?? {};
  const get = (k: string) => (Object.hasOwn(have, k) ? have[k] : undefined);
  return sel.every((r) => {
    const v = get(r.key);
    if (r.op === 'exists') return v !== undefined;
    if (r.op === '!exists') return v === undefined;
    if (r.op === 'in') return v !== undefined && r.values.includes(v);
    if (r.op === 'notin') return v === undefined || !r.values.includes(v);
    return false;
  });
}

/** The equality part of a selector (`k=v` terms), which the stores can use to narrow a query. */
export function equalities(sel: Selector): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const r of sel) if (r.op === 'in' && r.values.length === 1) out[r.key] = r.values[0]!;
  return out;
}
