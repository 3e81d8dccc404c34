/**
 * The `strata` command: `up`/`manager`/`worker` start the platform; the kubectl-like verbs (apply, get,
 * describe, delete, events) are thin calls to the HTTP API.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Argument, Command, Option } from 'commander';
import '../core/kinds/index.ts';
import { allKinds, type KindDef, resolveKind } from '../core/resources/kinds.ts';
import type { Resource, StrataEvent } from '../core/resources/types.ts';
import type { Platform, PlatformOptions } from '../platform.ts';
import { VERSION } from '../version.ts';
import { ApiClient, CliError } from './client.ts';
import { describe, formatEvent, printResources, table } from './print.ts';

function kindArg(name: string): KindDef {
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

function client(cmd: Command): ApiClient {
  const o = cmd.optsWithGlobals<{ server?: string; token?: string; dataDir?: string }>();
  return new ApiClient({
    ...(o.server ? { server: o.server } : {}),
    ...(o.token ? { token: o.token } : {}),
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
  });
}

/** The platform (every layer) is loaded only by the commands that run it, so client verbs start fast. */
async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const { startPlatform: start } = await import('../platform.ts');
  return start(opts);
}

interface LabVm {
  name: string;
  mac: string;
  firmware: string;
  status: string;
}

function vmTable(vms: LabVm[]): string {
  return (
    table([['VM', 'MAC', 'FIRMWARE', 'QEMU'], ...vms.map((v) => [v.name, v.mac, v.firmware, v.status])]) +
    '\n'
  );
}

async function runUntilSignal(p: Platform): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await p.stop();
}

export function buildCli(): Command {
  const program = new Command('strata')
    .description('Strata: from bare metal to a running service mesh, one declarative ladder')
    .version(VERSION)
    .addOption(new Option('--server <url>', 'API address').env('STRATA_SERVER'))
    .addOption(new Option('--token <token>', 'API bearer token').env('STRATA_TOKEN'))
    .addOption(new Option('--data-dir <dir>', 'data directory').env('STRATA_DATA_DIR').default('.strata'))
    .showHelpAfterError();

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
      const p = await startPlatform({
        dataDir: g.dataDir,
        nats: o.nats,
        manager: false,
        roles: String(o.roles)
          .split(',')
          .map((r) => r.trim())
          .filter(Boolean),
      });
      process.stdout.write(`Strata worker is up: roles ${o.roles}\n`);
      await runUntilSignal(p);
    });

  program
    .command('apply')
    .description('create or update resources from YAML/JSON files (all or nothing)')
    .requiredOption('-f, --filename <file...>', 'manifest file(s), or - for standard input')
    .option('--dry-run', 'validate only')
    .action(async (o, cmd: Command) => {
      const files = (o.filename as string[]).map((f) => {
        try {
          return { name: f === '-' ? '<stdin>' : f, text: readFileSync(f === '-' ? 0 : f, 'utf8') };
        } catch (e) {
          throw new CliError(
            `error: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          );
        }
      });
      const out = await client(cmd).request<{ items: { kind: string; name: string; action: string }[] }>(
        'POST',
        `/api/v1/apply${o.dryRun ? '?dryRun=true' : ''}`,
        JSON.stringify({ files }),
      );
      for (const i of out.items)
        process.stdout.write(
          `${i.kind.toLowerCase()}/${i.name} ${i.action}${o.dryRun ? ' (dry run)' : ''}\n`,
        );
    });

  program
    .command('get')
    .description('list resources of a kind, or one by name')
    .argument('<kind>')
    .argument('[name]')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'wide', 'json', 'yaml', 'name'])
        .default('table'),
    )
    .option('-l, --selector <labels>', 'label selector key=value[,key=value]')
    .action(async (kind: string, name: string | undefined, o, cmd: Command) => {
      const def = kindArg(kind);
      const c = client(cmd);
      const items = name
        ? [await c.request<Resource>('GET', `/api/v1/${def.plural}/${encodeURIComponent(name)}`)]
        : (
            await c.request<{ items: Resource[] }>(
              'GET',
              `/api/v1/${def.plural}${o.selector ? `?labelSelector=${encodeURIComponent(o.selector)}` : ''}`,
            )
          ).items;
      if (!items.length && (o.output === 'table' || o.output === 'wide')) {
        process.stderr.write(`No ${def.plural} found.\n`);
        return;
      }
      process.stdout.write(printResources(def, items, o.output, Boolean(name)) + '\n');
    });

  program
    .command('describe')
    .description('show a resource in detail with its recent events')
    .argument('<kind>')
    .argument('<name>')
    .action(async (kind: string, name: string, _o, cmd: Command) => {
      const def = kindArg(kind);
      const c = client(cmd);
      const r = await c.request<Resource>('GET', `/api/v1/${def.plural}/${encodeURIComponent(name)}`);
      const ev = await c.request<{ items: StrataEvent[] }>(
        'GET',
        `/api/v1/${def.plural}/${encodeURIComponent(name)}/events`,
      );
      process.stdout.write(describe(r, ev.items) + '\n');
    });

  program
    .command('delete')
    .description('delete a resource (a node first walks back down its ladder)')
    .argument('<kind>')
    .argument('<name>')
    .action(async (kind: string, name: string, _o, cmd: Command) => {
      const def = kindArg(kind);
      const out = await client(cmd).request<{ details: { pending: boolean } }>(
        'DELETE',
        `/api/v1/${def.plural}/${encodeURIComponent(name)}`,
      );
      process.stdout.write(
        `${def.kind.toLowerCase()}/${name} ${out.details.pending ? 'deletion started' : 'deleted'}\n`,
      );
    });

  program
    .command('events')
    .description("a resource's timeline, e.g. strata events node n1 --follow")
    .argument('<kind>')
    .argument('<name>')
    .option('-f, --follow', 'keep printing new events')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (kind: string, name: string, o, cmd: Command) => {
      const def = kindArg(kind);
      const c = client(cmd);
      const print = (e: StrataEvent) =>
        process.stdout.write((o.output === 'json' ? JSON.stringify(e) : formatEvent(e)) + '\n');
      const ev = await c.request<{ items: StrataEvent[] }>(
        'GET',
        `/api/v1/${def.plural}/${encodeURIComponent(name)}/events`,
      );
      ev.items.forEach(print);
      if (!o.follow) return;
      const after = ev.items.at(-1)?.id ?? 0;
      for await (const m of c.stream(
        `/api/v1/stream?kind=${def.kind}&name=${encodeURIComponent(name)}&after=${after}`,
      )) {
        if (m.event === 'timeline') print(JSON.parse(m.data));
      }
    });

  const wo = program.command('workorder').alias('workorders').description('work orders for the human steps');
  wo.command('list', { isDefault: true })
    .description('open and done work orders')
    .action(async (_o, cmd: Command) => {
      const out = await client(cmd).request<{
        items: { node: string; action: string; state: string; instructions: string }[];
      }>('GET', '/api/v1/workorders');
      if (!out.items.length) return void process.stderr.write('No work orders.\n');
      process.stdout.write(
        table([
          ['NODE', 'ACTION', 'STATE', 'INSTRUCTIONS'],
          ...out.items.map((w) => [w.node, w.action, w.state, w.instructions]),
        ]) + '\n',
      );
    });
  wo.command('done')
    .description('confirm that the work order of a node is done')
    .argument('<node>')
    .option('--by <who>', 'who did it', process.env.USER ?? 'cli')
    .action(async (node: string, o, cmd: Command) => {
      await client(cmd).request(
        'POST',
        `/api/v1/workorders/${encodeURIComponent(node)}/done`,
        JSON.stringify({ by: o.by }),
      );
      process.stdout.write(`workorder/${node} done\n`);
    });

  program
    .command('power')
    .description('switch a node on, off or through a cycle with its hardware provider (lab, BMC)')
    .argument('<node>')
    .addArgument(new Argument('<op>', 'what to do').choices(['on', 'off', 'cycle', 'status']))
    .action(async (name: string, op: string, _o, cmd: Command) => {
      const r = await client(cmd).request<{ state: string; message?: string }>(
        'POST',
        `/api/v1/nodes/${encodeURIComponent(name)}/power`,
        JSON.stringify({ op }),
      );
      process.stdout.write(`node/${name} power ${r.state}${r.message ? ` (${r.message})` : ''}\n`);
    });

  program
    .command('ssh')
    .description(
      "open a shell (or run a command) on a node with Strata's managed key and the node's pinned host key",
    )
    .argument('<node>')
    .argument('[command...]')
    .addOption(
      new Option(
        '--database <url>',
        'store holding the managed key (default: SQLite in the data directory)',
      ).env('STRATA_DATABASE'),
    )
    .option('-l, --user <user>', 'remote user', 'root')
    .action(async (name: string, command: string[], o, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ dataDir: string }>();
      const c = client(cmd);
      const node = await c.request<Resource>('GET', `/api/v1/nodes/${encodeURIComponent(name)}`);
      const st = (node.status ?? {}) as {
        addresses?: string[];
        hostKeys?: string[];
        discovered?: { network?: string };
      };
      const spec = node.spec as { network?: string };
      if (!st.addresses?.length) throw new CliError(`error: node "${name}" has no known address yet`);
      if (!st.hostKeys?.length)
        throw new CliError(`error: node "${name}" reported no host key: refusing to trust an unknown host`);
      const netName = spec.network ?? st.discovered?.network;
      const net = netName
        ? await c.request<Resource>('GET', `/api/v1/networks/${encodeURIComponent(netName)}`)
        : undefined;
      const namespace = (net?.spec as { namespace?: string } | undefined)?.namespace;
      // The private half never crosses the API: it is read from the store on this machine.
      const { openStore } = await import('../core/store/index.ts');
      const { privateKeyOf } = await import('../sshkeys/index.ts');
      const { MANAGED_KEY } = await import('../install/manager.ts');
      const store = await openStore(o.database ?? '', g.dataDir);
      const key = await privateKeyOf({ store }, MANAGED_KEY).finally(() => store.close());
      if (!key)
        throw new CliError(
          `error: the managed key is not in this machine's store (--data-dir ${g.dataDir} / --database)`,
        );
      const dir = mkdtempSync(join(tmpdir(), 'strata-ssh-'));
      try {
        writeFileSync(join(dir, 'id'), key, { mode: 0o600 });
        writeFileSync(
          join(dir, 'known_hosts'),
          st.hostKeys.map((k) => `${st.addresses![0]} ${k}`).join('\n') + '\n',
        );
        const ssh = [
          'ssh',
          '-i',
          join(dir, 'id'),
          '-o',
          'IdentitiesOnly=yes',
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
          '-o',
          'GlobalKnownHostsFile=/dev/null',
          `${o.user}@${st.addresses[0]}`,
          ...command,
        ];
        const argv = namespace ? ['ip', 'netns', 'exec', namespace, ...ssh] : ssh;
        const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit' });
        process.exitCode = r.status ?? 255;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

  const lab = program
    .command('lab')
    .description('virtual machines on a private segment that climb the ladder (QEMU)');
  lab
    .command('up')
    .description('create the lab segment and N VMs with blank disks, registered as Nodes')
    .option('--nodes <n>', 'number of VMs', '1')
    .addOption(
      new Option('--firmware <kind>', 'VM firmware').choices(['bios', 'uefi', 'mixed']).default('bios'),
    )
    .option('--target <state>', 'target state of the lab nodes', '4')
    .action(async (o, cmd: Command) => {
      // Assets are built here, before the API call, so a first run's debootstrap (minutes) is not one long
      // HTTP request; the server then finds them up to date in the same machine-wide cache.
      process.stderr.write(
        'Preparing lab assets (the first run builds the installer and a Debian image: several minutes)...\n',
      );
      const { buildLabAssets } = await import('../lab/assets.ts');
      await buildLabAssets({ log: (l) => process.stderr.write(`  ${l}\n`) });
      const out = await client(cmd).request<{
        vms: LabVm[];
        applied: string[];
      }>(
        'POST',
        '/api/v1/lab/up',
        JSON.stringify({ nodes: Number(o.nodes), firmware: o.firmware, targetState: Number(o.target) }),
        'application/json',
        3_600_000,
      );
      for (const a of out.applied) process.stdout.write(`${a}\n`);
      process.stdout.write(vmTable(out.vms));
      process.stdout.write(
        `Watch them climb: strata get nodes; strata events node ${out.vms[0]?.name ?? 'lab-1'} --follow\n`,
      );
    });
  lab
    .command('status')
    .description('the lab VMs and their QEMU state')
    .action(async (_o, cmd: Command) => {
      const out = await client(cmd).request<{
        vms: LabVm[];
      }>('GET', '/api/v1/lab');
      if (!out.vms.length) return void process.stderr.write('No lab VMs.\n');
      process.stdout.write(vmTable(out.vms));
    });
  lab
    .command('down')
    .description('remove every lab VM, process, namespace and file (also after a crash)')
    .action(async (_o, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ dataDir: string }>();
      try {
        const out = await client(cmd).request<{ removed: string[] }>('POST', '/api/v1/lab/down', '{}');
        for (const r of out.removed) process.stdout.write(`${r} deleted\n`);
      } catch (e) {
        if (!(e instanceof CliError) || !/cannot reach/.test(e.message)) throw e;
        process.stderr.write('API not reachable: tearing the lab down locally\n');
      }
      const { labDown } = await import('../lab/network.ts');
      const { LAB_NETNS } = await import('../lab/layer.ts');
      await labDown({ name: LAB_NETNS, stateDir: `${g.dataDir}/lab`, purge: true });
      process.stdout.write('lab is down\n');
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(e.message + '\n');
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
