/**
 * Bearer-token auth for the API. The admin token is made on first start, printed once, and kept only as a
 * SHA-256 hash in the store; a copy readable only by root sits in the data directory for the local CLI
 * (as k3s does with its server token). The comparison with it is constant-time.
 *
 * Further tokens carry a role (viewer, operator, admin) and optionally the networks they are limited to.
 * They are stored under their hash, so a request costs one keyed read and no token is ever kept in clear;
 * that read happens on every request (nothing cached), so a revocation takes effect at once, on every
 * manager sharing the database too. Lists show name, role, scope and dates, never the secret.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Router } from '../core/http.ts';
import { StrataError } from '../core/resources/errors.ts';
import type { Store } from '../core/store/types.ts';
import { hashToken, type Principal, ROLES, type Role, tokenMatches } from '../core/tokens.ts';
import { API_TOKENS_COLLECTION as COLLECTION } from '../core/wire.ts';

export { hashToken };

/** How often a token's `lastUsed` is written at most (a write per request would be a write per read). */
const LAST_USED_EVERY_MS = 60_000;

export function tokenFile(dataDir: string): string {
  return join(dataDir, 'admin-token');
}

const newSecret = () => `strata_${randomBytes(24).toString('base64url')}`;

/** Returns the new token when one was created (the caller prints it once), else undefined. */
export async function ensureAdminToken(
  store: Store,
  dataDir: string,
  fixed?: string,
): Promise<string | undefined> {
  if (fixed) {
    await store.putRecords(COLLECTION, [{ key: 'admin', value: { hash: hashToken(fixed) } }]);
    return undefined;
  }
  if (await store.getRecord(COLLECTION, 'admin')) return undefined;
  const token = newSecret();
  await store.putRecords(COLLECTION, [
    { key: 'admin', value: { hash: hashToken(token), createdAt: new Date().toISOString() } },
  ]);
  writeFileSync(tokenFile(dataDir), token + '\n', { mode: 0o600 });
  return token;
}

export function readLocalToken(dataDir: string): string | undefined {
  const f = tokenFile(dataDir);
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
}

/** A token as listed: everything but the secret (and its hash). */
export interface TokenInfo {
  name: string;
  role: Role;
  networks?: string[];
  createdAt?: string;
  lastUsed?: string;
}

interface TokenRecord extends TokenInfo {
  hash: string;
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

export const tokenInfoSchema = z.object({
  name: z.string(),
  role: z.enum(ROLES),
  networks: z.array(z.string()).optional().describe('limited to these networks; all when absent'),
  createdAt: z.string().optional(),
  lastUsed: z.string().optional(),
});

export const createTokenSchema = z.object({
  name: z
    .string()
    .regex(NAME, 'a lower-case DNS label like "ci-reader" (letters, digits, - and .)')
    .refine((n) => n !== 'admin', '"admin" is the bootstrap token: choose another name'),
  role: z.enum(ROLES),
  networks: z
    .array(z.string().regex(NAME, 'a Network name'))
    .min(1, 'give at least one network, or leave networks out for all')
    .optional(),
});

export class TokenAuth {
  #admin: string | undefined;
  readonly #store: Store;
  readonly #used = new Map<string, number>();
  constructor(store: Store) {
    this.#store = store;
  }

  async load(): Promise<void> {
    this.#admin = ((await this.#store.getRecord(COLLECTION, 'admin')) as { hash?: string } | undefined)?.hash;
  }

  /** Who the Authorization header's token belongs to, or undefined for none, an unknown or a revoked one. */
  async authenticate(header: string | undefined): Promise<Principal | undefined> {
    if (!header?.startsWith('Bearer ')) return undefined;
    if (tokenMatches(this.#admin, header)) return { name: 'admin', role: 'admin' };
    const hash = hashToken(header.slice(7).trim());
    const rec = (await this.#store.getRecord(COLLECTION, `sha256:${hash}`)) as TokenRecord | undefined;
    if (!rec) return undefined;
    const now = Date.now();
    if (now - (this.#used.get(hash) ?? 0) > LAST_USED_EVERY_MS) {
      this.#used.set(hash, now);
      void this.#store
        .putRecords(COLLECTION, [
          { key: `sha256:${hash}`, value: { ...rec, lastUsed: new Date(now).toISOString() } },
        ])
        .catch(() => {});
    }
    return { name: rec.name, role: rec.role, ...(rec.networks ? { networks: rec.networks } : {}) };
  }

  async list(): Promise<TokenInfo[]> {
    const out: TokenInfo[] = [];
    for (const r of await this.#store.listRecords(COLLECTION)) {
      const v = r.value as Partial<TokenRecord>;
      if (r.key === 'admin')
        out.push({ name: 'admin', role: 'admin', ...(v.createdAt ? { createdAt: v.createdAt } : {}) });
      else {
        const { hash: _, ...info } = v as TokenRecord;
        out.push(info);
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Makes a token; the secret is returned here once and kept nowhere. */
  async create(req: z.infer<typeof createTokenSchema>): Promise<TokenInfo & { token: string }> {
    if ((await this.list()).some((t) => t.name === req.name))
      throw new StrataError(
        409,
        'AlreadyExists',
        `a token named "${req.name}" exists: revoke it first or choose another name`,
      );
    const token = newSecret();
    const info: TokenInfo = {
      name: req.name,
      role: req.role,
      ...(req.networks ? { networks: [...new Set(req.networks)].sort() } : {}),
      createdAt: new Date().toISOString(),
    };
    await this.#store.putRecords(COLLECTION, [
      { key: `sha256:${hashToken(token)}`, value: { ...info, hash: hashToken(token) } },
    ]);
    return { ...info, token };
  }

  async revoke(name: string): Promise<void> {
    if (name === 'admin')
      throw new StrataError(
        409,
        'Conflict',
        'the bootstrap admin token is not revoked through the API: restart strata up with --token NEW to replace it',
      );
    const recs = await this.#store.listRecords(COLLECTION);
    const hit = recs.filter((r) => r.key !== 'admin' && (r.value as TokenRecord).name === name);
    if (!hit.length) throw new StrataError(404, 'NotFound', `no token named "${name}" (see strata token ls)`);
    await this.#store.deleteRecords(
      COLLECTION,
      hit.map((r) => r.key),
    );
  }
}

/** GET/POST /api/v1/tokens and DELETE /api/v1/tokens/:name, for admins only. */
export function addTokenRoutes(router: Router, auth: TokenAuth): void {
  router.add('GET', '/api/v1/tokens', async () => ({ kind: 'TokenList', items: await auth.list() }), {
    role: 'admin',
    operationId: 'listTokens',
    summary: 'API tokens: name, role, networks, created and last used (never the secret)',
    tags: ['tokens'],
    response: { schema: z.object({ kind: z.literal('TokenList'), items: z.array(tokenInfoSchema) }) },
  });
  router.add(
    'POST',
    '/api/v1/tokens',
    async ({ json, res }) => {
      const out = await auth.create(await json<z.infer<typeof createTokenSchema>>());
      res.statusCode = 201;
      return { kind: 'Token', ...out };
    },
    {
      role: 'admin',
      operationId: 'createToken',
      summary: 'Make a token with a role, optionally limited to networks; the secret is in this answer only',
      tags: ['tokens'],
      body: { schema: createTokenSchema, required: true },
      response: {
        status: 201,
        schema: tokenInfoSchema.extend({ kind: z.literal('Token'), token: z.string() }),
      },
      errors: [400, 409, 422],
    },
  );
  router.add(
    'DELETE',
    '/api/v1/tokens/:name',
    async ({ params }) => {
      await auth.revoke(params.name!);
      return { kind: 'Status', status: 'Success', details: { kind: 'Token', name: params.name! } };
    },
    {
      role: 'admin',
      operationId: 'revokeToken',
      summary: 'Revoke a token: refused from the next request on',
      tags: ['tokens'],
      response: { schema: { type: 'object' } },
      errors: [404, 409],
    },
  );
}
