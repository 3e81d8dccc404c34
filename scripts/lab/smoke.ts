/**
 * Lab smoke run: network + test DHCP + install server + one VM booting the installer directly, until the
 * VM stops. Prints serial lines and install events. For manual checks while developing the lab.
 *
 *   node_modules/.bin/node scripts/lab/smoke.ts [--uefi] [--image PATH] [--netboot] [--cpus N] [--timeout SECONDS]
 *
 * --netboot: firmware boot (NIC ROM first, then disk) instead of -kernel; with only the test DHCP server
 * (no boot file) this shows iPXE's DHCP and IPv6 timings, then falls through to the disk.
 */

import { parseArgs } from 'node:util';
import { mediaPaths } from '../../src/install/media/index.ts';
import { installerCmdline } from '../../src/install/protocol.ts';
import { LabNetwork } from '../../src/lab/network.ts';
import { QemuVm } from '../../src/lab/vm.ts';
import { startInstallServer } from '../../test/helpers/install-server.ts';

const { values } = parseArgs({
  options: {
    uefi: { type: 'boolean' },
    image: { type: 'string' },
    netboot: { type: 'boolean' },
    cpus: { type: 'string', default: '2' },
    timeout: { type: 'string', default: '2400' },
  },
});
const paths = mediaPaths();
const t0 = Date.now();
const ts = () => ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
const net = await LabNetwork.create({ name: 'strata-smoke', uplink: true });
await net.startTestDhcp();
const server = await startInstallServer(
  {
    nodes: {
      smoke: {
        installToken: 't1',
        config: { imageUrl: '/images/os.tar.zst', installedToken: 't2', reboot: 'poweroff' },
      },
    },
    files: values.image ? { '/images/os.tar.zst': values.image } : {},
    onRequest: (r) => console.log(ts(), 'HTTP', JSON.stringify(r)),
  },
  { host: net.info.uplink!.host },
);
const vm = await QemuVm.create({
  name: 'smoke',
  network: net,
  firmware: values.uefi ? 'uefi' : 'bios',
  rebootAction: 'stop',
  cpus: Number(values.cpus),
  kernel: values.netboot
    ? undefined
    : {
        kernel: paths.kernel,
        initrd: paths.initramfs,
        append: `console=ttyS0 quiet ${installerCmdline({ url: server.url, node: 'smoke', token: 't1', onfail: 'poweroff' })}`,
      },
  onSerialLine: (l) => console.log(ts(), 'serial', l),
});
await vm.powerOn();
const status = await vm.waitForStop(Number(values.timeout) * 1000).catch((e: Error) => e.message);
console.log(ts(), 'stopped:', status);
await vm.destroy();
await server.close();
await net.destroy();
