/**
 * Structured logging. One JSON line per record on stderr (or pretty text on a TTY),
 * with secret-looking fields redacted before anything is written: private keys and
 * tokens must never reach a log, whatever a caller passes in.
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

export function createLogger(
  base: Record<string, unknown> = {},
  sink: (line: string) => void = defaultSink,
): Logger {
  const write = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < order[threshold]) return;
    const rec = redact({ time: new Date().toISOString(), level, msg, ...base, ...fields });
    sink(JSON.stringify(rec));
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
