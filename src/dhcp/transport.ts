/**
 * UDP transport of the DHCP worker: one dgram socket per port (67, and 4011 in proxy mode), bound to
 * 0.0.0.0 with SO_BROADCAST, replies sent from the socket of the port the request came to. Opening it
 * runs the namespace guard first (see guard.ts and the server's doc comment for why a worker lives in
 * its segment's namespace). Send errors are counted and logged, never thrown: a client that vanished
 * must not take the worker down.
 */

import dgram from 'node:dgram';
import type { Logger } from '../core/log.ts';
import { silentLogger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import { assertNotHostNamespace } from './guard.ts';
import type { DhcpTransport, RemoteInfo } from './server.ts';

const mSendErrors = counter('strata_dhcp_send_errors_total', 'DHCP replies the kernel refused to send');

export interface UdpTransportOptions {
  bindAddress?: string;
  /** Production opt-in to serve in the machine's own namespace. */
  allowHostNamespace?: boolean;
  logger?: Logger;
}

export class UdpTransport implements DhcpTransport {
  private readonly sockets = new Map<number, dgram.Socket>();
  private readonly opts: UdpTransportOptions;
  private readonly log: Logger;
  sendErrors = 0;

  constructor(opts: UdpTransportOptions = {}) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger;
  }

  async start(ports: number[], onMessage: (msg: Buffer, from: RemoteInfo, localPort: number) => void) {
    assertNotHostNamespace(this.opts.allowHostNamespace ? { allowHostNamespace: true } : {});
    for (const port of ports) {
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: false });
      s.on('message', (msg, rinfo) => onMessage(msg, rinfo, port));
      s.on('error', (err) => this.log.error('dhcp socket error', { err, port }));
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind({ port, address: this.opts.bindAddress ?? '0.0.0.0', exclusive: true }, () => {
          s.off('error', reject);
          s.setBroadcast(true);
          resolve();
        });
      });
      this.sockets.set(port, s);
    }
  }

  send(buf: Buffer, address: string, port: number, fromPort: number): void {
    const s = this.sockets.get(fromPort) ?? this.sockets.values().next().value;
    if (!s) return;
    s.send(buf, port, address, (err) => {
      if (err) {
        this.sendErrors++;
        mSendErrors.inc();
        this.log.warn('dhcp send failed', { err, address, port });
      }
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.sockets.values()].map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.sockets.clear();
  }
}
