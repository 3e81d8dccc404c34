/**
 * The commands that run the platform: `up` (everything in one process), `manager` (API and managers,
 * workers over NATS) and `worker` (some roles, taking work from NATS). A server with an API writes a
 * context for itself into the client config (named by its address), so the CLI finds it from any
 * directory; logs are readable text on a terminal and JSON otherwise (`--log-format`).
 */
import { type Command, Option } from 'commander';
import { readLocalToken } from '../../api/auth.ts';
import { setLogFormat } from '../../core/log.ts';
import type { Platform, PlatformOptions } from '../../platform.ts';
import { VERSION } from '../../version.ts';
import { examples } from '../common.ts';
import { configPath, contextNameFor, loadConfig, normalizeServer, upsertContext } from '../config.ts';

/** The platform (every layer) is loaded only by the commands that run it, so client verbs start fast. */
async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const { startPlatform: start } = await import('../../platform.ts');
  return start(opts);
}

/** Points the client config's context for this server at it; a config that cannot be written only warns. */
function writeContext(p: Platform, dataDir: string, token: string | undefined): void {
  const server = normalizeServer(
    `${p.address!.host.includes(':') ? `[${p.address!.host}]` : p.address!.host}:${p.address!.port}`,
  );
  const name = contextNameFor(server);
  const file = configPath();
  try {
    const old = loadConfig(file).contexts.find((c) => c.name === name);
    const tok = token ?? readLocalToken(dataDir) ?? old?.token;
    upsertContext({ name, server, ...(tok ? { token: tok } : {}) }, file);
    process.stdout.write(`Context "${name}" in ${file} now points the CLI at this server.\n`);
  } catch (e) {
    process.stderr.write(`warning: could not write the client context to ${file}: ${(e as Error).message}\n`);
  }
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
        'strata up --listen 0.0.0.0:7420 --data-dir /var/lib/strata',
        'strata up --database postgres://strata@db/strata --log-format json',
      ],
    ),
  ).action(async (o, cmd: Command) => {
    applyLogFormat(cmd);
    const g = cmd.optsWithGlobals();
    let newToken: string | undefined;
    const p = await startPlatform({
      dataDir: g.dataDir,
      listen: o.listen,
      database: o.database,
      manager: true,
      roles: ['*'],
      token: o.adminToken,
      onToken: (t) => {
        newToken = t;
        process.stdout.write(`Admin API token (shown once; also in ${g.dataDir}/admin-token): ${t}\n`);
      },
    });
    writeContext(p, g.dataDir, newToken ?? o.adminToken);
    process.stdout.write(
      `Strata ${VERSION} is up: API http://${p.address!.host}:${p.address!.port} (store ${p.store.driver}, transport ${p.transport.name})\n`,
    );
    await runUntilSignal(p);
  });

  serverOpts(
    program.command('manager').description('run the API and the managers; workers connect over NATS'),
  )
    .requiredOption('--nats <url>', 'NATS server URL (nats://host:4222)')
    .action(async (o, cmd: Command) => {
      applyLogFormat(cmd);
      const g = cmd.optsWithGlobals();
      let newToken: string | undefined;
      const p = await startPlatform({
        dataDir: g.dataDir,
        listen: o.listen,
        database: o.database,
        nats: o.nats,
        manager: true,
        roles: [],
        token: o.adminToken,
        onToken: (t) => {
          newToken = t;
          process.stdout.write(`Admin API token (shown once): ${t}\n`);
        },
      });
      writeContext(p, g.dataDir, newToken ?? o.adminToken);
      process.stdout.write(
        `Strata manager is up: API http://${p.address!.host}:${p.address!.port} (store ${p.store.driver}, transport nats)\n`,
      );
      await runUntilSignal(p);
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
