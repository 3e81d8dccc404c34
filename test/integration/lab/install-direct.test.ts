/**
 * End to end, without network boot: a lab VM boots the Strata installer kernel+initramfs directly
 * (`-kernel/-initrd`), gets an address from a test DHCP server inside the lab namespace, fetches its
 * config from a static install server on the host side of the lab uplink, installs Debian onto its blank
 * disk and reboots; then the VM boots that disk alone and the installed system reports in.
 *
 * Slow (software emulation: ~10+ minutes) and needs root: runs only with STRATA_LAB_TESTS=1.
 * STRATA_LAB_FIRMWARE=uefi runs it under OVMF instead of SeaBIOS.
 */

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureInstallMedia } from '../../../src/install/media/index.ts';
import { installerCmdline } from '../../../src/install/protocol.ts';
import { LabNetwork } from '../../../src/lab/network.ts';
import { QemuVm } from '../../../src/lab/vm.ts';
import { type InstallServer, startInstallServer } from '../../helpers/install-server.ts';

const enabled = process.env.STRATA_LAB_TESTS === '1';
const firmware = process.env.STRATA_LAB_FIRMWARE === 'uefi' ? 'uefi' : 'bios';
const verbose = process.env.STRATA_LAB_VERBOSE === '1';

test(`lab: direct-kernel install to disk, then boot the disk (${firmware})`, {
  skip: enabled ? false : 'set STRATA_LAB_TESTS=1 (slow, root, QEMU)',
  timeout: 60 * 60_000,
}, async (t) => {
  const times: Record<string, number> = {};
  const t0 = Date.now();
  const mark = (name: string) => {
    times[name] = Math.round((Date.now() - t0) / 100) / 10;
    t.diagnostic(`${name}: ${times[name]} s`);
  };
  const { paths } = await ensureInstallMedia();
  mark('assets');

  // addresses apart from the default lab's, so the test can run while a `strata lab` is up
  const net = await LabNetwork.create({
    name: 'strata-labt',
    uplink: true,
    address: '10.213.32.1/24',
    address6: 'fd13:213:32::1/64',
    hostAddress: '10.213.254.5/30',
    nsUplinkAddress: '10.213.254.6/30',
  });
  let server: InstallServer | undefined;
  let vm: QemuVm | undefined;
  try {
    await net.startTestDhcp();
    const node = `node-${firmware}`;
    server = await startInstallServer(
      {
        nodes: {
          [node]: {
            installToken: 'install-token-1',
            config: {
              imageUrl: '/images/debian.tar.zst',
              installedToken: 'installed-token-1',
              sshAuthorizedKeys: [
                'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0cmF0YS1sYWItdGVzdC1rZXktMDAwMDAwMDA lab@test',
              ],
              // password: strata
              rootPasswordHash:
                '$6$stratalab$EBffEni5D/Pcx9Jfcd17mq2K3iNcJdD6rTo37RpGCJ7AtfmfeiZGGm2DOjtOBJDBFET7zcp5xVLpW9o3vfNQ40',
            },
            preReboot: 'echo "pre-reboot ran for $STRATA_NODE" > "$TARGET/root/pre-reboot-ran"\n',
            postReboot: '#!/bin/sh\necho post-reboot-ran > /root/post-reboot-ran\n',
          },
        },
        files: { '/images/debian.tar.zst': paths.osImage },
        onRequest: (r) => {
          if (r.kind === 'event')
            t.diagnostic(`event ${r.event.step} [${r.event.status}] ${r.event.message}`);
          else if (r.kind !== 'file') t.diagnostic(`request ${r.kind}`);
        },
      },
      { host: net.info.uplink!.host },
    );

    // ---- 1: install
    rmSync(join(net.dir, 'vms', node, 'disk.qcow2'), { force: true });
    vm = await QemuVm.create({
      name: node,
      network: net,
      firmware,
      memoryMiB: 1024,
      rebootAction: 'stop',
      kernel: {
        kernel: paths.kernel,
        initrd: paths.initramfs,
        append: `console=ttyS0,115200 quiet ${installerCmdline({ url: server.url, node, token: 'install-token-1', onfail: 'poweroff' })}`,
      },
      onSerialLine: verbose ? (l) => t.diagnostic(`serial: ${l}`) : undefined,
    });
    await vm.powerOn();
    mark('vm started (installer)');
    await vm.waitForSerial(/strata-init: .* is 10\.213\.32\./, 5 * 60_000);
    mark('installer has an address');
    const stopped = await vm.waitForStop(45 * 60_000);
    mark('installer finished (VM stopped)');
    const events = server.requests.flatMap((r) => (r.kind === 'event' ? [r.event] : []));
    const stamped = server.requests.flatMap((r) =>
      r.kind === 'event' ? [{ step: r.event.step, at: r.at }] : [],
    );
    t.diagnostic(
      `installer step durations (s): ${stamped
        .slice(0, -1)
        .map((e, i) => `${e.step} ${((stamped[i + 1]!.at - e.at) / 1000).toFixed(1)}`)
        .join(', ')}`,
    );
    const failed = events.find((e) => e.status === 'failed');
    assert.equal(failed, undefined, `install failed: ${failed?.step}: ${failed?.message}`);
    assert.equal(stopped, 'shutdown');
    assert.deepEqual(
      [...new Set(events.map((e) => e.step))],
      [
        'agent-start',
        'config',
        'partition',
        'mkfs',
        'download',
        'extract',
        'configure',
        'hostkey',
        'pre-reboot',
        'bootloader',
        'post-reboot',
        'rebooting',
      ],
    );
    assert.equal(events.at(-1)?.status, 'done');
    const hostkeys = server.requests.find((r) => r.kind === 'hostkey');
    assert.ok(hostkeys && hostkeys.kind === 'hostkey' && hostkeys.keys.some((k) => k.type === 'ssh-ed25519'));
    await vm.destroy();

    // ---- 2: boot the installed disk
    vm = await QemuVm.create({
      name: node,
      network: net,
      firmware,
      memoryMiB: 1024,
      boot: 'disk',
      onSerialLine: verbose ? (l) => t.diagnostic(`serial: ${l}`) : undefined,
    });
    const installed = new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (server!.requests.some((r) => r.kind === 'installed')) {
          clearInterval(check);
          resolve();
        }
      }, 500);
      check.unref(); // a failing test must not hang on it
    });
    await vm.powerOn();
    mark('vm started (disk)');
    await vm.waitForSerial(/Linux version|Booting .*Debian|GRUB/, 5 * 60_000, 0);
    mark('bootloader/kernel from disk');
    await vm.waitForSerial(/Reached target.*(Multi-User|Graphical)|login:/, 30 * 60_000, 0);
    mark('reached multi-user / login');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      installed,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('no installed report')), 10 * 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    mark('installed report received');
    const rep = server.requests.find((r) => r.kind === 'installed');
    assert.ok(rep && rep.kind === 'installed');
    assert.equal(rep.report.hostname, node);
    assert.equal(rep.report.postRebootExit, 0);
    assert.ok(rep.report.addresses.some((a) => a.startsWith('10.213.32.')));
    assert.ok(
      vm.serialLines.some((l) => /OpenSSH|ssh\.service|sshd/.test(l)),
      'sshd started',
    );
    t.diagnostic(`timings (s since test start): ${JSON.stringify(times)}`);
  } finally {
    if (vm) await vm.destroy().catch(() => {});
    await server?.close();
    await net.destroy();
  }
});
