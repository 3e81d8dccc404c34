/**
 * Lab: seconds from power-on to state 4 (Debian installed, booted from its disk, SSH answering) for one
 * QEMU VM and for several at once, through `strata up` + `strata lab up` and through a hand-made
 * dnsmasq (DHCP, TFTP with the iPXE user-class chain) plus nginx serving the same kernel, installer
 * initramfs and Debian image. Both sides boot the same kind of VM (src/lab/vm.ts: BIOS with the NIC's
 * iPXE ROM, as `strata lab up` makes them; same memory, vCPUs and blank 8 GiB disk) on a lab segment
 * (src/lab/network.ts: bridge 10.213.0.1/24 and radvd) in a namespace of this run's own, one side after
 * the other.
 *
 *   node bench/lab.ts [--vms 1,3] [--memory-mib 1024] [--timeout-min 30] [--write]
 *   node bench/lab.ts --vms 1 --sides peer   # one side only, to debug it (no --write)
 *   node bench/lab.ts --vms 3 --sides strata,peer,strata-nginx   # also Strata with its artifacts in nginx
 *   node bench/lab.ts --smoke     # no VM: both sides serve the same iPXE, kernel and initramfs bytes
 *
 * Each VM count writes its own section (`lab-1`, `lab-3`), so they can be measured in separate runs.
 *
 * The peer runs the same installer (src/install), which only needs an HTTP server that answers its
 * protocol (src/install/PROTOCOL.md): nginx serves one static config (image URL, the bench's SSH key), the
 * pre- and post-reboot scripts, and answers the installer's POSTs (events, host keys, the installed
 * system's report) with 204, reading nothing. Its one static iPXE script for the BIOS class tries the
 * local disk first (`sanboot --drive 0x80`, which fails on a blank disk) and installs otherwise: what a
 * user configures by hand so that the reboot after the install boots the disk (Strata's PXE-once decides
 * this per machine instead). Its clock: power-on is the QMP `cont`; state 3 is the first GET of the iPXE
 * script (nginx's log, MAC by dnsmasq's lease); state 4 is the first SSH login with the bench's key that
 * runs Strata's own state-4 check command (`systemctl is-system-running --wait`), tried every second once
 * the installed system's report reached nginx, as Strata tries it once the report reaches Strata.
 * Strata's clock is the Node's timeline: StepCompleted of hardware.power, boot.ipxe and install.os.
 *
 * The sides run minutes apart on a shared machine, so the load is sampled every 5 s during each and its
 * mean printed beside each side's state-4 time: compare them before reading the ratio. So is the CPU time
 * each side's servers and VMs spent (/proc, every 5 s): what Strata's own processes took from the VMs.
 * BIOS only: UEFI has no iPXE way to boot a local disk, so a static UEFI setup would need a GRUB EFI image
 * that finds the installed disk (what Strata builds in src/boot/local-boot.ts).
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { buildInstallMedia } from '../src/install/media/index.ts';
import { mediaPaths } from '../src/install/media/paths.ts';
import { renderInstallConfig } from '../src/install/protocol.ts';
import { labSegment } from '../src/lab/layer.ts';
import { LabNetwork, labDown } from '../src/lab/network.ts';
import { forgetLab, readLabOwner } from '../src/lab/owner.ts';
import { QemuVm } from '../src/lab/vm.ts';
import { currentNetns } from '../test/helpers/netns.ts';
import { type StrataServer, startStrata } from '../test/helpers/strata.ts';
import {
  benchArgs,
  type Cleanup,
  fmt,
  loadAverage,
  median,
  ProcessCpu,
  publish,
  type Row,
  ratio,
  Samples,
  sleep,
  underLoad,
  withScratch,
} from './lib.ts';
import { listening, nginxConf } from './peers.ts';

const { opts, flags, write, argv } = benchArgs(
  'node bench/lab.ts [--vms 1,3] [--memory-mib 1024] [--timeout-min 30] [--sides strata,peer,strata-nginx] [--smoke] [--write]',
  { vms: '1,3', 'memory-mib': '1024', 'timeout-min': '30', sides: 'strata,peer' },
  ['smoke'],
);

const SERVER = '10.213.0.1';
const PEER_PORT = 8080;
const PEER_URL = `http://${SERVER}:${PEER_PORT}`;
const IPXE_DIR = '/usr/lib/ipxe';
/** Strata's state-4 check runs this over SSH (src/install/manager.ts); the peer's clock runs the same. */
const STATE4_CHECK = 'systemctl is-system-running --wait >/dev/null 2>&1; uname -r; cat /etc/debian_version';
/** The lab Profile's scripts (src/lab/layer.ts labSegment), so both installers do the same work. */
const LAB_PROFILE = labSegment({
  namespace: '-',
  network: 'lab',
  profile: 'lab',
  labels: {},
  zone: 'lab',
})[1]!.spec as { cmdline: string; preRebootScript: string; postRebootScript: string };

/** The files both sides serve: the lab's kernel, installer initramfs and Debian image. */
interface Media {
  kernel: string;
  initramfs: string;
  osImage: string;
}

/** One VM's milestones, in ms since the epoch (undefined: not reached). */
interface Times {
  power?: number;
  state3?: number;
  config?: number;
  installed?: number;
  state4?: number;
}

const hyphenMac = (mac: string) => mac.replace(/:/g, '-');

/** The peer's one static iPXE script for BIOS machines: the local disk if it boots, else the installer. */
function peerScript(cmdline: string): string {
  return `#!ipxe
echo hand-made: local disk first, the installer if it has no boot sector
sanboot --no-describe --drive 0x80 || goto install
:install
imgfree
kernel ${PEER_URL}/vmlinuz initrd=installer.cpio.gz ${cmdline} strata.url=${PEER_URL}/ strata.node=peer-\${mac:hexhyp} strata.token=static || goto install
initrd --name installer.cpio.gz ${PEER_URL}/installer.cpio.gz || goto install
boot || goto install
`;
}

/**
 * The peer's document root and servers' configuration under `dir`: the media linked in, iPXE binaries
 * for TFTP, the script, the installer's config and scripts; nginx logs each request with its time in ms.
 */
function peerFiles(dir: string, media: Media, sshPublicKey: string) {
  const root = join(dir, 'root');
  mkdirSync(join(root, 'boot'), { recursive: true });
  mkdirSync(join(root, 'install'), { recursive: true });
  symlinkSync(media.kernel, join(root, 'vmlinuz'));
  symlinkSync(media.initramfs, join(root, 'installer.cpio.gz'));
  symlinkSync(media.osImage, join(root, 'debian-bookworm-amd64.tar.zst'));
  const tftp = join(dir, 'tftp');
  mkdirSync(tftp, { recursive: true });
  for (const f of ['undionly.kpxe', 'ipxe.efi']) copyFileSync(join(IPXE_DIR, f), join(tftp, f));
  writeFileSync(join(root, 'boot', 'bios.ipxe'), peerScript(LAB_PROFILE.cmdline));
  writeFileSync(
    join(root, 'install', 'config'),
    renderInstallConfig({
      imageUrl: '/debian-bookworm-amd64.tar.zst',
      sshAuthorizedKeys: [sshPublicKey],
      installedToken: 'static',
    }),
  );
  writeFileSync(join(root, 'install', 'pre-reboot'), LAB_PROFILE.preRebootScript);
  writeFileSync(join(root, 'install', 'post-reboot'), LAB_PROFILE.postRebootScript);
  const nginxDir = join(dir, 'nginx');
  mkdirSync(nginxDir, { recursive: true });
  const log = join(nginxDir, 'access.log');
  writeFileSync(
    join(nginxDir, 'nginx.conf'),
    nginxConf(
      nginxDir,
      root,
      PEER_PORT,
      `access_log ${log} lab;
    location ~ ^/install/[^/]+/config$ { default_type text/plain; try_files /install/config =404; }
    location ~ ^/install/[^/]+/scripts/(pre-reboot|post-reboot)$ { default_type text/plain; try_files /install/$1 =404; }
    location ~ ^/install/[^/]+/(events|hostkey|installed)$ { return 204; }`,
      "log_format lab '$msec $remote_addr $request_method $request_uri $status';",
    ),
  );
  const leases = join(dir, 'dnsmasq.leases');
  const dnsmasq = [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--interface=br0',
    '--bind-interfaces',
    '--user=root',
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    `--dhcp-leasefile=${leases}`,
    '--dhcp-range=10.213.0.100,10.213.0.199,255.255.255.0,1h',
    `--dhcp-option=option:router,${SERVER}`,
    '--dhcp-authoritative',
    // Strata offers without pinging the address first; so does the peer (as in bench/storm.ts).
    '--no-ping',
    `--log-facility=${join(dir, 'dnsmasq.log')}`,
    // The chain: PXE firmware gets iPXE over TFTP, iPXE (user class "iPXE") gets the script over HTTP.
    '--dhcp-userclass=set:ipxe,iPXE',
    '--dhcp-match=set:efi64,option:client-arch,7',
    '--dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe,,10.213.0.1',
    '--dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi,,10.213.0.1',
    `--dhcp-boot=tag:ipxe,${PEER_URL}/boot/bios.ipxe`,
    '--enable-tftp',
    `--tftp-root=${tftp}`,
  ];
  return { root, log, leases, dnsmasq, nginx: ['-c', join(nginxDir, 'nginx.conf'), '-e', 'stderr'] };
}

/** Starts the peer's dnsmasq and nginx in `ns` through `spawn` and waits until they listen. */
async function startPeer(
  ns: string,
  files: ReturnType<typeof peerFiles>,
  spawn: (id: string, cmd: string, args: string[]) => void,
) {
  spawn('nginx', 'nginx', files.nginx);
  spawn('dnsmasq', 'dnsmasq', files.dnsmasq);
  for (const [proto, port, what] of [
    ['tcp', PEER_PORT, 'nginx'],
    ['udp', 67, 'dnsmasq (DHCP)'],
    ['udp', 69, 'dnsmasq (TFTP)'],
  ] as const)
    await listening(ns, proto, port, what, () => '');
}

function sshKey(dir: string): { path: string; pub: string } {
  const path = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'strata-bench-lab', '-f', path]);
  return { path, pub: readFileSync(`${path}.pub`, 'utf8').trim() };
}

/** `cmd args` inside `ns`, resolving with its exit code and output (never rejecting). */
function execIn(ns: string, cmd: string, args: string[], timeoutMs: number) {
  return new Promise<{ code: number; stdout: string }>((res) => {
    execFile('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: timeoutMs }, (err, stdout) =>
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout) }),
    );
  });
}

/**
 * Kills every process in lab namespace `name` (its VMs, dnsmasq, nginx, radvd: nothing else lives there)
 * and deletes it; synchronous, so it also runs at exit after a signal (bench/lib.ts Cleanup).
 */
function removeNetns(name: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', stdio: 'pipe' });
    for (const pid of pids.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone already */
      }
    }
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    /* no such namespace: nothing to do */
  }
}

// ------------------------------------------------------------------------------------------ Strata side

interface EventJson {
  time: string;
  reason: string;
  step?: string;
}

/** `strata up` + `strata lab up --nodes n` (BIOS) in a lab namespace of this run's own; each VM's times. */
async function strataSide(
  cleanup: Cleanup,
  n: number,
  memoryMiB: number,
  timeoutMs: number,
  artifactServer: 'node' | 'nginx',
) {
  const netns = `stbl-${process.pid % 100000}`;
  const strata = await startStrata(cleanup, {
    env: {
      STRATA_HOST_NETNS: currentNetns(),
      STRATA_LAB_NETNS: netns,
      STRATA_LOG_LEVEL: 'warn',
      STRATA_BOOT_ARTIFACT_SERVER: artifactServer,
    },
    readyTimeoutMs: 60_000,
  });
  cleanup.after(() => {
    // If `lab down` did not run (a failure, Ctrl-C): only this run's namespace, VMs and owner record.
    removeNetns(netns);
    if (readLabOwner(netns)?.dataDir === resolve(strata.dataDir)) forgetLab(netns);
  });
  cleanup.after(() => strata.api('POST', '/api/v1/lab/down'));
  const up = await strata.api('POST', '/api/v1/lab/up', { nodes: n, firmware: 'bios', memoryMiB });
  if (up.status !== 200) throw new Error(`lab up: ${up.status} ${up.text.slice(0, 500)}`);
  const names = Array.from({ length: n }, (_, i) => `lab-${i + 1}`);
  const deadline = Date.now() + timeoutMs;
  const state = async (name: string) =>
    ((await strata.api('GET', `/api/v1/nodes/${name}`)).json as { status?: { state?: number } }).status
      ?.state;
  while (Date.now() < deadline) {
    const states = await Promise.all(names.map(state));
    if (states.every((s) => s === 4)) break;
    await sleep(2000);
  }
  const times = new Map<string, Times>();
  for (const name of names) {
    times.set(name, await strataTimes(strata, name));
    if (!times.get(name)!.state4) {
      const tl = (await strata.api('GET', `/api/v1/nodes/${name}/events`)).json as {
        items: { reason: string; message: string }[];
      };
      const last = tl.items.slice(-40).map((e) => `${e.reason}: ${e.message}`);
      console.error(`${name} did not reach state 4; its timeline's last events:\n${last.join('\n')}`);
    }
  }
  const down = await strata.api('POST', '/api/v1/lab/down');
  if (down.status !== 200) console.error(`lab down: ${down.status} ${down.text.slice(0, 300)}`);
  await strata.stop();
  return times;
}

/** A Node's milestones from its timeline. */
async function strataTimes(strata: StrataServer, name: string): Promise<Times> {
  const ev = ((await strata.api('GET', `/api/v1/nodes/${name}/events`)).json as { items: EventJson[] }).items;
  const first = (p: (e: EventJson) => boolean) => {
    const e = ev.find(p);
    return e ? Date.parse(e.time) : undefined;
  };
  const done = (step: string) => first((e) => e.reason === 'StepCompleted' && e.step === step);
  return {
    power: done('hardware.power'),
    state3: done('boot.ipxe'),
    config: first((e) => e.reason === 'InstallConfig'),
    installed: first((e) => e.reason === 'Installed'),
    state4: done('install.os'),
  };
}

// -------------------------------------------------------------------------------------------- peer side

/** dnsmasq's lease file: MAC → address. */
function leases(file: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length >= 3) out.set(f[1]!.toLowerCase(), f[2]!);
  }
  return out;
}

/** The peer's segment, servers and `n` VMs; powers them on and clocks each to state 4. */
async function peerSide(
  cleanup: Cleanup,
  dir: string,
  media: Media,
  n: number,
  memoryMiB: number,
  timeoutMs: number,
) {
  const name = `stbp-${process.pid % 100000}`;
  const stateDir = join(dir, 'peer-lab');
  cleanup.after(() => removeNetns(name));
  const network = await LabNetwork.create({ name, stateDir });
  const key = sshKey(dir);
  const files = peerFiles(join(dir, 'peer'), media, key.pub);
  await startPeer(name, files, (id, cmd, args) => network.spawn(id, cmd, args));
  const vms: QemuVm[] = [];
  for (let i = 1; i <= n; i++) {
    // As the lab layer makes its BIOS VMs (src/lab/layer.ts).
    vms.push(
      await QemuVm.create({
        name: `peer-${i}`,
        network,
        firmware: 'bios',
        nicRom: true,
        memoryMiB,
        boot: 'network',
      }),
    );
  }
  const times = new Map<string, Times>(vms.map((v) => [v.name, {}]));
  const byNode = new Map(vms.map((v) => [`peer-${hyphenMac(v.mac)}`, v.name]));
  const byMac = new Map(vms.map((v) => [v.mac.toLowerCase(), v.name]));
  const sshTo = new Map<string, string>();
  for (const vm of vms) {
    await vm.powerOn();
    // After QMP's answer, as Strata's StepCompleted of hardware.power follows its provider's answer.
    times.get(vm.name)!.power = Date.now();
  }
  const deadline = Date.now() + timeoutMs;
  let seen = 0;
  const checking = new Set<string>();
  while (Date.now() < deadline && [...times.values()].some((t) => !t.state4)) {
    const lines = existsSync(files.log) ? readFileSync(files.log, 'utf8').split('\n') : [];
    const lease = leases(files.leases);
    const ipToVm = new Map([...lease].map(([mac, ip]) => [ip, byMac.get(mac)]));
    for (const line of lines.slice(seen, lines.length - 1)) {
      const [msec, ip, method, uri] = line.split(' ');
      const at = Math.round(Number(msec) * 1000);
      if (uri === '/boot/bios.ipxe') {
        const vm = ipToVm.get(ip!);
        if (vm) times.get(vm)!.state3 ??= at;
        continue;
      }
      const m = /^\/install\/([^/]+)\/(config|installed)$/.exec(uri ?? '');
      const vm = m && byNode.get(m[1]!);
      if (!vm) continue;
      const t = times.get(vm)!;
      if (m[2] === 'config') t.config ??= at;
      else if (method === 'POST' && !t.installed) {
        t.installed = at;
        sshTo.set(vm, ip!);
      }
    }
    seen = Math.max(seen, lines.length - 1);
    // As Strata once the report is in: SSH with the key, running the state-4 check, until it answers.
    for (const [vm, ip] of sshTo) {
      if (times.get(vm)!.state4 || checking.has(vm)) continue;
      checking.add(vm);
      void execIn(name, 'ssh', [...sshOptions(key.path), `root@${ip}`, STATE4_CHECK], 120_000).then((r) => {
        if (r.code === 0 && /^\d+\.\d+/m.test(r.stdout)) times.get(vm)!.state4 = Date.now();
        checking.delete(vm);
      });
    }
    await sleep(1000);
  }
  for (const vm of vms) {
    if (!times.get(vm.name)!.state4)
      console.error(
        `${vm.name} did not reach state 4; its console's last lines:\n${vm.serialLines.slice(-40).join('\n')}`,
      );
    await vm.destroy().catch(() => {});
  }
  await labDown({ name, stateDir, purge: true });
  return times;
}

function sshOptions(key: string): string[] {
  return [
    '-i',
    key,
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'LogLevel=ERROR',
  ];
}

// ---------------------------------------------------------------------------------------------- report

/** Seconds from power-on to milestone `k` of each VM (NaN: not reached). */
function secs(times: Map<string, Times>, k: keyof Times): number[] {
  return [...times.values()].map((t) =>
    t.power !== undefined && t[k] !== undefined ? (t[k]! - t.power) / 1000 : Number.NaN,
  );
}

function cell(xs: number[]): string {
  const ok = xs.filter(Number.isFinite);
  const missed = xs.length - ok.length;
  if (!ok.length) return `none of ${xs.length} reached it`;
  const s =
    xs.length === 1 ? `${fmt(ok[0]!)} s` : `median ${fmt(median(ok))} s, slowest ${fmt(Math.max(...ok))} s`;
  return missed ? `${s}; ${missed} of ${xs.length} did not reach it` : s;
}

/** Strata's sides: its artifacts served by its own Node server (the default) or handed to nginx. */
const STRATA_SIDES = { strata: 'node', 'strata-nginx': 'nginx' } as const;
type Side = keyof typeof STRATA_SIDES | 'peer';

/** The servers' processes by group, for the CPU row (the bench's own process is left out). */
function serverGroup(pid: number, comm: string): string | undefined {
  if (pid === process.pid) return undefined;
  if (comm.startsWith('qemu-system')) return 'VMs';
  // Node 26 names its main thread: comm reads "node-MainThread".
  if (comm.startsWith('node') || comm.startsWith('strata')) return 'Strata';
  if (comm === 'nginx' || comm === 'dnsmasq') return comm;
  return undefined;
}

async function runLab(
  n: number,
  media: Media,
  memoryMiB: number,
  timeoutMs: number,
  sides: Side[],
): Promise<Row[]> {
  return withScratch('lab', async (s) => {
    const res = new Samples();
    const times = new Map<Side, Map<string, Times>>();
    // The sides run one after the other for many minutes: the load during each is sampled, not just at its
    // end, and so is the CPU every server process and VM spent.
    const during = new Map<Side, { load: number; cpu: Map<string, number> }>();
    const sampled = async (side: Side, fn: () => Promise<Map<string, Times>>) => {
      const loads: number[] = [];
      const cpu = new ProcessCpu();
      const timer = setInterval(() => {
        loads.push(loadAverage());
        cpu.sample();
      }, 5000);
      try {
        return await fn();
      } finally {
        clearInterval(timer);
        during.set(side, {
          load: loads.reduce((x, y) => x + y, 0) / loads.length,
          cpu: cpu.byGroup(serverGroup),
        });
        console.error(`${side}: CPU seconds ${JSON.stringify(Object.fromEntries(during.get(side)!.cpu))}`);
      }
    };
    for (const side of sides)
      await res.measure(`lab ${n} ${side}`, async () => {
        const t = await sampled(side, () =>
          side === 'peer'
            ? peerSide(s.cleanup, s.dir, media, n, memoryMiB, timeoutMs)
            : strataSide(s.cleanup, n, memoryMiB, timeoutMs, STRATA_SIDES[side]),
        );
        times.set(side, t);
        return n;
      });
    console.error(JSON.stringify(Object.fromEntries([...times].map(([k, v]) => [k, Object.fromEntries(v)]))));
    const load = res.load(...sides.map((x) => `lab ${n} ${x}`));
    const vms = n === 1 ? '1 VM' : `${n} VMs at once`;
    const milestones: [keyof Times, string][] = [
      ['state3', 'state 3 (iPXE asks for its script)'],
      ['config', "the installer's config fetched"],
      ['installed', 'the installed system reported in'],
      ['state4', 'state 4 (booted from disk, SSH login, systemd up)'],
    ];
    const peer = times.get('peer') ?? new Map<string, Times>();
    const cpuText = (side: Side, servers: string) => {
      const c = during.get(side)?.cpu ?? new Map<string, number>();
      const of = (g: string) => c.get(g) ?? 0;
      const own = side === 'peer' ? of('nginx') + of('dnsmasq') : of('Strata') + of('nginx');
      return `${servers} ${fmt(own)} s (the VMs' QEMU ${fmt(of('VMs'))} s)`;
    };
    const rows: Row[] = [];
    for (const side of sides.filter((x): x is keyof typeof STRATA_SIDES => x !== 'peer')) {
      const road = side === 'strata-nginx' ? ', artifacts handed to nginx' : '';
      const strata = times.get(side)!;
      for (const [k, what] of milestones) {
        const a = secs(strata, k);
        const b = secs(peer, k);
        const all = a.every(Number.isFinite) && b.every(Number.isFinite);
        const at = (x: Side) =>
          k === 'state4' ? ` (mean load ${fmt(during.get(x)?.load ?? Number.NaN, 1)} during the side)` : '';
        rows.push({
          what: `${vms}${road}: power-on → ${what}`,
          strata: cell(a) + at(side),
          peer: `dnsmasq + nginx ${cell(b)}${at('peer')}`,
          ratio: all ? ratio(Math.max(...a), Math.max(...b), false) : '—',
          load,
        });
      }
      rows.push({
        what: `${vms}${road}: CPU time of the servers during the side`,
        strata: cpuText(
          side,
          side === 'strata-nginx' ? "Strata's processes and its nginx" : "Strata's processes",
        ),
        peer: cpuText('peer', 'dnsmasq + nginx'),
        ratio: '—',
        load,
      });
    }
    return rows;
  });
}

// ----------------------------------------------------------------------------------------------- smoke

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `curl URL` from namespace `ns`: the body and how long it took. */
async function curl(ns: string, url: string): Promise<{ body: Buffer; ms: number }> {
  const t0 = performance.now();
  const body = await new Promise<Buffer>((res, rej) =>
    execFile(
      'ip',
      ['netns', 'exec', ns, 'curl', '-fsS', '--max-time', '30', url],
      { encoding: 'buffer', maxBuffer: 2 ** 30 },
      (err, out, errOut) => (err ? rej(new Error(`curl ${url}: ${String(errOut)}`)) : res(out)),
    ),
  );
  return { body, ms: performance.now() - t0 };
}

/**
 * Without a VM: Strata (the lab's Network and Profile, one Node) and the peer, each on a segment of its
 * own, serve iPXE over TFTP and the script, kernel and initramfs over HTTP to curl; the bytes must be the
 * same on both sides.
 */
async function smoke(media: Media): Promise<Row[]> {
  return withScratch('lab-smoke', async ({ set, dir, cleanup }) => {
    const mac = '52:54:00:be:4c:01';
    // The client takes a lease as the machine would (Strata serves scripts only to a leased address).
    const dhcpScript = join(dir, 'udhcpc.sh');
    writeFileSync(
      dhcpScript,
      '#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/24" dev "$interface"\nexit 0\n',
      {
        mode: 0o755,
      },
    );
    const seg = (short: string) => {
      const cli = set.segment(short, [`${short}c`])[`${short}c`]!;
      set.addr(set.name(short), 'br0', `${SERVER}/24`);
      set.ip(cli, 'link', 'set', 'eth0', 'address', mac);
      return { srv: set.name(short), cli };
    };
    const lease = async (ns: string) => {
      const r = await execIn(
        ns,
        'busybox',
        ['udhcpc', '-i', 'eth0', '-n', '-q', '-t', '5', '-T', '1', '-s', dhcpScript],
        30_000,
      );
      if (r.code !== 0) throw new Error(`udhcpc in ${ns}: no lease (exit ${r.code})`);
    };
    const s = seg('ls');
    const p = seg('lp');
    const strata = await startStrata(cleanup, {
      env: { STRATA_HOST_NETNS: currentNetns(), STRATA_LOG_LEVEL: 'warn' },
      readyTimeoutMs: 60_000,
    });
    const art = join(strata.dataDir, 'artifacts', 'lab');
    mkdirSync(art, { recursive: true });
    copyFileSync(media.kernel, join(art, 'vmlinuz'));
    copyFileSync(media.initramfs, join(art, 'installer.cpio.gz'));
    const labels = { 'strata.dev/lab': 'true' };
    const docs = [
      ...labSegment({ namespace: s.srv, network: 'lab', profile: 'lab-debian', labels, zone: 'lab.strata' }),
      {
        apiVersion: 'strata.dev/v1alpha1',
        kind: 'Node',
        metadata: { name: 'lab-1', labels },
        spec: { macAddresses: [mac], network: 'lab', targetState: 4, providers: { hardware: 'none' } },
      },
    ];
    const r = await strata.api('POST', '/api/v1/apply', docs.map((d) => JSON.stringify(d)).join('\n---\n'), {
      contentType: 'application/yaml',
    });
    if (r.status >= 300) throw new Error(`strata apply: ${r.status} ${r.text.slice(0, 500)}`);
    await listening(s.srv, 'tcp', 7421, 'strata boot worker (HTTP)', () => strata.stderr());
    await listening(s.srv, 'udp', 69, 'strata boot worker (TFTP)', () => strata.stderr());
    const key = sshKey(dir);
    const files = peerFiles(join(dir, 'peer'), media, key.pub);
    await startPeer(p.srv, files, (_id, cmd, args) => {
      const child = set.spawn(p.srv, cmd, args, { stdio: 'ignore' });
      cleanup.after(() => child.kill('SIGKILL'));
    });
    const fetched = async (ns: string, scriptUrl: string) => {
      const script = (await curl(ns, scriptUrl)).body.toString();
      const kernel = /^kernel (\S+)/m.exec(script)?.[1];
      const initrd = /^initrd (?:--name \S+ )?(\S+)/m.exec(script)?.[1];
      if (!kernel || !initrd)
        throw new Error(`no kernel or initrd in the script of ${scriptUrl}:\n${script}`);
      return {
        script,
        tftp: await curl(ns, `tftp://${SERVER}/undionly.kpxe`),
        kernel: await curl(ns, kernel),
        initrd: await curl(ns, initrd),
      };
    };
    await lease(s.cli);
    await lease(p.cli);
    const {
      value: [a, b],
      load,
    } = await underLoad(async () => [
      await fetched(s.cli, `http://${SERVER}:7421/boot/ipxe?mac=${mac}`),
      await fetched(p.cli, `${PEER_URL}/boot/bios.ipxe`),
    ]);
    console.error(`Strata's script:\n${a.script}\nthe peer's script:\n${b.script}`);
    const want = {
      tftp: sha(readFileSync(join(IPXE_DIR, 'undionly.kpxe'))),
      kernel: sha(readFileSync(media.kernel)),
      initrd: sha(readFileSync(media.initramfs)),
    };
    return (
      [
        ['tftp', 'undionly.kpxe over TFTP (curl)'],
        ['kernel', 'kernel over HTTP'],
        ['initrd', 'installer initramfs over HTTP'],
      ] as const
    ).map(([k, what]) => {
      const side = (x: { body: Buffer; ms: number }) =>
        `${fmt(x.body.length)} bytes in ${fmt(x.ms)} ms, ${sha(x.body) === want[k] ? 'same bytes' : 'DIFFERENT bytes'}`;
      return { what, strata: side(a[k]), peer: `dnsmasq + nginx ${side(b[k])}`, ratio: '—', load };
    });
  });
}

/** The lab's cached media; in a smoke run without the cache, small stand-ins (the bytes are compared). */
async function labMedia(smokeDir?: string): Promise<Media> {
  const p = mediaPaths();
  if (smokeDir && !(existsSync(p.kernel) && existsSync(p.initramfs))) {
    mkdirSync(smokeDir, { recursive: true });
    const m = {
      kernel: join(smokeDir, 'vmlinuz'),
      initramfs: join(smokeDir, 'installer.cpio.gz'),
      osImage: join(smokeDir, 'image.tar.zst'),
    };
    for (const f of Object.values(m)) writeFileSync(f, `stand-in ${f}\n`.repeat(4096));
    return m;
  }
  if (smokeDir) return { kernel: p.kernel, initramfs: p.initramfs, osImage: p.osImage };
  // As `strata lab up` does: built once per machine, cached, checked here.
  const { paths } = await buildInstallMedia({ log: (l) => console.error(`lab media: ${l}`) });
  return { kernel: paths.kernel, initramfs: paths.initramfs, osImage: paths.osImage };
}

if (import.meta.main) {
  if (flags.smoke) {
    const standIns = join(process.env.TMPDIR ?? '/tmp', `strata-bench-lab-media-${process.pid}`);
    let rows: Row[];
    try {
      rows = await smoke(await labMedia(standIns));
    } finally {
      rmSync(standIns, { recursive: true, force: true });
    }
    publish(
      {
        name: 'lab-smoke',
        title: 'Lab smoke: the same boot files from Strata and from dnsmasq + nginx',
        command: `node bench/lab.ts ${argv}`.trim(),
        rows,
      },
      false,
    );
    process.exit(rows.every((r) => !/DIFFERENT/.test(r.strata + r.peer)) ? 0 : 1);
  }
  const sides = opts.sides.split(',') as Side[];
  if (sides.some((x) => x !== 'peer' && !(x in STRATA_SIDES)))
    throw new Error(`--sides: expected strata, strata-nginx or peer (comma-separated), got ${opts.sides}`);
  if (write && !(sides.includes('peer') && sides.length >= 2))
    throw new Error('--write: only a run with the peer and a Strata side goes in BENCHMARKS.md');
  const media = await labMedia();
  const memoryMiB = Number(opts['memory-mib']);
  const timeoutMs = Number(opts['timeout-min']) * 60_000;
  for (const n of opts.vms.split(',').map(Number)) {
    const rows = await runLab(n, media, memoryMiB, timeoutMs, sides);
    publish(
      {
        name: `lab-${n}`,
        title:
          n === 1
            ? 'Lab: one VM from power-on to state 4, Strata against dnsmasq + nginx'
            : `Lab: ${n} VMs at once from power-on to state 4, Strata against dnsmasq + nginx`,
        command: `node bench/lab.ts --vms ${n}${opts['memory-mib'] === '1024' ? '' : ` --memory-mib ${memoryMiB}`}${opts.sides === 'strata,peer' ? '' : ` --sides ${opts.sides}`}`,
        rows,
        notes: [
          `QEMU without KVM (TCG), BIOS with the NIC's iPXE ROM, ${memoryMiB} MiB, 2 vCPUs, blank 8 GiB disk, the lab's cached kernel, installer initramfs and Debian image; the sides one after the other in the order ${sides.join(', ')}, each on a lab segment of its own (bridge, radvd) in this run's namespace. Seconds from power-on; the ratio compares the slowest VM of each side (>1: Strata was faster). Strata: \`strata up\` + \`strata lab up --nodes ${n}\`, the times of the Node's timeline (StepCompleted of hardware.power, boot.ipxe and install.os; InstallConfig; Installed). Peer: dnsmasq (DHCP, TFTP, the iPXE user-class chain) and nginx serving one static iPXE script (local disk first, else the installer), one static installer config and 204 to the installer's reports; its clock is the QMP power-on, nginx's log and the bench's own SSH login running Strata's state-4 check command, tried every second from the installed system's report. CPU time: utime + stime of each process from /proc, sampled every 5 s during the side (Strata: its node processes, and its nginx on the nginx road; the peer: dnsmasq and nginx; the VMs: their qemu-system processes).`,
          'What the peer does not do: no per-machine decision (every machine gets the same script and config; a machine with a bootable disk is never reinstalled, and one without is always installed), no install token (anyone on the wire can fetch the config and post reports), no host key pinning, no timeline (its clock is read from nginx\'s log by this benchmark), no PXE-once (the "local disk first" script stands in for it, on BIOS only).',
        ],
      },
      write,
    );
  }
  process.exit(0);
}
