/**
 * Entry of a shell-only worker process for one segment: started inside the segment's network namespace
 * (`ip netns exec NS node src/shell/main.ts --network NAME`) and joined to its parent over stdin/stdout,
 * as the boot worker is. A segment's boot worker hosts the same shell worker; this entry is for a segment
 * that Strata reaches but does not boot (and for the shell layer's own tests). It logs to stderr only.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../core/log.ts';
import { exitWithParent, PipeTransport } from '../core/transport/pipe.ts';
import { serveShell } from './worker.ts';

const { values } = parseArgs({
  options: { network: { type: 'string' }, concurrency: { type: 'string' }, retries: { type: 'string' } },
});
if (!values.network) {
  process.stderr.write('usage: main.ts --network NAME [--concurrency N] [--retries N]\n');
  process.exit(2);
}
const log = createLogger({ component: 'shell-worker', network: values.network });
const transport = new PipeTransport();
const worker = await serveShell(transport, values.network, log, {
  ...(values.concurrency ? { concurrency: Number(values.concurrency) } : {}),
  ...(values.retries ? { retries: Number(values.retries), backoffBaseMs: 300 } : {}),
});
exitWithParent(transport, () => worker.stop());
