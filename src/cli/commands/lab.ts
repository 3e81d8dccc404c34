/**
 * `strata lab up|status|down`: QEMU VMs on a private segment that climb the ladder like real machines.
 *
 * `lab up` checks its arguments and that the lab is free before any work, then builds the assets, creates
 * the VMs and follows them up the ladder, with live progress for each of these (src/cli/progress.ts) so a
 * first run's minutes of debootstrap never look like a hang.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { client } from '../common.ts';
import { ApiUnreachableError, CliError } from '../errors.ts';
import { followClimb } from '../lab-follow.ts';
import { table } from '../print.ts';
import { ProgressView } from '../progress.ts';

interface LabVm {
  name: string;
  mac: string;
  firmware: string;
  status: string;
}

interface LabOwner {
  namespace: string;
  pid: number;
  dataDir: string;
  alive: boolean;
  self: boolean;
}

/** The API's limit (src/lab/layer.ts): more VMs than this do not fit a small machine's memory anyway. */
const MAX_LAB_NODES = 16;

function vmTable(vms: LabVm[]): string {
  return (
    table([['VM', 'MAC', 'FIRMWARE', 'QEMU'], ...vms.map((v) => [v.name, v.mac, v.firmware, v.status])]) +
    '\n'
  );
}

/** A whole number in [min, max], refused by commander (naming the flag) before the action runs. */
function wholeNumber(what: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || n < min || n > max) {
      throw new InvalidArgumentError(`expected ${what} from ${min} to ${max}.`);
    }
    return n;
  };
}

function bool(v: string): boolean {
  if (/^(true|yes|1)$/i.test(v)) return true;
  if (/^(false|no|0)$/i.test(v)) return false;
  throw new InvalidArgumentError('expected true or false.');
}

export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('virtual machines on a private segment that climb the ladder (QEMU)');
  lab
    .command('up')
    .description(
      'create the lab segment and N VMs with blank disks, registered as Nodes, and follow them to the target state',
    )
    .addOption(
      new Option('--nodes <n>', `number of VMs (1-${MAX_LAB_NODES})`)
        .argParser(wholeNumber('a whole number of VMs', 1, MAX_LAB_NODES))
        .default(1),
    )
    .addOption(
      new Option('--firmware <kind>', 'VM firmware').choices(['bios', 'uefi', 'mixed']).default('bios'),
    )
    .addOption(
      new Option('--target <state>', 'target state of the lab nodes (1-9)')
        .argParser(wholeNumber('a ladder state', 1, 9))
        .default(4),
    )
    .addOption(
      new Option('--wait [bool]', 'follow the nodes until they reach the target (Ctrl-C stops following)')
        .argParser(bool)
        .default(true),
    )
    .addOption(new Option('--no-wait', 'return as soon as the VMs exist'))
    .addOption(
      new Option('--loss <percent>', 'drop this percentage of frames on the lab bridge, each way (0-50)')
        .argParser(wholeNumber('a percentage', 0, 50))
        .default(0),
    )
    .addOption(
      new Option('--memory <MiB>', 'memory of each VM in MiB (a Kubernetes node wants 2048)')
        .argParser(wholeNumber('a size in MiB', 256, 16384))
        .default(1024),
    )
    .action(
      async (
        o: {
          nodes: number;
          firmware: string;
          target: number;
          wait: boolean;
          loss: number;
          memory: number;
        },
        cmd: Command,
      ) => {
        const api = client(cmd);
        // Before any work: the server answers, and the lab namespace is not another instance's.
        const current = await api.request<{ owner?: LabOwner }>('GET', '/api/v1/lab');
        const owner = current.owner;
        if (owner && !owner.self && owner.alive) {
          throw new CliError(
            `error: the lab namespace ${owner.namespace} belongs to another Strata instance (pid ${owner.pid}, data dir ${owner.dataDir}): ` +
              `run "strata --data-dir ${owner.dataDir} lab down" there first`,
          );
        }
        const view = new ProgressView();
        try {
          // Assets are built here, before the API call, so a first run's debootstrap (minutes) is not one long
          // HTTP request; the server then finds them up to date in the same machine-wide cache.
          view.log(
            'Preparing lab assets (the first run builds the installer and a Debian image: several minutes)',
          );
          const { buildInstallMedia } = await import('../../install/media/index.ts');
          await buildInstallMedia({
            log: (l) => view.log(`  ${l}`),
            progress: (p) => {
              if (p.done) view.end(p.stage, p.doing);
              else view.update(p.stage, { percent: p.percent, phase: p.phase, doing: p.doing });
            },
          });
          view.update('vms', { doing: `creating the lab segment and ${o.nodes} VM(s)`, phase: 'create' });
          const out = await api.request<{ vms: LabVm[]; applied: string[] }>(
            'POST',
            '/api/v1/lab/up',
            JSON.stringify({
              nodes: o.nodes,
              firmware: o.firmware,
              targetState: o.target,
              memoryMiB: o.memory,
              ...(o.loss ? { lossPercent: o.loss } : {}),
            }),
            'application/json',
            3_600_000,
          );
          view.end('vms', `${out.vms.length} VM(s) created, powered off until the ladder turns them on`);
          view.close();
          for (const a of out.applied) process.stdout.write(`${a}\n`);
          process.stdout.write(vmTable(out.vms));
          const first = out.vms[0]?.name ?? 'lab-1';
          if (!o.wait) {
            process.stdout.write(
              `Watch them climb: strata get nodes; strata events node ${first} --follow\n`,
            );
            return;
          }
          const follow = new ProgressView();
          follow.log(
            `Following the nodes to state ${o.target} (Ctrl-C stops following; the lab keeps climbing)`,
          );
          const done = await followClimb(
            api,
            out.vms.map((v) => v.name),
            o.target,
            follow,
          );
          follow.close();
          if (done) process.stdout.write(`All ${out.vms.length} lab node(s) reached state ${o.target}.\n`);
          else {
            process.stderr.write(
              `Stopped following; the lab keeps climbing: strata get nodes; strata events node ${first} --follow\n`,
            );
            process.exitCode = 130;
          }
        } finally {
          view.close();
        }
      },
    );
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
    .description("remove this instance's lab: every VM, process, namespace and file (also after a crash)")
    .action(async (_o, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ dataDir: string }>();
      try {
        const out = await client(cmd).request<{ removed: string[]; message?: string }>(
          'POST',
          '/api/v1/lab/down',
          '{}',
        );
        for (const r of out.removed) process.stdout.write(`${r} deleted\n`);
        if (out.message) process.stderr.write(`${out.message}\n`);
        else process.stdout.write('lab is down\n');
        return;
      } catch (e) {
        if (!(e instanceof ApiUnreachableError)) throw e;
        process.stderr.write('API not reachable: tearing the lab down locally\n');
      }
      // Only a lab of this data dir; another instance's lab (or a namespace nobody claims) is left alone.
      const { labDown, listNetns } = await import('../../lab/network.ts');
      const { forgetLab, labNetns, mayTearDown } = await import('../../lab/owner.ts');
      const netns = labNetns();
      const may = mayTearDown(netns, g.dataDir);
      if (!may.ok) {
        if ((await listNetns()).includes(netns)) throw new CliError(`error: ${may.reason}: left alone`);
        process.stdout.write('lab is down\n');
        return;
      }
      await labDown({ name: netns, stateDir: `${g.dataDir}/lab`, purge: true });
      forgetLab(netns);
      process.stdout.write('lab is down\n');
    });
}
