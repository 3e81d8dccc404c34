/**
 * Input checks and quoting for answer files. Answer files are line-oriented (kickstart commands, preseed
 * `owner question type value` lines, YAML), so a node or profile value that carried a newline could add
 * lines of its own: every single-line value is checked before rendering, and the error names the field and
 * what is expected. Multi-line values (the pre/post-reboot scripts) reach an answer file only through the
 * quoting helpers below, which turn them into one shell word without newlines.
 */
import { isIPv4 } from 'node:net';
import { hostname as hostnameField, normalizeMac, resourceName } from '../../core/resources/fields.ts';

/** An answer file that cannot be rendered or served; `field` names the input (or template) at fault. */
export class AnswerFileError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'AnswerFileError';
    this.field = field;
  }
}

const CONTROL = /[\u0000-\u001f\u007f]/;
const SCRIPT_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

function describe(v: unknown): string {
  const s = typeof v === 'string' ? v : String(v);
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}

/** A string with no newline or other control character (tabs neither). */
export function singleLine(value: unknown, field: string, what = 'a single-line string'): string {
  if (typeof value !== 'string') throw new AnswerFileError(field, `expected ${what}, got ${typeof value}`);
  if (CONTROL.test(value)) {
    const why = /[\r\n]/.test(value) ? 'a newline' : 'a control character';
    throw new AnswerFileError(
      field,
      `contains ${why} (${describe(value)}); expected ${what}, since a line break would inject lines into the answer file`,
    );
  }
  return value;
}

export function nonEmpty(value: unknown, field: string, what: string): string {
  const s = singleLine(value, field, what);
  if (s === '') throw new AnswerFileError(field, `is empty; expected ${what}`);
  return s;
}

export function checkHostname(value: unknown, field: string): string {
  const what =
    'a DNS name: labels of a-z, 0-9 and "-" (not at either end), separated by dots, like node-1.lab';
  const s = nonEmpty(value, field, what);
  if (!hostnameField.safeParse(s).success) throw new AnswerFileError(field, `${describe(s)} is not ${what}`);
  return s;
}

export function checkNodeName(value: unknown, field: string): string {
  const what = 'a node name: lower-case letters, digits and "-", at most 63 characters';
  const s = nonEmpty(value, field, what);
  if (!resourceName.safeParse(s).success) throw new AnswerFileError(field, `${describe(s)} is not ${what}`);
  return s;
}

export function checkMac(value: unknown, field: string): string {
  const what = 'a MAC address like 52:54:00:12:34:56';
  const m = normalizeMac(nonEmpty(value, field, what));
  if (!m) throw new AnswerFileError(field, `${describe(value)} is not ${what}`);
  return m;
}

export function checkIp(value: unknown, field: string): string {
  const what = 'an IPv4 address like 10.0.0.5';
  const s = nonEmpty(value, field, what);
  if (!isIPv4(s)) throw new AnswerFileError(field, `${describe(s)} is not ${what}`);
  return s;
}

/** An absolute http(s) URL without whitespace or quotes. */
export function checkHttpUrl(value: unknown, field: string): URL {
  const what = 'an absolute http:// or https:// URL without spaces or quotes';
  const s = nonEmpty(value, field, what);
  let u: URL | undefined;
  try {
    u = new URL(s);
  } catch {
    u = undefined;
  }
  if (!u || !/^https?:$/.test(u.protocol) || !u.hostname || /[\s"'`\\]/.test(s))
    throw new AnswerFileError(field, `${describe(s)} is not ${what}`);
  return u;
}

/** A word made of safe characters only (a release name, a token). */
export function checkWord(value: unknown, field: string, what: string, re = /^[A-Za-z0-9._~+/=-]+$/): string {
  const s = nonEmpty(value, field, what);
  if (!re.test(s)) throw new AnswerFileError(field, `${describe(s)} is not ${what}`);
  return s;
}

const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ssh-dss',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/** One OpenSSH public key line: `type base64 [comment]`, the base64 blob naming the same type. */
export function checkSshKey(value: unknown, field: string): string {
  const what = 'one OpenSSH public key line like "ssh-ed25519 AAAAC3Nza… user@host"';
  const s = nonEmpty(value, field, what).trim();
  const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})(?: (.*))?$/.exec(s);
  if (!m || !KEY_TYPES.has(m[1]!)) throw new AnswerFileError(field, `${describe(s)} is not ${what}`);
  const blob = Buffer.from(m[2]!, 'base64');
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (len <= 0 || blob.length < 4 + len || blob.subarray(4, 4 + len).toString('latin1') !== m[1])
    throw new AnswerFileError(field, `the key data of ${describe(s)} is not a ${m[1]} key; expected ${what}`);
  return s;
}

/** A shell script: any text but NUL, CR (CRLF line endings) and other control characters than tab/newline. */
export function checkScript(value: unknown, field: string): string {
  if (typeof value !== 'string')
    throw new AnswerFileError(field, `expected a script (string), got ${typeof value}`);
  if (value.includes('\r'))
    throw new AnswerFileError(field, 'has CR characters (CRLF line endings?); expected a Unix shell script');
  if (SCRIPT_CONTROL.test(value))
    throw new AnswerFileError(field, 'contains a control character; expected a Unix shell script (text)');
  return value;
}

// --- quoting helpers (used as Liquid filters) ---------------------------------------------------

/** POSIX shell single-quoting; also how kickstart (shlex) reads a quoted argument. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A single-quoted `printf` format that prints `s` exactly, on one line: newlines become `\n`, quotes,
 * backslashes and `%` are escaped. The result never ends with a backslash (a preseed continuation).
 */
export function printfArg(s: string): string {
  let out = '';
  for (const ch of s) {
    if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '%') out += '%%';
    else if (ch === "'" || ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)
      out += `\\${ch.charCodeAt(0).toString(8).padStart(3, '0')}`;
    else out += ch;
  }
  return `'${out}'`;
}

const SAFE_PATH = /^\/[A-Za-z0-9._/-]+$/;

/** A one-line shell command writing `s` to `path`. */
export function writeFileCommand(s: string, path: string): string {
  if (!SAFE_PATH.test(path))
    throw new AnswerFileError('template', `write_file path ${describe(path)} is not a plain absolute path`);
  return `printf ${printfArg(s)} > ${path}`;
}
