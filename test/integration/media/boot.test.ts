/**
 * Boot media on real firmware: four QEMU VMs whose NIC has no boot ROM (`romfile=` empty, so the firmware
 * cannot network boot) boot from media `strata media build` made — the hybrid ISO as a CD and the USB
 * image as a USB disk, each under SeaBIOS and under OVMF (UEFI). Each must run the medium's script (its
 * banner on the serial console), get an address from Strata's DHCP, fetch its boot script from Strata
 * with the site's enrolment token, and ask for its kernel (state 3 and on); the VM is stopped as soon as
 * the kernel request is seen. The VMs run at once, on a segment (a lab network namespace, unique name, with
 * radvd) that only this test uses; the boot worker runs inside it.
 * Needs root, QEMU, OVMF and the media tools (scripts/setup.sh). Software emulation: ~1 minute.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LabNetwork } from '../../../src/lab/network.ts';
import { QemuVm } from '../../../src/lab/vm.ts';
import { currentNetns } from '../../helpers/netns.ts';
import { startStrata, suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';
import { networkManifest, nodeManifest } from '../boot/segment.ts';
import { buildBoth } from './media.ts';

const PREFIX = '10.213.173';
const verbose = process.env.STRATA_MEDIA_VERBOSE === '1';

const CASES = [
  { name: 'mb-bios-iso', firmware: 'bios', media: 'iso' },
  { name: 'mb-bios-usb', firmware: 'bios', media: 'usb' },
  { name: 'mb-uefi-iso', firmware: 'uefi', media: 'iso' },
  { name: 'mb-uefi-usb', firmware: 'uefi', media: 'usb' },
] as const;

/** QEMU arguments attaching `file` as the first boot device: a CD on the AHCI bus, or a USB stick. */
function mediaArgs(kind: 'iso' | 'usb', file: string): string[] {
  if (kind === 'iso')
    return [
      '-drive',
      `if=none,id=media0,file=${file},format=raw,media=cdrom,readonly=on`,
      '-device',
      'ide-cd,drive=media0,bootindex=0',
    ];
  return [
    '-device',
    'qemu-xhci,id=xhci0',
    '-drive',
    `if=none,id=media0,file=${file},format=raw,readonly=on`,
    '-device',
    'usb-storage,bus=xhci0.0,drive=media0,removable=on,bootindex=0',
  ];
}

describe('boot media on BIOS and UEFI firmware', () => {
  const t = suiteCleanup();

  it('ISO and USB image each reach Strata’s HTTP boot and request the kernel', {
    timeout: 15 * 60_000,
  }, async (tc) => {
    const t0 = Date.now();
    const times: string[] = [];
    const mark = (what: string) => times.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const stateDir = tempDir(t, 'stm-');
    const net = await LabNetwork.create({
      // st-PID-…: test/helpers/netns.ts removes it after a crash of this process (cleanupStale)
      name: `st-${process.pid}-mb`,
      stateDir,
      address: `${PREFIX}.1/24`,
      address6: 'fd13:213:173::1/64',
    });
    t.after(() => net.destroy());
    const vms: QemuVm[] = [];
    t.after(() => Promise.all(vms.map((v) => v.destroy().catch(() => {}))));

    const strata = await startStrata(t, { env: { STRATA_HOST_NETNS: currentNetns() } });
    // The profile's kernel and initrd: the test stops each VM when its kernel is asked for, so any bytes do.
    const lab = join(strata.dataDir, 'artifacts', 'media-test');
    mkdirSync(lab, { recursive: true });
    writeFileSync(join(lab, 'vmlinuz'), Buffer.alloc(4096, 1));
    writeFileSync(join(lab, 'initrd.img'), Buffer.alloc(4096, 2));
    const macs = CASES.map((_, i) => `52:54:00:ab:17:0${i + 1}`);
    const manifests = [
      networkManifest('media', { bridgeNs: net.name, prefix: PREFIX }, [100, 150]),
      `apiVersion: strata.dev/v1alpha1
kind: Profile
metadata: {name: media-test}
spec:
  kernel: media-test/vmlinuz
  initrd: [media-test/initrd.img]
  image: media-test/none.tar.gz
`,
      ...CASES.map((c, i) => nodeManifest(c.name, macs[i]!, 'media', `${PREFIX}.${20 + i}`)),
    ];
    const applied = await strata.cli(['apply', '-f', '-'], { stdin: manifests.join('---\n') });
    assert.equal(applied.code, 0, applied.stderr);
    await strata.waitForOutput(/boot worker ready/, 20_000);

    const dir = tempDir(t, 'strata-media-');
    const built = await buildBoth(strata, 'media', join(dir, 'm'));
    assert.equal(built.code, 0, built.stderr);
    mark('media built');

    const kernelAt = async (name: string) => {
      const r = await strata.api('GET', `/api/v1/nodes/${name}`);
      return (r.json as { status?: { boot?: { scriptAt?: string; kernelAt?: string } } }).status?.boot;
    };
    await Promise.all(
      CASES.map(async (c, i) => {
        const vm = await QemuVm.create({
          name: c.name,
          network: net,
          firmware: c.firmware,
          mac: macs[i]!,
          nicRom: false,
          boot: 'disk',
          memoryMiB: 256,
          cpus: 1,
          diskSizeGiB: 1,
          extraArgs: mediaArgs(c.media, join(dir, c.media === 'iso' ? 'm.iso' : 'm.img')),
          ...(verbose ? { onSerialLine: (l: string) => tc.diagnostic(`${c.name}: ${l}`) } : {}),
        });
        vms.push(vm);
        await vm.powerOn();
        try {
          const boot = await waitFor(
            `${c.name} to request its kernel`,
            async () => {
              const b = await kernelAt(c.name);
              return b?.kernelAt ? b : undefined;
            },
            8 * 60_000,
            500,
          );
          mark(`${c.name} kernel requested`);
          assert.ok(boot.scriptAt, 'the boot script was fetched first');
        } finally {
          await vm.destroy();
        }
        // The ladder counts it: iPXE ran and fetched its script, so the node is at state 3 or above.
        await waitFor(
          `${c.name} at state 3`,
          async () => {
            const r = await strata.api('GET', `/api/v1/nodes/${c.name}`);
            return ((r.json as { status?: { state?: number } }).status?.state ?? 0) >= 3;
          },
          60_000,
          500,
        );
        // It was the medium that booted: its script's banner and no firmware network boot.
        const serial = vm.serialLines.join('\n');
        assert.match(serial, /Strata boot media: network media/);
        assert.match(serial, /Strata: chaining to http:\/\/10\.213\.173\.1:7421\/boot\/ipxe/);
      }),
    );
    tc.diagnostic(`timings since start: ${times.join(', ')}`);
    const events = await strata.cli(['events', 'node', 'mb-uefi-usb']);
    assert.match(
      events.stdout,
      /BootMedia\s+boot media asked for the script from 10\.213\.173\.\d+ \(site enrolment token valid\)/,
    );
    assert.match(events.stdout, /ScriptFetched/);
  });
});
