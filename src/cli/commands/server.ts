/**
 * The commands that run the platform: `up` (everything in one process), `manager` (API and managers,
 * workers over NATS) and `worker` (some roles, taking work from NATS). A server with an API writes a
 * context for itself into the client config (named by its address), so the CLI finds it from any
 * directory; logs are readable text on a terminal and JSON otherwise (`--log-format`).
 *
 * TLS: plain HTTP on a loopback address (the local quick start: nothing crosses a wire), HTTPS by default
 * on any other, with `--tls`/`--no-tls` to choose. The certificate is the one given (`--tls-cert`/`--tls-key`)
 * or one made on first start in the data directory; the context written carries it and its fingerprint,
 * which the CLI pins.
 */
import { type Command, Option } from 'commander';
import { readLocalToken } from '../../api/auth.ts';
import type { TlsMaterial } from '../../api/tls.ts';
import { setLogFormat } from '../../core/log.ts';
import type { Platform, PlatformOptions } from '../../platform.ts';
import { VERSION } from '../../version.ts';
import { examples } from '../common.ts';
import { configPath, contextNameFor, loadConfig, normalizeServer, upsertContext } from '../config.ts';
import { CliError } from '../errors.ts';

/** The platform (every layer) is loaded only by the commands that run it, so client verbs start fast. */
async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const { startPlatform: start } = await import('../../platform.ts');
  return start(opts);
}

/** Points the client config's context for this server at it; a config that cannot be written only warns. */
function writeContext(p: Platform, dataDir: string, token: string | undefined, tls?: TlsMaterial): void {
  const server = apiUrl(p, tls);
  const name = contextNameFor(server);
  const file = configPath();
  try {
    const old = loadConfig(file).contexts.find((c) => c.name === name);
    const tok = token ?? readLocalToken(dataDir) ?? old?.token;
    upsertContext(
      {
        name,
        server,
        ...(tok ? { token: tok } : {}),
        ...(tls ? { certificateAuthority: tls.cert, certificateFingerprint: tls.fingerprint } : {}),
      },
      file,
    );
    process.stdout.write(`Context "${name}" in ${file} now points the CLI at this server.\n`);
  } catch (e) {
    process.stderr.write(`warning: could not write the client context to ${file}: ${(e as Error).message}\n`);
  }
}

/** The URL a client on this machine reaches the API at (0.0.0.0 becomes 127.0.0.1). */
function apiUrl(p: Platform, tls?: TlsMaterial): string {
  const host = p.address!.host.includes(':') ? `[${p.address!.host}]` : p.address!.host;
  return normalizeServer(`${tls ? 'https' : 'http'}://${host}:${p.address!.port}`).replace(
    /\/\/(0\.0\.0\.0|\[::\])(?=:)/,
    (_, h: string) => (h === '0.0.0.0' ? '//127.0.0.1' : '//[::1]'),
  );
}

/** The certificate to serve, or undefined for plain HTTP (see the module comment for the default). */
async function chooseTls(
  o: { tls?: boolean; tlsCert?: string; tlsKey?: string; listen: string },
  dataDir: string,
): Promise<TlsMaterial | undefined> {
  if (!!o.tlsCert !== !!o.tlsKey)
    throw new CliError(
      'error: --tls-cert and --tls-key go together: give both files, or neither for a certificate made here',
    );
  if (o.tls === false && o.tlsCert) throw new CliError('error: --no-tls with --tls-cert: choose one');
  const { ensureSelfSigned, loadTls, wantsTls } = await import('../../api/tls.ts');
  if (!wantsTls(o)) return undefined;
  const host = o.listen.replace(/:\d+$/, '');
  try {
    return o.tlsCert ? loadTls(o.tlsCert, o.tlsKey!) : ensureSelfSigned(dataDir, host);
  } catch (e) {
    throw new CliError(`error: ${(e as Error).message}`);
  }
}

function tlsLine(tls: TlsMaterial | undefined): string {
  return tls ? `TLS certificate ${tls.source}, SHA-256 fingerprint ${tls.fingerprint}\n` : '';
}

function applyLogFormat(cmd: Command): void {
  const f = cmd.opts().logFormat as string | undefined;
  if (f) setLogFormat(f as 'json' | 'text');
}

async function runUntilSignal(p: { stop(): Promise<void> }): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await p.stop();
}

/** `up` and `manager`: start a platform with an API, print the token once, write the client context, run. */
async function runServer(
  o: {
    listen: string;
    database?: string;
    adminToken?: string;
    tls?: boolean;
    tlsCert?: string;
    tlsKey?: string;
  },
  cmd: Command,
  how: {
    nats?: string;
    roles: string[];
    tokenLine: (dataDir: string) => string;
    upLine: string;
    transport: (p: Platform) => string;
  },
): Promise<void> {
  applyLogFormat(cmd);
  const g = cmd.optsWithGlobals();
  let newToken: string | undefined;
  const tls = await chooseTls(o, g.dataDir);
  const p = await startPlatform({
    dataDir: g.dataDir,
    listen: o.listen,
    database: o.database,
    ...(tls ? { tls } : {}),
    ...(how.nats ? { nats: how.nats } : {}),
    manager: true,
    roles: how.roles,
    token: o.adminToken,
    onToken: (t) => {
      newToken = t;
      process.stdout.write(`${how.tokenLine(g.dataDir)}: ${t}\n`);
    },
  });
  writeContext(p, g.dataDir, newToken ?? o.adminToken, tls);
  process.stdout.write(
    `${tlsLine(tls)}${how.upLine}: API ${apiUrl(p, tls)} (store ${p.store.driver}, transport ${how.transport(p)})\n`,
  );
  const { uiStatus } = await import('../../api/ui.ts');
  const noUi = uiStatus();
  if (noUi) process.stderr.write(`warning: ${noUi}\n`);
  else process.stdout.write(`Web UI: ${apiUrl(p, tls)}/ (log in with an API token)\n`);
  await runUntilSignal(p);
}

export function registerServerCommands(program: Command): void {
  const logOpt = (c: Command) =>
    c.addOption(
      new Option('--log-format <format>', 'json or text (default: text on a terminal, json otherwise)')
        .choices(['json', 'text'])
        .env('STRATA_LOG_FORMAT'),
    );
  const serverOpts = (c: Command) =>
    logOpt(c)
      .addOption(new Option('--listen <host:port>', 'API listen address').default('127.0.0.1:7420'))
      .addOption(
        new Option(
          '--tls',
          'serve HTTPS (default on a non-loopback --listen; a certificate is made on first start)',
        ),
      )
      .addOption(new Option('--no-tls', 'serve plain HTTP even on a non-loopback address'))
      .addOption(new Option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain)'))
      .addOption(new Option('--tls-key <file>', 'the PEM private key of --tls-cert'))
      .addOption(
        new Option('--database <url>', 'store: postgres://... (default: SQLite in the data directory)').env(
          'STRATA_DATABASE',
        ),
      )
      .addOption(
        new Option('--admin-token <token>', 'use this admin token instead of generating one').env(
          'STRATA_ADMIN_TOKEN',
        ),
      );

  serverOpts(
    examples(
      program.command('up').description('start the whole platform in one process (API, managers, workers)'),
      [
        'strata up',
        'strata up --listen 0.0.0.0:7420 --data-dir /var/lib/strata   # HTTPS, certificate made here',
        'strata up --tls --tls-cert site.crt --tls-key site.key',
        'strata up --database postgres://strata@db/strata --log-format json',
      ],
    ),
  ).action(async (o, cmd: Command) => {
    await runServer(o, cmd, {
      roles: ['*'],
      tokenLine: (dataDir) => `Admin API token (shown once; also in ${dataDir}/admin-token)`,
      upLine: `Strata ${VERSION} is up`,
      transport: (p) => p.transport.name,
    });
  });

  serverOpts(
    program.command('manager').description('run the API and the managers; workers connect over NATS'),
  )
    .requiredOption('--nats <url>', 'NATS server URL (nats://host:4222)')
    .action(async (o, cmd: Command) => {
      await runServer(o, cmd, {
        nats: o.nats,
        roles: [],
        tokenLine: () => 'Admin API token (shown once)',
        upLine: 'Strata manager is up',
        transport: () => 'nats',
      });
    });

  logOpt(program.command('worker'))
    .description('run workers for some roles, taking work from NATS')
    .requiredOption('--nats <url>', 'NATS server URL')
    .requiredOption('--roles <roles>', 'comma-separated roles, e.g. sshkeys')
    .action(async (o, cmd: Command) => {
      applyLogFormat(cmd);
      const g = cmd.optsWithGlobals();
      const { startWorkers } = await import('../../platform.ts');
      const p = await startWorkers({
        dataDir: g.dataDir,
        nats: o.nats,
        roles: String(o.roles)
          .split(',')
          .map((r) => r.trim())
          .filter(Boolean),
      });
      process.stdout.write(`Strata worker is up: roles ${o.roles}\n`);
      await runUntilSignal(p);
    });
}
