/**
 * A cluster's PKI, made by Strata the way kubeadm lays it out: the cluster CA (it also signs kubelet client
 * certificates through the controller-manager's CSR signer), the API server's serving certificate, the
 * front-proxy CA and client (aggregation), the service-account signing key, and client certificates for the
 * admin, the controller-manager, the scheduler and the API server's calls to kubelets.
 *
 * Keys are RSA-2048 from node:crypto; certificates are built with node-forge because node:crypto cannot
 * issue X.509 (the same choice as src/api/tls.ts). The whole set is one sealed secret record (protocol.ts);
 * only certificates and fingerprints ever reach a status. The serving certificate is re-issued when the
 * names it must carry change (a new endpoint or control-plane address); the CAs live ten years.
 */
import { generateKeyPair as genKeyPair, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { intToIp, ipToInt, parseCidr } from '../core/resources/fields.ts';
import { serialNumber } from '../core/x509.ts';

const generateKeyPair = promisify(genKeyPair);

export interface KeyPair {
  cert: string;
  key: string;
}

export interface ClusterPki {
  ca: KeyPair;
  frontProxyCa: KeyPair;
  frontProxyClient: KeyPair;
  apiserver: KeyPair;
  apiserverKubeletClient: KeyPair;
  admin: KeyPair;
  controllerManager: KeyPair;
  scheduler: KeyPair;
  /** The service-account token signing key (PKCS#8) and its public half (SPKI). */
  serviceAccount: { key: string; pub: string };
  /** The names in `apiserver` (sorted), to see when it must be re-issued. */
  apiserverNames: string[];
}

const YEAR = 365 * 24 * 3600_000;

async function rsa(): Promise<{ keyPem: string; pubPem: string }> {
  const { privateKey, publicKey } = await generateKeyPair('rsa', { modulusLength: 2048 });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    pubPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

interface CertOptions {
  cn: string;
  o?: string;
  ca?: boolean;
  server?: boolean;
  client?: boolean;
  names?: string[];
  years: number;
}

async function issue(opts: CertOptions, signer?: KeyPair): Promise<KeyPair> {
  const { keyPem, pubPem } = await rsa();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pubPem);
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(Date.now() - 5 * 60_000);
  cert.validity.notAfter = new Date(Date.now() + opts.years * YEAR);
  const subject: forge.pki.CertificateField[] = [{ name: 'commonName', value: opts.cn }];
  if (opts.o) subject.push({ name: 'organizationName', value: opts.o });
  cert.setSubject(subject);
  const issuer = signer ? forge.pki.certificateFromPem(signer.cert) : undefined;
  cert.setIssuer(issuer ? issuer.subject.attributes : subject);
  const ext: unknown[] = [{ name: 'basicConstraints', cA: !!opts.ca, critical: true }];
  if (opts.ca)
    ext.push({ name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true, digitalSignature: true });
  else {
    ext.push({ name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true });
    ext.push({ name: 'extKeyUsage', serverAuth: !!opts.server, clientAuth: !!opts.client });
  }
  if (opts.names?.length)
    ext.push({
      name: 'subjectAltName',
      altNames: opts.names.map((n) => (/^[\d.]+$|:/.test(n) ? { type: 7, ip: n } : { type: 2, value: n })),
    });
  ext.push({ name: 'subjectKeyIdentifier' });
  cert.setExtensions(ext as forge.pki.CertificateField[]);
  const signKey = forge.pki.privateKeyFromPem(signer ? signer.key : keyPem);
  cert.sign(signKey as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}

/** The first address of the service network: the `kubernetes` Service's ClusterIP, which the cert names. */
export function kubernetesServiceIp(serviceCIDR: string): string {
  const c = parseCidr(serviceCIDR);
  if (!c) throw new Error(`spec.serviceCIDR ${serviceCIDR} is not an IPv4 network`);
  return intToIp(ipToInt(c.network) + 1);
}

/** Every name the API server may be reached by: its endpoint, control-plane addresses, in-cluster names. */
export function apiserverNames(endpointHosts: string[], serviceCIDR: string): string[] {
  return [
    ...new Set([
      ...endpointHosts,
      kubernetesServiceIp(serviceCIDR),
      '127.0.0.1',
      'localhost',
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ]),
  ].sort();
}

const serving = (names: string[], ca: KeyPair) =>
  issue({ cn: 'kube-apiserver', server: true, names, years: 1 }, ca);

/** A whole new PKI for a cluster. */
export async function createPki(names: string[]): Promise<ClusterPki> {
  const ca = await issue({ cn: 'kubernetes-ca', ca: true, years: 10 });
  const frontProxyCa = await issue({ cn: 'front-proxy-ca', ca: true, years: 10 });
  const sa = await rsa();
  return {
    ca,
    frontProxyCa,
    frontProxyClient: await issue({ cn: 'front-proxy-client', client: true, years: 1 }, frontProxyCa),
    apiserver: await serving(names, ca),
    apiserverKubeletClient: await issue(
      { cn: 'kube-apiserver-kubelet-client', o: 'system:masters', client: true, years: 1 },
      ca,
    ),
    admin: await issue({ cn: 'strata-admin', o: 'system:masters', client: true, years: 1 }, ca),
    controllerManager: await issue({ cn: 'system:kube-controller-manager', client: true, years: 1 }, ca),
    scheduler: await issue({ cn: 'system:kube-scheduler', client: true, years: 1 }, ca),
    serviceAccount: { key: sa.keyPem, pub: sa.pubPem },
    apiserverNames: names,
  };
}

/** The same PKI with a serving certificate for `names`, or the PKI itself when the names did not change. */
export async function withServingNames(pki: ClusterPki, names: string[]): Promise<ClusterPki> {
  if (pki.apiserverNames.join() === names.join()) return pki;
  return { ...pki, apiserver: await serving(names, pki.ca), apiserverNames: names };
}

/** SHA-256 fingerprint of a PEM certificate (`AB:CD:…`), what a status may show of it. */
export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** Checks a stored PKI record's shape, so a damaged record is a clear error and not a TLS failure later. */
export function parsePki(v: unknown, where: string): ClusterPki {
  const p = v as Partial<ClusterPki> | undefined;
  const pairs = [
    'ca',
    'frontProxyCa',
    'frontProxyClient',
    'apiserver',
    'apiserverKubeletClient',
    'admin',
    'controllerManager',
    'scheduler',
  ] as const;
  for (const k of pairs) {
    const kp = p?.[k];
    if (!kp || typeof kp.cert !== 'string' || typeof kp.key !== 'string')
      throw new Error(`${where}: ${k} is missing; delete the record to have Strata make a new PKI`);
    try {
      new X509Certificate(kp.cert);
    } catch (e) {
      throw new Error(`${where}: ${k}.cert is not a PEM certificate (${(e as Error).message})`);
    }
  }
  if (typeof p?.serviceAccount?.key !== 'string' || !Array.isArray(p.apiserverNames))
    throw new Error(`${where}: the service-account key is missing`);
  return p as ClusterPki;
}
