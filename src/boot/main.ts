/**
 * Entry of a boot worker child process: started by the supervisor inside a segment's network namespace,
 * it talks to its parent over stdin/stdout (so it logs to stderr only) and serves that one segment. It
 * lives exactly as long as its parent: it leaves, within a bounded time, on a signal or as soon as the
 * pipe to the parent ends in any way, so a stopped or killed `strata up` never leaves a worker holding
 * the segment's ports.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../core/log.ts';
import { registry } from '../core/metrics.ts';
import { exitWithParent, PipeTransport } from '../core/transport/pipe.ts';
import { subjects } from './protocol.ts';
import { type BootWorker, startBootWorker } from './worker.ts';

const { values } = parseArgs({ options: { network: { type: 'string' }, 'data-dir': { type: 'string' } } });
if (!values.network || !values['data-dir']) {
  process.stderr.write('usage: main.ts --network NAME --data-dir DIR\n');
  process.exit(2);
}
// stderr is a pipe to the parent too: once the parent is gone, logging must not kill a worker that stops.
process.stderr.on('error', () => {});
const log = createLogger({ component: 'boot-worker', network: values.network });
const transport = new PipeTransport();
/** Longest a stopping worker may take: well inside the supervisor's grace before it sends SIGKILL. */
const STOP_DEADLINE_MS = 3000;
let worker: BootWorker | undefined;
const life = exitWithParent(transport, async () => worker?.stop(), { deadlineMs: STOP_DEADLINE_MS, log });

try {
  worker = await startBootWorker({
    network: values.network,
    transport,
    dataDir: values['data-dir'],
    log,
  });
  if (life.stopping) await worker.stop();
  // This process's protocol counters reach the manager's /metrics through here, labelled by network.
  registry.setDefaultLabels({ network: values.network });
  await transport.serve(subjects.metrics(values.network), async () => registry.getMetricsAsJSON());
} catch (err) {
  log.error('boot worker failed to start', { err });
  process.exit(1);
}
