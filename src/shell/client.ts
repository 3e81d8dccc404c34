/**
 * The manager's side of the shell: `shellRun` runs a command on a node and returns its result. It resolves
 * the node's target, adds Strata's managed key (read from the store here, in the control plane, and sent
 * only to the segment's worker) and asks that worker over the transport. Managers of states 5 and up call
 * this; they never open SSH themselves.
 */
import type { NodeResource } from '../core/kinds/node.ts';
import type { Store } from '../core/store/types.ts';
import type { Transport } from '../core/transport/types.ts';
import { MANAGED_KEY, privateKeyOf } from '../sshkeys/index.ts';
import type { ShellRequest, ShellResult } from './protocol.ts';
import { type LocalTarget, resolveTarget, type ShellScope } from './target.ts';

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
): Promise<ShellResult & { target: LocalTarget }> {
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
