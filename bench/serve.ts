/**
 * Strata's TFTP server or HTTP boot handler on its own, as benchmarks run them inside a namespace:
 *   node bench/serve.ts tftp ROOT PORT        (src/tftp/server.ts with a DirectorySource)
 *   node bench/serve.ts http ROOT PORT        (src/ipxe/http.ts: /boot/ipxe?mac=… and /artifacts/…)
 * Prints `ready` once listening. The script resolver answers a fixed chain script, so the figure is the
 * serving path's, not a decision's (the boot storm measures decisions through `strata up`).
 */
import { createServer } from 'node:http';
import { createBootHttpHandler } from '../src/ipxe/http.ts';
import { TftpServer } from '../src/tftp/server.ts';
import { DirectorySource } from '../src/tftp/source.ts';

const [mode, root, portText] = process.argv.slice(2);
if (!root || !portText || (mode !== 'tftp' && mode !== 'http')) {
  process.stderr.write('usage: serve.ts tftp|http ROOT PORT\n');
  process.exit(2);
}
const port = Number(portText);
if (mode === 'tftp') {
  const server = new TftpServer({ source: new DirectorySource(root), port, address: '0.0.0.0' });
  await server.start();
} else {
  const handler = createBootHttpHandler({
    artifactsDir: root,
    resolveScript: async ({ mac }) => ({ script: `#!ipxe\nchain /artifacts/kernel?mac=${mac}\n` }),
  });
  await new Promise<void>((r) => createServer(handler).listen(port, '0.0.0.0', r));
}
process.on('SIGTERM', () => process.exit(0)); // a clean exit, so --cpu-prof writes its profile
process.stdout.write('ready\n');
