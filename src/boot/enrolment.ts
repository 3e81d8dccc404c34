/**
 * The site's enrolment token, one per Network: boot media (src/media) carry it in their chain URL, and the
 * boot manager's script check (scripts.ts, deciding through decide.ts's `mediaRefusal`) reads it, so a
 * script request that comes from a medium is known to come from one this site made. A boot concept, not
 * an install one: it admits a machine to the boot path (steps 1 → 3), it is no credential of an install
 * attempt (those are src/install/tokens.ts).
 *
 * Unlike the API's and the installers' tokens it is kept raw, not as a hash: every new medium embeds it
 * again. It lives in a `secrets.` collection, so the store seals it at rest, and no API response shows it.
 * The check compares hashes in constant time (src/core/tokens.ts).
 */
import { randomBytes } from 'node:crypto';
import type { ManagerContext } from '../core/layer.ts';
import { hashToken, tokenMatches } from '../core/tokens.ts';
import type { EnrolmentTokenState } from './decide.ts';
import { ENROLMENT_TOKENS } from './protocol.ts';

export { ENROLMENT_TOKENS };

type Store = Pick<ManagerContext, 'store'>;

async function stored(ctx: Store, network: string): Promise<string | undefined> {
  return ((await ctx.store.getRecord(ENROLMENT_TOKENS, network)) as { token?: string } | undefined)?.token;
}

/** The site's enrolment token for `network`, minted on first use. */
export async function enrolmentToken(ctx: Store, network: string): Promise<string> {
  const prev = await stored(ctx, network);
  if (prev) return prev;
  const token = randomBytes(24).toString('base64url');
  await ctx.store.putRecords(ENROLMENT_TOKENS, [
    { key: network, value: { token, createdAt: new Date().toISOString() } },
  ]);
  return token;
}

/**
 * How a script request's token stands: `none` when it carries none (firmware network boot), `valid` when
 * it is the site's token for `network`, `invalid` otherwise (also when the network has none yet).
 */
export async function enrolmentTokenState(
  ctx: Store,
  network: string,
  presented: string | undefined,
): Promise<EnrolmentTokenState> {
  if (presented === undefined) return 'none';
  const want = await stored(ctx, network);
  return want && tokenMatches(hashToken(want), `Bearer ${presented}`) ? 'valid' : 'invalid';
}
