/**
 * Kubeconfigs (the admin one Strata renders from its PKI, and a parser that turns a damaged one into an
 * error naming the field) and join (bootstrap) tokens. Kept apart from kube.ts's client so that the CLI
 * (`strata bundle`, `strata kubeconfig`) does not load @kubernetes/client-node to render a file: that
 * library alone is some 900 modules, most of a CLI call's start.
 */
import { randomInt, X509Certificate } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { FIELD_MANAGER, MANAGED_BY_LABEL } from './protocol.ts';

// --- join tokens ----------------------------------------------------------------------------------

export interface JoinToken {
  /** Public half: `[a-z0-9]{6}`, shown in status and the Secret's name. */
  id: string;
  /** Secret half: `[a-z0-9]{16}`; the token is `id.secret`. */
  secret: string;
  createdAt: string;
  expires: string;
  /** Ids of the tokens this one replaced, whose Secrets are removed from the cluster. */
  retired: string[];
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const randomText = (n: number) => Array.from({ length: n }, () => ALNUM[randomInt(ALNUM.length)]).join('');

export function newJoinToken(ttlSeconds: number, replaced?: JoinToken): JoinToken {
  const now = Date.now();
  return {
    id: randomText(6),
    secret: randomText(16),
    createdAt: new Date(now).toISOString(),
    // RFC 3339 in whole seconds, as the bootstrap-token Secret's `expiration` is written.
    expires: new Date(now + ttlSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    retired: replaced ? [...replaced.retired, replaced.id].slice(-8) : [],
  };
}

/** Whether a token is due for rotation: a third of its life left, or past it. */
export function tokenDue(t: JoinToken, now = Date.now()): boolean {
  const start = Date.parse(t.createdAt);
  const end = Date.parse(t.expires);
  return now >= end - (end - start) / 3;
}

/** The bootstrap-token Secret the API server authenticates the token against (kube-system). */
export function bootstrapTokenSecret(
  t: JoinToken,
  group: string,
): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: `bootstrap-token-${t.id}`,
      namespace: 'kube-system',
      labels: { [MANAGED_BY_LABEL]: FIELD_MANAGER },
    },
    type: 'bootstrap.kubernetes.io/token',
    // `data`, not `stringData`: server-side apply then owns exactly the fields it sent.
    data: Object.fromEntries(
      Object.entries({
        'token-id': t.id,
        'token-secret': t.secret,
        expiration: t.expires,
        'usage-bootstrap-authentication': 'true',
        'usage-bootstrap-signing': 'true',
        'auth-extra-groups': group,
        description: 'join token made by Strata',
      }).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
  };
}

// --- kubeconfigs ----------------------------------------------------------------------------------

export interface Credentials {
  server: string;
  caPem: string;
  /** A client certificate and key, or a bearer token (a join token). */
  certPem?: string;
  keyPem?: string;
  token?: string;
}

export const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A kubeconfig kubectl accepts, with everything inline (one file to hand over). */
export function renderKubeconfig(cluster: string, user: string, c: Credentials): string {
  const userEntry: Record<string, string> = c.token
    ? { token: c.token }
    : { 'client-certificate-data': b64(c.certPem ?? ''), 'client-key-data': b64(c.keyPem ?? '') };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: c.server, 'certificate-authority-data': b64(c.caPem) } }],
    users: [{ name: user, user: userEntry }],
    contexts: [{ name: `${user}@${cluster}`, context: { cluster, user } }],
    'current-context': `${user}@${cluster}`,
  });
}

/** A PEM block decoded from a kubeconfig's base64 `*-data` field, or an error naming the field. */
function pemField(v: unknown, field: string, label: 'CERTIFICATE' | 'PRIVATE KEY'): string {
  if (typeof v !== 'string' || !v) throw new Error(`${field} is missing`);
  if (!/^[A-Za-z0-9+/=\s]+$/.test(v)) throw new Error(`${field} is not base64`);
  const pem = Buffer.from(v, 'base64').toString('utf8');
  if (!pem.includes(`-----BEGIN `) || !pem.includes(label.split(' ').at(-1)!))
    throw new Error(`${field} does not decode to a PEM ${label.toLowerCase()}`);
  if (label === 'CERTIFICATE') {
    try {
      new X509Certificate(pem);
    } catch (e) {
      throw new Error(`${field} is not a valid certificate (${(e as Error).message})`);
    }
  }
  return pem;
}

/**
 * Reads a kubeconfig's current context into credentials. Every failure says which field of which
 * kubeconfig is wrong, instead of a TLS or YAML error from deep inside a request.
 */
export function parseKubeconfig(text: string, what = 'kubeconfig'): Credentials {
  const fail = (m: string): never => {
    throw new Error(`${what} is not usable: ${m}; get a fresh one with "strata kubeconfig CLUSTER"`);
  };
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (e) {
    return fail(`not YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (!doc || typeof doc !== 'object') return fail('not a YAML mapping');
  const ctxName = doc['current-context'];
  if (typeof ctxName !== 'string' || !ctxName) return fail('current-context is missing');
  const find = (list: unknown, name: unknown, field: string) => {
    const hit = Array.isArray(list)
      ? (list as { name?: unknown }[]).findIndex((e) => e && e.name === name)
      : -1;
    if (hit < 0) fail(`${field} has no entry named ${JSON.stringify(name)}`);
    return { entry: (list as Record<string, Record<string, unknown>>[])[hit]!, at: `${field}[${hit}]` };
  };
  const ctx = find(doc.contexts, ctxName, 'contexts');
  const cl = find(doc.clusters, ctx.entry.context?.cluster, 'clusters');
  const us = find(doc.users, ctx.entry.context?.user, 'users');
  const c = cl.entry.cluster ?? {};
  const u = us.entry.user ?? {};
  try {
    const server = c.server;
    if (typeof server !== 'string' || !/^https:\/\/[^/\s]+/.test(server))
      throw new Error(`${cl.at}.cluster.server is not an https:// URL`);
    const out: Credentials = {
      server,
      caPem: pemField(
        c['certificate-authority-data'],
        `${cl.at}.cluster.certificate-authority-data`,
        'CERTIFICATE',
      ),
    };
    if (typeof u.token === 'string' && u.token) out.token = u.token;
    else {
      out.certPem = pemField(
        u['client-certificate-data'],
        `${us.at}.user.client-certificate-data`,
        'CERTIFICATE',
      );
      out.keyPem = pemField(u['client-key-data'], `${us.at}.user.client-key-data`, 'PRIVATE KEY');
    }
    return out;
  } catch (e) {
    return fail((e as Error).message);
  }
}
