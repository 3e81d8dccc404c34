/**
 * Stand-alone entry for the read-only TFTP server, for trying it out and for tests against real clients:
 *
 *   node src/tftp/main.ts --root DIR [--root PREFIX=DIR ...] [--listen 127.0.0.1:6969]
 *                         [--max-blksize N] [--max-windowsize N] [--timeout-ms N] [--min-timeout-ms N]
 *                         [--retries N]
 *
 * `--root DIR` serves DIR at the top; `--root ipxe/=DIR` mounts DIR under the prefix `ipxe/`. One JSON log
 * line per finished transfer on stderr. Prints `listening ADDRESS:PORT` on stdout once bound (tests wait for
 * it). SIGINT/SIGTERM stop it cleanly. `strata up` wires the server itself; this is only the thin shell.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../core/log.ts';
import { TftpServer } from './server.ts';
import { DirectorySource, type FileSource, mountSources } from './source.ts';

const { values } = parseArgs({
  options: {
    root: { type: 'string', multiple: true },
    listen: { type: 'string', default: '0.0.0.0:69' },
    'max-blksize': { type: 'string' },
    'max-windowsize': { type: 'string' },
    'timeout-ms': { type: 'string' },
    'min-timeout-ms': { type: 'string' },
    retries: { type: 'string' },
  },
});

const log = createLogger({ component: 'tftp' });

function fail(msg: string): never {
  process.stderr.write(msg + '\n');
  process.exit(2);
}

const roots = values.root ?? [];
if (roots.length === 0) fail('usage: main.ts --root DIR [--root PREFIX=DIR ...] [--listen ADDRESS:PORT]');

const sources = roots.map((r) => {
  const eq = r.indexOf('=');
  const prefix = eq === -1 ? '' : r.slice(0, eq);
  const dir = eq === -1 ? r : r.slice(eq + 1);
  return { prefix, source: new DirectorySource(dir, { logger: log }) as FileSource };
});

const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(values.listen);
if (!m) fail(`--listen wants ADDRESS:PORT, got ${values.listen}`);

const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));

const server = new TftpServer({
  source: sources.length === 1 && sources[0]!.prefix === '' ? sources[0]!.source : mountSources(sources),
  address: m[1]!,
  port: Number(m[2]),
  logger: log,
  maxBlksize: num(values['max-blksize']),
  maxWindowsize: num(values['max-windowsize']),
  timeoutMs: num(values['timeout-ms']),
  minTimeoutMs: num(values['min-timeout-ms']),
  retries: num(values.retries),
  observer: {
    onTransfer: (s) => (s.ok ? log.info('transfer', { ...s }) : log.warn('transfer', { ...s })),
  },
});

const bound = await server
  .start()
  .catch((err: Error) => fail(`cannot listen on ${values.listen}: ${err.message}`));
process.stdout.write(`listening ${bound.address}:${bound.port}\n`);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void server.stop().then(() => process.exit(0));
  });
}
