/**
 * Entry of one TFTP transfer process, forked by the listener's process (cores.ts says why). It runs the read
 * transfers it is handed, each on its own socket, exactly as the listener's process would, and sends back
 * each one's summary and the counters it moved. Its IPC channel is its life line: the moment it closes, it
 * exits, and its transfers end with it.
 */
import { createLogger } from '../core/log.ts';
import type { FromTftpCore, ToTftpCore } from './cores.ts';
import { ReadTransfer, type TransferConfig, type TransferSummary, tallyMeter } from './server.ts';
import { chainSources, DirectorySource } from './source.ts';

process.on('disconnect', () => process.exit(0));
if (!process.send) {
  process.stderr.write('core.ts is started by a TFTP server (src/tftp/cores.ts), over IPC\n');
  process.exit(2);
}
process.stderr.on('error', () => {});

const send = (m: FromTftpCore) => {
  if (process.connected) process.send!(m, undefined, undefined, () => {});
};

const meter = tallyMeter();
let finished: { id: number; summary: TransferSummary }[] = [];
/** Summaries go back once per event-loop turn, with the counters moved meanwhile. */
function report(id: number, summary: TransferSummary): void {
  if (!finished.length)
    setImmediate(() => {
      const list = finished;
      finished = [];
      const tally = meter.take();
      send({ t: 'done', list, ...(tally ? { tally } : {}) });
    });
  finished.push({ id, summary });
}

let cfg: TransferConfig | undefined;
const running = new Map<number, ReadTransfer>();

process.on('message', (m: ToTftpCore) => {
  if (m.t === 'start') {
    const logger = createLogger({ component: 'tftp', process: m.index });
    cfg = {
      ...m.settings,
      source: chainSources(...m.dirs.map((d) => new DirectorySource(d.root, { ...d, logger }))),
      logger,
      meter,
    };
    send({ t: 'ready' });
  } else if (m.t === 'run' && cfg) {
    const t = new ReadTransfer(cfg, m.req, (s) => {
      running.delete(m.id);
      report(m.id, s);
    });
    running.set(m.id, t);
    t.run();
  } else if (m.t === 'abort') {
    void running.get(m.id)?.abort(m.reason);
  }
});
send({ t: 'hello' });
