import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertNotHostNamespace, HostNamespaceError } from '../../../src/dhcp/guard.ts';
import { archKind, defaultBootPolicy } from '../../../src/dhcp/pxe.ts';
import type { ClientInfo } from '../../../src/dhcp/types.ts';

test('option 93 architectures map to firmware families', () => {
  const cases: [number | null, string][] = [
    [0, 'bios'],
    [6, 'uefi-x64'],
    [7, 'uefi-x64'],
    [9, 'uefi-x64'],
    [11, 'uefi-arm64'],
    [16, 'http-x64'],
    [19, 'http-arm64'],
    [2, 'unknown'],
    [null, 'unknown'],
  ];
  for (const [arch, kind] of cases) assert.equal(archKind(arch), kind, String(arch));
});

const base: ClientInfo = {
  mac: '52:54:00:00:00:01',
  arch: 0,
  archKind: 'bios',
  isPXE: true,
  isIPXE: false,
  isHttpClient: false,
  vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
  userClass: [],
  hostname: undefined,
  uuid: undefined,
  relayed: false,
  networkName: 'lab',
};

test('default boot policy: binary for firmware, script for iPXE (no chainload loop), nothing for OS clients', () => {
  const p = defaultBootPolicy({
    httpBase: 'http://10.0.0.1:8080',
    files: { x64: 'snponly.efi' },
    nextServer: '10.0.0.5',
  });
  assert.deepEqual(p.decide(base), { file: 'undionly.kpxe', nextServer: '10.0.0.5' });
  assert.equal(p.decide({ ...base, arch: 7, archKind: 'uefi-x64' })?.file, 'snponly.efi');
  assert.equal(p.decide({ ...base, arch: 11, archKind: 'uefi-arm64' })?.file, 'ipxe-arm64.efi');
  const ipxe = p.decide({ ...base, isIPXE: true, userClass: ['iPXE'] });
  assert.match(ipxe!.file, /^http:\/\/10\.0\.0\.1:8080\/boot\/ipxe\?mac=\$\{netX\/mac\}$/);
  assert.equal(
    p.decide({ ...base, archKind: 'http-x64', isHttpClient: true })?.file,
    'http://10.0.0.1:8080/boot/ipxe.efi',
  );
  assert.equal(
    p.decide({ ...base, isPXE: false, arch: null, archKind: 'unknown', vendorClass: undefined }),
    null,
  );
});

test('the namespace guard refuses the namespace the tests run in, unless production opts in', () => {
  // The unit tests run in the machine's own namespace: the guard must refuse here.
  assert.throws(() => assertNotHostNamespace(), HostNamespaceError);
  assert.equal(assertNotHostNamespace({ allowHostNamespace: true }).how, 'allowed');
});
