/**
 * A user-space UDP relay that adds a fixed delay each way, because this kernel has no netem (sch_netem is
 * missing; tc tbf cannot delay). Clients send to LISTEN (127.0.0.1:PORT); each client gets its own upstream
 * socket, so the server sees one peer per client and may answer from a new port (a TFTP transfer ID):
 * the relay follows the last port the server answered from, and sends a request (RRQ/WRQ) to TARGET_PORT
 * again (a client port reused by a later transfer). Replies reach the client from LISTEN.
 *   node bench/udp-delay.ts PORT TARGET_IP TARGET_PORT ONE_WAY_MS
 * Every datagram waits the same time, so deadlines come in arrival order: one FIFO and one timer for its
 * head carry all transfers (no timer per datagram), and packet order is kept. Sockets get 4 MiB buffers so
 * the windows of 100 transfers in flight are not dropped here. The relay measures its own lateness (how
 * much longer than ONE_WAY_MS each datagram was held): a line `stats` on stdin prints
 * {"forwarded":N,"lateP50Ms":…,"lateP99Ms":…,"lateMaxMs":…} for the datagrams since the last `stats`.
 * Prints `ready` once bound.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';

const [port, targetIp, targetPort, delayText] = process.argv.slice(2);
const delay = Number(delayText);
if (!port || !targetIp || !targetPort || !Number.isFinite(delay)) {
  process.stderr.write('usage: udp-delay.ts PORT TARGET_IP TARGET_PORT ONE_WAY_MS\n');
  process.exit(2);
}
const BUFFER = 4 * 1024 * 1024;

interface Held {
  due: number;
  sock: Socket;
  msg: Buffer;
  port: number;
  address: string;
}
/** The FIFO: `queue[head..]` are waiting; the consumed front is dropped now and then, not per datagram. */
let queue: Held[] = [];
let head = 0;
/** Whether the timer for the queue's head is set. */
let armed = false;
/** Lateness of every datagram forwarded since the last `stats`, in ms. */
let late: number[] = [];

function forward(h: Held, now: number): void {
  late.push(now - h.due);
  h.sock.send(h.msg, h.port, h.address);
}

/** Sends every datagram that is due (within half a timer tick), then arms the timer for the next one. */
function flush(): void {
  armed = false;
  const now = performance.now();
  while (head < queue.length && queue[head]!.due <= now + 0.5) forward(queue[head++]!, now);
  if (head > 4096 && head * 2 > queue.length) {
    queue = queue.slice(head);
    head = 0;
  }
  if (head < queue.length) {
    armed = true;
    setTimeout(flush, queue[head]!.due - now);
  }
}

function later(sock: Socket, msg: Buffer, port: number, address: string): void {
  const now = performance.now();
  if (delay <= 0) {
    forward({ due: now, sock, msg, port, address }, now);
    return;
  }
  queue.push({ due: now + delay, sock, msg, port, address });
  if (!armed) {
    armed = true;
    setTimeout(flush, delay);
  }
}

const front = createSocket({ type: 'udp4', recvBufferSize: BUFFER, sendBufferSize: BUFFER });
const peers = new Map<string, { up: Socket; tid: number }>();
front.on('message', (msg, from) => {
  const key = `${from.address}:${from.port}`;
  let p = peers.get(key);
  if (!p) {
    const up = createSocket({ type: 'udp4', recvBufferSize: BUFFER, sendBufferSize: BUFFER });
    const entry = { up, tid: Number(targetPort) };
    up.on('message', (reply, r) => {
      entry.tid = r.port;
      later(front, reply, from.port, from.address);
    });
    up.bind(0);
    peers.set(key, entry);
    p = entry;
  }
  // A request (RRQ/WRQ) starts a new transfer at the server's listening port. Clients' ephemeral ports are
  // reused from one run to the next, and the old transfer's port would swallow the new request.
  if (msg.length >= 2 && (msg[1] === 1 || msg[1] === 2) && msg[0] === 0) p.tid = Number(targetPort);
  later(p.up, msg, p.tid, targetIp);
});

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'stats') return;
  const xs = late.sort((a, b) => a - b);
  const at = (q: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]! : 0);
  process.stdout.write(
    `${JSON.stringify({ forwarded: xs.length, lateP50Ms: at(0.5), lateP99Ms: at(0.99), lateMaxMs: xs.at(-1) ?? 0 })}\n`,
  );
  late = [];
});
front.bind(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
