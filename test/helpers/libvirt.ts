/**
 * A private libvirt for the BMC emulators' VMs: Debian's `libvirtd` started by the test inside the test's
 * own network namespace, with its own configuration, sockets, state, logs and cache, and stopped by it.
 *
 * libvirtd as root always runs in "system" mode, whose state paths (/etc/libvirt, /run/libvirt,
 * /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt) are compiled in. So it runs under `unshare
 * --mount` with the test's directories bind-mounted over them: another test's libvirtd, or the machine's
 * own, never sees its domains, and it never sees theirs, nor libvirt's `default` network (there is none in
 * its /etc/libvirt: no virbr0, no dnsmasq). Its socket sits in the test's directory (`uri`). Because it runs
 * in the namespace, a domain's `<interface type='bridge'>` gets a tap on the namespace's bridge, where
 * Strata's DHCP/TFTP/HTTP serve it, exactly as the lab's VMs are served. qemu.conf turns off what needs the
 * host's services (cgroups, virtlogd, per-domain mount namespaces, security drivers).
 *
 * Cleanup (the test's `after`): every domain is destroyed and undefined, then libvirtd is stopped;
 * whatever would still run in the namespace goes with the namespace.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanup } from './services.ts';
import { tempDir, waitFor } from './strata.ts';

/** Why the libvirt VM tests cannot run here, or undefined when they can. */
export function libvirtSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, libvirtd)';
  if (!existsSync('/usr/sbin/libvirtd'))
    return 'libvirtd is not installed (scripts/setup.sh installs libvirt-daemon-driver-qemu)';
  if (!existsSync('/usr/bin/virsh'))
    return 'virsh is not installed (scripts/setup.sh installs libvirt-clients)';
  if (!existsSync('/usr/bin/qemu-system-x86_64')) return 'qemu-system-x86 is not installed';
  try {
    execFileSync('getent', ['passwd', 'libvirt-qemu'], { stdio: 'ignore' });
  } catch {
    return "libvirtd refuses to start without the 'libvirt-qemu' user (scripts/setup.sh creates it)";
  }
  return undefined;
}

export interface PrivateLibvirt {
  /** The connection URI for virsh, sushy-emulator and vbmc. */
  uri: string;
  dir: string;
  virsh(...args: string[]): string;
  /** libvirtd's own log so far. */
  log(): string;
  /**
   * Destroys and undefines every domain, then stops libvirtd (also done in `t.after`). A test whose
   * namespace another process tears down (the lab's, by `strata lab down`) calls it first: what runs in
   * that namespace is the test's, and the test ends it.
   */
  stop(): Promise<void>;
}

/** Starts libvirtd inside `netns` with everything private to `dir`; stopped in `t.after`. */
export async function startPrivateLibvirt(t: Cleanup, netns: string): Promise<PrivateLibvirt> {
  const dir = tempDir(t, 'strata-libvirt-');
  const sub = (n: string) => {
    mkdirSync(join(dir, n), { recursive: true });
    return join(dir, n);
  };
  const etc = sub('etc');
  const sock = sub('sock');
  writeFileSync(
    join(etc, 'libvirtd.conf'),
    [
      `unix_sock_dir = "${sock}"`,
      'unix_sock_rw_perms = "0700"',
      'auth_unix_rw = "none"',
      'auth_unix_ro = "none"',
      'log_outputs = "3:stderr"',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(etc, 'qemu.conf'),
    [
      'user = "root"',
      'group = "root"',
      'dynamic_ownership = 0',
      'remember_owner = 0',
      'security_driver = "none"',
      'cgroup_controllers = [ ]',
      'namespaces = [ ]',
      'stdio_handler = "file"',
      '',
    ].join('\n'),
  );
  const binds = [
    ['/etc/libvirt', etc],
    ['/run/libvirt', sub('run')],
    ['/var/lib/libvirt', sub('lib')],
    ['/var/log/libvirt', sub('log')],
    ['/var/cache/libvirt', sub('cache')],
  ];
  // The mount points are created empty on the host if missing (as libvirt's packages would); the binds
  // themselves live only in libvirtd's private mount namespace.
  const script = [
    'set -e',
    ...binds.map(([at, from]) => `mkdir -p '${at}' && mount --bind '${from}' '${at}'`),
    `exec /usr/sbin/libvirtd --config '${join(etc, 'libvirtd.conf')}' --pid-file '${join(dir, 'libvirtd.pid')}'`,
  ].join('\n');
  let log = '';
  const child: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', netns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const uri = `qemu+unix:///system?socket=${join(sock, 'libvirt-sock')}`;
  const virsh = (...args: string[]) =>
    execFileSync('virsh', ['-q', '-c', uri, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const stop = async () => {
    if (child.exitCode === null) {
      for (const name of virsh('list', '--all', '--name').split('\n').filter(Boolean)) {
        try {
          virsh('destroy', name);
        } catch {
          // not running
        }
        try {
          virsh('undefine', name, '--nvram');
        } catch {
          // gone
        }
      }
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  };
  t.after(stop);
  await waitFor(
    `libvirtd in ${netns} (log: ${log.slice(-400)})`,
    () => {
      if (child.exitCode !== null) throw new Error(`libvirtd exited ${child.exitCode}: ${log.slice(-600)}`);
      try {
        virsh('uri');
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    200,
  );
  return { uri, dir, virsh, log: () => log, stop };
}

export interface LibvirtVm {
  name: string;
  uuid: string;
  mac: string;
  serialLog: string;
  /** The serial console's text so far (SeaBIOS, iPXE, the installer's and Debian's console). */
  serial(): string;
}

/**
 * Defines (does not start) a lab-like machine: BIOS (SeaBIOS) with the NIC's iPXE ROM from ipxe-qemu,
 * virtio-net on the namespace's bridge, a blank qcow2 virtio disk, 2 vCPUs and 1 GiB under TCG, serial
 * console to a file. Its boot order is the disk only, as a real server's is: only the BMC's
 * boot-to-network sends it to Strata.
 */
export function defineVm(
  lv: PrivateLibvirt,
  o: { name: string; uuid: string; mac: string; bridge: string },
): LibvirtVm {
  const disk = join(lv.dir, `${o.name}.qcow2`);
  const serialLog = join(lv.dir, `${o.name}.serial.log`);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '8G']);
  const xml = `<domain type='qemu'>
  <name>${o.name}</name>
  <uuid>${o.uuid}</uuid>
  <memory unit='MiB'>1024</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><bios useserial='yes'/></os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe'/>
      <source file='${disk}'/>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
    </disk>
    <interface type='bridge'>
      <source bridge='${o.bridge}'/>
      <mac address='${o.mac}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'><source path='${serialLog}' append='on'/><target port='0'/></serial>
    <console type='file'><source path='${serialLog}' append='on'/><target type='serial' port='0'/></console>
  </devices>
</domain>
`;
  const file = join(lv.dir, `${o.name}.xml`);
  writeFileSync(file, xml);
  lv.virsh('define', file);
  return {
    name: o.name,
    uuid: o.uuid,
    mac: o.mac,
    serialLog,
    serial: () => (existsSync(serialLog) ? readFileSync(serialLog, 'utf8') : ''),
  };
}
