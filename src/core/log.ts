/**
 * Structured logging. One record per line on stderr: JSON for machines (the default on a pipe), or a
 * readable `time level component message key=value` line (the default on a terminal; `setLogFormat`,
 * `strata up --log-format`, STRATA_LOG_FORMAT). Secret-looking fields are redacted before either format
 * is written: private keys and tokens must never reach a log, whatever a caller passes in. Text lines
 * escape control characters, since logged values (a DHCP vendor class) may come from a forged packet.
 */

export type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const SECRET_KEYS = /(^|_|-)(token|password|secret|privatekey|private_key|authorization)$/i;
const SECRET_VALUES = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----/g;
/** Tokens inside text: `?token=…` (installers that cannot send a header), `Bearer …`, `strata.token=…`. */
const TOKEN_IN_TEXT = /([?&;](?:[a-z_]*token|key|password)=|\bBearer\s+|\bstrata\.token=)[^\s&#"']+/gi;

/** Replaces secret fields, PEM private keys and tokens in URLs or headers anywhere in a value. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string')
    return value.replace(SECRET_VALUES, '[REDACTED PRIVATE KEY]').replace(TOKEN_IN_TEXT, '$1[REDACTED]');
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: redact(value.message) };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEYS.test(k) ? '[REDACTED]' : redact(v, depth + 1);
  }
  return out;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

let threshold: Level = (process.env.STRATA_LOG_LEVEL as Level | undefined) ?? 'info';
export function setLogLevel(level: Level): void {
  threshold = level;
}

export type LogFormat = 'json' | 'text';
let format: LogFormat =
  process.env.STRATA_LOG_FORMAT === 'json' || process.env.STRATA_LOG_FORMAT === 'text'
    ? process.env.STRATA_LOG_FORMAT
    : process.stderr.isTTY
      ? 'text'
      : 'json';
export function setLogFormat(f: LogFormat): void {
  format = f;
}

const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;
const escapeControl = (s: string) =>
  s.replace(CONTROL, (c) => (c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));

function textValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[^\s"=]*$/.test(s) && s !== '' ? escapeControl(s) : escapeControl(JSON.stringify(s));
}

/** `15:04:05.123 INFO  strata  message key=value ...` from a redacted record. */
export function formatText(rec: Record<string, unknown>): string {
  const { time, level, msg, component, ...rest } = rec;
  const t = typeof time === 'string' ? time.slice(11, 23) : '';
  const kv = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${textValue(v)}`);
  return [
    t,
    String(level).toUpperCase().padEnd(5),
    component ? escapeControl(String(component)) : '-',
    escapeControl(String(msg)),
    ...kv,
  ].join(' ');
}

export function createLogger(
  base: Record<string, unknown> = {},
  sink: (line: string) => void = defaultSink,
): Logger {
  const write = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < order[threshold]) return;
    const rec = redact({ time: new Date().toISOString(), level, msg, ...base, ...fields }) as Record<
      string,
      unknown
    >;
    sink(format === 'text' ? formatText(rec) : JSON.stringify(rec));
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, sink),
  };
}

function defaultSink(line: string): void {
  process.stderr.write(line + '\n');
}

/** A logger that drops everything: for tests and library use. */
export const silentLogger: Logger = createLogger({}, () => {});
