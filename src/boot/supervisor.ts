/**
 * Runs one boot worker per network segment. A segment in a network namespace gets a child process started
 * inside it (`ip netns exec`), joined to this process's transport over its stdin/stdout, which cross
 * namespaces where loopback does not. A segment in the host's own namespace is served in-process only with
 * the explicit opt-in STRATA_DHCP_ALLOW_HOST_NETNS=1, because a DHCP server there answers a whole LAN.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerContext } from '../core/layer.ts';
import { bridgePipe } from '../core/transport/pipe.ts';
import { type NetworkPlacement, subjects, type WorkerStatus } from './protocol.ts';
import { type BootWorker, startBootWorker } from './worker.ts';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');
/** Where `ip netns add` puts named namespaces. */
const NETNS_DIR = '/run/netns';

/**
 * Passes a worker's stderr through to ours and remembers its last error: the `msg` and `err` of its last
 * error-level JSON log line, or else its last plain line (e.g. from `ip netns exec` itself), for the
 * Network's status.
 */
function watchStderr(c: ChildProcess): () => string | undefined {
  let last: string | undefined;
  let partial = '';
  c.stderr!.on('data', (b: Buffer) => {
    process.stderr.write(b);
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop()!.slice(-4096);
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        const rec = JSON.parse(line) as { level?: string; msg?: string; err?: { message?: string } };
        if (rec.level === 'error') last = rec.err?.message ? `${rec.msg}: ${rec.err.message}` : rec.msg;
      } catch {
        last = line.trim().slice(0, 500);
      }
    }
  });
  return () => last;
}

interface Running {
  placement: NetworkPlacement;
  stop(): Promise<void>;
}

export async function superviseBootWorkers(ctx: WorkerContext): Promise<{ stop(): Promise<void> }> {
  const running = new Map<string, Running>();
  let stopped = false;

  const status = (network: string, phase: WorkerStatus['phase'], message?: string) =>
    void ctx.transport
      .publish<WorkerStatus>(subjects.workerStatus, { network, phase, ...(message ? { message } : {}) })
      .catch(() => {});

  const startChild = (p: NetworkPlacement): Running => {
    let child: ChildProcess | undefined;
    let restarts = 0;
    let timer: NodeJS.Timeout | undefined;
    let halted = false;
    const retry = (why: string, fields: Record<string, unknown>) => {
      const delay = Math.min(30_000, 500 * 2 ** restarts++);
      ctx.log.warn(why, { network: p.name, ...fields, inMs: delay });
      timer = setTimeout(launch, delay);
    };
    const launch = () => {
      const ns = p.namespace!;
      if (!existsSync(join(NETNS_DIR, ns))) {
        const message =
          `network namespace ${ns} (spec.namespace) does not exist: create it and its interface, ` +
          `e.g. \`ip netns add ${ns}\` (see examples/quickstart.yaml)`;
        status(p.name, 'Failing', message);
        retry('boot worker not started: its namespace does not exist', { namespace: ns });
        return;
      }
      status(p.name, 'Starting', `starting in network namespace ${ns}`);
      const startedAt = Date.now();
      const c = spawn(
        'ip',
        [
          'netns',
          'exec',
          ns,
          process.execPath,
          MAIN,
          '--network',
          p.name,
          '--data-dir',
          resolve(ctx.dataDir),
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      child = c;
      const lastError = watchStderr(c);
      const bridge = bridgePipe(ctx.transport, c.stdout!, c.stdin!, {
        label: `boot-worker@${p.name}`,
        logger: ctx.log,
      });
      c.on('exit', (code, signal) => {
        void bridge.close();
        if (halted || stopped) return;
        if (Date.now() - startedAt > 60_000) restarts = 0;
        const why = lastError() ?? `exited with ${signal ?? `code ${code}`}`;
        status(p.name, 'Failing', why);
        retry('boot worker exited; restarting', { code, signal, error: why });
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
      const message =
        'network has no namespace: not serving it from the host namespace without STRATA_DHCP_ALLOW_HOST_NETNS=1';
      ctx.log.warn(message, { network: p.name });
      status(p.name, 'Failing', `${message}; set spec.namespace to the segment's network namespace`);
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
        status(p.name, 'Failing', err instanceof Error ? err.message : String(err));
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
