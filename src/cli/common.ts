/**
 * Helpers the command groups share: resolving a kind argument, building the API client from the global
 * flags (through the client config, see config.ts), and writing output that is safe for a terminal.
 */
import type { Command } from 'commander';
import '../core/kinds/index.ts';
// The layers' own kinds, so `get`, `describe` and friends know them (kind modules are pure declarations).
import '../cluster/kind.ts';
import '../overlay/kind.ts';
import { allKinds, type KindDef, resolveKind } from '../core/resources/kinds.ts';
import { ApiClient, CliError } from './client.ts';
import { type Connection, resolveConnection } from './config.ts';

export function kindArg(name: string): KindDef {
  const def = resolveKind(name);
  if (!def) {
    throw new CliError(
      `error: the server doesn't have a resource type "${name}" (known: ${allKinds()
        .map((k) => k.plural)
        .join(', ')})`,
    );
  }
  return def;
}

/** `node/n1`, `nodes/n1`, `Node/n1` to its kind and name; undefined when `s` has no slash. */
export function kindSlashName(s: string): { def: KindDef; name: string } | undefined {
  const i = s.indexOf('/');
  if (i < 0) return undefined;
  const name = s.slice(i + 1);
  if (!name) throw new CliError(`error: "${s}" names no object: expected KIND/NAME like node/n1`);
  return { def: kindArg(s.slice(0, i)), name };
}

/** The kind/name pairs of `KIND NAME...`, `KIND/NAME...` or `KIND1,KIND2` (names then none). */
export function targets(args: string[]): { def: KindDef; names: string[] }[] {
  if (!args.length) throw new CliError('error: say what to act on: KIND [NAME...] or KIND/NAME...');
  if (args.some((a) => a.includes('/'))) {
    const bad = args.find((a) => !a.includes('/'));
    if (bad)
      throw new CliError(`error: "${bad}": mix no KIND/NAME with plain names; write every one as KIND/NAME`);
    const out: { def: KindDef; names: string[] }[] = [];
    for (const a of args) {
      const t = kindSlashName(a)!;
      const same = out.find((o) => o.def === t.def);
      if (same) same.names.push(t.name);
      else out.push({ def: t.def, names: [t.name] });
    }
    return out;
  }
  const [kinds, ...names] = args as [string, ...string[]];
  const defs = kinds.split(',').filter(Boolean).map(kindArg);
  if (defs.length > 1 && names.length)
    throw new CliError(
      `error: names go with one kind: write KIND/NAME (e.g. ${defs[0]!.kind.toLowerCase()}/${names[0]})`,
    );
  return defs.map((def) => ({ def, names }));
}

export function connection(cmd: Command): Connection {
  const o = cmd.optsWithGlobals<{ server?: string; token?: string; context?: string; dataDir?: string }>();
  return resolveConnection({
    ...(o.server ? { server: o.server } : {}),
    ...(o.token ? { token: o.token } : {}),
    ...(o.context ? { context: o.context } : {}),
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
  });
}

export function client(cmd: Command): ApiClient {
  return new ApiClient(connection(cmd));
}

/** `path` of an object of a kind. */
export function objectPath(def: KindDef, name: string): string {
  return `/api/v1/${def.plural}/${encodeURIComponent(name)}`;
}

/** A duration like `30s`, `10m`, `1h` or plain seconds, in milliseconds. */
export function parseDuration(s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new CliError(`error: ${flag} "${s}" is not a duration: expected e.g. 30s, 10m, 1h`);
  const n = Number(m[1]);
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

/** Adds an Examples section to a command's help, as kubectl's help has. */
export function examples<C extends Command>(cmd: C, lines: string[]): C {
  cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`);
  return cmd;
}

/** One line (or block) on standard output. */
export function out(text: string): void {
  if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}
