/**
 * Picks the transport from one setting (`--transport` / `STRATA_TRANSPORT`): a `nats://` or `tls://` URL
 * (several comma-separated for a cluster) connects to NATS; nothing, or `inproc`, is the in-process
 * transport of the embedded default. The NATS client is loaded only when asked for.
 */
import { InprocTransport } from './inproc.ts';
import type { Transport } from './types.ts';

export type { Transport } from './types.ts';

export async function openTransport(url?: string): Promise<Transport> {
  const s = url?.trim() ?? '';
  if (s === '' || s === 'inproc' || s === 'inproc:') return new InprocTransport();
  if (/^(nats|tls):\/\//i.test(s)) {
    const { NatsTransport } = await import('./nats.ts');
    return NatsTransport.connect(s);
  }
  throw new Error(`unknown transport "${s}": use nats://HOST:PORT, or nothing for the in-process transport`);
}
