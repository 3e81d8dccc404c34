/**
 * WireGuard keys and files against the real wireguard-tools: a key pair Strata makes with node:crypto is
 * what `wg pubkey` derives, and the rendered wg-quick file is one `wg-quick strip` parses into exactly the
 * `wg setconf` file Strata renders beside it.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { planAllocations } from '../../../src/overlay/ipam.ts';
import { planMembership } from '../../../src/overlay/membership.ts';
import { generateWgKeyPair, wgPublicKey } from '../../../src/overlay/wireguard.ts';
import { suiteCleanup, tempDir } from '../../helpers/strata.ts';
import { overlay } from '../../unit/overlay/fixtures.ts';
import { writeFiles } from './helpers.ts';

const skip =
  spawnSync('sh', ['-c', 'command -v wg && command -v wg-quick']).status === 0
    ? false
    : 'needs wireguard-tools';

describe('WireGuard keys and configs (wireguard-tools)', { skip }, () => {
  const cleanup = suiteCleanup();

  it('makes key pairs that wg pubkey agrees with', () => {
    for (let i = 0; i < 5; i++) {
      const k = generateWgKeyPair();
      assert.equal(
        execFileSync('wg', ['pubkey'], { input: `${k.privateKey}\n`, encoding: 'utf8' }).trim(),
        k.publicKey,
      );
      assert.equal(wgPublicKey(k.privateKey), k.publicKey);
    }
    const fromWg = execFileSync('wg', ['genkey'], { encoding: 'utf8' }).trim();
    assert.equal(
      wgPublicKey(fromWg),
      execFileSync('wg', ['pubkey'], { input: fromWg, encoding: 'utf8' }).trim(),
    );
  });

  it('renders wg-quick files that wg-quick strip turns into the rendered setconf files', () => {
    const o = overlay({
      provider: 'wireguard',
      subnet: '10.78.0.0/24',
      wireguard: { topology: 'hub', hub: 'a' },
    });
    const members = ['a', 'b', 'c'];
    const keys = Object.fromEntries(members.map((n) => [n, generateWgKeyPair()]));
    const plan = planMembership({
      overlay: o,
      members: members.map((n, i) => ({ name: n, underlay: `10.240.0.${11 + i}` })),
      allocations: planAllocations(o.spec, [], members).allocations,
      wireguard: { keys },
    });
    const dir = tempDir(cleanup, 'ovl-wgq-');
    for (const m of plan.members) {
      const quick = m.files.find((f) => f.name === 'wg-quick.conf')!;
      const d = writeFiles(join(dir, m.node), [{ ...quick, name: 'wgovl0.conf' }]);
      const stripped = execFileSync('wg-quick', ['strip', join(d, 'wgovl0.conf')], { encoding: 'utf8' });
      const norm = (s: string) =>
        s
          .split('\n')
          .filter((l) => l.trim() && !l.startsWith('#'))
          .join('\n');
      assert.equal(norm(stripped), norm(m.files.find((f) => f.name === 'wg.conf')!.content), m.node);
    }
  });
});
