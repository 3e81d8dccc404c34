/**
 * The shell layer: the one way Strata runs anything on a node. `shellRun` (client.ts) runs a command for a
 * manager; the exec stream (exec.ts) gives `strata ssh` an interactive session through the API; the
 * segment's shell worker (worker.ts, hosted by that segment's boot worker process) runs OpenSSH with
 * pinned host keys (ssh.ts), with timeouts, a concurrency limit and retries. Targets resolve to the local
 * scope (LAN address via the segment's worker) until state 5 adds the global scope (target.ts).
 */
import type { Layer } from '../core/layer.ts';
import { addExecRoute } from './exec.ts';

export { shellRun } from './client.ts';
export type { ShellRequest, ShellResult } from './protocol.ts';
export { GlobalScopeNotImplemented, resolveTarget } from './target.ts';
export { serveShell } from './worker.ts';

export const shellLayer: Layer = {
  name: 'shell',
  roles: [],
  async manager(ctx) {
    addExecRoute(ctx);
    return undefined;
  },
};
