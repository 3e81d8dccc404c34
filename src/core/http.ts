/**
 * A small router over node:http: the API is a thin shell over core services, and keeping it on the bare
 * server keeps the event stream (SSE) and streaming responses simple and fast. Errors become kubectl-style
 * Status objects.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from './log.ts';
import { StrataError } from './resources/errors.ts';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  body(): Promise<string>;
  json<T = unknown>(): Promise<T>;
}

export type RouteHandler = (ctx: RouteContext) => Promise<unknown>;

export interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: RouteHandler;
  /** Routes that answer without a token (health, metrics, OpenAPI). */
  public: boolean;
}

export class Router {
  readonly routes: Route[] = [];

  add(method: string, path: string, handler: RouteHandler, opts: { public?: boolean } = {}): void {
    const keys: string[] = [];
    const pattern = new RegExp(
      `^${path.replace(/:([a-zA-Z]+)/g, (_, k) => {
        keys.push(k);
        return '([^/]+)';
      })}$`,
    );
    // Literal routes win over parameterised ones (`/api/v1/workorders` before `/api/v1/:plural`).
    const route = { method, pattern, keys, handler, public: opts.public ?? false };
    const at = this.routes.findIndex((r) => r.keys.length > keys.length);
    if (at < 0) this.routes.push(route);
    else this.routes.splice(at, 0, route);
  }

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
        params[k] = decodeURIComponent(m[i + 1]!);
      });
      return { route, params };
    }
    return pathMatched ? 'method' : undefined;
  }
}

/** The context of a matched request: the body is read once, on demand, and bad JSON is a 400. */
export function routeContext(
  req: IncomingMessage,
  res: ServerResponse,
  params: Record<string, string>,
  query: URLSearchParams,
): RouteContext {
  let cached: string | undefined;
  const body = async () => (cached ??= await readBody(req));
  return {
    req,
    res,
    params,
    query,
    body,
    json: async <T>() => {
      const text = await body();
      try {
        return JSON.parse(text) as T;
      } catch (e) {
        throw new StrataError(400, 'BadRequest', `request body is not valid JSON: ${(e as Error).message}`);
      }
    },
  };
}

const MAX_BODY = 16 * 1024 * 1024;

export function readBody(req: IncomingMessage, max = MAX_BODY): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new StrataError(413, 'RequestEntityTooLarge', `request body over ${max} bytes`));
        req.destroy();
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
