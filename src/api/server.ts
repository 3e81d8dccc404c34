/**
 * The HTTP API under /api/v1: generic CRUD over every registered kind with paged lists, merge patch and
 * kubectl-style apply (with a server-side dry run), per-object timelines, a resumable Server-Sent Events
 * watch, /version, OpenAPI at /openapi.json, Prometheus metrics at /metrics and /healthz. Layers add
 * their own routes to the same router, and every route carries its schema, so the document lists them all.
 *
 * The watch reads the store's change log rather than in-process notifications (those only wake it up): a
 * client that lists and then watches from the list's resourceVersion gets every later change exactly once
 * and in order, resumes after a reconnect from `Last-Event-ID`, and is told to relist when the log no
 * longer reaches back that far.
 */
import { createServer, type IncomingMessage, type Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { EventHub } from '../core/events.ts';
import { parseJsonBody, type RouteContext, Router, routeContext, sendError, sendJson } from '../core/http.ts';
import type { Logger } from '../core/log.ts';
import { counter, histogram, registry, renderMetrics } from '../core/metrics.ts';
import { invalid, StrataError } from '../core/resources/errors.ts';
import { allKinds, type KindDef, resolveKind } from '../core/resources/kinds.ts';
import { readManifests, validateDocument } from '../core/resources/manifest.ts';
import { parseSelector } from '../core/resources/selector.ts';
import type { ResourceService } from '../core/resources/service.ts';
import { API_VERSION, type Resource, type StrataEvent } from '../core/resources/types.ts';
import type { TokenAuth } from './auth.ts';
import { buildOpenApi } from './openapi.ts';
import {
  applyFilesSchema,
  applyResultSchema,
  deletedSchema,
  eventListSchema,
  listOf,
  mergePatchSchema,
  ref,
  resourceListSchema,
  versionSchema,
} from './schemas.ts';

const requests = counter('strata_api_requests_total', 'API requests', ['method', 'code']);
const latency = histogram(
  'strata_api_request_seconds',
  'API request latency',
  ['method'],
  [0.001, 0.005, 0.02, 0.1, 0.5, 2],
);

/** Content types the apply endpoint reads as a raw YAML (or JSON-as-YAML) manifest. */
const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];
const PATCH_TYPES = ['application/merge-patch+json', 'application/json'];
const KEEPALIVE_MS = 15_000;
/** How often a watch also looks at the change log unprompted (writes by another manager sharing PostgreSQL). */
const WATCH_POLL_MS = 2_000;

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

/** The media type of a request, without parameters, lower-cased ('' when absent). */
function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function unsupported(got: string, accepted: string[]): StrataError {
  return new StrataError(
    415,
    'UnsupportedMediaType',
    `Content-Type "${got || '(none)'}" is not accepted here: send one of ${accepted.join(', ')}`,
  );
}

/** An integer query parameter of at least `min`, or absent. */
function intParam(query: URLSearchParams, name: string, min: number): number | undefined {
  const v = query.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) {
    throw new StrataError(
      400,
      'BadRequest',
      `invalid ${name} "${v}": expected ${min ? 'a positive' : 'a non-negative'} integer like 500`,
    );
  }
  return Number(v);
}

/** A resourceVersion to watch from: digits (the store's versions are integers). */
function parseVersion(v: string, where: string): string {
  if (!/^\d+$/.test(v)) {
    throw new StrataError(
      400,
      'BadRequest',
      `invalid ${where} "${v}": expected a resourceVersion from a list or a previous event`,
    );
  }
  return v;
}

export class ApiServer {
  readonly router = new Router();
  readonly #deps: ApiDeps;
  #server: Server | undefined;
  readonly #streams = new Set<ServerResponse>();
  readonly #upgraded = new Set<Socket>();

  constructor(deps: ApiDeps) {
    this.#deps = deps;
    this.#routes();
  }

  #routes(): void {
    const r = this.router;
    const { resources } = this.#deps;
    const kindRef = (k: KindDef) => ref(k.kind);
    const nameOf = (ctx: RouteContext) => ctx.params.name!;
    const fromBody = (def: KindDef, doc: Record<string, unknown>): Resource => {
      const v = validateDocument({ ...doc, kind: doc.kind ?? def.kind }, undefined, 0);
      if (!v.resource) throw invalid(v.issues);
      if (v.resource.kind !== def.kind) {
        throw invalid([
          {
            resource: `${v.resource.kind}/${v.resource.metadata.name}`,
            path: 'kind',
            message: `this URL takes ${def.plural}, not a ${v.resource.kind}: send it to /api/v1/${kindOf(v.resource.kind).plural} or use apply`,
          },
        ]);
      }
      return v.resource;
    };

    r.add('GET', '/healthz', async () => ({ status: 'ok' }), {
      public: true,
      operationId: 'getHealth',
      summary: 'Liveness: answers while the event loop turns',
      tags: ['server'],
      response: { schema: { type: 'object', properties: { status: { const: 'ok' } } } },
    });
    r.add('GET', '/version', async () => ({ version: this.#deps.version, apiVersion: API_VERSION }), {
      public: true,
      operationId: 'getVersion',
      summary: 'Server version and API version (no token needed, as with kubectl version)',
      tags: ['server'],
      response: { schema: versionSchema },
    });
    r.add(
      'GET',
      '/metrics',
      async ({ res }) => {
        const text = await renderMetrics();
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      },
      {
        public: true,
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        tags: ['server'],
        response: { contentType: 'text/plain', schema: { type: 'string' } },
      },
    );
    r.add(
      'GET',
      '/openapi.json',
      async ({ req }) => buildOpenApi(this.router, this.#deps.version, req.headers.host),
      {
        public: true,
        operationId: 'getOpenApi',
        summary: 'This document',
        tags: ['server'],
        response: { schema: { type: 'object' } },
      },
    );
    r.add(
      'GET',
      '/api/v1',
      async () => ({
        kind: 'APIResourceList',
        resources: allKinds().map((k) => ({
          kind: k.kind,
          name: k.plural,
          shortNames: k.aliases,
          description: k.description,
        })),
      }),
      {
        operationId: 'listApiResources',
        summary: 'The kinds this server serves',
        tags: ['resources'],
        response: { schema: resourceListSchema },
      },
    );
    r.add('POST', '/api/v1/apply', async (ctx) => this.#apply(ctx), {
      operationId: 'apply',
      summary: 'Create or update every resource of one or more manifests, all or nothing',
      description:
        'The body is chosen by Content-Type: application/json carries {"files": [{"name", "text"}]}; ' +
        'application/yaml carries one manifest (several --- documents). dryRun=true writes nothing and ' +
        'returns what would be stored.',
      tags: ['resources'],
      query: {
        dryRun: { schema: { type: 'boolean' }, description: 'validate and compare only; write nothing' },
        file: { schema: { type: 'string' }, description: 'file name for messages (YAML body)' },
      },
      body: {
        schema: applyFilesSchema,
        contentTypes: ['application/json', 'application/yaml'],
        required: true,
      },
      response: { schema: applyResultSchema },
      errors: [400, 409, 413, 415, 422],
    });
    r.add('GET', '/api/v1/stream', async (ctx) => this.#stream(ctx), {
      operationId: 'watch',
      summary: 'Server-Sent Events: `change` (watch, id = resourceVersion), `timeline` and `relist` events',
      description:
        'Resume with the Last-Event-ID header or resourceVersion=: every change after it is sent, in ' +
        'order, then live ones. When the server cannot replay that far it sends `relist` and ends.',
      tags: ['resources'],
      query: {
        kind: { schema: { type: 'string' }, description: 'only this kind (plural or kind name)' },
        name: { schema: { type: 'string' }, description: 'only this object' },
        resourceVersion: { schema: { type: 'string' }, description: 'changes after this version' },
        after: { schema: { type: 'integer' }, description: 'timeline events after this event id' },
      },
      response: { contentType: 'text/event-stream', schema: { type: 'string' } },
      errors: [400, 404],
    });
    r.add(
      'GET',
      '/api/v1/:plural',
      async ({ params, query }) => {
        const def = kindOf(params.plural!);
        const limit = intParam(query, 'limit', 1);
        const cont = query.get('continue');
        const page = await resources.listPage(def.kind, {
          selector: parseSelector(query.get('labelSelector')),
          ...(limit ? { limit } : {}),
          ...(cont ? { continue: cont } : {}),
        });
        return {
          apiVersion: API_VERSION,
          kind: `${def.kind}List`,
          metadata: {
            resourceVersion: page.resourceVersion,
            ...(page.continue ? { continue: page.continue } : {}),
          },
          items: page.items,
        };
      },
      {
        operationId: 'list{Kind}',
        summary: 'List {plural}',
        tags: ['resources'],
        query: {
          labelSelector: {
            schema: { type: 'string' },
            description: 'k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k; comma = AND',
          },
          limit: { schema: { type: 'integer', minimum: 1 }, description: 'at most this many items' },
          continue: { schema: { type: 'string' }, description: 'metadata.continue of the previous page' },
        },
        response: { schema: listOf },
        errors: [400, 404],
      },
    );
    r.add(
      'POST',
      '/api/v1/:plural',
      async ({ params, json, res }) => {
        const def = kindOf(params.plural!);
        const created = await resources.create(fromBody(def, await json<Record<string, unknown>>()));
        res.statusCode = 201;
        return created;
      },
      {
        operationId: 'create{Kind}',
        summary: 'Create a {Kind}',
        tags: ['resources'],
        body: { schema: kindRef, required: true },
        response: { status: 201, schema: kindRef },
        errors: [400, 404, 409, 422],
      },
    );
    r.add(
      'GET',
      '/api/v1/:plural/:name',
      async (ctx) => resources.mustGet(kindOf(ctx.params.plural!).kind, nameOf(ctx)),
      {
        operationId: 'read{Kind}',
        summary: 'Get a {Kind}',
        tags: ['resources'],
        response: { schema: kindRef },
        errors: [404],
      },
    );
    r.add(
      'PUT',
      '/api/v1/:plural/:name',
      async (ctx) => {
        const def = kindOf(ctx.params.plural!);
        const name = nameOf(ctx);
        const next = fromBody(def, await ctx.json<Record<string, unknown>>());
        if (next.metadata.name !== name) {
          throw invalid([
            {
              resource: `${def.kind}/${name}`,
              path: 'metadata.name',
              message: `must match the URL name "${name}"`,
            },
          ]);
        }
        const cur = await resources.mustGet(def.kind, name);
        return resources.replace({
          ...next,
          status: cur.status ?? {},
          metadata: {
            ...cur.metadata,
            labels: next.metadata.labels ?? {},
            annotations: next.metadata.annotations ?? {},
            resourceVersion: next.metadata.resourceVersion ?? cur.metadata.resourceVersion!,
          },
        });
      },
      {
        operationId: 'replace{Kind}',
        summary: 'Replace a {Kind} (optimistic concurrency on metadata.resourceVersion)',
        tags: ['resources'],
        body: { schema: kindRef, required: true },
        response: { schema: kindRef },
        errors: [400, 404, 409, 422],
      },
    );
    r.add(
      'PATCH',
      '/api/v1/:plural/:name',
      async (ctx) => {
        const def = kindOf(ctx.params.plural!);
        const type = mediaType(ctx.req);
        if (!PATCH_TYPES.includes(type)) throw unsupported(type, PATCH_TYPES);
        return resources.patch(def.kind, nameOf(ctx), await ctx.json(), (doc) => fromBody(def, doc));
      },
      {
        operationId: 'patch{Kind}',
        summary: 'Merge patch (RFC 7386) of a {Kind}: labels, annotations and spec',
        tags: ['resources'],
        body: {
          schema: mergePatchSchema,
          contentTypes: ['application/merge-patch+json'],
          required: true,
        },
        response: { schema: kindRef },
        errors: [400, 404, 409, 415, 422],
      },
    );
    r.add(
      'DELETE',
      '/api/v1/:plural/:name',
      async (ctx) => {
        const def = kindOf(ctx.params.plural!);
        const force = ['true', '1', ''].includes(ctx.query.get('force') ?? 'false');
        const out = await resources.delete(
          def.kind,
          nameOf(ctx),
          ctx.query.get('resourceVersion') ?? undefined,
          { refuseInUse: !force },
        );
        return {
          kind: 'Status',
          status: 'Success',
          details: { kind: def.kind, name: nameOf(ctx), pending: out.pending },
        };
      },
      {
        operationId: 'delete{Kind}',
        summary: 'Delete a {Kind} (refused with 409 InUse while nodes use it, unless force=true)',
        tags: ['resources'],
        query: {
          force: { schema: { type: 'boolean' }, description: 'delete even while nodes still use it' },
          resourceVersion: { schema: { type: 'string' }, description: 'only if still at this version' },
        },
        response: { schema: deletedSchema },
        errors: [404, 409],
      },
    );
    r.add(
      'GET',
      '/api/v1/:plural/:name/events',
      async (ctx) => {
        const def = kindOf(ctx.params.plural!);
        const after = intParam(ctx.query, 'after', 0) ?? 0;
        const items = await resources.store.listEvents({
          kind: def.kind,
          name: nameOf(ctx),
          afterId: after,
          limit: intParam(ctx.query, 'limit', 1) ?? 10_000,
        });
        if (!items.length && after === 0) await resources.mustGet(def.kind, nameOf(ctx));
        return { kind: 'EventList', items };
      },
      {
        operationId: 'list{Kind}Events',
        summary: 'Timeline of a {Kind}',
        tags: ['resources'],
        query: {
          after: { schema: { type: 'integer' }, description: 'only events with a larger id' },
          limit: { schema: { type: 'integer' }, description: 'at most this many events' },
        },
        response: { schema: eventListSchema },
        errors: [404],
      },
    );
  }

  /** Apply: the body is read as the Content-Type says, never guessed from its first bytes. */
  async #apply({ req, body, query }: RouteContext): Promise<unknown> {
    const type = mediaType(req);
    let docs: Resource[];
    if (type === 'application/json') {
      const { files } = parseJsonBody<{ files: { name?: string; text: string }[] }>(
        await body(),
        applyFilesSchema,
      );
      docs = await readManifests(files);
    } else if (YAML_TYPES.includes(type)) {
      const file = query.get('file') ?? (req.headers['x-strata-file'] as string | undefined);
      docs = await readManifests([{ name: file ?? undefined, text: await body() }]);
    } else {
      throw unsupported(type, ['application/json ({"files": [{"name", "text"}]})', 'application/yaml']);
    }
    const dryRun = query.get('dryRun') === 'true' || query.get('dryRun') === 'All';
    const out = await this.#deps.resources.apply(docs, { dryRun });
    return {
      kind: 'ApplyResult',
      items: out.map((o) => ({
        kind: o.resource.kind,
        name: o.resource.metadata.name,
        action: o.action,
        object: o.resource,
      })),
    };
  }

  /**
   * SSE: `change` events (the watch, `id:` = resourceVersion) and `timeline` events (their id is in the
   * data, so `Last-Event-ID` always names a resourceVersion), optionally for one kind or object.
   */
  async #stream({ req, res, query }: RouteContext): Promise<void> {
    const { resources, hub } = this.#deps;
    const kind = query.get('kind') ? kindOf(query.get('kind')!).kind : undefined;
    const name = query.get('name') ?? undefined;
    const after = intParam(query, 'after', 0) ?? 0;
    const lastId = req.headers['last-event-id'];
    const from = query.get('resourceVersion') ?? (typeof lastId === 'string' && lastId ? lastId : undefined);
    let cursor = from
      ? parseVersion(from, query.has('resourceVersion') ? 'resourceVersion' : 'Last-Event-ID')
      : await resources.store.version();
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write(': strata event stream\n\n');
    let open = true;
    const wants = (k: string, n: string) => (!kind || k === kind) && (!name || n === name);
    const sent = new Set<number>();
    const sendEvent = (ev: StrataEvent) => {
      if (!open || !wants(ev.kind, ev.name) || (ev.id !== undefined && (ev.id <= after || sent.has(ev.id))))
        return;
      if (ev.id !== undefined) sent.add(ev.id);
      res.write(`event: timeline\ndata: ${JSON.stringify(ev)}\n\n`);
    };
    // Changes come from the store's log in version order; notifications only say "look again".
    let pulling: Promise<void> | undefined;
    let again = false;
    const pull = async (): Promise<void> => {
      if (pulling) {
        again = true;
        return pulling;
      }
      pulling = (async () => {
        do {
          again = false;
          for (;;) {
            const changes = await resources.store.changes({
              afterRv: cursor,
              ...(kind ? { kind } : {}),
              ...(name ? { name } : {}),
              limit: 500,
            });
            if (!open) return;
            if (changes === 'expired') {
              const current = await resources.store.version();
              if (!open) return;
              open = false;
              res.end(
                `event: relist\ndata: ${JSON.stringify({ reason: 'Expired', resourceVersion: current })}\n\n`,
              );
              return;
            }
            for (const c of changes) {
              res.write(
                `id: ${c.rv}\nevent: change\ndata: ${JSON.stringify({ type: c.type, object: c.object })}\n\n`,
              );
              cursor = c.rv;
            }
            if (changes.length < 500) break;
          }
        } while (again && open);
      })()
        .catch((err) => {
          this.#deps.log.warn('watch could not read the change log; it retries on the next change', { err });
        })
        .finally(() => {
          pulling = undefined;
        });
      return pulling;
    };
    const offEvent = hub.onEvent(sendEvent);
    const offChange = hub.onChange((w) => {
      if (wants(w.object.kind, w.object.metadata.name)) void pull();
    });
    if (kind && name && query.has('after')) {
      for (const ev of await resources.store.listEvents({ kind, name, afterId: after })) sendEvent(ev);
    }
    void pull();
    const ping = setInterval(() => open && res.write(': keepalive\n\n'), KEEPALIVE_MS);
    const poll = setInterval(() => void pull(), WATCH_POLL_MS);
    this.#streams.add(res);
    await new Promise<void>((resolve) => {
      const done = () => {
        open = false;
        clearInterval(ping);
        clearInterval(poll);
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
    const method = req.method ?? 'GET';
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
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
      const ctx: RouteContext = routeContext(req, res, m.params, url.searchParams, m.route.doc.body?.schema);
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
    // Upgrade requests (the exec stream of `strata ssh`) go through the same routes and token check; the
    // route answers 101 and then owns the socket.
    this.#server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (head.length) socket.unshift(head);
      this.#upgraded.add(socket);
      socket.once('close', () => this.#upgraded.delete(socket));
      const res = new ServerResponse(req);
      res.assignSocket(socket);
      void this.#handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(port, host, () => resolve());
    });
    return this.#server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    for (const s of this.#streams) s.end();
    for (const s of this.#upgraded) s.destroy();
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server!.close(() => r()));
  }
}
