/**
 * A user-space UDP relay that adds a fixed delay each way, because this kernel has no netem (sch_netem is
 * missing; tc tbf cannot delay). Clients send to LISTEN (127.0.0.1:PORT); each client gets its own upstream
 * socket, so the server sees one peer per client and may answer from a new port (a TFTP transfer ID):
 * the relay follows the last port the server answered from. Replies reach the client from LISTEN.
 *   node bench/udp-delay.ts PORT TARGET_IP TARGET_PORT ONE_WAY_MS
 * Timers of equal delay fire in order, so the relay keeps packet order; under load its own scheduling adds
 * jitter (reported by the benchmark as-is). Prints `ready` once bound.
 */
import { createSocket, type Socket } from 'node:dgram';

const [port, targetIp, targetPort, delayText] = process.argv.slice(2);
const delay = Number(delayText);
if (!port || !targetIp || !targetPort || !Number.isFinite(delay)) {
  process.stderr.write('usage: udp-delay.ts PORT TARGET_IP TARGET_PORT ONE_WAY_MS\n');
  process.exit(2);
}
const later = (fn: () => void) => (delay > 0 ? setTimeout(fn, delay) : fn());
const front = createSocket('udp4');
const peers = new Map<string, { up: Socket; tid: number }>();
front.on('message', (msg, from) => {
  const key = `${from.address}:${from.port}`;
  let p = peers.get(key);
  if (!p) {
    const up = createSocket('udp4');
    const entry = { up, tid: Number(targetPort) };
    up.on('message', (reply, r) => {
      entry.tid = r.port;
      later(() => front.send(reply, from.port, from.address));
    });
    up.bind(0);
    peers.set(key, entry);
    p = entry;
  }
  const q = p;
  later(() => q.up.send(msg, q.tid, targetIp));
});
front.bind(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
