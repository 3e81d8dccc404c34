/**
 * Entry of a boot worker child process: started by the supervisor inside a segment's network namespace,
 * it talks to its parent over stdin/stdout (so it logs to stderr only) and serves that one segment.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../core/log.ts';
import { exitWithParent, PipeTransport } from '../core/transport/pipe.ts';
import { startBootWorker } from './worker.ts';

const { values } = parseArgs({ options: { network: { type: 'string' }, 'data-dir': { type: 'string' } } });
if (!values.network || !values['data-dir']) {
  process.stderr.write('usage: main.ts --network NAME --data-dir DIR\n');
  process.exit(2);
}
const log = createLogger({ component: 'boot-worker', network: values.network });
const transport = new PipeTransport();
const worker = await startBootWorker({
  network: values.network,
  transport,
  dataDir: values['data-dir'],
  log,
}).catch((err) => {
  log.error('boot worker failed to start', { err });
  process.exit(1);
});
exitWithParent(transport, () => worker.stop());
