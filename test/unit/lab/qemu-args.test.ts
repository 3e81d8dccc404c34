import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OVMF_CODE, qemuArgs } from '../../../src/lab/vm.ts';

const at = { dir: '/l/vms/n1', tap: 'tap-n1', mac: '52:54:00:01:02:03', diskPath: '/l/vms/n1/disk.qcow2' };
const value = (args: string[], flag: string) => args.filter((_, i) => args[i - 1] === flag);

test('a BIOS lab VM: powered off at start, network first then disk, serial and QMP on sockets', () => {
  const args = qemuArgs({ name: 'n1' }, at);
  assert.ok(args.includes('-S') && args.includes('-no-shutdown') && args.includes('-daemonize'));
  assert.ok(!args.includes('-no-reboot'));
  assert.deepEqual(value(args, '-device'), [
    'virtio-net-pci,netdev=net0,mac=52:54:00:01:02:03,bootindex=1',
    'virtio-blk-pci,drive=disk0,bootindex=2',
  ]);
  assert.deepEqual(value(args, '-qmp'), ['unix:/l/vms/n1/qmp.sock,server=on,wait=off']);
  assert.match(
    value(args, '-chardev')[0]!,
    /path=\/l\/vms\/n1\/serial\.sock.*logfile=\/l\/vms\/n1\/serial\.log/,
  );
  assert.deepEqual(value(args, '-pidfile'), ['/l/vms/n1/qemu.pid']);
  assert.ok(!args.some((a) => a.includes('pflash')));
});

test('a UEFI lab VM gets OVMF code read-only and its own vars; direct kernel boot stops on reboot', () => {
  const args = qemuArgs(
    {
      name: 'n1',
      firmware: 'uefi',
      rebootAction: 'stop',
      boot: 'disk',
      kernel: { kernel: '/k', initrd: '/i', append: 'console=ttyS0' },
    },
    at,
  );
  assert.deepEqual(value(args, '-drive').slice(1), [
    `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
    'if=pflash,format=raw,unit=1,file=/l/vms/n1/OVMF_VARS.fd',
  ]);
  assert.ok(args.includes('-no-reboot'));
  assert.deepEqual(value(args, '-append'), ['console=ttyS0']);
  assert.equal(value(args, '-device')[0], 'virtio-net-pci,netdev=net0,mac=52:54:00:01:02:03');
});
