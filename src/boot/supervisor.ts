/**
 * Runs one boot worker per network segment. A segment in a network namespace gets a child process started
 * inside it (`ip netns exec`), joined to this process's transport over its stdin/stdout, which cross
 * namespaces where loopback does not. A segment in the host's own namespace is served in-process only with
 * the explicit opt-in STRATA_DHCP_ALLOW_HOST_NETNS=1, because a DHCP server there answers a whole LAN.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerContext } from '../core/layer.ts';
import { bridgePipe } from '../core/transport/pipe.ts';
import { type NetworkPlacement, subjects } from './protocol.ts';
import { type BootWorker, startBootWorker } from './worker.ts';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');

interface Running {
  placement: NetworkPlacement;
  stop(): Promise<void>;
}

export async function superviseBootWorkers(ctx: WorkerContext): Promise<{ stop(): Promise<void> }> {
  const running = new Map<string, Running>();
  let stopped = false;

  const startChild = (p: NetworkPlacement): Running => {
    let child: ChildProcess | undefined;
    let restarts = 0;
    let timer: NodeJS.Timeout | undefined;
    let halted = false;
    const launch = () => {
      const c = spawn(
        'ip',
        [
          'netns',
          'exec',
          p.namespace!,
          process.execPath,
          MAIN,
          '--network',
          p.name,
          '--data-dir',
          resolve(ctx.dataDir),
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      child = c;
      const bridge = bridgePipe(ctx.transport, c.stdout!, c.stdin!, {
        label: `boot-worker@${p.name}`,
        logger: ctx.log,
      });
      c.on('exit', (code, signal) => {
        void bridge.close();
        if (halted || stopped) return;
        const delay = Math.min(30_000, 500 * 2 ** restarts++);
        ctx.log.warn('boot worker exited; restarting', { network: p.name, code, signal, inMs: delay });
        timer = setTimeout(launch, delay);
      });
    };
    launch();
    return {
      placement: p,
      async stop() {
        halted = true;
        clearTimeout(timer);
        const c = child;
        if (!c || c.exitCode !== null || c.signalCode !== null) return;
        await new Promise<void>((r) => {
          const kill = setTimeout(() => c.kill('SIGKILL'), 5000);
          c.once('exit', () => {
            clearTimeout(kill);
            r();
          });
          c.kill('SIGTERM');
        });
      },
    };
  };

  const startLocal = async (p: NetworkPlacement): Promise<Running | undefined> => {
    if (process.env.STRATA_DHCP_ALLOW_HOST_NETNS !== '1') {
      ctx.log.warn(
        'network has no namespace: not serving it from the host namespace without STRATA_DHCP_ALLOW_HOST_NETNS=1',
        { network: p.name },
      );
      return undefined;
    }
    const w: BootWorker = await startBootWorker({
      network: p.name,
      transport: ctx.transport,
      dataDir: ctx.dataDir,
      log: ctx.log.child({ network: p.name }),
      allowHostNamespace: true,
    });
    return { placement: p, stop: () => w.stop() };
  };

  const sync = async (placements: NetworkPlacement[]) => {
    const want = new Map(placements.map((p) => [p.name, p]));
    for (const [name, r] of running) {
      const p = want.get(name);
      if (!p || p.generation !== r.placement.generation || p.namespace !== r.placement.namespace) {
        running.delete(name);
        await r.stop();
      }
    }
    for (const p of placements) {
      if (running.has(p.name) || stopped) continue;
      try {
        const r = p.namespace ? startChild(p) : await startLocal(p);
        if (r) running.set(p.name, r);
      } catch (err) {
        ctx.log.error('boot worker failed to start', { network: p.name, err });
      }
    }
  };

  let chain = Promise.resolve();
  const enqueue = (ps: NetworkPlacement[]) => {
    chain = chain.then(() => sync(ps)).catch((err) => ctx.log.error('boot supervisor', { err }));
  };
  const sub = await ctx.transport.subscribe<NetworkPlacement[]>(subjects.networksChanged, enqueue);
  // The manager may start later (split over NATS) or be restarting: keep asking until it answers.
  const initial = async () => {
    for (let i = 0; !stopped; i++) {
      try {
        enqueue(await ctx.transport.request(subjects.networks, {}, { timeout: 5000 }));
        return;
      } catch (err) {
        if (i === 5)
          ctx.log.warn('no boot manager answers yet; still asking', { subject: subjects.networks, err });
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** Math.min(i, 5))).unref());
      }
    }
  };
  void initial();
  return {
    async stop() {
      stopped = true;
      await sub.unsubscribe();
      await chain;
      for (const r of running.values()) await r.stop();
      running.clear();
    },
  };
}
