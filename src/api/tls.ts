/**
 * The API's TLS certificate: one supplied (`--tls-cert`/`--tls-key`), or a self-signed one made on first
 * start and kept in the data directory (`tls/api.crt`, `tls/api.key`, the key 0600), so the fingerprint a
 * client pinned stays valid across restarts.
 *
 * node:crypto makes keys but cannot issue an X.509 certificate, so the certificate is built with node-forge
 * (maintained, pure JavaScript, no global polyfills, unlike @peculiar/x509 which needs reflect-metadata;
 * and no dependence on an `openssl` binary being installed). The key is RSA-2048 from node:crypto: forge
 * signs only with RSA, and RSA is also what every TLS client Strata meets speaks, iPXE's included.
 * The certificate names every address the server may be reached by (loopback, the listen address, the
 * host name), though clients pin its SHA-256 fingerprint rather than trusting names.
 */
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { serialNumber } from '../core/x509.ts';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** SHA-256 of the certificate's DER, `AB:CD:...` as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint: string;
  /** Where they came from, for the start-up message. */
  source: string;
}

export function certFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** Reads a supplied pair and checks that they belong together (a clear error instead of a TLS failure later). */
export function loadTls(certFile: string, keyFile: string): TlsMaterial {
  const read = (f: string, flag: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new Error(`${flag} ${f}: ${(e as Error).message}`);
    }
  };
  const cert = read(certFile, '--tls-cert');
  const key = read(keyFile, '--tls-key');
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch (e) {
    throw new Error(`--tls-cert ${certFile} is not a PEM certificate: ${(e as Error).message}`);
  }
  let ok = false;
  try {
    ok = x.checkPrivateKey(createPrivateKey(key));
  } catch (e) {
    throw new Error(`--tls-key ${keyFile} is not a PEM private key: ${(e as Error).message}`);
  }
  if (!ok)
    throw new Error(`--tls-key ${keyFile} is not the key of --tls-cert ${certFile}: give the matching pair`);
  return { cert, key, fingerprint: x.fingerprint256, source: certFile };
}

/** The names a client may use for this server: loopback, the listen address, this host's names and addresses. */
function subjectNames(listenHost: string): { dns: string[]; ips: string[] } {
  const dns = new Set(['localhost', hostname()]);
  const ips = new Set(['127.0.0.1', '::1']);
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (!a.internal) ips.add(a.address.split('%')[0]!);
  const h = listenHost.replace(/^\[|\]$/g, '');
  if (h && h !== '0.0.0.0' && h !== '::') (/^[\d.]+$|:/.test(h) ? ips : dns).add(h);
  return { dns: [...dns], ips: [...ips] };
}

/**
 * The data directory's certificate, made on first start. It is kept as it is on later starts (even when
 * the listen address changes: the pin, not the names, is what clients check), until someone deletes it.
 */
export function ensureSelfSigned(dataDir: string, listenHost: string): TlsMaterial {
  const dir = join(dataDir, 'tls');
  const certFile = join(dir, 'api.crt');
  const keyFile = join(dir, 'api.key');
  if (existsSync(certFile) && existsSync(keyFile)) {
    chmodSync(keyFile, 0o600);
    return { ...loadTls(certFile, keyFile), source: `${certFile} (made on first start)` };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  // A positive serial in minimal DER (see serialNumber).
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 10 * 365 * 24 * 3600_000);
  const subject = [{ name: 'commonName', value: `strata ${hostname()}`.slice(0, 64) }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  const names = subjectNames(listenHost);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...names.dns.map((value) => ({ type: 2, value })),
        ...names.ips.map((ip) => ({ type: 7, ip })),
      ],
    },
  ]);
  cert.sign(
    forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()),
    forge.md.sha256.create(),
  );
  const certPem = forge.pki.certificateToPem(cert);
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  writeFileSync(certFile, certPem, { mode: 0o644 });
  return {
    cert: certPem,
    key: keyPem,
    fingerprint: certFingerprint(certPem),
    source: `${certFile} (made now)`,
  };
}

/**
 * Whether the API serves HTTPS: as `--tls`/`--no-tls` say, else when a certificate is supplied or the
 * listen address is not loopback (plain HTTP stays the default only where nothing crosses a wire).
 */
export function wantsTls(o: { tls?: boolean; tlsCert?: string; listen: string }): boolean {
  return o.tls ?? (!!o.tlsCert || !isLoopback(o.listen.replace(/:\d+$/, '')));
}

/** Whether an address is loopback only: plain HTTP stays the default there, TLS elsewhere. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}
