/**
 * The shell layer: the one way Strata runs anything on a node. `shellRun` (client.ts) runs a command for a
 * manager and `shellDistribute` delivers a distributable (distributable.ts); the exec stream (exec.ts) gives
 * `strata ssh` an interactive session through the API; the segment's shell worker (worker.ts, hosted by
 * that segment's boot worker process) runs OpenSSH with pinned host keys (ssh.ts), with timeouts, a
 * concurrency limit and retries. Targets resolve to the local scope (LAN address via the segment's worker)
 * or, once a node is on an overlay, the global scope (target.ts): the manager hosts that global worker
 * itself, because Strata's overlay endpoint (its Nebula lighthouse) runs in the manager's process too.
 */
import type { Layer } from '../core/layer.ts';
import { addExecRoute } from './exec.ts';
import { globalWorkerIn } from './global.ts';
import { GLOBAL_NETWORK } from './protocol.ts';
import { addDistributeRoute } from './routes.ts';
import { serveShell } from './worker.ts';

export { localRegistryUrl, shellDistribute, shellRun } from './client.ts';
export type { Distributable, DistributableManifest, DistributableResult } from './distributable.ts';
export type { ShellRequest, ShellResult } from './protocol.ts';
export { GLOBAL_NETWORK } from './protocol.ts';
export { GlobalScopeNotImplemented, resolveTarget } from './target.ts';
export { serveShell } from './worker.ts';

export interface ShellLayerOptions {
  /**
   * Serve the global scope from the manager (default). Off where the overlay endpoint runs elsewhere
   * (another machine): run `src/shell/main.ts --network _global` there instead.
   */
  globalWorker?: boolean;
  /**
   * The network namespace Strata's overlay endpoint runs in (default: STRATA_OVERLAY_NETNS, as the overlay
   * layer's lighthouse uses it): the global worker then runs as a child process inside it.
   */
  globalNetns?: string;
}

export function shellLayerWith(opts: ShellLayerOptions = {}): Layer {
  return {
    name: 'shell',
    roles: [],
    async manager(ctx) {
      addExecRoute(ctx);
      addDistributeRoute(ctx);
      if (opts.globalWorker === false) return undefined;
      const netns = opts.globalNetns ?? process.env.STRATA_OVERLAY_NETNS;
      if (netns) return globalWorkerIn(netns, ctx);
      const global = await serveShell(
        ctx.transport,
        GLOBAL_NETWORK,
        ctx.log.child({ component: 'shell-global' }),
      );
      return { stop: () => global.stop() };
    },
  };
}

export const shellLayer: Layer = shellLayerWith();
