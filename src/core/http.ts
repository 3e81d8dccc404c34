/**
 * A small router over node:http, with a schema on every route. The API is a thin shell over core
 * services; staying on the bare server keeps the event stream (SSE) and streaming responses simple, and
 * keeps `router.add(method, path, handler, opts?)` the one seam layers use to add routes. Each route may
 * describe itself (operationId, query, body and response schemas as zod types or JSON Schema): a zod
 * body schema validates what `ctx.json()` returns (422 naming the field), and the OpenAPI document is
 * generated from these routes, so a route cannot exist outside it. A route without a description still
 * appears, with a generated operationId and a generic schema. Errors become kubectl-style Status objects.
 *
 * Why not Fastify or Hono: both would need this same `add` shim for the layers, a raw-response escape
 * hatch for SSE and metrics, and a second schema system next to the zod schemas the kinds already have;
 * what they would add over this file is route matching, which is twenty lines here.
 *
 * Each route also declares who may call it: the role it needs (viewer for GET, operator otherwise, unless
 * it says) and how a token limited to some networks is treated (`scope`). The declaration lives beside
 * the route, is shown in /openapi.json (`x-strata-role`, `x-strata-scope`) and is enforced in one place
 * (the API server), so a test can walk the document and check every route's decision.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Logger } from './log.ts';
import { type FieldIssue, invalid, StrataError } from './resources/errors.ts';
import type { KindDef } from './resources/kinds.ts';
import type { Principal, Role } from './tokens.ts';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  body(): Promise<string>;
  json<T = unknown>(): Promise<T>;
  /** The token's holder; undefined on public routes. */
  principal?: Principal;
}

export type RouteHandler = (ctx: RouteContext) => Promise<unknown>;

/** A zod type or a JSON Schema object; for `/:plural` routes, possibly one per kind. */
export type Schema = z.ZodType | Record<string, unknown>;
export type SchemaFor = Schema | ((kind: KindDef) => Schema);

export interface RouteDoc {
  /** Unique name of the operation; generated from method and path when absent. */
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  query?: Record<string, { schema?: Schema; description?: string; required?: boolean }>;
  /** Request body; a zod schema also validates what `ctx.json()` returns. */
  body?: { schema: SchemaFor; contentTypes?: string[]; required?: boolean; description?: string };
  /** The success response: status 200 and application/json unless said otherwise. */
  response?: { status?: number; schema?: SchemaFor; contentType?: string; description?: string };
  /** Error statuses answered with a Status object (401 is implied for routes that need a token). */
  errors?: number[];
}

/**
 * What a token limited to some networks may do on a route:
 * - `cluster` (the default): nothing, the route acts on the whole site (lab, registry, tokens);
 * - `any`: as its role allows, the route shows or changes nothing of a network (the kind list);
 * - `{ node: PARAM }`: only when the path parameter PARAM names a Node on one of its networks;
 * - `objects`: the handler filters and checks each Node and Network it reads or writes.
 */
export type RouteScope = 'cluster' | 'any' | 'objects' | { node: string };

export interface RouteAccess {
  /** The weakest role allowed: viewer for GET, operator otherwise, when not said. */
  role?: Role;
  scope?: RouteScope;
  /**
   * On a public route whose handler checks a token itself (the registry's reads take an API token or the
   * pull token): who it admits. The document then shows it as a viewer route with scope `any`.
   */
  ownCheck?: string;
}

export interface RouteOptions extends RouteDoc, RouteAccess {
  /** Routes that answer without a token (health, version, metrics, OpenAPI). */
  public?: boolean;
}

export interface Route {
  method: string;
  /** The path as registered, e.g. `/api/v1/:plural/:name`. */
  path: string;
  pattern: RegExp;
  keys: string[];
  handler: RouteHandler;
  public: boolean;
  role: Role;
  scope: RouteScope;
  ownCheck?: string;
  doc: RouteDoc;
}

export class Router {
  readonly routes: Route[] = [];

  /**
   * `:name` matches one path segment; a trailing `:name*` matches the rest of the path, slashes included,
   * or nothing (OCI repository names such as `library/busybox` have slashes, and `/v2/` is a route too).
   */
  add(method: string, path: string, handler: RouteHandler, opts: RouteOptions = {}): void {
    const keys: string[] = [];
    const pattern = new RegExp(
      `^${path.replace(/:([a-zA-Z]+)(\*?)/g, (_, k, rest) => {
        keys.push(k);
        return rest ? '(.*)' : '([^/]+)';
      })}$`,
    );
    const { public: isPublic, role, scope, ownCheck, ...doc } = opts;
    // Literal routes win over parameterised ones (`/api/v1/workorders` before `/api/v1/:plural`).
    const route: Route = {
      method,
      path,
      pattern,
      keys,
      handler,
      public: isPublic ?? false,
      role: role ?? (method === 'GET' ? 'viewer' : 'operator'),
      scope: scope ?? 'cluster',
      ...(ownCheck ? { ownCheck } : {}),
      doc,
    };
    const at = this.routes.findIndex((r) => r.keys.length > keys.length);
    if (at < 0) this.routes.push(route);
    else this.routes.splice(at, 0, route);
  }

  /**
   * Adds (or replaces) the description of a route registered before, for layers whose `add` calls carry
   * no options: their route code stays as it is, with its schema beside it.
   */
  describe(method: string, path: string, opts: RouteDoc & RouteAccess): void {
    const route = this.routes.find((r) => r.method === method && r.path === path);
    if (!route) throw new Error(`no route ${method} ${path} to describe`);
    const { role, scope, ownCheck, ...doc } = opts;
    if (role) route.role = role;
    if (scope) route.scope = scope;
    if (ownCheck) route.ownCheck = ownCheck;
    route.doc = { ...route.doc, ...doc };
  }

  /**
   * The route for a request. A path whose %-encoding is malformed is a 400, decided here, before any
   * authentication, instead of an exception later.
   */
  match(
    method: string,
    path: string,
  ): { route: Route; params: Record<string, string> } | 'method' | undefined {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
      const params: Record<string, string> = {};
      route.keys.forEach((k, i) => {
        params[k] = decodeParam(m[i + 1]!);
      });
      return { route, params };
    }
    return pathMatched ? 'method' : undefined;
  }
}

/**
 * The context of a matched request: the body is read once, on demand; bad JSON is a 400, and with the
 * route's body schema a body that does not fit is a 422 naming the field.
 */
export function routeContext(
  req: IncomingMessage,
  res: ServerResponse,
  params: Record<string, string>,
  query: URLSearchParams,
  bodySchema?: SchemaFor,
  principal?: Principal,
): RouteContext {
  let cached: string | undefined;
  const body = async () => (cached ??= await readBody(req));
  return {
    req,
    res,
    params,
    query,
    body,
    json: async <T>() => parseJsonBody<T>(await body(), bodySchema),
    ...(principal ? { principal } : {}),
  };
}

export function decodeParam(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new StrataError(400, 'BadRequest', `malformed %-encoding in the URL: "${s}"`);
  }
}

/** The operationId of a route without one: `POST /api/v1/nodes/:name/power` → `postApiV1NodesNamePower`. */
export function generatedOperationId(method: string, path: string): string {
  const words = [method.toLowerCase(), ...path.split(/[^A-Za-z0-9]+/).filter(Boolean)];
  return words.map((w, i) => (i ? w[0]!.toUpperCase() + w.slice(1) : w)).join('');
}

/** Parses `text` as JSON and, with a zod schema, validates it; errors name the field (422) or say why (400). */
export function parseJsonBody<T>(text: string, schema?: SchemaFor): T {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new StrataError(400, 'BadRequest', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (!(schema instanceof z.ZodType)) return v as T;
  const r = schema.safeParse(v);
  if (r.success) return r.data as T;
  const issues: FieldIssue[] = r.error.issues.map((i) => ({
    resource: 'request body',
    path: i.path.map(String).join('.'),
    message: i.message,
  }));
  throw invalid(issues);
}

const MAX_BODY = 16 * 1024 * 1024;

/**
 * Reads a request body up to `max` bytes. A larger one is refused with 413 without buffering it: the
 * rest is read and dropped (so the client gets the answer instead of a reset connection).
 */
export function readBody(req: IncomingMessage, max = MAX_BODY): Promise<string> {
  return new Promise((resolve, reject) => {
    const tooLarge = () =>
      new StrataError(
        413,
        'RequestEntityTooLarge',
        `request body over ${max} bytes: split the manifest into several applies`,
      );
    if (Number(req.headers['content-length'] ?? 0) > max) {
      req.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown, log: Logger): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof StrataError) {
    // After a refused body the connection is not reused: what is left of the body is dropped with it.
    if (err.status === 413) res.setHeader('connection', 'close');
    sendJson(res, err.status, {
      kind: 'Status',
      status: 'Failure',
      code: err.status,
      reason: err.reason,
      message: err.message,
      ...(err.details ? { details: err.details } : {}),
    });
    return;
  }
  log.error('internal error', { err });
  sendJson(res, 500, {
    kind: 'Status',
    status: 'Failure',
    code: 500,
    reason: 'InternalError',
    message: String((err as Error)?.message ?? err),
  });
}
