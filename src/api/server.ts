/**
 * The HTTP API under /api/v1: generic CRUD over every registered kind, kubectl-style apply, per-object
 * timelines, a live Server-Sent Events stream of changes and timeline events, OpenAPI at /openapi.json,
 * Prometheus metrics at /metrics and /healthz. Layers add their own routes to the same router.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EventHub } from '../core/events.ts';
import { type RouteContext, Router, readBody, sendError, sendJson } from '../core/http.ts';
import type { Logger } from '../core/log.ts';
import { counter, histogram, registry, renderMetrics } from '../core/metrics.ts';
import { invalid, StrataError } from '../core/resources/errors.ts';
import { allKinds, resolveKind } from '../core/resources/kinds.ts';
import { loadManifest, loadManifests, validateDocument } from '../core/resources/manifest.ts';
import type { ResourceService } from '../core/resources/service.ts';
import type { StrataEvent, WatchEvent } from '../core/resources/types.ts';
import type { TokenAuth } from './auth.ts';
import { buildOpenApi } from './openapi.ts';

const requests = counter('strata_api_requests_total', 'API requests', ['method', 'code']);
const latency = histogram(
  'strata_api_request_seconds',
  'API request latency',
  ['method'],
  [0.001, 0.005, 0.02, 0.1, 0.5, 2],
);

export interface ApiDeps {
  resources: ResourceService;
  hub: EventHub;
  auth: TokenAuth;
  log: Logger;
  version: string;
}

function kindOf(plural: string) {
  const def = resolveKind(plural);
  if (!def) {
    throw new StrataError(
      404,
      'NotFound',
      `the server doesn't have a resource type "${plural}" (known: ${allKinds()
        .map((k) => k.plural)
        .join(', ')})`,
    );
  }
  return def;
}

export class ApiServer {
  readonly router = new Router();
  readonly #deps: ApiDeps;
  #server: Server | undefined;
  readonly #streams = new Set<ServerResponse>();

  constructor(deps: ApiDeps) {
    this.#deps = deps;
    this.#routes();
  }

  #routes(): void {
    const r = this.router;
    const { resources } = this.#deps;
    r.add('GET', '/healthz', async () => ({ status: 'ok' }), { public: true });
    r.add(
      'GET',
      '/metrics',
      async ({ res }) => {
        const text = await renderMetrics();
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      },
      { public: true },
    );
    r.add('GET', '/openapi.json', async () => buildOpenApi(this.#deps.version), { public: true });
    r.add('GET', '/api/v1', async () => ({
      kind: 'APIResourceList',
      resources: allKinds().map((k) => ({
        kind: k.kind,
        name: k.plural,
        shortNames: k.aliases,
        description: k.description,
      })),
    }));
    r.add('POST', '/api/v1/apply', async ({ req, body, query }) => {
      const text = await body();
      // Either a YAML/JSON manifest as the body, or {files: [{name, text}]} to apply several files at once.
      const docs =
        (req.headers['content-type'] ?? '').startsWith('application/json') &&
        text.trimStart().startsWith('{"files"')
          ? loadManifests((JSON.parse(text) as { files: { name: string; text: string }[] }).files)
          : loadManifest(
              text,
              query.get('file') ?? (req.headers['x-strata-file'] as string | undefined) ?? undefined,
            );
      const dryRun = query.get('dryRun') === 'true';
      if (dryRun)
        return {
          kind: 'ApplyResult',
          items: docs.map((d) => ({ kind: d.kind, name: d.metadata.name, action: 'validated' })),
        };
      const out = await resources.apply(docs);
      return {
        kind: 'ApplyResult',
        items: out.map((o) => ({
          kind: o.resource.kind,
          name: o.resource.metadata.name,
          action: o.action,
          resourceVersion: o.resource.metadata.resourceVersion,
        })),
      };
    });
    r.add('GET', '/api/v1/stream', async (ctx) => this.#stream(ctx));
    r.add('GET', '/api/v1/:plural', async ({ params, query }) => {
      const def = kindOf(params.plural!);
      const items = await resources.list(def.kind, parseSelector(query.get('labelSelector')));
      return { kind: `${def.kind}List`, apiVersion: 'strata.dev/v1alpha1', items };
    });
    r.add('POST', '/api/v1/:plural', async ({ params, json, res }) => {
      const def = kindOf(params.plural!);
      const doc = await json<Record<string, unknown>>();
      const v = validateDocument({ ...doc, kind: doc.kind ?? def.kind }, undefined, 0);
      if (!v.resource) throw invalid(v.issues);
      const created = await resources.create(v.resource);
      res.statusCode = 201;
      return created;
    });
    r.add('GET', '/api/v1/:plural/:name', async ({ params }) => {
      const def = kindOf(params.plural!);
      return resources.mustGet(def.kind, params.name!);
    });
    r.add('PUT', '/api/v1/:plural/:name', async ({ params, json }) => {
      const def = kindOf(params.plural!);
      const doc = await json<Record<string, unknown>>();
      const v = validateDocument({ ...doc, kind: doc.kind ?? def.kind }, undefined, 0);
      if (!v.resource) throw invalid(v.issues);
      if (v.resource.metadata.name !== params.name) {
        throw invalid([
          {
            resource: `${def.kind}/${params.name}`,
            path: 'metadata.name',
            message: `must match the URL name "${params.name}"`,
          },
        ]);
      }
      const cur = await resources.mustGet(def.kind, params.name!);
      return resources.update({
        ...v.resource,
        status: cur.status ?? {},
        metadata: {
          ...cur.metadata,
          labels: v.resource.metadata.labels ?? {},
          resourceVersion: v.resource.metadata.resourceVersion ?? cur.metadata.resourceVersion!,
        },
      });
    });
    r.add('DELETE', '/api/v1/:plural/:name', async ({ params, query }) => {
      const def = kindOf(params.plural!);
      const out = await resources.delete(def.kind, params.name!, query.get('resourceVersion') ?? undefined);
      return {
        kind: 'Status',
        status: 'Success',
        details: { kind: def.kind, name: params.name, pending: out.pending },
      };
    });
    r.add('GET', '/api/v1/:plural/:name/events', async ({ params, query }) => {
      const def = kindOf(params.plural!);
      const after = Number(query.get('after') ?? 0);
      const items = await resources.store.listEvents({
        kind: def.kind,
        name: params.name!,
        afterId: after,
        limit: Number(query.get('limit') ?? 10_000),
      });
      if (!items.length && after === 0) await resources.mustGet(def.kind, params.name!);
      return { kind: 'EventList', items };
    });
  }

  /** SSE: `change` events (resource watch) and `event` events (timeline), optionally for one object. */
  async #stream({ req, res, query }: RouteContext): Promise<void> {
    const kind = query.get('kind') ? kindOf(query.get('kind')!).kind : undefined;
    const name = query.get('name') ?? undefined;
    const after = Number(query.get('after') ?? 0);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write(': strata event stream\n\n');
    const wants = (k: string, n: string) => (!kind || k === kind) && (!name || n === name);
    const sent = new Set<number>();
    const sendEvent = (ev: StrataEvent) => {
      if (!wants(ev.kind, ev.name) || (ev.id !== undefined && (ev.id <= after || sent.has(ev.id)))) return;
      if (ev.id !== undefined) sent.add(ev.id);
      res.write(`id: ${ev.id ?? ''}\nevent: timeline\ndata: ${JSON.stringify(ev)}\n\n`);
    };
    const offEvent = this.#deps.hub.onEvent(sendEvent);
    const offChange = this.#deps.hub.onChange((w: WatchEvent) => {
      if (wants(w.object.kind, w.object.metadata.name))
        res.write(`event: change\ndata: ${JSON.stringify({ type: w.type, object: w.object })}\n\n`);
    });
    if (kind && name && query.has('after')) {
      for (const ev of await this.#deps.resources.store.listEvents({ kind, name, afterId: after }))
        sendEvent(ev);
    }
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    this.#streams.add(res);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearInterval(ping);
        offEvent();
        offChange();
        this.#streams.delete(res);
        resolve();
      };
      req.on('close', done);
      res.on('close', done);
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const start = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    try {
      const m = this.router.match(method, url.pathname);
      if (m === 'method')
        throw new StrataError(405, 'MethodNotAllowed', `${method} is not allowed on ${url.pathname}`);
      if (!m) throw new StrataError(404, 'NotFound', `no route for ${url.pathname}`);
      if (!m.route.public && !this.#deps.auth.check(req.headers.authorization)) {
        throw new StrataError(
          401,
          'Unauthorized',
          'missing or invalid bearer token (use --token or STRATA_TOKEN)',
        );
      }
      let cached: string | undefined;
      const body = async () => (cached ??= await readBody(req));
      const ctx: RouteContext = {
        req,
        res,
        params: m.params,
        query: url.searchParams,
        body,
        json: async <T>() => {
          const text = await body();
          try {
            return JSON.parse(text) as T;
          } catch (e) {
            throw new StrataError(
              400,
              'BadRequest',
              `request body is not valid JSON: ${(e as Error).message}`,
            );
          }
        },
      };
      const out = await m.route.handler(ctx);
      if (!res.headersSent && !res.writableEnded)
        sendJson(res, res.statusCode === 201 ? 201 : 200, out ?? {});
    } catch (err) {
      sendError(res, err, this.#deps.log);
    } finally {
      requests.inc({ method, code: String(res.statusCode) });
      latency.observe({ method }, Number(process.hrtime.bigint() - start) / 1e9);
    }
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(port, host, () => resolve());
    });
    return this.#server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    for (const s of this.#streams) s.end();
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server!.close(() => r()));
  }
}

/** `a=b,c=d` → {a: 'b', c: 'd'}. */
export function parseSelector(s: string | null): Record<string, string> | undefined {
  if (!s) return undefined;
  const out: Record<string, string> = {};
  for (const part of s.split(',')) {
    const [k, v] = part.split('=');
    if (!k || v === undefined)
      throw new StrataError(
        400,
        'BadRequest',
        `invalid label selector "${s}": expected key=value[,key=value]`,
      );
    out[k.trim()] = v.trim();
  }
  return out;
}
