/**
 * Strata's TFTP server or the boot worker's HTTP server on its own, as benchmarks run them inside a namespace:
 *   node bench/serve.ts tftp ROOT PORT [N]    (src/tftp/server.ts with a DirectorySource, transfers in N processes)
 *   node bench/serve.ts http ROOT PORT [N] [node|nginx]
 *                                             (src/boot/http.ts: /boot/ipxe?mac=… and /artifacts/…)
 * Prints `ready` once listening; in tftp mode a line `stats` on stdin prints the server's counters so far
 * (retransmits, duplicate ACKs, failed transfers) as one JSON line. HTTP is the boot worker's own server (`serveHttp`, as a segment's worker
 * runs it) in N processes sharing the port (spec.boot.httpProcesses; 1 = the worker alone), over an
 * in-process transport whose script subject answers a fixed chain script, so the figure is the serving
 * path's — the IPC from the other processes included — not a decision's (the boot storm measures
 * decisions through `strata up`). With `nginx` (spec.boot.artifactServer), the worker's own nginx takes the
 * port with N worker processes, serves /artifacts/ and passes the scripts to the worker's server.
 *   node bench/serve.ts floor ROOT PORT [N]   (Node's floor: node:http in N processes on one port)
 *   node bench/serve.ts tftp-floor ROOT PORT [N]
 *                                             (Node's TFTP floor: bare dgram lock-step in N processes)
 * `tftp-floor` serves ROOT/undionly.kpxe from memory, one block per ACK, on connected sockets, with the
 * blksize OACK and nothing else (no windowsize, timers, retransmission, logging or accounting; a lost
 * datagram is recovered only by the client's own re-sent ACK) in N processes sharing the port
 * (SO_REUSEPORT): the most a Node TFTP server answers here, to read Strata's rows against.
 * `floor` answers `/boot/ipxe?mac=…` with the same bytes the script subject above answers, from a bare
 * node:http handler (no routing, no decision, no IPC): what no Node server can beat on this machine, so
 * the script rows can be read against it.
 */
import { fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { serveHttp } from '../src/boot/http.ts';
import { type BootConfig, type BootScriptRequest, subjects } from '../src/boot/protocol.ts';
import { networkSpec } from '../src/core/kinds/network.ts';
import { createLogger } from '../src/core/log.ts';
import { registry } from '../src/core/metrics.ts';
import { InprocTransport } from '../src/core/transport/inproc.ts';
import { decode, encodeOack, MAX_BLKSIZE, OPCODE, writeDataHeader } from '../src/tftp/codec.ts';
import { transferCores } from '../src/tftp/cores.ts';
import { TftpServer, transferSettings } from '../src/tftp/server.ts';
import { DirectorySource } from '../src/tftp/source.ts';

const [mode, root, portText, workersText = '1', artifactServer = 'node'] = process.argv.slice(2);
const workers = Number(workersText);
if (
  !root ||
  !portText ||
  (mode !== 'tftp' && mode !== 'http' && mode !== 'floor' && mode !== 'tftp-floor') ||
  !(workers >= 1) ||
  (artifactServer !== 'node' && artifactServer !== 'nginx')
) {
  process.stderr.write('usage: serve.ts tftp|http|floor|tftp-floor ROOT PORT [WORKERS] [node|nginx]\n');
  process.exit(2);
}
const port = Number(portText);
let stop = async () => {};
/** Forks the N children of a floor mode and waits until each is listening. */
async function floorChildren(): Promise<void> {
  const children = Array.from({ length: workers }, () =>
    fork(import.meta.filename, process.argv.slice(2), {
      execArgv: [],
      env: { ...process.env, STRATA_BENCH_FLOOR_CHILD: '1' },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  );
  await Promise.all(children.map((c) => new Promise((r) => c.once('message', r))));
  stop = async () => {
    for (const c of children) c.kill('SIGKILL');
  };
}
if (mode === 'tftp-floor') {
  if (process.env.STRATA_BENCH_FLOOR_CHILD) {
    process.on('disconnect', () => process.exit(0));
    const file = readFileSync(join(root, 'undionly.kpxe'));
    const listener = createSocket({ type: 'udp4', reusePort: true });
    listener.on('message', (msg, rinfo) => {
      let q: ReturnType<typeof decode>;
      try {
        q = decode(msg);
      } catch {
        return;
      }
      if (q.type !== 'rrq') return;
      const blksize = Math.min(MAX_BLKSIZE, Number(q.options.get('blksize') ?? 512) || 512);
      const blocks = Math.floor(file.length / blksize) + 1;
      const t = createSocket('udp4');
      const send = (block: number) => {
        const header = Buffer.allocUnsafe(4);
        writeDataHeader(header, block);
        const from = (block - 1) * blksize;
        t.send([header, file.subarray(from, Math.min(file.length, from + blksize))]);
      };
      t.on('message', (m) => {
        if (m.length < 4 || m.readUInt16BE(0) !== OPCODE.ACK) return;
        const next = m.readUInt16BE(2) + 1;
        if (next > blocks) t.close();
        else send(next);
      });
      t.connect(rinfo.port, rinfo.address, () => {
        if (q.options.has('blksize')) t.send(encodeOack([['blksize', String(blksize)]]));
        else send(1);
      });
    });
    listener.bind(port, '0.0.0.0', () => process.send!('ready'));
  } else await floorChildren();
} else if (mode === 'floor') {
  const answer = (url: string) =>
    `#!ipxe\nchain /artifacts/kernel?mac=${new URL(url, 'http://x').searchParams.get('mac')}\n`;
  if (process.env.STRATA_BENCH_FLOOR_CHILD) {
    process.on('disconnect', () => process.exit(0));
    const server = createHttpServer((req, res) => {
      const body = answer(req.url ?? '/');
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    server.listen({ port, host: '0.0.0.0', reusePort: true }, () => process.send!('ready'));
  } else await floorChildren();
} else if (mode === 'tftp') {
  // N > 1: the transfers in N processes, as a segment's worker runs them (src/boot/tftp.ts).
  const settings = { address: '0.0.0.0' };
  const cores =
    workers > 1
      ? transferCores({
          count: workers,
          dirs: [{ root }],
          settings: transferSettings(settings),
          log: createLogger({ component: 'bench-serve' }),
        })
      : undefined;
  const server = new TftpServer({
    ...settings,
    source: new DirectorySource(root),
    port,
    ...(cores ? { host: cores } : {}),
  });
  await server.start();
  stop = async () => {
    await server.stop();
    await cores?.stop();
  };
  // `stats` on stdin: the server's counters so far, as one JSON line (the benchmark takes differences).
  createInterface({ input: process.stdin }).on('line', async (line) => {
    if (line.trim() !== 'stats') return;
    const value = async (name: string, labels: Record<string, string> = {}) =>
      ((await registry.getSingleMetric(name)?.get())?.values ?? [])
        .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
        .reduce((a, v) => a + v.value, 0);
    const stats = {
      retransmits: await value('strata_tftp_retransmits_total'),
      duplicateAcks: await value('strata_tftp_duplicate_acks_total'),
      failed: await value('strata_tftp_transfers_total', { result: 'error' }),
    };
    process.stdout.write(`${JSON.stringify(stats)}\n`);
  });
} else {
  const transport = new InprocTransport();
  await transport.serve(subjects.script, async (q: BootScriptRequest) => ({
    script: `#!ipxe\nchain /artifacts/kernel?mac=${q.mac}\n`,
  }));
  // Beside ROOT (the benchmark's scratch directory), so it goes with it however this process ends.
  const dataDir = mkdtempSync(join(dirname(root), 'serve-'));
  const parsed = networkSpec.parse({
    interface: 'lo',
    subnet: '10.68.0.0/24',
    serverAddress: '10.68.0.1',
    boot: { httpPort: port, httpProcesses: workers, artifactServer },
  });
  const spec = { ...parsed, serverAddress: '0.0.0.0' };
  const cfg: BootConfig = { network: 'bench', spec, reservations: [], knownMacs: [], hosts: [], relays: [] };
  const http = await serveHttp(
    {
      network: 'bench',
      spec,
      transport,
      log: createLogger({ component: 'bench-serve' }),
      dataDir,
      httpBase: `http://10.68.0.1:${port}`,
      artifacts: root,
      ipxeDir: join(root, 'ipxe'),
      report: () => {},
    },
    cfg,
  );
  await http.ready;
  stop = async () => {
    await http.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
}
process.on('SIGTERM', () => {
  // A clean exit, so --cpu-prof writes its profile; the other HTTP processes leave with their channel.
  void stop().finally(() => process.exit(0));
});
if (!process.env.STRATA_BENCH_FLOOR_CHILD) process.stdout.write('ready\n');
