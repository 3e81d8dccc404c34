/**
 * The commands that run the platform: `up` (everything in one process), `manager` (API and managers,
 * workers over NATS) and `worker` (some roles, taking work from NATS).
 */
import { type Command, Option } from 'commander';
import type { Platform, PlatformOptions } from '../../platform.ts';
import { VERSION } from '../../version.ts';

/** The platform (every layer) is loaded only by the commands that run it, so client verbs start fast. */
async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const { startPlatform: start } = await import('../../platform.ts');
  return start(opts);
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
  const serverOpts = (c: Command) =>
    c
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
    program.command('up').description('start the whole platform in one process (API, managers, workers)'),
  ).action(async (o, cmd: Command) => {
    const g = cmd.optsWithGlobals();
    const p = await startPlatform({
      dataDir: g.dataDir,
      listen: o.listen,
      database: o.database,
      manager: true,
      roles: ['*'],
      token: o.adminToken,
      onToken: (t) =>
        process.stdout.write(`Admin API token (shown once; also in ${g.dataDir}/admin-token): ${t}\n`),
    });
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
      const g = cmd.optsWithGlobals();
      const p = await startPlatform({
        dataDir: g.dataDir,
        listen: o.listen,
        database: o.database,
        nats: o.nats,
        manager: true,
        roles: [],
        token: o.adminToken,
        onToken: (t) => process.stdout.write(`Admin API token (shown once): ${t}\n`),
      });
      process.stdout.write(
        `Strata manager is up: API http://${p.address!.host}:${p.address!.port} (store ${p.store.driver}, transport nats)\n`,
      );
      await runUntilSignal(p);
    });

  program
    .command('worker')
    .description('run workers for some roles, taking work from NATS')
    .requiredOption('--nats <url>', 'NATS server URL')
    .requiredOption('--roles <roles>', 'comma-separated roles, e.g. sshkeys')
    .action(async (o, cmd: Command) => {
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
