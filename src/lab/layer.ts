/**
 * The lab as a hardware provider: a `lab` worker owns a private segment (a network namespace with a
 * bridge and radvd) and QEMU VMs with blank disks, powers them through QMP when the ladder's step 0 asks
 * (`hardware.lab`), and streams each serial console onto its node's timeline. The lab manager turns
 * `strata lab up` into resources — a Network, a Profile and one Node per VM — so the VMs climb the same
 * ladder as real machines, through Strata's own DHCP, TFTP and HTTP.
 *
 * The lab's namespace is machine-wide while instances are not: a worker claims it before any work
 * (src/lab/owner.ts), refuses a lab another live instance owns, and tears down only what it made itself.
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EVENTS_SUBJECT } from '../core/events.ts';
import type { Layer, ManagerContext, WorkerContext } from '../core/layer.ts';
import { StrataError } from '../core/resources/errors.ts';
import { API_VERSION, type Resource, type StrataEvent } from '../core/resources/types.ts';
import { subjects as hardwareSubjects, type PowerReply, type PowerRequest } from '../hardware/protocol.ts';
import { unsupported } from '../hardware/provider.ts';
import { buildInstallMedia } from '../install/media/index.ts';
import { LabNetwork, labDown, listNetns } from './network.ts';
import {
  claimLab,
  forgetLab,
  LabOwnedError,
  labNetns,
  mayTearDown,
  readLabOwner,
  releaseLab,
} from './owner.ts';
import {
  type LabDownReply,
  type LabOwnerInfo,
  type LabUpRequest,
  type LabVmInfo,
  subjects,
} from './protocol.ts';
import { QemuVm } from './vm.ts';

/** Hard-links (or copies) a cached asset into the artifact store, where TFTP and HTTP serve it. */
function publishArtifact(src: string, dest: string): void {
  if (
    existsSync(dest) &&
    statSync(dest).size === statSync(src).size &&
    statSync(dest).mtimeMs >= statSync(src).mtimeMs
  )
    return;
  if (existsSync(dest)) unlinkSync(dest);
  try {
    linkSync(src, dest);
  } catch {
    copyFileSync(src, dest);
  }
}

/**
 * Builds the lab's installer and Debian image (cached machine-wide) and publishes them under
 * `<dataDir>/artifacts/lab/`, where the lab Profile (labSegment) names them.
 */
export async function publishLabArtifacts(dataDir: string, log?: (line: string) => void): Promise<void> {
  const { paths } = await buildInstallMedia(log ? { log } : {});
  const art = join(dataDir, 'artifacts', 'lab');
  mkdirSync(art, { recursive: true });
  publishArtifact(paths.kernel, join(art, 'vmlinuz'));
  publishArtifact(paths.initramfs, join(art, 'installer.cpio.gz'));
  publishArtifact(paths.osImage, join(art, 'debian-bookworm-amd64.tar.zst'));
}

export function labLayer(): Layer {
  const vms = new Map<string, QemuVm>();
  const firmwareOf = new Map<string, 'bios' | 'uefi'>();
  const hardOff = new Set<string>();
  let network: LabNetwork | undefined;
  const stateDir = (dataDir: string) => join(dataDir, 'lab');

  /** Claims the lab namespace for this instance before any work; refuses someone else's. */
  async function claim(ctx: WorkerContext, netns: string): Promise<void> {
    const ours = existsSync(join(stateDir(ctx.dataDir), netns, 'network.json'));
    if (!readLabOwner(netns) && !ours && (await listNetns()).includes(netns)) {
      throw new StrataError(
        409,
        'Conflict',
        `the network namespace ${netns} exists but no Strata instance records it as its lab: ` +
          `if it is a leftover, remove it with "ip netns del ${netns}", or name this lab otherwise (STRATA_LAB_NETNS)`,
      );
    }
    try {
      const { replaced } = claimLab(netns, ctx.dataDir);
      if (replaced && replaced.pid !== process.pid) {
        ctx.log.warn('taking over a lab left by a stopped instance', {
          namespace: netns,
          pid: replaced.pid,
          dataDir: replaced.dataDir,
        });
      }
    } catch (e) {
      if (e instanceof LabOwnedError) throw new StrataError(409, 'Conflict', e.message);
      throw e;
    }
  }

  async function up(ctx: WorkerContext, req: LabUpRequest): Promise<LabVmInfo[]> {
    const netns = labNetns();
    await claim(ctx, netns);
    try {
      await publishLabArtifacts(ctx.dataDir, (l) => ctx.log.info('lab assets', { step: l }));
      if (!network)
        network = await LabNetwork.create({
          name: netns,
          stateDir: stateDir(ctx.dataDir),
          ...(req.lossPercent ? { lossPercent: req.lossPercent } : {}),
        });
    } catch (e) {
      if (!network) releaseLab(netns); // nothing made: the namespace is free for others again
      throw e;
    }
    const out: LabVmInfo[] = [];
    for (let i = 1; i <= req.nodes; i++) {
      const name = `lab-${i}`;
      const firmware = req.firmware === 'mixed' ? (i % 2 ? 'bios' : 'uefi') : req.firmware;
      let vm = vms.get(name);
      if (!vm) {
        let batch: string[] = [];
        let scheduled = false;
        const flush = () => {
          scheduled = false;
          const lines = batch.filter((l) => l.trim());
          batch = [];
          if (!lines.length) return;
          const ev: Omit<StrataEvent, 'id' | 'time'> = {
            kind: 'Node',
            name,
            source: `lab-console@${name}`,
            step: 'console',
            type: 'Normal',
            reason: 'Console',
            message: lines.at(-1)!.slice(0, 300),
            data: { lines },
          };
          void ctx.transport.publish(EVENTS_SUBJECT, ev);
        };
        vm = await QemuVm.create({
          name,
          network,
          firmware,
          // UEFI VMs boot as real machines do (firmware PXE, TFTP of iPXE); BIOS VMs use the NIC's iPXE ROM.
          nicRom: firmware === 'bios',
          memoryMiB: req.memoryMiB ?? 1024,
          boot: 'network',
          onSerialLine: (line) => {
            batch.push(line);
            if (!scheduled) {
              scheduled = true;
              setTimeout(flush, 1000).unref();
            }
          },
        });
        vms.set(name, vm);
        firmwareOf.set(name, firmware);
      }
      out.push({ name, mac: vm.mac, firmware, status: await vm.status() });
    }
    return out;
  }

  /** Tears down this instance's lab: VMs, namespace, state, artifacts and the owner record. */
  async function teardown(ctx: WorkerContext, netns: string): Promise<void> {
    for (const vm of vms.values()) await vm.destroy().catch(() => {});
    vms.clear();
    firmwareOf.clear();
    network = undefined;
    await labDown({ name: netns, stateDir: stateDir(ctx.dataDir), purge: true });
    rmSync(join(ctx.dataDir, 'artifacts', 'lab'), { recursive: true, force: true });
    // ours: made by this process, or by this data dir's instance before a crash
    const o = readLabOwner(netns);
    if (o && (o.pid === process.pid || o.dataDir === resolve(ctx.dataDir))) forgetLab(netns);
  }

  /** `strata lab down`: only a lab this instance made (now or before a crash of its own). */
  async function down(ctx: WorkerContext): Promise<LabDownReply> {
    const netns = labNetns();
    const may = network || vms.size ? { ok: true as const } : mayTearDown(netns, ctx.dataDir);
    if (!may.ok) {
      rmSync(join(ctx.dataDir, 'artifacts', 'lab'), { recursive: true, force: true });
      if (!(await listNetns()).includes(netns)) return { ok: true }; // no lab at all: nothing to leave alone
      return { ok: false, message: `${may.reason}: left alone` };
    }
    await teardown(ctx, netns);
    return { ok: true };
  }

  function owner(ctx: WorkerContext): LabOwnerInfo | undefined {
    const netns = labNetns();
    const o = readLabOwner(netns);
    if (!o) return undefined;
    return {
      namespace: netns,
      pid: o.pid,
      dataDir: o.dataDir,
      alive: o.alive,
      self: o.pid === process.pid || o.dataDir === resolve(ctx.dataDir),
    };
  }

  return {
    name: 'lab',
    roles: ['lab'],
    providers: { hardware: ['lab'] },
    async worker(ctx) {
      const subs = [
        await ctx.transport.serve<LabUpRequest, LabVmInfo[]>(subjects.up, (r) => up(ctx, r)),
        await ctx.transport.serve<Record<string, never>, LabDownReply>(subjects.down, () => down(ctx)),
        await ctx.transport.serve<Record<string, never>, { vms: LabVmInfo[]; owner?: LabOwnerInfo }>(
          subjects.status,
          async () => {
            const o = owner(ctx);
            const list = await Promise.all(
              [...vms.values()].map(async (v) => ({
                name: v.name,
                mac: v.mac,
                firmware: firmwareOf.get(v.name) ?? 'bios',
                status: await v.status().catch(() => 'gone'),
              })),
            );
            return o ? { vms: list, owner: o } : { vms: list };
          },
        ),
        await ctx.transport.serve<PowerRequest, PowerReply>(hardwareSubjects.power('lab'), async (r) => {
          if (!['on', 'off', 'cycle', 'reset', 'status'].includes(r.op)) return unsupported('lab', r.op);
          const vm = vms.get(r.node.name);
          if (!vm) return { state: 'unknown', message: `no lab VM named ${r.node.name} (is the lab up?)` };
          // A VM that ignores the ACPI button is stopped; powering it on again resets it first, as a real
          // machine would cold-boot, instead of resuming where it was cut off.
          if (r.op === 'on') {
            if (hardOff.delete(vm.name)) await vm.reset();
            await vm.powerOn();
          } else if (r.op === 'off') {
            await vm.powerOff(5_000);
            if ((await vm.status()) === 'paused') hardOff.add(vm.name);
          } else if (r.op === 'cycle' || r.op === 'reset') await vm.reset();
          const s = await vm.status().catch(() => 'gone');
          return { state: s === 'running' ? 'on' : 'off', message: `QEMU ${s}` };
        }),
      ];
      return {
        async stop() {
          for (const s of subs) await s.unsubscribe();
          // A process tears down only what it made: an instance that never ran `lab up` leaves every lab alone.
          if (network || vms.size) await teardown(ctx, labNetns());
        },
      };
    },
    async manager(ctx) {
      routes(ctx);
      return undefined;
    },
  };
}

/**
 * The lab segment's Network and Profile: the bridge `br0` of namespace `namespace` at 10.213.0.1/24
 * (src/lab/network.ts) with Strata's DHCP, DNS, TFTP and HTTP, and the Debian install of the lab's cached
 * installer and image (published under `artifacts/lab/`) for the nodes labelled `labels`. `strata lab up`
 * applies them for its VMs; the BMC emulator tests apply them for machines of their own.
 */
export function labSegment(o: {
  namespace: string;
  network: string;
  profile: string;
  labels: Record<string, string>;
  zone: string;
}): Resource[] {
  const meta = (name: string) => ({ name, labels: o.labels });
  return [
    {
      apiVersion: API_VERSION,
      kind: 'Network',
      metadata: meta(o.network),
      spec: {
        interface: 'br0',
        namespace: o.namespace,
        subnet: '10.213.0.0/24',
        serverAddress: '10.213.0.1',
        gateway: '10.213.0.1',
        pool: { start: '10.213.0.100', end: '10.213.0.199' },
        dns: { zone: o.zone, forwarders: [], enabled: true, port: 53 },
        dhcp: { mode: 'full', leaseTime: '1h', port: 67, proxyPort: 4011 },
        tftp: { enabled: true, port: 69 },
        boot: { unknownNodes: 'discover', httpPort: 7421, uefiBinary: 'ipxe.efi' },
      },
    },
    {
      apiVersion: API_VERSION,
      kind: 'Profile',
      metadata: meta(o.profile),
      spec: {
        selector: { matchLabels: o.labels },
        priority: 100,
        os: { family: 'debian', release: 'bookworm' },
        kernel: 'lab/vmlinuz',
        initrd: ['lab/installer.cpio.gz'],
        cmdline: 'console=ttyS0,115200n8 quiet',
        installer: 'strata',
        image: 'lab/debian-bookworm-amd64.tar.zst',
        // The pre-reboot script runs in the installer, with the installed system mounted at $TARGET.
        preRebootScript:
          'echo "pre-reboot: $(date -u) in the installer" > "$TARGET/root/strata-pre-reboot.txt"\n',
        postRebootScript: 'echo "post-reboot: $(date -u)" > /root/strata-post-reboot.txt\n',
        sshKeys: [],
        vars: {},
      },
    },
  ];
}

function labResources(vms: LabVmInfo[], targetState: number): Resource[] {
  const labels = { 'strata.dev/lab': 'true' };
  return [
    ...labSegment({
      namespace: labNetns(),
      network: 'lab',
      profile: 'lab-debian',
      labels,
      zone: 'lab.strata',
    }),
    ...vms.map((v) => ({
      apiVersion: API_VERSION,
      kind: 'Node',
      metadata: { name: v.name, labels: { 'strata.dev/lab': 'true', firmware: v.firmware } },
      spec: {
        macAddresses: [v.mac],
        network: 'lab',
        targetState,
        providers: { hardware: 'lab', boot: 'network' },
        reprovision: false,
      },
    })),
  ];
}

function routes(ctx: ManagerContext): void {
  ctx.router.add('POST', '/api/v1/lab/up', async ({ json }) => {
    const body = await json<Partial<LabUpRequest> & { targetState?: number }>();
    const nodes = body.nodes ?? 1;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) {
      throw new StrataError(
        422,
        'Invalid',
        `nodes: expected 1..16 lab VMs, got ${JSON.stringify(body.nodes)}`,
      );
    }
    const firmware = body.firmware ?? 'bios';
    if (!['bios', 'uefi', 'mixed'].includes(firmware)) {
      throw new StrataError(
        422,
        'Invalid',
        `firmware: expected bios, uefi or mixed, got ${JSON.stringify(firmware)}`,
      );
    }
    const loss = body.lossPercent ?? 0;
    if (!Number.isInteger(loss) || loss < 0 || loss > 50) {
      throw new StrataError(
        422,
        'Invalid',
        `lossPercent: expected a whole percentage from 0 to 50, got ${JSON.stringify(body.lossPercent)}`,
      );
    }
    const vms = await ctx.transport.request<LabUpRequest, LabVmInfo[]>(
      subjects.up,
      {
        nodes,
        firmware,
        ...(body.memoryMiB ? { memoryMiB: body.memoryMiB } : {}),
        ...(loss ? { lossPercent: loss } : {}),
      },
      { timeout: 3_600_000 },
    );
    const applied = await ctx.resources.apply(labResources(vms, body.targetState ?? 4));
    return {
      kind: 'LabStatus',
      vms,
      applied: applied.map((a) => `${a.resource.kind.toLowerCase()}/${a.resource.metadata.name} ${a.action}`),
    };
  });
  ctx.router.add('GET', '/api/v1/lab', async () => ({
    kind: 'LabStatus',
    ...(await ctx.transport.request<Record<string, never>, { vms: LabVmInfo[]; owner?: LabOwnerInfo }>(
      subjects.status,
      {},
      { timeout: 10_000 },
    )),
  }));
  ctx.router.add('POST', '/api/v1/lab/down', async () => {
    const reply = await ctx.transport.request<Record<string, never>, LabDownReply>(
      subjects.down,
      {},
      { timeout: 120_000 },
    );
    const removed: string[] = [];
    for (const kind of ['Node', 'Profile', 'Network']) {
      for (const r of await ctx.resources.list(kind, { 'strata.dev/lab': 'true' })) {
        // The VMs are gone: nothing left to undo, so the lab's nodes go without walking down.
        if (r.metadata.finalizers?.length)
          await ctx.resources.update({ ...r, metadata: { ...r.metadata, finalizers: [] } });
        await ctx.resources.delete(kind, r.metadata.name);
        removed.push(`${kind.toLowerCase()}/${r.metadata.name}`);
      }
    }
    return {
      kind: 'Status',
      status: 'Success',
      removed,
      ...(reply.message ? { message: reply.message } : {}),
    };
  });
  // The routes' shapes, for /openapi.json (the handlers check the values themselves).
  const labStatus = {
    type: 'object',
    properties: {
      kind: { const: 'LabStatus' },
      vms: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            mac: { type: 'string' },
            firmware: { enum: ['bios', 'uefi'] },
            status: { type: 'string' },
          },
        },
      },
      applied: { type: 'array', items: { type: 'string' } },
    },
  };
  ctx.router.describe('POST', '/api/v1/lab/up', {
    operationId: 'labUp',
    summary: 'Start lab VMs and register their Network, Profile and Nodes',
    tags: ['lab'],
    body: {
      schema: {
        type: 'object',
        properties: {
          nodes: { type: 'integer', minimum: 1, maximum: 16 },
          firmware: { enum: ['bios', 'uefi', 'mixed'] },
          memoryMiB: { type: 'integer', minimum: 1 },
          lossPercent: { type: 'integer', minimum: 0, maximum: 50 },
          targetState: { type: 'integer', minimum: 0 },
        },
      },
    },
    response: { schema: labStatus },
    errors: [422],
  });
  ctx.router.describe('GET', '/api/v1/lab', {
    operationId: 'labStatus',
    summary: 'The lab VMs and their state',
    tags: ['lab'],
    response: { schema: labStatus },
  });
  ctx.router.describe('POST', '/api/v1/lab/down', {
    operationId: 'labDown',
    summary: "Stop the lab's VMs and remove its resources",
    tags: ['lab'],
    response: {
      schema: {
        type: 'object',
        properties: {
          kind: { const: 'Status' },
          status: { const: 'Success' },
          removed: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  });
}
