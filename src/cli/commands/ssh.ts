/**
 * `strata ssh`: a shell on a node with Strata's managed key and the node's pinned host key, inside the
 * node's segment namespace.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import type { Resource } from '../../core/resources/types.ts';
import { CliError } from '../client.ts';
import { client } from '../common.ts';

export function registerSshCommand(program: Command): void {
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
      const { openStore } = await import('../../core/store/index.ts');
      const { privateKeyOf } = await import('../../sshkeys/index.ts');
      const { MANAGED_KEY } = await import('../../install/manager.ts');
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
}
