/**
 * Overlay secrets stay out of logs: the core logger redacts Nebula's private keys (their PEM labels carry
 * digits, "NEBULA X25519 PRIVATE KEY") and WireGuard private keys under their field name, wherever a
 * caller passes them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/core/log.ts';
import { generateWgKeyPair } from '../../../src/overlay/wireguard.ts';

describe('overlay secrets in logs', () => {
  it('are redacted: Nebula keys (X25519 and the CA’s ED25519) and WireGuard private keys', () => {
    const lines: string[] = [];
    const log = createLogger({}, (l) => void lines.push(l));
    const nebulaKey =
      '-----BEGIN NEBULA X25519 PRIVATE KEY-----\nfrCxVaxh9pkHcIphgkf6mUsYPP25kxYs45BnS/MZqeo=\n-----END NEBULA X25519 PRIVATE KEY-----\n';
    const caKey =
      '-----BEGIN NEBULA ED25519 PRIVATE KEY-----\nPbE88aAd8IkMM9cyciJagNrNBxo2Dv+VVM3UOBe2g91q\n-----END NEBULA ED25519 PRIVATE KEY-----\n';
    const wg = generateWgKeyPair();
    log.warn('push failed', { config: `pki:\n  key: |\n    ${nebulaKey}`, ca: { key: caKey }, keys: wg });
    const out = lines.join('\n');
    assert.ok(!out.includes('frCxVaxh9pkHcIphgkf6mUsYPP25kxYs45BnS'), out);
    assert.ok(!out.includes('PbE88aAd8IkMM9cyciJagNrNBxo2Dv'), out);
    assert.ok(!out.includes(wg.privateKey), out);
    assert.ok(out.includes(wg.publicKey), 'public keys may be logged');
  });
});
