/**
 * Strata's TFTP server or HTTP boot handler on its own, as benchmarks run them inside a namespace:
 *   node bench/serve.ts tftp ROOT PORT        (src/tftp/server.ts with a DirectorySource)
 *   node bench/serve.ts http ROOT PORT [N]    (src/ipxe/http.ts: /boot/ipxe?mac=… and /artifacts/…)
 * Prints `ready` once listening. The script resolver answers a fixed chain script, so the figure is the
 * serving path's, not a decision's (the boot storm measures decisions through `strata up`). With N > 1
 * the HTTP handler runs in N processes listening on one port with SO_REUSEPORT (the kernel spreads the
 * connections), to measure what every core gives against nginx's worker per core.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createBootHttpHandler } from '../src/ipxe/http.ts';
import { TftpServer } from '../src/tftp/server.ts';
import { DirectorySource } from '../src/tftp/source.ts';

const [mode, root, portText, workersText = '1'] = process.argv.slice(2);
const workers = Number(workersText);
if (!root || !portText || (mode !== 'tftp' && mode !== 'http') || !(workers >= 1)) {
  process.stderr.write('usage: serve.ts tftp|http ROOT PORT [WORKERS]\n');
  process.exit(2);
}
const port = Number(portText);
const children: ChildProcess[] = [];
if (mode === 'tftp') {
  const server = new TftpServer({ source: new DirectorySource(root), port, address: '0.0.0.0' });
  await server.start();
} else if (workers > 1) {
  for (let i = 0; i < workers; i++) {
    const child = fork(import.meta.filename, ['http', root, portText, '1'], {
      env: { ...process.env, STRATA_BENCH_REUSEPORT: '1' },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    children.push(child);
    await once(child.stdout!, 'data');
  }
} else {
  const handler = createBootHttpHandler({
    artifactsDir: root,
    resolveScript: async ({ mac }) => ({ script: `#!ipxe\nchain /artifacts/kernel?mac=${mac}\n` }),
  });
  const reusePort = process.env.STRATA_BENCH_REUSEPORT === '1';
  // A worker of a multi-process server goes with its parent, however the parent ended.
  process.on('disconnect', () => process.exit(0));
  await new Promise<void>((r) => createServer(handler).listen({ port, host: '0.0.0.0', reusePort }, r));
}
process.on('SIGTERM', () => {
  for (const c of children) c.kill('SIGTERM');
  process.exit(0); // a clean exit, so --cpu-prof writes its profile
});
process.stdout.write('ready\n');
