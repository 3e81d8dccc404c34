/**
 * Terminal safety: every value that came from a server (and so maybe from a forged DHCP vendor class, see
 * issue 9) is shown with its control characters escaped, so it cannot move the cursor, recolour, retitle or
 * overwrite what the user reads. C0 (but tab and, where asked, newline), DEL and C1 become visible escapes
 * like `\x1b`; JSON output is already safe (JSON.stringify escapes them), tables and text are not.
 */

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
const CONTROL_AND_NEWLINE = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\x1b': '\\x1b' };

function escapeOne(c: string): string {
  return named[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** For one value on one line (a table cell, an event message): newlines are escaped too. */
export function safeValue(s: unknown): string {
  return String(s ?? '').replace(CONTROL_AND_NEWLINE, escapeOne);
}

/** For a block of text (describe, YAML): lines stay lines, every other control character is escaped. */
export function safeText(s: string): string {
  return s.replace(CONTROL, escapeOne);
}

/**
 * Defence in depth for the client verbs: everything they write to stdout/stderr passes through `safeText`,
 * so a value some command prints without `safeValue` still cannot reach the terminal raw. Not for commands
 * that own the terminal on purpose (the servers' logs, the lab's progress bars, ssh).
 */
export function guardOutput(stream: NodeJS.WriteStream): void {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  const decoder = new TextDecoder();
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string') return write(safeText(chunk), ...rest);
    if (chunk instanceof Uint8Array) return write(safeText(decoder.decode(chunk)), ...rest);
    return write(chunk, ...rest);
  }) as typeof stream.write;
}
