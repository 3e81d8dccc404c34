/**
 * The cluster worker's side of a Kubernetes API: a client built on @kubernetes/client-node for what the
 * layer does in a cluster: probe `/readyz`, server-side apply with field manager `strata`, read Nodes,
 * and drain (cordon by apply, evict through the Eviction API so PodDisruptionBudgets hold, delete the
 * Node). Nothing here shells out to kubectl. Kubeconfigs and join tokens are in kubeconfig.ts, which the
 * CLI loads without this client's 900 modules.
 */
import { get as httpsGet } from 'node:https';
import {
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  type V1Node,
  VersionApi,
} from '@kubernetes/client-node';
import { dialOverlayTls } from '../overlay/dial.ts';
import { b64, type Credentials, parseKubeconfig } from './kubeconfig.ts';
import { FIELD_MANAGER } from './protocol.ts';

// --- the client -------------------------------------------------------------------------------------

export interface NodeSummary {
  name: string;
  ready: boolean;
  unschedulable: boolean;
  kubeletVersion?: string;
}

export function summarizeNode(n: V1Node): NodeSummary {
  const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  return {
    name: n.metadata?.name ?? '',
    ready,
    unschedulable: !!n.spec?.unschedulable,
    ...(n.status?.nodeInfo?.kubeletVersion ? { kubeletVersion: n.status.nodeInfo.kubeletVersion } : {}),
  };
}

/** An error from the API server in words: status code, reason and message, never a credential. */
export function apiError(e: unknown, doing: string): Error {
  const x = e as { code?: number; body?: unknown; message?: string; cause?: { code?: string } };
  let msg = x.message ?? String(e);
  if (typeof x.code === 'number') {
    let body: { message?: string; reason?: string } = {};
    try {
      body = typeof x.body === 'string' ? JSON.parse(x.body) : ((x.body as typeof body) ?? {});
    } catch {}
    msg = `HTTP ${x.code}${body.reason ? ` ${body.reason}` : ''}: ${body.message ?? msg.split('\n')[0]}`;
  } else if (x.cause?.code) msg = `${x.cause.code} (${msg})`;
  return new Error(`${doing}: ${msg}`);
}

const tlsOf = (c: Credentials) => ({
  ca: c.caPem,
  ...(c.certPem ? { cert: c.certPem, key: c.keyPem } : {}),
});

/**
 * A KubeConfig whose connections go through the overlay's namespace (src/overlay/dial.ts), used when
 * Strata's overlay endpoint runs in another network namespace (STRATA_OVERLAY_NETNS): the API server's
 * overlay address is reachable only from there.
 */
class OverlayKubeConfig extends KubeConfig {
  private readonly creds: Credentials;
  constructor(creds: Credentials) {
    super();
    this.creds = creds;
  }
  override createDispatcherOptions(
    ...args: Parameters<KubeConfig['createDispatcherOptions']>
  ): ReturnType<KubeConfig['createDispatcherOptions']> {
    const base = super.createDispatcherOptions(...args);
    if (base.type !== 'agent') return base;
    const tls = tlsOf(this.creds);
    const connect = (
      o: { hostname: string; port: string },
      cb: (e: Error | null, s: import('node:net').Socket | null) => void,
    ) => {
      dialOverlayTls(o.hostname.replace(/^\[|\]$/g, ''), Number(o.port || 443), tls).then(
        (s) => cb(null, s),
        (e: Error) => cb(e, null),
      );
    };
    return { ...base, connect } as unknown as ReturnType<KubeConfig['createDispatcherOptions']>;
  }
}

export class ClusterClient {
  readonly kc: KubeConfig;
  readonly server: string;
  private readonly creds: Credentials;
  constructor(creds: Credentials, name = 'cluster') {
    this.server = creds.server;
    this.creds = creds;
    const kc = process.env.STRATA_OVERLAY_NETNS ? new OverlayKubeConfig(creds) : new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name, server: creds.server, caData: b64(creds.caPem), skipTLSVerify: false }],
      users: [
        creds.token
          ? { name: 'user', token: creds.token }
          : { name: 'user', certData: b64(creds.certPem ?? ''), keyData: b64(creds.keyPem ?? '') },
      ],
      contexts: [{ name: 'ctx', cluster: name, user: 'user' }],
      currentContext: 'ctx',
    });
    this.kc = kc;
  }

  static fromKubeconfig(text: string, what?: string): ClusterClient {
    return new ClusterClient(parseKubeconfig(text, what));
  }

  get core(): CoreV1Api {
    return this.kc.makeApiClient(CoreV1Api);
  }

  /** `/readyz` answers "ok": etcd reached, post-start hooks done. Throws with the reason otherwise. */
  ready(timeoutMs = 5000): Promise<void> {
    const c = this.creds;
    return new Promise((resolve, reject) => {
      const req = httpsGet(
        `${this.server}/readyz`,
        {
          ca: c.caPem,
          ...(c.certPem ? { cert: c.certPem, key: c.keyPem } : {}),
          ...(c.token ? { headers: { authorization: `Bearer ${c.token}` } } : {}),
          timeout: timeoutMs,
          ...(process.env.STRATA_OVERLAY_NETNS
            ? {
                // No agent (not `agent: false`, which makes a fresh one): createConnection then dials.
                createConnection: (
                  o: { host?: string | null; port?: number | string | null },
                  cb: (e: Error | null, s: import('node:stream').Duplex) => void,
                ) => {
                  dialOverlayTls(String(o.host), Number(o.port || 443), tlsOf(c)).then(
                    (s) => cb(null, s),
                    (e: Error) => cb(e, undefined as unknown as import('node:stream').Duplex),
                  );
                  return undefined;
                },
              }
            : {}),
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => {
            body += d;
          });
          res.on('end', () =>
            res.statusCode === 200 && body.trim() === 'ok'
              ? resolve()
              : reject(
                  new Error(
                    `API server ${this.server} not ready: HTTP ${res.statusCode} ${body.trim().split('\n').slice(-3).join(' ')}`,
                  ),
                ),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
      req.on('error', (e) => reject(apiError(e, `API server ${this.server} not reachable`)));
    });
  }

  async version(): Promise<string> {
    try {
      return (await this.kc.makeApiClient(VersionApi).getCode()).gitVersion;
    } catch (e) {
      throw apiError(e, 'reading the API server version');
    }
  }

  /** Server-side apply, field manager `strata`, taking over fields another manager set. */
  async apply(objects: KubernetesObject[]): Promise<void> {
    const api = KubernetesObjectApi.makeApiClient(this.kc);
    for (const o of objects) {
      try {
        await api.patch(o, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
      } catch (e) {
        throw apiError(
          e,
          `applying ${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`,
        );
      }
    }
  }

  async deleteIfPresent(o: KubernetesObject): Promise<boolean> {
    try {
      await KubernetesObjectApi.makeApiClient(this.kc).delete(o);
      return true;
    } catch (e) {
      if ((e as { code?: number }).code === 404) return false;
      throw apiError(e, `deleting ${o.kind} ${o.metadata?.name}`);
    }
  }

  async nodes(): Promise<NodeSummary[]> {
    try {
      return (await this.core.listNode()).items.map(summarizeNode);
    } catch (e) {
      throw apiError(e, 'listing Nodes');
    }
  }

  /**
   * Drains and removes a Node: cordon (server-side apply of spec.unschedulable), evict every pod on it
   * but DaemonSet and mirror pods through the Eviction API (a PodDisruptionBudget that refuses is
   * retried until `timeoutMs`), then delete the Node object. Returns how many pods were evicted.
   */
  async drainAndDelete(node: string, timeoutMs = 120_000): Promise<number> {
    const core = this.core;
    try {
      await core.readNode({ name: node });
    } catch (e) {
      if ((e as { code?: number }).code === 404) return 0;
      throw apiError(e, `reading Node ${node}`);
    }
    await this.apply([
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: node },
        spec: { unschedulable: true },
      } as KubernetesObject,
    ]);
    const deadline = Date.now() + timeoutMs;
    const evicted = new Set<string>();
    for (;;) {
      const pods = (
        await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` }).catch((e) => {
          throw apiError(e, `listing pods on ${node}`);
        })
      ).items.filter(
        (p) =>
          !p.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet') &&
          !p.metadata?.annotations?.['kubernetes.io/config.mirror'],
      );
      if (!pods.length) break;
      if (Date.now() > deadline)
        throw new Error(
          `draining ${node}: ${pods.length} pod(s) still there after ${timeoutMs / 1000} s (a PodDisruptionBudget?)`,
        );
      for (const p of pods) {
        const name = p.metadata!.name!;
        const namespace = p.metadata!.namespace!;
        try {
          await core.createNamespacedPodEviction({
            name,
            namespace,
            body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } },
          });
          evicted.add(`${namespace}/${name}`);
        } catch (e) {
          const code = (e as { code?: number }).code;
          if (code !== 404 && code !== 429) throw apiError(e, `evicting ${namespace}/${name}`);
        }
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    try {
      await core.deleteNode({ name: node });
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw apiError(e, `deleting Node ${node}`);
    }
    return evicted.size;
  }

  /**
   * Whether a join token is accepted: the API server answers a SelfSubjectReview for it. A rejected one
   * (rotated away, expired) is an error saying so.
   */
  async whoAmI(): Promise<{ username: string; groups: string[] }> {
    const api = KubernetesObjectApi.makeApiClient(this.kc);
    try {
      const r = (await api.create({
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'SelfSubjectReview',
        metadata: {},
      } as KubernetesObject)) as KubernetesObject & {
        status?: { userInfo?: { username?: string; groups?: string[] } };
      };
      return { username: r.status?.userInfo?.username ?? '', groups: r.status?.userInfo?.groups ?? [] };
    } catch (e) {
      throw apiError(e, 'asking the API server who this is');
    }
  }
}

/** Checks a join token against the cluster; a rejected token is an error naming it and the fix. */
export async function verifyJoinToken(server: string, caPem: string, token: string): Promise<string> {
  const id = token.split('.')[0] ?? '?';
  try {
    return (await new ClusterClient({ server, caPem, token }).whoAmI()).username;
  } catch (e) {
    if (/HTTP 401/.test((e as Error).message))
      throw new Error(
        `join token "${id}" was refused by the API server at ${server} (HTTP 401): it was rotated or has expired; the node must join with the cluster's current token ("strata describe cluster" shows its id)`,
      );
    throw e;
  }
}
