/**
 * The proof that Strata works: `strata lab up` makes QEMU VMs with blank disks and nothing but firmware,
 * and they climb to state 4 (Debian installed, SSH reachable) through Strata's own DHCP, TFTP and HTTP —
 * a BIOS VM, a UEFI VM, and one powered off in the middle of its install that recovers when powered on.
 * `strata lab down` then leaves nothing behind. Budget: about 20 minutes on 2 cores without KVM.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { currentNetns, netnsAvailable } from '../../helpers/netns.ts';
import { type StrataServer, startStrata, suiteCleanup, waitFor } from '../../helpers/strata.ts';

const avail = netnsAvailable();
const qemu = existsSync('/usr/bin/qemu-system-x86_64');
const skip = !avail.ok
  ? avail.reason
  : !qemu
    ? 'qemu-system-x86 is not installed (scripts/setup.sh installs it)'
    : false;
const MIN = 60_000;
/**
 * A lab namespace of this run's own (STRATA_LAB_NETNS), never the machine's `strata-lab`: a developer's
 * lab, or another checkout's test on the same machine, is neither touched nor able to touch this one.
 */
const NETNS = `stlab-${process.pid % 100000}`;

interface NodeJson {
  metadata: { name: string };
  status?: { state?: number; install?: { step?: string } };
}
interface EventJson {
  reason: string;
  message: string;
  step?: string;
  data?: Record<string, unknown>;
}

describe('lab: blank VMs climb to state 4 through Strata alone', { skip, timeout: 40 * MIN }, () => {
  const t = suiteCleanup();
  let strata: StrataServer;
  const started = Date.now();

  const node = async (name: string) => (await strata.api('GET', `/api/v1/nodes/${name}`)).json as NodeJson;
  const events = async (name: string) =>
    ((await strata.api('GET', `/api/v1/nodes/${name}/events`)).json as { items: EventJson[] }).items;

  before(async () => {
    strata = await startStrata(t, { env: { STRATA_HOST_NETNS: currentNetns(), STRATA_LAB_NETNS: NETNS } });
    t.after(async () => {
      // Whatever happened, no VM or namespace outlives the test.
      await strata.cli(['lab', 'down'], { env: { STRATA_LAB_NETNS: NETNS } }).catch(() => {});
    });
  });

  it('lab up: three VMs with blank disks become Nodes with the lab hardware provider', {
    timeout: 30 * MIN,
  }, async () => {
    const r = await strata.cli(['lab', 'up', '--nodes', '3', '--firmware', 'mixed', '--no-wait'], {
      timeoutMs: 30 * MIN,
      env: { STRATA_LAB_NETNS: NETNS },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /lab-1\s+\S+\s+bios/);
    assert.match(r.stdout, /lab-2\s+\S+\s+uefi/);
    const g = await strata.cli(['get', 'nodes', '-o', 'wide']);
    for (const n of ['lab-1', 'lab-2', 'lab-3']) assert.match(g.stdout, new RegExp(`${n}\\s.*\\blab\\b`));
  });

  it('a VM powered off mid-install is installed when it is powered on again', {
    timeout: 20 * MIN,
  }, async () => {
    await waitFor(
      'lab-3 writing its disk',
      async () => (await events('lab-3')).some((e) => e.reason === 'InstallDownload'),
      12 * MIN,
      2000,
    );
    const off = await strata.cli(['power', 'lab-3', 'off']);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /power off/);
    await new Promise((r) => setTimeout(r, 5000));
    const on = await strata.cli(['power', 'lab-3', 'on']);
    assert.equal(on.code, 0, on.stderr);
    // The step is re-checked and done again from the start: a second install begins.
    await waitFor(
      'lab-3 reinstalling',
      async () => (await events('lab-3')).filter((e) => e.reason === 'InstallPartition').length >= 2,
      8 * MIN,
      2000,
    );
  });

  it('BIOS and UEFI VMs reach state 4: Debian installed, booted from disk, SSH with the managed key', {
    timeout: 35 * MIN,
  }, async () => {
    for (const name of ['lab-1', 'lab-2', 'lab-3']) {
      await waitFor(
        `${name} at state 4`,
        async () => (await node(name)).status?.state === 4,
        30 * MIN - (Date.now() - started) + 5 * MIN,
        5000,
      );
    }
    for (const name of ['lab-1', 'lab-2', 'lab-3']) {
      const ev = await events(name);
      const completed = ev.filter((e) => e.reason === 'StepCompleted').map((e) => e.step);
      assert.deepEqual(
        completed,
        ['hardware.power', 'boot.firmware', 'boot.ipxe', 'install.os'],
        `${name}: ${completed}`,
      );
      if (name === 'lab-2') {
        // UEFI: the firmware's own PXE got iPXE over TFTP, then iPXE asked DHCP again.
        assert.ok(
          ev.some((e) => e.reason === 'TFTPTransfer' && /ipxe\.efi/.test(e.message)),
          `${name} fetched iPXE over TFTP`,
        );
        assert.ok(
          ev.some((e) => e.reason === 'DHCPAck' && /firmware PXE \(uefi-x64\)/.test(e.message)),
          `${name} firmware PXE`,
        );
      }
      assert.ok(
        ev.some((e) => e.reason === 'DHCPAck' && /from iPXE/.test(e.message)),
        `${name} ran iPXE`,
      );
      assert.ok(
        ev.some((e) => e.reason === 'ArtifactFetched' && /vmlinuz/.test(e.message)),
        `${name} fetched its kernel over HTTP`,
      );
      assert.ok(
        ev.some((e) => e.reason === 'SSHReachable'),
        `${name} reached over SSH`,
      );
      // PXE-once: exactly one finished install per node, then local boot.
      assert.equal(ev.filter((e) => e.reason === 'InstallRebooting').length, 1, `${name} installed once`);
    }
    const r = await strata.cli([
      '--data-dir',
      strata.dataDir,
      'ssh',
      'lab-2',
      '--',
      'test -d /sys/firmware/efi && echo uefi; cat /root/strata-pre-reboot.txt /root/strata-post-reboot.txt; ' +
        'dpkg-query -W systemd busybox ca-certificates network-manager wpasupplicant openssh-server selinux-basics; ' +
        'systemctl is-active ssh',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^uefi$/m);
    assert.match(r.stdout, /pre-reboot: /);
    assert.match(r.stdout, /post-reboot: /);
    for (const p of [
      'systemd',
      'busybox',
      'ca-certificates',
      'network-manager',
      'wpasupplicant',
      'openssh-server',
      'selinux-basics',
    ]) {
      assert.match(r.stdout, new RegExp(`^${p}\t\\S+$`, 'm'), `${p} is installed`);
    }
    assert.match(r.stdout, /^active$/m);
  });

  it('lab down leaves no VM, process, namespace or file behind', async () => {
    const r = await strata.cli(['lab', 'down'], { env: { STRATA_LAB_NETNS: NETNS } });
    assert.equal(r.code, 0, r.stderr);
    const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    assert.doesNotMatch(netns, new RegExp(`^${NETNS}\\b`, 'm'));
    const procs = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    assert.ok(
      !procs.split('\n').some((l) => l.includes('qemu-system') && l.includes(strata.dataDir)),
      'no QEMU left',
    );
    assert.ok(!existsSync(join(strata.dataDir, 'lab', NETNS)), 'no lab state left (disks, logs, sockets)');
    assert.ok(!existsSync(join(strata.dataDir, 'artifacts', 'lab')), 'no lab artifacts left');
    const g = await strata.cli(['get', 'nodes', '-o', 'name']);
    assert.doesNotMatch(g.stdout, /lab-/);
  });
});
