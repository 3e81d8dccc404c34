/**
 * `strata lab up|status|down`: QEMU VMs on a private segment that climb the ladder like real machines.
 */
import { type Command, Option } from 'commander';
import { CliError } from '../client.ts';
import { client } from '../common.ts';
import { table } from '../print.ts';

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

export function registerLabCommands(program: Command): void {
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
      const { buildLabAssets } = await import('../../lab/assets.ts');
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
      const { labDown } = await import('../../lab/network.ts');
      const { LAB_NETNS } = await import('../../lab/layer.ts');
      await labDown({ name: LAB_NETNS, stateDir: `${g.dataDir}/lab`, purge: true });
      process.stdout.write('lab is down\n');
    });
}
