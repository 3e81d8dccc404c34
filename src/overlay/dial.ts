/**
 * Connections from the manager to addresses on an overlay. Where Strata's overlay endpoint runs in the
 * manager's own network namespace this is a plain TCP connection; where it runs in another one
 * (STRATA_OVERLAY_NETNS, as in the lab: the lighthouse and the global shell worker sit in the lab's
 * namespace), a forwarder child process inside that namespace (forward-main.ts) makes the connection and
 * the manager talks to it over a Unix socket. The cluster layer's Kubernetes client dials the API server
 * on its overlay address through here.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';

let forwarder: { child: ChildProcess; path: string; ready: Promise<void> } | undefined;

function startForwarder(netns: string): NonNullable<typeof forwarder> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-overlay-dial-'));
  const path = join(dir, 'forward.sock');
  const main = join(import.meta.dirname, 'forward-main.ts');
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, main, path], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const cleanup = () => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => {
      process.off('exit', cleanup);
      rmSync(dir, { recursive: true, force: true });
      if (forwarder?.child === child) forwarder = undefined;
      reject(new Error(`the overlay forwarder in namespace ${netns} exited (${code}): does it exist yet?`));
    });
  });
  ready.catch(() => {});
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return { child, path, ready };
}

/** A TCP connection to HOST:PORT on the overlay, from wherever Strata's overlay endpoint is. */
export async function dialOverlay(host: string, port: number): Promise<Socket> {
  const netns = process.env.STRATA_OVERLAY_NETNS;
  if (!netns) {
    const s = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return s;
  }
  forwarder ??= startForwarder(netns);
  await forwarder.ready;
  const s = connect(forwarder.path);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  s.write(`${host.includes(':') ? `[${host}]` : host}:${port}\n`);
  return s;
}

/** A TLS connection over dialOverlay; the certificate is checked against `host` as usual. */
export async function dialOverlayTls(
  host: string,
  port: number,
  tls: Omit<ConnectionOptions, 'socket' | 'host' | 'port'>,
  handshakeMs = 15_000,
): Promise<TLSSocket> {
  const raw = await dialOverlay(host, port);
  const s = tlsConnect({ ...tls, socket: raw, host });
  await new Promise<void>((resolve, reject) => {
    // A handshake that hangs is given up, never left open: a slow server must not collect half-open
    // connections from retries.
    const timer = setTimeout(() => {
      s.destroy();
      raw.destroy();
      reject(new Error(`TLS handshake with ${host}:${port} timed out after ${handshakeMs} ms`));
    }, handshakeMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      resolve();
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      raw.destroy();
      reject(e);
    });
  });
  return s;
}
