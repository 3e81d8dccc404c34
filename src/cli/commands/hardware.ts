/**
 * Step 0 by hand: the work orders of the human provider, power through a node's hardware provider, and
 * BMCs: their credentials (write-only: the password is read from stdin or a file, never an argument that
 * `ps` or the shell history would keep) and Redfish discovery, which proposes a Node manifest.
 */
import { readFileSync } from 'node:fs';
import { Argument, type Command } from 'commander';
import { stringify } from 'yaml';
import { API_VERSION } from '../../core/resources/types.ts';
import { HARDWARE_OPS } from '../../hardware/protocol.ts';
import type { BmcInventory } from '../../hardware/status.ts';
import { client } from '../common.ts';
import { table } from '../print.ts';

export function registerHardwareCommands(program: Command): void {
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
    .description(
      'switch a node on, off (graceful; off-force cuts power), cycle or reset it, set its next boot to the network once (pxe-once), boot it once from a virtual CD (media-boot --image URL), or read its inventory, with its hardware provider (lab, redfish, ipmi)',
    )
    .argument('<node>')
    .addArgument(new Argument('<op>', 'what to do').choices([...HARDWARE_OPS]))
    .option('--image <url>', 'media-boot: URL of the image the BMC inserts as virtual CD')
    .action(async (name: string, op: string, o: { image?: string }, cmd: Command) => {
      const r = await client(cmd).request<{ state: string; message?: string; inventory?: BmcInventory }>(
        'POST',
        `/api/v1/nodes/${encodeURIComponent(name)}/power`,
        JSON.stringify({ op, ...(o.image ? { imageUrl: o.image } : {}) }),
      );
      if (r.inventory) return void process.stdout.write(stringify(r.inventory));
      process.stdout.write(`node/${name} power ${r.state}${r.message ? ` (${r.message})` : ''}\n`);
    });

  const bmc = program.command('bmc').description('BMC credentials and Redfish discovery');
  bmc
    .command('secret')
    .description('store (or replace) the credentials of a BMC, sealed; the password is read from stdin')
    .argument('<name>', 'secret name, referenced by spec.bmc.credentialsSecret')
    .requiredOption('--username <user>', 'BMC user name')
    .option('--password-file <file>', 'read the password from this file instead of stdin')
    .action(async (name: string, o: { username: string; passwordFile?: string }, cmd: Command) => {
      const password = readFileSync(o.passwordFile ?? 0, 'utf8').replace(/\r?\n$/, '');
      const r = await client(cmd).request<{ name: string; username: string }>(
        'PUT',
        `/api/v1/bmc/secrets/${encodeURIComponent(name)}`,
        JSON.stringify({ username: o.username, password }),
      );
      process.stdout.write(`bmcsecret/${r.name} stored (user ${r.username})\n`);
    });
  bmc
    .command('discover')
    .description("read a Redfish BMC's service root and systems and print a proposed Node manifest")
    .argument('<address>', 'host, host:port or https://host:port')
    .requiredOption('--secret <name>', 'BMC secret with the credentials (strata bmc secret)')
    .option('--fingerprint <sha256>', "pin the BMC certificate's SHA-256 fingerprint")
    .option('--ca-file <pem>', 'CA certificate the BMC certificate chains to')
    .option('--insecure-skip-verify', 'INSECURE: accept any certificate')
    .action(async (address: string, o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const tls = {
        ...(o.fingerprint ? { fingerprint: o.fingerprint } : {}),
        ...(o.caFile ? { caCert: readFileSync(String(o.caFile), 'utf8') } : {}),
        ...(o.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
      };
      const r = await client(cmd).request<{ systems: { id: string; inventory: BmcInventory }[] }>(
        'POST',
        '/api/v1/bmc/discover',
        JSON.stringify({ address, credentialsSecret: o.secret, ...tls }),
      );
      if (o.insecureSkipVerify) process.stderr.write('WARNING: TLS verification is off for this BMC\n');
      process.stdout.write(
        r.systems
          .map((s) => stringify(proposedNode(address, String(o.secret), s, tls, r.systems.length > 1)))
          .join('---\n'),
      );
    });
}

/** A Node manifest for one Redfish system, its MACs from the BMC. */
export function proposedNode(
  address: string,
  secret: string,
  sys: { id: string; inventory: BmcInventory },
  tls: Record<string, unknown>,
  several: boolean,
): Record<string, unknown> {
  const host = address.replace(/^https:\/\//, '').replace(/[:/].*$/, '');
  const base =
    host
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'node';
  const name = several ? `${base}-${sys.id.toLowerCase().replace(/[^a-z0-9-]+/g, '-')}` : base;
  return {
    apiVersion: API_VERSION,
    kind: 'Node',
    metadata: { name },
    spec: {
      macAddresses: (sys.inventory.nics ?? []).map((n) => n.mac),
      ...(sys.inventory.uuid ? { uuid: sys.inventory.uuid } : {}),
      ...(sys.inventory.serial ? { serial: sys.inventory.serial } : {}),
      targetState: 4,
      providers: { hardware: 'redfish' },
      bmc: { protocol: 'redfish', address, credentialsSecret: secret, systemId: sys.id, ...tls },
    },
  };
}
