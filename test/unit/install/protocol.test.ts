import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  installerCmdline,
  parseHostKeys,
  parseInstallConfig,
  parseInstallEvent,
  parseInstalledReport,
  renderInstallConfig,
} from '../../../src/install/protocol.ts';

test('config renders as VERSION=1 and KEY=VALUE lines and parses back', () => {
  const cfg = {
    imageUrl: '/images/debian.tar.zst',
    installedToken: 'tok',
    hostname: 'node1',
    firmware: 'uefi' as const,
    espSizeMiB: 512,
    sshAuthorizedKeys: ['ssh-ed25519 AAAA a@b', 'ssh-rsa BBBB c@d'],
    kernelCmdline: 'console=ttyS0,115200n8 quiet',
  };
  const text = renderInstallConfig(cfg);
  assert.match(text, /^VERSION=1$/m);
  assert.match(text, /^SSH_AUTHORIZED_KEY=ssh-ed25519 AAAA a@b$/m);
  assert.match(text, /^KERNEL_CMDLINE=console=ttyS0,115200n8 quiet$/m);
  assert.deepEqual(parseInstallConfig(text), cfg);
});

test('config parsing follows the agent: CRLF, comments, unknown keys, = in values', () => {
  const c = parseInstallConfig('# hi\r\nVERSION=1\r\nIMAGE_URL=http://x/a.tar.gz?a=b\r\nFOO=bar\r\n\r\n');
  assert.equal(c.imageUrl, 'http://x/a.tar.gz?a=b');
  assert.throws(() => parseInstallConfig('IMAGE_URL=x\n'), /VERSION/);
  assert.throws(() => parseInstallConfig('VERSION=1\n'), /IMAGE_URL/);
});

test('values with newlines are refused', () => {
  assert.throws(() => renderInstallConfig({ imageUrl: 'a\nb', installedToken: 't' }), /single line/);
});

test('kernel command line carries strata.* words and refuses whitespace', () => {
  assert.equal(
    installerCmdline({ url: 'http://10.213.0.1:8080/', node: 'n1', token: 't', onfail: 'poweroff' }),
    'strata.url=http://10.213.0.1:8080/ strata.node=n1 strata.token=t strata.onfail=poweroff',
  );
  assert.throws(() => installerCmdline({ url: 'http://x/', node: 'a b', token: 't' }));
});

test('events, host keys and installed reports parse as the agent sends them', () => {
  assert.deepEqual(parseInstallEvent({ step: 'mkfs', message: 'm' }), {
    step: 'mkfs',
    message: 'm',
    status: 'running',
  });
  assert.throws(() => parseInstallEvent({ step: 'x', message: 'm', status: 'weird' }));
  const keys = parseHostKeys('ssh-ed25519 AAAA root@n1\necdsa-sha2-nistp256 BBBB root@n1\n\ngarbage\n');
  assert.deepEqual(
    keys.map((k) => k.type),
    ['ssh-ed25519', 'ecdsa-sha2-nistp256'],
  );
  const r = parseInstalledReport({
    hostname: 'n1',
    kernel: '6.1.0-50-amd64',
    bootId: 'b',
    machineId: 'm',
    postRebootExit: 0,
    addresses: ['10.213.0.100/24'],
  });
  assert.equal(r.hostname, 'n1');
  assert.throws(() => parseInstalledReport({ hostname: 'n1' }));
});
