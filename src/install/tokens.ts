/**
 * Install attempts and their tokens. Whoever holds an install token can act as the node being installed
 * (fetch its config, pin its host key, report it installed), so a token is as narrow as the install needs:
 *
 * - bound to one install attempt of one Node *object* (its uid: a new Node with a deleted node's name
 *   accepts none of the old tokens);
 * - short-lived (the Network's `boot.installTokenTTL`, 2 h by default: a slow install under emulation);
 * - revoked, with the whole attempt, when the installed system reports in.
 *
 * A script fetch during an attempt adds a token instead of replacing one: the tokens an installer has used
 * are kept apart (`used`), so a fetch never breaks an install in progress, and unused tokens are capped.
 * The installed-report token is minted once per attempt (a config re-fetch returns the same one, it mints
 * nothing). The attempt lives in a `secrets.*` collection, so the store seals it at rest; install tokens
 * themselves are kept only as hashes (src/core/tokens.ts).
 */
import { randomBytes } from 'node:crypto';
import { hashToken, tokenMatches } from '../core/tokens.ts';
import { INSTALL_ATTEMPTS } from './protocol.ts';

export { hashToken, INSTALL_ATTEMPTS, tokenMatches };

/** Default lifetime of install tokens: long enough for a slow install under emulation. */
export const DEFAULT_INSTALL_TOKEN_TTL_MS = 2 * 3600_000;
/** Unused tokens kept per attempt (each script fetch adds one), and used ones (one per installer run). */
const MAX_UNUSED = 4;
const MAX_USED = 4;

export interface InstallAttempt {
  /** uid of the Node object the attempt belongs to. */
  uid: string;
  attempt: string;
  startedAt: string;
  /** Hashes of the install tokens handed out with scripts, newest last. */
  tokens: { hash: string; expiresAt: string }[];
  /** Tokens installers called in with (kept whatever fetches follow), newest last. */
  used?: { hash: string; expiresAt: string }[];
  /** Token for the installed system's report, minted at the first config or answer-file fetch. */
  installedToken?: string;
  installedExpiresAt?: string;
}

const newToken = () => randomBytes(24).toString('base64url');
const live = (t: { expiresAt: string }, now: number) => Date.parse(t.expiresAt) > now;

/** True while some token of the attempt can still be used. */
export function attemptLive(a: InstallAttempt | undefined, uid: string | undefined, now = Date.now()) {
  if (!a || !uid || a.uid !== uid) return false;
  return (
    a.tokens.some((t) => live(t, now)) ||
    (a.used ?? []).some((t) => live(t, now)) ||
    (a.installedExpiresAt !== undefined && Date.parse(a.installedExpiresAt) > now)
  );
}

/**
 * A fresh install token for `uid`: added to the live attempt, or starting a new one when there is none
 * (or `fresh` asks for one: a reprovision).
 */
export function issueInstallToken(
  prev: InstallAttempt | undefined,
  uid: string,
  ttlMs: number,
  opts: { fresh?: boolean; now?: number } = {},
): { attempt: InstallAttempt; token: string } {
  const now = opts.now ?? Date.now();
  const token = newToken();
  const entry = { hash: hashToken(token), expiresAt: new Date(now + ttlMs).toISOString() };
  if (!opts.fresh && prev && attemptLive(prev, uid, now)) {
    const tokens = [...prev.tokens.filter((t) => live(t, now)), entry].slice(-MAX_UNUSED);
    return { attempt: { ...prev, tokens }, token };
  }
  return {
    attempt: {
      uid,
      attempt: randomBytes(8).toString('hex'),
      startedAt: new Date(now).toISOString(),
      tokens: [entry],
    },
    token,
  };
}

/**
 * Checks an install token (`Authorization: Bearer …`) against the attempt of Node `uid`. Returns the
 * attempt to store when it changed (the token became the used one), `true` when valid and unchanged,
 * `false` when not valid.
 */
export function checkInstallToken(
  a: InstallAttempt | undefined,
  uid: string | undefined,
  credential: string | undefined,
  now = Date.now(),
): InstallAttempt | boolean {
  if (!a || !uid || a.uid !== uid) return false;
  if ((a.used ?? []).some((x) => live(x, now) && tokenMatches(x.hash, credential))) return true;
  const t = a.tokens.find((x) => live(x, now) && tokenMatches(x.hash, credential));
  if (!t) return false;
  const used = [...(a.used ?? []).filter((x) => live(x, now)), t].slice(-MAX_USED);
  return { ...a, used, tokens: a.tokens.filter((x) => x !== t) };
}

/** Checks the installed system's report token. */
export function checkInstalledToken(
  a: InstallAttempt | undefined,
  uid: string | undefined,
  credential: string | undefined,
  now = Date.now(),
): boolean {
  if (!a || !uid || a.uid !== uid || !a.installedToken || !a.installedExpiresAt) return false;
  return Date.parse(a.installedExpiresAt) > now && tokenMatches(hashToken(a.installedToken), credential);
}

/** The attempt's installed-report token, minted on first use; the same one on every later call. */
export function withInstalledToken(
  a: InstallAttempt,
  ttlMs: number,
  now = Date.now(),
): { attempt: InstallAttempt; token: string; minted: boolean } {
  if (a.installedToken) return { attempt: a, token: a.installedToken, minted: false };
  const token = newToken();
  return {
    attempt: { ...a, installedToken: token, installedExpiresAt: new Date(now + ttlMs).toISOString() },
    token,
    minted: true,
  };
}
