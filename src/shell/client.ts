/**
 * The manager's side of the shell: `shellRun` runs a command on a node and returns its result;
 * `shellDistribute` applies (or undoes) a distributable on it. Both resolve the node's target, add Strata's
 * managed key (read from the store here, in the control plane, and sent only to the worker that runs the
 * call) and ask that worker over the transport. Managers of states 5 and up call these; they never open SSH
 * themselves.
 */
import type { NetworkResource } from '../core/kinds/network.ts';
import type { NodeResource } from '../core/kinds/node.ts';
import type { ResourceService } from '../core/resources/service.ts';
import type { Store } from '../core/store/types.ts';
import type { Transport } from '../core/transport/types.ts';
import { MANAGED_KEY, privateKeyOf } from '../sshkeys/index.ts';
import type {
  Distributable,
  DistributableOp,
  DistributableRequest,
  DistributableResult,
} from './distributable.ts';
import type { ShellRequest, ShellResult } from './protocol.ts';
import { resolveTarget, type ShellScope, type ShellTarget } from './target.ts';

export interface ShellCallOptions {
  scope?: ShellScope;
  user?: string;
  /** The command is ended after this long and reported with its last output. Default 30 s. */
  timeoutMs?: number;
  /** Put the output on the node's timeline under this step. */
  streamStep?: string;
}

/** The managed key's private half, or a clear error while it is not generated yet. */
export async function managedKey(ctx: { store: Store }): Promise<string> {
  const key = await privateKeyOf(ctx, MANAGED_KEY);
  if (!key) throw new Error(`the managed SSH key "${MANAGED_KEY}" is not generated yet`);
  return key;
}

export async function shellRun(
  ctx: { store: Store; transport: Transport },
  node: NodeResource,
  command: string,
  opts: ShellCallOptions = {},
): Promise<ShellResult & { target: ShellTarget }> {
  const target = resolveTarget(node, opts.scope);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const req: ShellRequest = {
    host: target.host,
    port: target.port,
    user: opts.user ?? 'root',
    privateKey: await managedKey(ctx),
    knownHostKeys: target.hostKeys,
    command,
    timeoutMs,
    ...(opts.streamStep ? { stream: { node: target.node, step: opts.streamStep } } : {}),
  };
  // Room for the worker's retries and queueing behind its concurrency limit.
  const r = await ctx.transport.request<ShellRequest, ShellResult>(target.runSubject, req, {
    timeout: timeoutMs * 3 + 30_000,
  });
  return { ...r, target };
}

/**
 * The site's local registry as a node on `network` reaches it: the boot worker's HTTP server on the
 * segment's server address. Undefined when the node names no Network.
 */
export async function localRegistryUrl(
  ctx: { resources: ResourceService },
  node: NodeResource,
): Promise<string | undefined> {
  const name = node.spec.network ?? node.status?.discovered?.network;
  if (!name) return undefined;
  const net = await ctx.resources.get<NetworkResource>('Network', name);
  if (!net) return undefined;
  return `http://${net.spec.serverAddress}:${net.spec.boot?.httpPort ?? 7421}/registry`;
}

export interface DistributeOptions extends Omit<ShellCallOptions, 'user'> {
  op?: DistributableOp;
  /** Default: the local registry of the node's Network. */
  registryUrl?: string;
}

/** Applies (default) or undoes a distributable on a node; see distributable.ts for what runs. */
export async function shellDistribute(
  ctx: { store: Store; transport: Transport; resources: ResourceService },
  node: NodeResource,
  bundle: Distributable,
  opts: DistributeOptions = {},
): Promise<DistributableResult & { target: ShellTarget }> {
  const target = resolveTarget(node, opts.scope);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const registryUrl = opts.registryUrl ?? (await localRegistryUrl(ctx, node));
  const req: DistributableRequest = {
    host: target.host,
    port: target.port,
    user: 'root',
    privateKey: await managedKey(ctx),
    knownHostKeys: target.hostKeys,
    bundle,
    op: opts.op ?? 'apply',
    timeoutMs,
    ...(registryUrl ? { registryUrl } : {}),
    ...(opts.streamStep ? { stream: { node: target.node, step: opts.streamStep } } : {}),
  };
  // Up to four phases, each with the runner's retries and queueing.
  const r = await ctx.transport.request<DistributableRequest, DistributableResult>(
    target.distributeSubject,
    req,
    { timeout: timeoutMs * 12 + 60_000 },
  );
  return { ...r, target };
}
