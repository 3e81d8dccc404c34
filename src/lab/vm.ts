/**
 * A lab VM: qemu-system-x86_64 started inside the lab namespace (`ip netns exec`), daemonized with a
 * pidfile, so it outlives a crash of its starter and `labDown` still finds it.
 *
 * - Created with `-S`: the VM exists but is "powered off" (status `prelaunch`) until `powerOn()`.
 *   `-no-shutdown` keeps QEMU alive when the guest powers off (status `shutdown`), so power can be
 *   cycled like a real machine's; `rebootAction: 'stop'` adds `-no-reboot` (a guest reboot then stops the
 *   VM too), which a direct `-kernel` install uses to swap to booting from the disk.
 * - Disk: a blank qcow2 made by qemu-img. NIC: virtio-net (or e1000) on a tap of the lab bridge, with
 *   QEMU's default iPXE option ROM from ipxe-qemu. Boot order is network first, then disk, via
 *   `bootindex` on the devices (works for SeaBIOS and OVMF alike).
 * - Firmware: SeaBIOS, or OVMF (OVMF_CODE_4M.fd read-only + this VM's copy of OVMF_VARS_4M.fd).
 * - Serial console: a unix socket (`graphics=off` makes SeaBIOS, and so the iPXE ROM, print to it too); QEMU logs it to serial.log; the VM streams it line by line to
 *   `onSerialLine` and keeps it for `waitForSerial`.
 * - Power and status over QMP (src/lab/qmp.ts): cont, system_powerdown, system_reset, quit, query-status.
 *
 * No KVM on the lab machines: TCG by default (`accel: 'kvm'` where /dev/kvm works).
 */

import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import type { LabNetwork } from './network.ts';
import { isAlive, killPid, readPidfile, run, sleep } from './proc.ts';
import { QmpClient } from './qmp.ts';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export interface QemuVmOptions {
  name: string;
  network: LabNetwork;
  firmware?: 'bios' | 'uefi';
  machine?: 'q35' | 'pc';
  memoryMiB?: number;
  /** vCPUs, default 2: multi-threaded TCG runs the installer's zstd | tar pipeline ~2.5x faster than 1. */
  cpus?: number;
  /** Created blank if missing (qemu-img create -f qcow2). Default `<vmdir>/disk.qcow2`. */
  diskPath?: string;
  diskSizeGiB?: number;
  /** Lab default `unsafe`: no host flushes, a lab disk is disposable and TCG is slow enough. */
  diskCache?: 'unsafe' | 'writeback' | 'none';
  nic?: 'virtio-net-pci' | 'e1000';
  /**
   * Give the NIC its iPXE option ROM (default). Without it, UEFI firmware does its own PXE: DHCP, then
   * TFTP of iPXE, as real machines do. SeaBIOS has no PXE of its own, so BIOS VMs need the ROM.
   */
  nicRom?: boolean;
  mac?: string;
  /** SMBIOS UUID; iPXE sends it as DHCP option 97 (all zeros without it). */
  uuid?: string;
  /** Direct kernel boot instead of firmware boot order. */
  kernel?: { kernel: string; initrd: string; append: string };
  /** Boot order for firmware boot: network then disk (default), or disk only. */
  boot?: 'network' | 'disk';
  /** What a guest reboot does: reboot (default) or stop the VM (QEMU -no-reboot). */
  rebootAction?: 'reboot' | 'stop';
  accel?: 'tcg' | 'kvm';
  onSerialLine?: (line: string) => void;
  extraArgs?: string[];
}

export type VmStatus = 'prelaunch' | 'running' | 'paused' | 'shutdown' | 'gone' | string;

function macFor(name: string): string {
  let h = 2166136261;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  const b = [0x52, 0x54, 0x00, (h >>> 16) & 255, (h >>> 8) & 255, h & 255];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export class QemuVm {
  readonly name: string;
  readonly dir: string;
  readonly mac: string;
  readonly tap: string;
  readonly diskPath: string;
  readonly serialLog: string;
  readonly startedAt: number;
  private qmp!: QmpClient;
  private serial: Socket | undefined;
  private serialBuf = '';
  private lines: string[] = [];
  private waiters: Array<{ re: RegExp; from: number; resolve: (l: string) => void }> = [];
  private readonly opts: QemuVmOptions;
  pid = 0;

  private constructor(opts: QemuVmOptions, dir: string, tap: string) {
    this.opts = opts;
    this.name = opts.name;
    this.dir = dir;
    this.tap = tap;
    this.mac = opts.mac ?? macFor(opts.name);
    this.diskPath = opts.diskPath ?? join(dir, 'disk.qcow2');
    this.serialLog = join(dir, 'serial.log');
    this.startedAt = Date.now();
  }

  /** Creates the disk, the tap and the QEMU process (powered off, `-S`), and connects QMP and serial. */
  static async create(opts: QemuVmOptions): Promise<QemuVm> {
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(opts.name)) throw new Error(`bad VM name ${opts.name}`);
    const dir = join(opts.network.dir, 'vms', opts.name);
    mkdirSync(dir, { recursive: true });
    for (const s of ['qmp.sock', 'serial.sock']) {
      if (join(dir, s).length > 100) throw new Error(`unix socket path too long (>100): ${join(dir, s)}`);
    }
    const tap = `tap-${opts.name}`.slice(0, 15);
    const vm = new QemuVm(opts, dir, tap);
    await vm.stopLeftover();
    if (!existsSync(vm.diskPath)) {
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', vm.diskPath, `${opts.diskSizeGiB ?? 8}G`]);
    }
    await opts.network.addTap(tap);
    const vars = join(dir, 'OVMF_VARS.fd');
    if (opts.firmware === 'uefi' && !existsSync(vars)) copyFileSync(OVMF_VARS, vars);
    const args = vm.qemuArgs();
    writeFileSync(
      join(dir, 'vm.json'),
      JSON.stringify({ ...opts, network: opts.network.name, args }, null, 2),
    );
    await run('ip', ['netns', 'exec', opts.network.name, 'qemu-system-x86_64', ...args]);
    const rec = readPidfile(join(dir, 'qemu.pid'));
    if (!rec) throw new Error('QEMU started but wrote no pidfile');
    vm.pid = rec.pid;
    vm.qmp = await QmpClient.connect(join(dir, 'qmp.sock'));
    await vm.connectSerial();
    return vm;
  }

  private async stopLeftover(): Promise<void> {
    const rec = readPidfile(join(this.dir, 'qemu.pid'));
    if (rec && isAlive(rec.pid)) {
      const cmd = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8');
      if (cmd.includes('qemu-system') && cmd.includes(this.dir)) await killPid(rec.pid);
    }
  }

  qemuArgs(): string[] {
    return qemuArgs(this.opts, { dir: this.dir, tap: this.tap, mac: this.mac, diskPath: this.diskPath });
  }

  private async connectSerial(): Promise<void> {
    const path = join(this.dir, 'serial.sock');
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', (chunk: string) => {
      this.serialBuf += chunk;
      for (;;) {
        const nl = this.serialBuf.search(/\r?\n/);
        if (nl < 0) break;
        const line = this.serialBuf.slice(0, nl).replace(/\r/g, '');
        this.serialBuf = this.serialBuf.slice(this.serialBuf[nl] === '\r' ? nl + 2 : nl + 1);
        this.pushLine(line);
      }
      // prompts (`login: `) end without a newline: let waiters see the unfinished line too
      if (this.serialBuf) this.matchPartial(this.serialBuf);
    });
    this.serial = sock;
  }

  private pushLine(raw: string): void {
    // strip ANSI escapes the firmware and getty emit
    const line = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '');
    this.lines.push(line);
    this.opts.onSerialLine?.(line);
    const idx = this.lines.length - 1;
    this.waiters = this.waiters.filter((w) => {
      if (idx >= w.from && w.re.test(line)) {
        w.resolve(line);
        return false;
      }
      return true;
    });
  }

  private matchPartial(raw: string): void {
    const line = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '').replace(/\r/g, '');
    this.waiters = this.waiters.filter((w) => {
      if (w.re.test(line)) {
        w.resolve(line);
        return false;
      }
      return true;
    });
  }

  /** Serial console lines so far. */
  get serialLines(): readonly string[] {
    return this.lines;
  }

  /** Resolves with the first serial line matching `re` from line index `from` (default: from now). */
  waitForSerial(re: RegExp, timeoutMs: number, from = this.lines.length): Promise<string> {
    for (let i = from; i < this.lines.length; i++)
      if (re.test(this.lines[i]!)) return Promise.resolve(this.lines[i]!);
    return new Promise((resolve, reject) => {
      const w = {
        re,
        from,
        resolve: (l: string) => {
          clearTimeout(t);
          resolve(l);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`${this.name}: no serial line matching ${re} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Types into the serial console. */
  sendSerial(text: string): void {
    this.serial?.write(text);
  }

  /** QMP query-status (`gone` if QEMU has exited). */
  async status(): Promise<VmStatus> {
    if (this.qmp.closed || !isAlive(this.pid)) return 'gone';
    const r = await this.qmp.execute<{ status: string }>('query-status');
    return r.status;
  }

  /** Powers on: from prelaunch (`-S`) continue; from shutdown, reset then continue. */
  async powerOn(): Promise<void> {
    const s = await this.status();
    if (s === 'running') return;
    if (s === 'shutdown') await this.qmp.execute('system_reset');
    await this.qmp.execute('cont');
  }

  /** ACPI power button; with `hardAfterMs`, stops the VM if the guest has not powered off by then. */
  async powerOff(hardAfterMs?: number): Promise<void> {
    if ((await this.status()) !== 'running') return;
    await this.qmp.execute('system_powerdown');
    if (hardAfterMs === undefined) return;
    const deadline = Date.now() + hardAfterMs;
    while (Date.now() < deadline) {
      if ((await this.status()) !== 'running') return;
      await sleep(500);
    }
    await this.qmp.execute('stop');
  }

  async reset(): Promise<void> {
    await this.qmp.execute('system_reset');
  }

  /** Resolves when the VM leaves `running` (guest poweroff, or reboot with rebootAction 'stop'). */
  async waitForStop(timeoutMs: number): Promise<VmStatus> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const s = await this.status().catch(() => 'gone');
      if (s !== 'running') return s;
      await sleep(1000);
    }
    throw new Error(`${this.name}: still running after ${timeoutMs} ms`);
  }

  /** The raw QMP client, for commands not wrapped here. */
  get monitor(): QmpClient {
    return this.qmp;
  }

  /** Quits QEMU (QMP `quit`, then kill), removes the tap. Keeps disk and serial.log. */
  async destroy(): Promise<void> {
    try {
      if (!this.qmp.closed) await Promise.race([this.qmp.execute('quit'), sleep(2000)]);
    } catch {
      // already gone
    }
    this.qmp.close();
    this.serial?.destroy();
    const deadline = Date.now() + 5000;
    while (isAlive(this.pid) && Date.now() < deadline) await sleep(100);
    if (isAlive(this.pid)) await killPid(this.pid);
    await this.opts.network.removeTap(this.tap);
  }
}

/**
 * The QEMU command line of a lab VM (pure; `OVMF_VARS.fd` is copied by the caller's create()).
 * Exported for tests and for `strata lab` to show what it runs.
 */
export function qemuArgs(
  o: Omit<QemuVmOptions, 'network'>,
  at: { dir: string; tap: string; mac: string; diskPath: string },
): string[] {
  const d = at.dir;
  const firmware = o.firmware ?? 'bios';
  const args = [
    '-name',
    `strata-${o.name}`,
    '-machine',
    `${o.machine ?? 'q35'},accel=${o.accel ?? 'tcg'},graphics=off`,
    '-m',
    String(o.memoryMiB ?? 1024),
    '-smp',
    String(o.cpus ?? 2),
    '-S',
    '-no-shutdown',
    '-display',
    'none',
    '-vga',
    'none',
    '-nodefaults',
    '-daemonize',
    '-pidfile',
    join(d, 'qemu.pid'),
    '-qmp',
    `unix:${join(d, 'qmp.sock')},server=on,wait=off`,
    '-chardev',
    `socket,id=ser0,path=${join(d, 'serial.sock')},server=on,wait=off,logfile=${join(d, 'serial.log')},logappend=on`,
    '-serial',
    'chardev:ser0',
    '-netdev',
    `tap,id=net0,ifname=${at.tap},script=no,downscript=no`,
    '-drive',
    `if=none,id=disk0,file=${at.diskPath},format=qcow2,cache=${o.diskCache ?? 'unsafe'},discard=unmap`,
  ];
  if (o.rebootAction === 'stop') args.push('-no-reboot');
  if (o.uuid) args.push('-uuid', o.uuid);
  const net = o.boot === 'disk' ? '' : ',bootindex=1';
  const rom = o.nicRom === false ? ',romfile=' : '';
  args.push('-device', `${o.nic ?? 'virtio-net-pci'},netdev=net0,mac=${at.mac}${net}${rom}`);
  args.push('-device', 'virtio-blk-pci,drive=disk0,bootindex=2');
  if (firmware === 'uefi') {
    const vars = join(d, 'OVMF_VARS.fd');
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    args.push('-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
  }
  if (o.kernel) {
    args.push('-kernel', o.kernel.kernel, '-initrd', o.kernel.initrd, '-append', o.kernel.append);
  }
  args.push(...(o.extraArgs ?? []));
  return args;
}
