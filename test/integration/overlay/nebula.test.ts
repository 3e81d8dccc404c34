/**
 * Strata as the Nebula CA, with Debian's nebula-cert 1.6.1 and a real SQLite store: certificates carry the
 * member's overlay address and groups and are signed by the overlay's CA; the rendered configs pass
 * `nebula -test`; addresses, CA and certificates survive a restart without being re-made; a certificate
 * is re-signed when a third of its lifetime is left, and the CA is replaced the same way with both CAs
 * trusted meanwhile; a member that leaves is blocklisted; and no private key ever reaches the Overlay's
 * status or its timeline.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import type { OverlayStatus } from '../../../src/overlay/kind.ts';
import { createCa, needsRenewal, printCert, signMember } from '../../../src/overlay/nebula.ts';
import { caSecretKey, memberSecretKey, REVOKED_COLLECTION, SECRETS } from '../../../src/overlay/protocol.ts';
import { memberLeft, reconcileOverlay } from '../../../src/overlay/reconcile.ts';
import { suiteCleanup, tempDir } from '../../helpers/strata.ts';
import { harness, writeFiles } from './helpers.ts';

const skip = (() => {
  try {
    execFileSync('nebula-cert', ['-version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'needs nebula-cert (Debian package nebula; scripts/setup.sh installs it)';
  }
})();

const DAY = 86_400_000;
const configOf = (p: { files: { name: string; content: string }[] }) =>
  p.files.find((f) => f.name === 'config.yml')!.content;

describe('Nebula CA and certificates (nebula-cert 1.6.1)', { skip }, () => {
  const cleanup = suiteCleanup();

  it('signs a member certificate with its overlay IP and groups, never past its CA', async () => {
    const ca = await createCa('strata test', 2 * 3600);
    const m = await signMember(ca, {
      name: 'n1',
      ip: '10.77.0.2/24',
      groups: ['strata', 'web'],
      lifetimeSeconds: 10 * 86400,
    });
    const p = await printCert(m.cert);
    assert.deepEqual(p.details.ips, ['10.77.0.2/24']);
    assert.deepEqual(p.details.groups, ['strata', 'web']);
    assert.equal(p.details.name, 'n1');
    assert.equal(p.fingerprint, m.fingerprint);
    assert.match(m.key, /^-----BEGIN NEBULA X25519 PRIVATE KEY-----/);
    assert.ok(Date.parse(m.notAfter) <= Date.parse(ca.notAfter), 'capped to the CA');
    assert.equal(needsRenewal(m), false);
    assert.equal(needsRenewal(m, new Date(Date.parse(m.notAfter) - 60_000)), true);
  });

  it('reconciles an overlay: addresses, CA, certificates kept across a restart, configs nebula accepts, no key in status or timeline', async () => {
    const dir = tempDir(cleanup, 'ovl-nebula-ca-');
    const db = join(dir, 'strata.db');
    const spec = {
      provider: 'nebula',
      subnet: '10.77.0.0/24',
      selector: { matchLabels: { overlay: 'g' } },
      nebula: { lighthouse: { host: '10.240.0.1' }, certificateLifetime: '30d', caLifetime: '365d' },
    };
    let h = harness(cleanup, db);
    for (const [i, n] of ['n1', 'n2', 'n3'].entries())
      await h.apply('Node', n, { ipAddress: `10.240.0.${9 + i}` }, { overlay: 'g' });
    await h.apply('Overlay', 'g', spec);
    const plan = (await reconcileOverlay(h, 'g'))!;
    assert.deepEqual(plan.problems, []);
    const st = (await h.resources.get('Overlay', 'g'))!.status as OverlayStatus;
    assert.equal(st.reservedAddress, '10.77.0.1');
    assert.equal(st.caFingerprints!.length, 1);
    assert.deepEqual(Object.fromEntries(Object.entries(st.members!).map(([k, v]) => [k, v.address])), {
      '@lighthouse': '10.77.0.1',
      n1: '10.77.0.2',
      n2: '10.77.0.3',
      n3: '10.77.0.4',
    });
    for (const [n, m] of Object.entries(st.members!)) {
      const cert = (await h.store.getRecord(SECRETS, memberSecretKey('g', n))) as { cert: string };
      const printed = await printCert(cert.cert);
      assert.equal(printed.fingerprint, m.fingerprint);
      assert.equal(printed.details.issuer, st.caFingerprints![0]);
      assert.deepEqual(printed.details.ips, [`${m.address}/24`]);
      assert.deepEqual(printed.details.groups, ['strata']);
    }
    // nebula itself accepts every rendered config.
    for (const p of [plan.lighthouse!, ...plan.members]) {
      const d = writeFiles(join(dir, p.node), p.files);
      execFileSync('nebula', ['-test', '-config', join(d, 'config.yml')], { stdio: 'pipe' });
    }
    // Secrets stay in the secret records.
    await h.hub!.flush();
    const visible = JSON.stringify([st, h.events]);
    assert.ok(!/PRIVATE KEY/.test(visible), 'a private key reached the status or the timeline');
    assert.ok(h.events.some((e) => e.reason === 'CertificateSigned'));

    // A restart: same addresses, same certificates, same CA; nothing re-made.
    await h.store.close();
    h = harness(cleanup, db);
    const again = (await reconcileOverlay(h, 'g'))!;
    const st2 = (await h.resources.get('Overlay', 'g'))!.status as OverlayStatus;
    assert.deepEqual(st2.members, st.members);
    assert.deepEqual(st2.caFingerprints, st.caFingerprints);
    for (const p of again.members) {
      assert.equal(p.digest, plan.members.find((m) => m.node === p.node)!.digest, `${p.node} unchanged`);
    }
    assert.equal(h.events.filter((e) => /Certificate|Ca/.test(e.reason)).length, 0);

    // n3 leaves: its certificate is blocklisted everywhere and its key dropped.
    await h.relabel('Node', 'n3', {});
    const left = (await reconcileOverlay(h, 'g'))!;
    const fp3 = st.members!.n3!.fingerprint!;
    for (const p of [left.lighthouse!, ...left.members])
      assert.deepEqual(parse(configOf(p)).pki.blocklist, [fp3]);
    assert.equal(await h.store.getRecord(SECRETS, memberSecretKey('g', 'n3')), undefined);
    assert.ok(await h.store.getRecord(REVOKED_COLLECTION, `g/${fp3}`));
    await memberLeft(h, 'g', 'n3');
    const st3 = (await h.resources.get('Overlay', 'g'))!.status as OverlayStatus;
    assert.equal(st3.members!.n3?.state, 'leaving'); // until the next reconcile
    await reconcileOverlay(h, 'g');
    const st4 = (await h.resources.get('Overlay', 'g'))!.status as OverlayStatus;
    assert.equal(st4.members!.n3, undefined);
  });

  it('re-signs a certificate when a third of its lifetime is left, and replaces the CA the same way', async () => {
    const h = harness(cleanup);
    await h.apply('Node', 'n1', {}, { overlay: 'r' });
    await h.apply('Overlay', 'r', {
      provider: 'nebula',
      subnet: '10.77.0.0/24',
      selector: { matchLabels: { overlay: 'r' } },
      nebula: { lighthouse: { host: '10.240.0.1' }, certificateLifetime: '1d', caLifetime: '30d' },
    });
    await reconcileOverlay(h, 'r');
    const st0 = (await h.resources.get('Overlay', 'r'))!.status as OverlayStatus;
    const m0 = st0.members!.n1!;

    // 17 hours later (less than 8 h left of 24): re-signed, same address, same CA.
    await reconcileOverlay(h, 'r', new Date(Date.parse(m0.notAfter!) - 7 * 3600_000));
    await h.hub!.flush();
    const st1 = (await h.resources.get('Overlay', 'r'))!.status as OverlayStatus;
    assert.notEqual(st1.members!.n1!.fingerprint, m0.fingerprint);
    assert.equal(st1.members!.n1!.address, m0.address);
    assert.deepEqual(st1.caFingerprints, st0.caFingerprints);
    assert.ok(h.events.some((e) => e.reason === 'CertificateRenewed' && e.message.includes('"n1"')));

    // 21 days later (less than 10 of 30 left): a new CA; members re-signed by it and trusting both.
    const later = new Date(Date.parse(st0.caNotAfter!) - 9 * DAY);
    const plan = (await reconcileOverlay(h, 'r', later))!;
    await h.hub!.flush();
    const st2 = (await h.resources.get('Overlay', 'r'))!.status as OverlayStatus;
    assert.equal(st2.caFingerprints!.length, 2);
    assert.equal(st2.caFingerprints![0], st0.caFingerprints![0]);
    const cert = (await h.store.getRecord(SECRETS, memberSecretKey('r', 'n1'))) as { cert: string };
    assert.equal((await printCert(cert.cert)).details.issuer, st2.caFingerprints![1]);
    const ca = parse(configOf(plan.members[0]!)).pki.ca as string;
    assert.equal(ca.match(/BEGIN NEBULA CERTIFICATE/g)!.length, 2);
    assert.ok(h.events.some((e) => e.reason === 'CaRotated'));
    const cas = (await h.store.getRecord(SECRETS, caSecretKey('r'))) as { cas: unknown[] };
    assert.equal(cas.cas.length, 2);
  });
});
