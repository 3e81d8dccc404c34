/**
 * A scripted UDP endpoint for DHCP integration tests, run inside a test namespace
 * (`ip netns exec NS node probe.ts '{...}'`): binds a port, sends crafted packets (hex) and prints every
 * datagram it receives as a JSON line `{"from","port","hex","at"}`. It plays the relay agent (bound to
 * 67, giaddr set) and the PXE client (bound to 68, PXEClient options) where no real tool does.
 */

import dgram from 'node:dgram';

interface Step {
  send?: string;
  to?: string;
  port?: number;
  waitMs?: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as { bindPort: number; steps: Step[] };
const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const t0 = Date.now();
sock.on('message', (msg, rinfo) => {
  process.stdout.write(
    JSON.stringify({ from: rinfo.address, port: rinfo.port, hex: msg.toString('hex'), at: Date.now() - t0 }) +
      '\n',
  );
});
sock.bind(cfg.bindPort, '0.0.0.0', async () => {
  sock.setBroadcast(true);
  for (const s of cfg.steps) {
    if (s.send) {
      await new Promise<void>((resolve, reject) =>
        sock.send(Buffer.from(s.send!, 'hex'), s.port ?? 67, s.to ?? '255.255.255.255', (e) =>
          e ? reject(e) : resolve(),
        ),
      );
    }
    if (s.waitMs) await new Promise((r) => setTimeout(r, s.waitMs));
  }
  sock.close();
});
