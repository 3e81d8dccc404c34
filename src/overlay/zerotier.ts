/**
 * ZeroTier's controller side, which Strata drives itself: a member joins a network on its own (apply.sh),
 * but gets no traffic and no managed address until the network's controller authorises it. Strata makes
 * that call for every member it joined, with the address its IPAM allocated, takes it back when the member
 * leaves, and authorises its own host (`spec.zerotier.strataMember`) so it can reach members over the
 * overlay. The two documented controller APIs:
 *
 *   self-hosted (zerotier-one's controller): POST {url}/controller/network/{nwid}/member/{id}, header
 *     `X-ZT1-Auth: TOKEN`, body `{"authorized": …, "ipAssignments": […]}`;
 *   ZeroTier Central: POST {url}/api/v1/network/{nwid}/member/{id}, header `Authorization: token TOKEN`,
 *     body `{"config": {"authorized": …, "ipAssignments": […]}}`.
 *
 * Plain fetch: two JSON POSTs need no client library. The token is read from `tokenFile` at each call
 * (where the manager runs; never shipped to a member) and never appears in an error or event.
 * Built to ZeroTier's documentation; no test runs a real ZeroTier controller (none can be had here).
 */
import { readFile } from 'node:fs/promises';
import type { ZerotierOptions } from './kind.ts';

/** A member's ZeroTier address: 10 hex digits. */
export const MEMBER_ID = /^[0-9a-f]{10}$/;

/** The member id a zerotier check or apply script printed (`MEMBER_ID=…`), from the last phase that did. */
export function reportedMemberId(phases: readonly { stdout: string }[]): string | undefined {
  for (const p of [...phases].reverse()) {
    const m = /^MEMBER_ID=([0-9a-f]{10})$/m.exec(p.stdout);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Authorises (with `address` as its one managed address) or deauthorises (`address` undefined: no
 * address) a member at the network's controller. Throws a message that names the field to fix.
 */
export async function setMemberAuthorization(
  zt: ZerotierOptions,
  memberId: string,
  address: string | undefined,
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  if (!MEMBER_ID.test(memberId))
    throw new Error(`ZeroTier member id "${memberId}" is not 10 lower-case hex digits`);
  let token: string;
  try {
    token = (await readFile(zt.controller.tokenFile, 'utf8')).trim();
  } catch (e) {
    throw new Error(
      `spec.zerotier.controller.tokenFile: cannot read ${zt.controller.tokenFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): point it at the controller's authtoken.secret or a Central API token, readable by Strata`,
    );
  }
  if (!token) throw new Error(`spec.zerotier.controller.tokenFile: ${zt.controller.tokenFile} is empty`);
  const member = { authorized: address !== undefined, ipAssignments: address ? [address] : [] };
  const base = zt.controller.url.replace(/\/+$/, '');
  const central = zt.controller.type === 'central';
  const url = central
    ? `${base}/api/v1/network/${zt.networkId}/member/${memberId}`
    : `${base}/controller/network/${zt.networkId}/member/${memberId}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(central ? { authorization: `token ${token}` } : { 'x-zt1-auth': token }),
      },
      body: JSON.stringify(central ? { config: member } : member),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 20_000),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(
      `spec.zerotier.controller.url: cannot reach the ZeroTier controller at ${base} (${cause?.code ?? cause?.message ?? (e as Error).message})`,
    );
  }
  const body = (await res.text()).slice(0, 200);
  if (res.status === 401 || res.status === 403)
    throw new Error(
      `the ZeroTier controller at ${base} refused the token in spec.zerotier.controller.tokenFile (${zt.controller.tokenFile}): HTTP ${res.status}`,
    );
  if (!res.ok)
    throw new Error(
      `the ZeroTier controller at ${base} answered HTTP ${res.status} for member ${memberId} of network ${zt.networkId}: ${body.replaceAll(token, '***')}`,
    );
}
