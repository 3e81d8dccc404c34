/**
 * The global-scope shell worker run as a child process inside the network namespace where Strata's overlay
 * endpoint runs (so overlay addresses are reachable from it), bridged to the manager's transport over its
 * stdio and restarted with backoff when it exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ManagerContext, Stoppable } from '../core/layer.ts';
import { bridgePipe } from '../core/transport/pipe.ts';
import { GLOBAL_NETWORK } from './protocol.ts';

/**
 * The global worker as a child process inside `netns`, restarted with backoff when it exits (the
 * namespace may not exist yet: a lab's is made by `strata lab up`).
 */
export function globalWorkerIn(netns: string, ctx: ManagerContext): Stoppable {
  let child: ChildProcess | undefined;
  let stopped = false;
  let restarts = 0;
  let timer: NodeJS.Timeout | undefined;
  const launch = () => {
    const main = join(import.meta.dirname, 'main.ts');
    const c = spawn('ip', ['netns', 'exec', netns, process.execPath, main, '--network', GLOBAL_NETWORK], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child = c;
    const bridge = bridgePipe(ctx.transport, c.stdout!, c.stdin!, {
      label: `shell-worker@${GLOBAL_NETWORK}`,
      logger: ctx.log,
    });
    const started = Date.now();
    c.once('exit', (code, signal) => {
      void bridge.close();
      if (stopped) return;
      if (Date.now() - started > 60_000) restarts = 0;
      const delay = Math.min(30_000, 1000 * 2 ** restarts++);
      ctx.log.warn('the global shell worker exited; restarting', { netns, code, signal, inMs: delay });
      timer = setTimeout(launch, delay);
    });
  };
  launch();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      child?.kill('SIGTERM');
    },
  };
}
