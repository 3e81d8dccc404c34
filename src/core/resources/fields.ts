/**
 * Field validators shared by resource kinds. Messages say what is expected, with an example, because they
 * end up in front of a user who typed a manifest by hand.
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { LABEL_KEY_RE, LABEL_VALUE_RE } from './label-syntax.ts';

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Normalises `52-54-00-AA-BB-CC` and `5254.00aa.bbcc` forms to lower-case colon form. */
export function normalizeMac(input: string): string | null {
  const hex = input.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length !== 12 || !/^[0-9a-f:.-]+$/i.test(input)) return null;
  const mac = hex.match(/../g)!.join(':');
  return MAC_RE.test(mac) ? mac : null;
}

export const mac = z.string().transform((v, ctx) => {
  const m = normalizeMac(v);
  if (!m) {
    ctx.addIssue({
      code: 'custom',
      message: `invalid MAC address "${v}": expected six hex octets like 52:54:00:12:34:56`,
    });
    return z.NEVER;
  }
  return m;
});

/** A string checked by `pred`, with a message that quotes the bad value. */
function checkedString(pred: (v: string) => boolean, message: (v: string) => string) {
  return z.string().superRefine((v, ctx) => {
    if (!pred(v)) ctx.addIssue({ code: 'custom', message: message(v) });
  });
}

export const ipv4 = checkedString(
  isIPv4,
  (v) => `invalid IPv4 address "${v}": expected dotted quad like 10.0.0.1`,
);

export function parseCidr(v: string): { network: string; prefix: number } | null {
  const [addr, len, ...rest] = v.split('/');
  if (rest.length || !addr || !len || !isIPv4(addr) || !/^\d{1,2}$/.test(len)) return null;
  const prefix = Number(len);
  if (prefix > 32) return null;
  return { network: addr, prefix };
}

export const cidr = checkedString(
  (v) => parseCidr(v) !== null,
  (v) => `invalid CIDR "${v}": expected an IPv4 network like 10.0.0.0/24`,
);

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Resource names double as host names and DNS labels, so they follow RFC 1123 label rules. */
export const resourceName = z
  .string({ message: 'expected a name (string)' })
  .refine((v) => DNS_LABEL.test(v), {
    message:
      'invalid name: expected lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
  });

export const hostname = checkedString(
  (v) => v.length <= 253 && v.split('.').every((l) => DNS_LABEL.test(l)),
  (v) => `invalid hostname "${v}": expected DNS labels of a-z, 0-9 and "-" separated by dots`,
);

export { LABEL_KEY_RE, LABEL_VALUE_RE };

const KEY_HINT =
  'expected a key like "rack" or "strata.dev/role": letters, digits, "-", "_" and ".", starting and ending with a letter or digit, optionally after a DNS prefix and "/"';

/** Keys that would reach an object's prototype machinery if a map were a plain object. */
export const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const labelKey = z.string().refine((k) => LABEL_KEY_RE.test(k) && k.length <= 316, { message: KEY_HINT });

/**
 * A string map keyed like Kubernetes labels. zod drops a `__proto__` key without a word, so reserved keys
 * are refused before the record is built (the issue names the key and the fix).
 */
function keyedRecord(what: string, value: z.ZodType<string>) {
  return z.preprocess(
    (v, ctx) => {
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        for (const k of Object.keys(v)) {
          if (RESERVED_KEYS.has(k))
            ctx.addIssue({
              code: 'custom',
              path: [k],
              message: `${what} key "${k}" is reserved: choose another key, e.g. "app" or "strata.dev/${k.replace(/_/g, '') || 'key'}"`,
            });
        }
      }
      return v;
    },
    z.record(labelKey, value),
  );
}

export const labelValue = z
  .string({ message: 'expected a string label value (quote numbers and booleans: "true")' })
  .refine((v) => LABEL_VALUE_RE.test(v), {
    message:
      'invalid label value: expected at most 63 of letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
  });

export const labels = keyedRecord('label', labelValue);
export const annotations = keyedRecord(
  'annotation',
  z.string({ message: 'expected a string annotation value (quote numbers and booleans)' }),
);

export const duration = z.union([
  z.number().int().positive(),
  z.string().regex(/^\d+(s|m|h|d)$/, { message: 'expected a duration like 3600, "30m", "12h" or "1d"' }),
]);

/** Converts a duration field to seconds. */
export function seconds(v: number | string): number {
  if (typeof v === 'number') return v;
  const n = Number(v.slice(0, -1));
  return n * { s: 1, m: 60, h: 3600, d: 86400 }[v.slice(-1) as 's' | 'm' | 'h' | 'd'];
}

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function inCidr(ip: string, c: string): boolean {
  const p = parseCidr(c);
  if (!p) return false;
  const mask = p.prefix === 0 ? 0 : (~0 << (32 - p.prefix)) >>> 0;
  return (ipToInt(ip) & mask) >>> 0 === (ipToInt(p.network) & mask) >>> 0;
}
