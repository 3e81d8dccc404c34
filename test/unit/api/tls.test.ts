/**
 * When the API serves HTTPS by default (loopback: plain HTTP for the local quick start; any other
 * address: TLS), and the certificate made on first start: kept across starts, key 0600, names loopback.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ensureSelfSigned, wantsTls } from '../../../src/api/tls.ts';

describe('API TLS', () => {
  it('is on by default off loopback, off on loopback, and the flags decide when given', () => {
    assert.equal(wantsTls({ listen: '127.0.0.1:7420' }), false);
    assert.equal(wantsTls({ listen: '[::1]:7420' }), false);
    assert.equal(wantsTls({ listen: 'localhost:7420' }), false);
    assert.equal(wantsTls({ listen: '0.0.0.0:7420' }), true);
    assert.equal(wantsTls({ listen: '10.0.0.5:7420' }), true);
    assert.equal(wantsTls({ listen: '[::]:7420' }), true);
    assert.equal(wantsTls({ listen: '0.0.0.0:7420', tls: false }), false);
    assert.equal(wantsTls({ listen: '127.0.0.1:7420', tls: true }), true);
    assert.equal(wantsTls({ listen: '127.0.0.1:7420', tlsCert: 'site.crt' }), true);
  });

  it('makes a certificate once, keeps it, with a 0600 key and loopback among its names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'authz-tls-unit-'));
    try {
      const a = ensureSelfSigned(dir, '10.9.8.7');
      const b = ensureSelfSigned(dir, '0.0.0.0');
      assert.equal(b.fingerprint, a.fingerprint, 'the second start keeps the first certificate');
      assert.equal(statSync(join(dir, 'tls', 'api.key')).mode & 0o777, 0o600);
      const x = new X509Certificate(readFileSync(join(dir, 'tls', 'api.crt')));
      assert.equal(x.fingerprint256, a.fingerprint);
      assert.ok(x.checkIP('127.0.0.1') && x.checkIP('10.9.8.7') && x.checkHost('localhost'));
      assert.ok(x.verify(x.publicKey), 'self-signed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
