/**
 * The overlay forwarder: run inside the network namespace where Strata's overlay endpoint sits
 * (`ip netns exec NS node src/overlay/forward-main.ts SOCKET`), it listens on a Unix socket, which a
 * process in another namespace can open (a socket file is not bound to a network namespace), reads one
 * line `HOST:PORT` per connection, connects there from inside the namespace and then copies bytes both
 * ways. What lets the manager, in the host's namespace, reach a cluster's API server on an overlay
 * address (see dial.ts). It exits when its parent closes its stdin.
 */
import { connect, createServer, type Socket } from 'node:net';

const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: forward-main.ts SOCKET\n');
  process.exit(2);
}

function onConnection(client: Socket): void {
  let head = Buffer.alloc(0);
  const onData = (d: Buffer) => {
    head = Buffer.concat([head, d]);
    const nl = head.indexOf(10);
    if (nl < 0) {
      if (head.length > 300) client.destroy();
      return;
    }
    client.off('data', onData);
    client.pause();
    const target = /^\[?([0-9A-Za-z.:-]+?)\]?:(\d{1,5})$/.exec(head.subarray(0, nl).toString('utf8').trim());
    if (!target) return void client.destroy();
    const upstream = connect({ host: target[1]!, port: Number(target[2]) });
    const rest = head.subarray(nl + 1);
    upstream.once('connect', () => {
      if (rest.length) upstream.write(rest);
      client.pipe(upstream).pipe(client);
      client.resume();
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  };
  client.on('data', onData);
  client.on('error', () => {});
}

const server = createServer(onConnection);
server.listen(path, () => process.stdout.write('ready\n'));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
