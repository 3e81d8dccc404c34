/**
 * How the CLI trusts an HTTPS Strata API, from its context: a pinned certificate (what `strata up` and
 * `strata login` write: the server's certificate as the only trust anchor plus its SHA-256 fingerprint,
 * checked exactly, so names do not matter and a different certificate is refused), a CA (`--certificate-
 * authority FILE`: names are checked as browsers do), nothing at all (`--insecure-skip-tls-verify`, only
 * when asked for), or, without any of these, the system's CAs.
 *
 * The global fetch has no per-request TLS settings, so HTTPS requests go through undici (the library
 * Node's fetch is built on) with an Agent carrying them; `strata ssh` passes the same options to node:https.
 * A refused certificate becomes a message with both fingerprints and the command that fixes it; the
 * handshake fails before any request is sent, so the token never reaches a server that was not trusted.
 */
import { type ConnectionOptions, connect, type PeerCertificate } from 'node:tls';
import type { Agent } from 'undici';
import { CliError } from './errors.ts';

export interface TlsTrust {
  /** PEM trust anchors. */
  ca?: string;
  /** SHA-256 fingerprint (`AB:CD:...`) the server's certificate must have. */
  fingerprint?: string;
  insecure?: boolean;
}

export const PIN_ERROR = 'ERR_STRATA_CERT_PIN';

/** Options for tls.connect (and so for undici and node:https) that implement `trust`. */
export function tlsOptions(trust: TlsTrust | undefined): ConnectionOptions {
  if (!trust) return {};
  if (trust.insecure) return { rejectUnauthorized: false };
  const pin = trust.fingerprint?.toUpperCase();
  return {
    ...(trust.ca ? { ca: trust.ca, allowPartialTrustChain: true } : {}),
    ...(pin
      ? {
          checkServerIdentity: (_host: string, cert: PeerCertificate) => {
            if (cert.fingerprint256?.toUpperCase() === pin) return undefined;
            return Object.assign(
              new Error(`certificate fingerprint ${cert.fingerprint256} is not the pinned ${pin}`),
              {
                code: PIN_ERROR,
              },
            );
          },
        }
      : {}),
  };
}

const agents = new Map<string, Agent>();

/**
 * fetch for `url`: undici with the trust's TLS settings for HTTPS, the global fetch for plain HTTP (undici
 * is loaded only then, so plain-HTTP commands start as fast as before).
 */
export function fetchFor(url: string, trust: TlsTrust | undefined): typeof fetch {
  if (!url.startsWith('https:') || !trust) return fetch;
  const key = JSON.stringify(trust);
  return (async (input: string, init?: RequestInit) => {
    const undici = await import('undici');
    let agent = agents.get(key);
    if (!agent) {
      agent = new undici.Agent({ connect: tlsOptions(trust) });
      agents.set(key, agent);
    }
    return undici.fetch(input, { ...(init as object), dispatcher: agent });
  }) as unknown as typeof fetch;
}

export interface PeerInfo {
  fingerprint: string;
  pem: string;
  subject: string;
  issuer: string;
  validTo: string;
  /** Why the system's CAs would not trust it ('' when they would). */
  untrustedBecause: string;
}

/** The certificate an HTTPS server presents, read without trusting it (to show it, or to pin it). */
export function peerCertificate(url: string, timeoutMs = 10_000): Promise<PeerInfo> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const s = connect({
      host,
      port: Number(u.port || 443),
      rejectUnauthorized: false,
      ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
    });
    const timer = setTimeout(() => s.destroy(new Error('no TLS handshake in time')), timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      const c = s.getPeerCertificate();
      const der = c.raw;
      s.end();
      resolve({
        fingerprint: c.fingerprint256,
        pem: `-----BEGIN CERTIFICATE-----\n${der
          .toString('base64')
          .match(/.{1,64}/g)!
          .join('\n')}\n-----END CERTIFICATE-----\n`,
        subject: Object.entries(c.subject ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(', '),
        issuer: Object.entries(c.issuer ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(', '),
        validTo: c.valid_to,
        untrustedBecause: s.authorized ? '' : String(s.authorizationError ?? 'not trusted'),
      });
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

const TLS_CODES = new Set([
  PIN_ERROR,
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/** The TLS verification error behind a failed fetch or request, if that is what it was. */
export function tlsFailure(e: unknown): { code: string; message: string } | undefined {
  for (
    let x = e as { code?: string; message?: string; cause?: unknown } | undefined;
    x;
    x = x.cause as typeof x
  ) {
    if (x.code && TLS_CODES.has(x.code)) return { code: x.code, message: x.message ?? x.code };
  }
  return undefined;
}

/** A refused certificate in words: what was expected, what came, and the command that fixes it. */
export async function tlsError(
  server: string,
  failure: { code: string; message: string },
  trust: TlsTrust | undefined,
  where: string,
): Promise<CliError> {
  const seen = await peerCertificate(server).catch(() => undefined);
  const presented = seen ? `SHA-256 ${seen.fingerprint}` : 'a certificate that could not be read again';
  if (trust?.fingerprint) {
    return new CliError(
      `error: the server at ${server} presented a different TLS certificate than the one pinned in ${where}.\n` +
        `  pinned:    SHA-256 ${trust.fingerprint}\n  presented: ${presented}\n` +
        'Nothing was sent to it. If its certificate was replaced on purpose (a new data directory, --tls-cert), ' +
        `confirm the new fingerprint with whoever runs it, then pin it: strata login ${server}`,
    );
  }
  return new CliError(
    `error: the TLS certificate of ${server} is not trusted (${failure.code}: ${failure.message}); it is ${presented}.\n` +
      'Nothing was sent to it. To trust it: strata login ' +
      `${server} (shows the fingerprint and pins it), or --certificate-authority FILE with the CA that issued it` +
      (trust?.ca ? ` (the CA in ${where} did not vouch for it)` : ''),
  );
}
