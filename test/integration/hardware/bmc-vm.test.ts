/**
 * A real VM behind a real IPMI BMC emulator: a QEMU machine (TCG) of a private libvirtd running inside
 * the test's own network namespace (test/helpers/libvirt.ts), fronted by virtualbmc, and booted through
 * Strata's own DHCP, TFTP and HTTP on the namespace's bridge, as the lab's VMs are. Its disk is blank and
 * its boot order the disk only, so only the BMC's boot-to-network brings it to Strata.
 *
 * What a user checks: an IPMI node is set to boot from the network through ipmitool (`chassis bootdev
 * pxe`) and powered on, and its firmware's network boot shows on its timeline (state 2); `strata power`
 * reads and cuts its power. The Redfish machine (sushy-tools' emulator with its libvirt driver) climbs to
 * state 4 in the lab test (test/integration/lab/ladder.test.ts), beside the lab's VMs, sharing their time.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { labSegment } from '../../../src/lab/index.ts';
import { LabNetwork } from '../../../src/lab/network.ts';
import { bmcEmulatorBin, startVbmc } from '../../helpers/bmc.ts';
import { defineVm, type LibvirtVm, libvirtSkipReason, startPrivateLibvirt } from '../../helpers/libvirt.ts';
import { currentNetns } from '../../helpers/netns.ts';
import { type StrataServer, startStrata, suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests read status fields directly
type Any = any;

const MIN = 60_000;
// at most 20 bytes: IPMI 2.0's limit (ipmitool refuses longer ones)
const PASSWORD = 'Vm-bmc-s3cret-hid';
const emu = libvirtSkipReason() ? {} : bmcEmulatorBin();
const skip =
  libvirtSkipReason() ??
  emu.skip ??
  (emu.bin && !existsSync(join(emu.bin, 'vbmc'))
    ? 'virtualbmc is not in the BMC venv (python3-libvirt missing when scripts/tools/bmc-emulators.sh ran)'
    : undefined);
/** A namespace of this run's own, in netns.ts's `st-<pid>-` family so a crashed run's is collected. */
const NETNS = `st-${process.pid}-bmc`;
const PREFIX = `stbmc-${process.pid}`;

describe('a real VM behind an IPMI BMC emulator (virtualbmc + libvirt)', { skip, timeout: 10 * MIN }, () => {
  const t = suiteCleanup();
  let s: StrataServer;
  let ipmi: LibvirtVm;
  let virsh: (...args: string[]) => string;

  const get = async (name: string): Promise<Any> => (await s.api('GET', `/api/v1/nodes/${name}`)).json;
  const events = async (name: string): Promise<Any[]> =>
    ((await s.api('GET', `/api/v1/nodes/${name}/events`)).json as Any).items;
  const timeline = async (name: string) =>
    (await events(name)).map((e) => `${e.reason}: ${e.message}`).join('\n');
  const atLeast = (name: string, state: number, ms: number) =>
    waitFor(
      `${name} at state ${state}`,
      async () => ((await get(name))?.status?.state ?? 0) >= state,
      ms,
      2000,
    ).catch(async (e) => {
      throw new Error(`${(e as Error).message}\ntimeline:\n${await timeline(name)}`);
    });

  before(async () => {
    const net = await LabNetwork.create({ name: NETNS, stateDir: tempDir(t, 'strata-bmcnet-') });
    t.after(() => net.destroy());
    const lv = await startPrivateLibvirt(t, NETNS);
    virsh = lv.virsh;
    ipmi = defineVm(lv, {
      name: `${PREFIX}-ipmi`,
      uuid: randomUUID(),
      mac: '52:54:00:b3:00:02',
      bridge: net.info.bridge,
    });
    const vbmc = await startVbmc(t, emu.bin!, {
      libvirtUri: lv.uri,
      domain: ipmi.name,
      user: 'admin',
      password: PASSWORD,
    });
    s = await startStrata(t, { env: { STRATA_HOST_NETNS: currentNetns() } });
    const secret = await s.cli(['bmc', 'secret', 'vm-bmc', '--username', 'admin'], {
      stdin: `${PASSWORD}\n`,
    });
    assert.equal(secret.code, 0, secret.stderr);
    const labels = { 'strata.dev/bmc-vm': 'true' };
    const node = {
      apiVersion: 'strata.dev/v1alpha1',
      kind: 'Node',
      metadata: { name: 'ipmi-vm', labels },
      spec: {
        targetState: 2,
        network: 'bmc-lab',
        macAddresses: [ipmi.mac],
        providers: { hardware: 'ipmi', boot: 'network' },
        bmc: { protocol: 'ipmi', address: vbmc.address, credentialsSecret: 'vm-bmc' },
      },
    };
    assert.equal(virsh('domstate', ipmi.name).trim(), 'shut off');
    const applied = await s.cli(['apply', '-f', '-'], {
      stdin: JSON.stringify([
        ...labSegment({
          namespace: NETNS,
          network: 'bmc-lab',
          profile: 'bmc-debian',
          labels,
          zone: 'bmc.strata',
        }),
        node,
      ]),
    });
    assert.equal(applied.code, 0, applied.stderr);
  });

  it('IPMI (virtualbmc): ipmitool sets the next boot to PXE and powers on; the firmware network-boots (state 2)', {
    timeout: 8 * MIN,
  }, async () => {
    await atLeast('ipmi-vm', 2, 7 * MIN);
    const evs = await events('ipmi-vm');
    const log = evs.map((e) => `${e.reason}: ${e.message}`).join('\n');
    const completed = evs.filter((e) => e.reason === 'StepCompleted').map((e) => e.step);
    assert.deepEqual(completed.slice(0, 2), ['hardware.power', 'boot.firmware'], log);
    assert.ok(
      evs.some((e) => e.reason === 'DHCPAck'),
      log,
    );
    assert.equal(virsh('domstate', ipmi.name).trim(), 'running');
    // virtualbmc sets the domain's boot device to the network (libvirt's <os><boot dev='network'/>).
    assert.match(virsh('dumpxml', '--inactive', ipmi.name), /<boot dev='network'\/>/);
    const status = await s.cli(['power', 'ipmi-vm', 'status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /node\/ipmi-vm power on/);
    const off = await s.cli(['power', 'ipmi-vm', 'off-force']);
    assert.equal(off.code, 0, off.stderr);
    await waitFor('the IPMI VM off', () => virsh('domstate', ipmi.name).trim() === 'shut off', 60_000, 1000);
    // ipmitool got the password through its environment: it is in no event and in no line the server logged.
    assert.doesNotMatch(log + s.stdout() + s.stderr(), new RegExp(PASSWORD));
  });
});
