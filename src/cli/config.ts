/**
 * The client configuration, shaped like a kubeconfig: named contexts (server, token, later a CA pin) and a
 * `current-context`, in `$STRATA_CONFIG` or `$XDG_CONFIG_HOME/strata/config.yaml` (`~/.config/...`).
 * `strata up` and `strata login` write it, every client verb reads it, so the CLI works from any directory.
 *
 * Where the server and the token come from is decided here, once, with the source of each kept: a 401 then
 * says exactly where the CLI looked (flag, environment, context NAME in FILE, the data dir's admin token).
 * Precedence: flags > environment > the context > the local data directory's admin token. A context's token
 * is sent only to that context's own server: with `--server` pointing elsewhere, the context whose server it
 * is (if any) lends its token, so a token never leaks to a server it was not made for.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { readLocalToken, tokenFile } from '../api/auth.ts';
import { CliError } from './errors.ts';
import type { TlsTrust } from './tls.ts';

export interface Context {
  name: string;
  server: string;
  token?: string;
  /**
   * PEM of the certificate(s) that vouch for an HTTPS server: its CA, or (as `strata up` and a pinning
   * `strata login` write it) the server's own certificate.
   */
  certificateAuthority?: string;
  /** SHA-256 fingerprint the server's certificate must have: a pin, checked instead of its names. */
  certificateFingerprint?: string;
  /** Accept any certificate (only when asked for with --insecure-skip-tls-verify). */
  insecureSkipTlsVerify?: boolean;
}

export interface ClientConfig {
  'current-context'?: string;
  contexts: Context[];
}

export const DEFAULT_SERVER = 'http://127.0.0.1:7420';

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STRATA_CONFIG) return resolve(env.STRATA_CONFIG);
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'strata', 'config.yaml');
}

export function loadConfig(file = configPath()): ClientConfig {
  if (!existsSync(file)) return { contexts: [] };
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`error: ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const d = (doc ?? {}) as Partial<ClientConfig>;
  const contexts = Array.isArray(d.contexts) ? d.contexts : [];
  for (const [i, c] of contexts.entries()) {
    if (!c || typeof c.name !== 'string' || typeof c.server !== 'string')
      throw new CliError(
        `error: ${file}: contexts[${i}] needs a name and a server (fix or remove it, or run strata login)`,
      );
  }
  return {
    ...(typeof d['current-context'] === 'string' ? { 'current-context': d['current-context'] } : {}),
    contexts,
  };
}

/** Writes the file readable by its owner only (it holds tokens), atomically (write then rename). */
export function saveConfig(cfg: ClientConfig, file = configPath()): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const doc = { apiVersion: 'strata.dev/v1alpha1', kind: 'Config', ...cfg };
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, stringify(doc), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** Adds or replaces a context by name and makes it current. */
export function upsertContext(ctx: Context, file = configPath(), makeCurrent = true): void {
  const cfg = loadConfig(file);
  const i = cfg.contexts.findIndex((c) => c.name === ctx.name);
  if (i >= 0) cfg.contexts[i] = ctx;
  else cfg.contexts.push(ctx);
  if (makeCurrent) cfg['current-context'] = ctx.name;
  saveConfig(cfg, file);
}

/**
 * `HOST:PORT`, `[v6]:PORT`, `HOST` (port 7420) or a full `http(s)://` URL, to a base URL without a trailing
 * slash. The same forms `--listen` takes, so what a server was started with can be pasted into `--server`.
 */
export function normalizeServer(s: string): string {
  const v = s.trim();
  if (/^https?:\/\//i.test(v)) {
    try {
      const u = new URL(v);
      return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
    } catch {
      throw new CliError(`error: invalid server "${s}": expected HOST:PORT or http(s)://HOST:PORT`);
    }
  }
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(v);
  if (!m || (m[2] !== undefined && Number(m[2]) > 65535))
    throw new CliError(`error: invalid server "${s}": expected HOST:PORT (like 127.0.0.1:7420) or a URL`);
  let host = m[1]!;
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '[::]') host = '[::1]';
  return `http://${host}:${m[2] ?? '7420'}`;
}

/** The context name `strata up` gives itself: its address as a client reaches it (`127.0.0.1:7420`). */
export function contextNameFor(server: string): string {
  return new URL(server).host;
}

export interface ConnectionFlags {
  server?: string;
  token?: string;
  context?: string;
  dataDir?: string;
}

export interface Connection {
  server: string;
  /** Where the server address came from, for error messages. */
  serverSource: string;
  token?: string;
  /** Where the token came from, or undefined when none was found. */
  tokenSource?: string;
  /** Every place looked at for a token, in order, for a 401's explanation. */
  lookedIn: string[];
  context?: string;
  configFile: string;
  /** How to trust the server's certificate: from the context that is this server's (see tls.ts). */
  tls?: TlsTrust;
}

export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Connection {
  const file = configPath(env);
  const cfg = loadConfig(file);
  const ctxName = flags.context ?? env.STRATA_CONTEXT ?? cfg['current-context'];
  const chosen = ctxName ? cfg.contexts.find((c) => c.name === ctxName) : undefined;
  if ((flags.context || env.STRATA_CONTEXT) && !chosen) {
    throw new CliError(
      `error: no context "${ctxName}" in ${file} (known: ${cfg.contexts.map((c) => c.name).join(', ') || 'none'}; see strata config get-contexts)`,
    );
  }

  let server: string;
  let serverSource: string;
  if (flags.server) [server, serverSource] = [normalizeServer(flags.server), 'the --server flag'];
  else if (env.STRATA_SERVER) [server, serverSource] = [normalizeServer(env.STRATA_SERVER), '$STRATA_SERVER'];
  else if (chosen)
    [server, serverSource] = [normalizeServer(chosen.server), `context "${chosen.name}" in ${file}`];
  else [server, serverSource] = [DEFAULT_SERVER, 'the default'];

  // The context whose token may go to this server: the chosen one if it is that server's, else any that is.
  const ctx =
    chosen && normalizeServer(chosen.server) === server
      ? chosen
      : cfg.contexts.find((c) => normalizeServer(c.server) === server);
  const dataDir = flags.dataDir ?? env.STRATA_DATA_DIR ?? '.strata';
  const lookedIn = [
    'the --token flag',
    '$STRATA_TOKEN',
    ctx ? `context "${ctx.name}" in ${file}` : `a context for ${server} in ${file}`,
    `${resolve(tokenFile(dataDir))} (the local data directory's admin token)`,
  ];
  const tls: TlsTrust | undefined =
    ctx && (ctx.certificateAuthority || ctx.certificateFingerprint || ctx.insecureSkipTlsVerify)
      ? {
          ...(ctx.certificateAuthority ? { ca: ctx.certificateAuthority } : {}),
          ...(ctx.certificateFingerprint ? { fingerprint: ctx.certificateFingerprint } : {}),
          ...(ctx.insecureSkipTlsVerify ? { insecure: true } : {}),
        }
      : undefined;
  const base = {
    server,
    serverSource,
    lookedIn,
    configFile: file,
    ...(ctx ? { context: ctx.name } : {}),
    ...(tls ? { tls } : {}),
  };
  if (flags.token) return { ...base, token: flags.token, tokenSource: lookedIn[0]! };
  if (env.STRATA_TOKEN) return { ...base, token: env.STRATA_TOKEN, tokenSource: lookedIn[1]! };
  if (ctx?.token) return { ...base, token: ctx.token, tokenSource: lookedIn[2]! };
  const local = readLocalToken(dataDir);
  if (local) return { ...base, token: local, tokenSource: lookedIn[3]! };
  return base;
}

/** A context for display: the token replaced by a marker saying whether there is one. */
export function redactContext(c: Context): Context {
  return {
    ...c,
    ...(c.token ? { token: 'REDACTED' } : {}),
    // A certificate is public, but a page of PEM hides the rest: its fingerprint says which one.
    ...(c.certificateAuthority ? { certificateAuthority: 'DATA+OMITTED' } : {}),
  };
}
