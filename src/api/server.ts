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
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { EventHub } from '../core/events.ts';
import {
  parseJsonBody,
  type Route,
  type RouteContext,
  Router,
  routeContext,
  sendError,
  sendJson,
} from '../core/http.ts';
import type { Logger } from '../core/log.ts';
import { counter, histogram, registry, renderMetrics } from '../core/metrics.ts';
import { invalid, StrataError } from '../core/resources/errors.ts';
import { allKinds, type KindDef, resolveKind } from '../core/resources/kinds.ts';
import { readManifests, validateDocument } from '../core/resources/manifest.ts';
import { parseSelector } from '../core/resources/selector.ts';
import type { JsonPage, ResourceService } from '../core/resources/service.ts';
import { API_VERSION, type Resource, type StrataEvent } from '../core/resources/types.ts';
import { type Principal, roleAllows } from '../core/tokens.ts';
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
/** Lists longer than this are read and sent this many objects at a time (the list route). */
const LIST_CHUNK = 500;
/** How often a watch also looks at the change log unprompted (writes by another manager sharing PostgreSQL). */
const WATCH_POLL_MS = 2_000;

export interface ApiDeps {
  resources: ResourceService;
  hub: EventHub;
  auth: TokenAuth;
  log: Logger;
  version: string;
  /** Answers a path no route has (the web UI's files); true when it did. */
  fallback?: (req: IncomingMessage, res: ServerResponse, pathname: string) => boolean;
}

/** Whether a token limited to networks may see this object: Nodes and Networks of its networks, any other kind. */
function visible(p: Principal | undefined, r: Resource): boolean {
  if (!p?.networks) return true;
  if (r.kind === 'Network') return p.networks.includes(r.metadata.name);
  if (r.kind === 'Node') return p.networks.includes(String((r.spec as { network?: unknown }).network ?? ''));
  return true;
}

function forbidden(p: Principal, why: string): StrataError {
  return new StrataError(
    403,
    'Forbidden',
    `token "${p.name}" (${p.role}${p.networks ? `, networks ${p.networks.join(', ')}` : ''}) ${why}`,
  );
}

/**
 * A write by a token limited to networks: only Nodes and Networks, and only of its networks, before and
 * after (a Node cannot be moved out of, or into, a network it does not hold). Other kinds are site-wide.
 */
function checkWrite(p: Principal | undefined, ...objects: (Resource | undefined)[]): void {
  if (!p?.networks) return;
  for (const r of objects) {
    if (!r) continue;
    if (r.kind !== 'Node' && r.kind !== 'Network')
      throw forbidden(
        p,
        `may change only Nodes and Networks of its networks, not ${r.kind}/${r.metadata.name}: use a token without networks`,
      );
    if (!visible(p, r))
      throw forbidden(p, `may not change ${r.kind}/${r.metadata.name}: it is outside the token's networks`);
  }
}

/** Refuses, before the body is read, a write of a site-wide kind by a token limited to networks. */
function checkKind(p: Principal | undefined, def: KindDef): void {
  if (p?.networks && def.kind !== 'Node' && def.kind !== 'Network')
    throw forbidden(
      p,
      `may change only Nodes and Networks of its networks, not ${def.plural}: use a token without networks`,
    );
}

function checkRead(p: Principal | undefined, r: Resource): Resource {
  if (!visible(p, r))
    throw forbidden(p!, `may not read ${r.kind}/${r.metadata.name}: it is outside the token's networks`);
  return r;
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

/** What a long response may hold in memory for a slow client before it waits for the client to read. */
const RESPONSE_BUFFER = 16 << 20;

/**
 * Gives the loop a turn, and waits for a slow client to read when more than RESPONSE_BUFFER waits to be
 * sent (not at every chunk: a round trip through the client per chunk would slow a list on a busy
 * machine); false when the client has gone, so a long response stops being produced.
 */
async function writable(res: ServerResponse): Promise<boolean> {
  if (res.writableLength > RESPONSE_BUFFER)
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  else await yieldToLoop();
  return !res.destroyed;
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
        scope: 'any',
        operationId: 'listApiResources',
        summary: 'The kinds this server serves',
        tags: ['resources'],
        response: { schema: resourceListSchema },
      },
    );
    r.add('POST', '/api/v1/apply', async (ctx) => this.#apply(ctx), {
      scope: 'objects',
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
      scope: 'objects',
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
        only: {
          schema: { enum: ['changes', 'timeline'] },
          description: 'only `change` events, or only `timeline` events (a page that reloads on events)',
        },
      },
      response: { contentType: 'text/event-stream', schema: { type: 'string' } },
      errors: [400, 404],
    });
    r.add(
      'GET',
      '/api/v1/:plural',
      async ({ params, query, principal, res }) => {
        const def = kindOf(params.plural!);
        const want = intParam(query, 'limit', 1) ?? Number.POSITIVE_INFINITY;
        const selector = parseSelector(query.get('labelSelector'));
        // Objects come as their stored JSON text and are sent as they are: parsing and serialising 500
        // Nodes again was most of a page's work.
        const read = (n: number, cont: string | null | undefined) =>
          resources.listPageJson(def.kind, { selector, limit: n, ...(cont ? { continue: cont } : {}) });
        const head = JSON.stringify({ apiVersion: API_VERSION, kind: `${def.kind}List` }).slice(0, -1);
        const metadata = (p: JsonPage) =>
          JSON.stringify({
            resourceVersion: p.resourceVersion,
            ...(p.continue ? { continue: p.continue } : {}),
          });
        // A token limited to networks gets only its Nodes and Networks (a page may then be short): only
        // then is an object parsed, to see its network.
        const mine = (p: JsonPage) =>
          (principal?.networks ? p.items.filter((o) => visible(principal, JSON.parse(o.json))) : p.items)
            .map((o) => o.json)
            .join(',');
        let page = await read(Math.min(want, LIST_CHUNK), query.get('continue'));
        if (!page.continue || want <= LIST_CHUNK) {
          const body = `${head},"metadata":${metadata(page)},"items":[${mine(page)}]}`;
          res.writeHead(200, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          });
          res.end(body);
          return;
        }
        // Longer lists are read and sent LIST_CHUNK objects at a time, giving the loop a turn between
        // chunks: a list of every Node never holds the API for the whole set. Every chunk is a page of
        // one listing, so the version is its first page's (watching from it misses nothing).
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`${head},"items":[`);
        let sent = 0;
        let sep = '';
        for (;;) {
          const text = mine(page);
          if (text) {
            res.write(sep + text);
            sep = ',';
          }
          sent += page.items.length;
          if (!page.continue || sent >= want || !(await writable(res))) break;
          page = await read(Math.min(want - sent, LIST_CHUNK), page.continue);
        }
        res.end(`],"metadata":${metadata(page)}}`);
      },
      {
        scope: 'objects',
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
      async ({ params, json, res, principal }) => {
        const def = kindOf(params.plural!);
        checkKind(principal, def);
        const next = fromBody(def, await json<Record<string, unknown>>());
        checkWrite(principal, next);
        const created = await resources.create(next);
        res.statusCode = 201;
        return created;
      },
      {
        scope: 'objects',
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
      async (ctx) =>
        checkRead(ctx.principal, await resources.mustGet(kindOf(ctx.params.plural!).kind, nameOf(ctx))),
      {
        scope: 'objects',
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
        checkKind(ctx.principal, def);
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
        checkWrite(ctx.principal, cur, next);
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
        scope: 'objects',
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
        checkKind(ctx.principal, def);
        if (ctx.principal?.networks)
          checkWrite(ctx.principal, await resources.mustGet(def.kind, nameOf(ctx)));
        return resources.patch(def.kind, nameOf(ctx), await ctx.json(), (doc) => {
          const next = fromBody(def, doc);
          checkWrite(ctx.principal, next);
          return next;
        });
      },
      {
        scope: 'objects',
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
        checkKind(ctx.principal, def);
        if (ctx.principal?.networks)
          checkWrite(ctx.principal, await resources.mustGet(def.kind, nameOf(ctx)));
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
        scope: 'objects',
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
        if (ctx.principal?.networks) checkRead(ctx.principal, await resources.mustGet(def.kind, nameOf(ctx)));
        const items = await resources.hub.list({
          kind: def.kind,
          name: nameOf(ctx),
          afterId: after,
          limit: intParam(ctx.query, 'limit', 1) ?? 10_000,
        });
        if (!items.length && after === 0) await resources.mustGet(def.kind, nameOf(ctx));
        return { kind: 'EventList', items };
      },
      {
        scope: 'objects',
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
  async #apply({ req, res, body, query, principal }: RouteContext): Promise<unknown> {
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
    if (principal?.networks) {
      for (const d of docs) checkWrite(principal, d, await this.#deps.resources.get(d.kind, d.metadata.name));
    }
    const dryRun = query.get('dryRun') === 'true' || query.get('dryRun') === 'All';
    const out = await this.#deps.resources.apply(docs, { dryRun });
    const items = out.map((o) => ({
      kind: o.resource.kind,
      name: o.resource.metadata.name,
      action: o.action,
      object: o.resource,
    }));
    if (items.length <= LIST_CHUNK) return { kind: 'ApplyResult', items };
    // A large result is serialised and sent LIST_CHUNK items at a time, with a turn of the loop between
    // chunks: the result of a 10,000-Node apply in one piece held the loop 40-200 ms.
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"kind":"ApplyResult","items":[');
    for (let i = 0; i < items.length; i += LIST_CHUNK) {
      if (i && !(await writable(res))) return;
      const text = items
        .slice(i, i + LIST_CHUNK)
        .map((o) => JSON.stringify(o))
        .join(',');
      res.write(i ? `,${text}` : text);
    }
    res.end(']}');
  }

  /**
   * SSE: `change` events (the watch, `id:` = resourceVersion) and `timeline` events (their id is in the
   * data, so `Last-Event-ID` always names a resourceVersion), optionally for one kind or object.
   */
  async #stream({ req, res, query, principal }: RouteContext): Promise<void> {
    const { resources, hub } = this.#deps;
    const kind = query.get('kind') ? kindOf(query.get('kind')!).kind : undefined;
    const name = query.get('name') ?? undefined;
    // A token limited to networks gets the changes of its own Nodes and Networks, and timeline events
    // only on a watch of one object it may read (an event names its object, not the object's network).
    const scoped = !!principal?.networks;
    if (scoped && kind && name) {
      const obj = await resources.get(kind, name);
      if (obj) checkRead(principal, obj);
    }
    const only = query.get('only');
    if (only !== null && only !== 'changes' && only !== 'timeline')
      throw new StrataError(400, 'BadRequest', `only must be "changes" or "timeline", not "${only}"`);
    const timelineOk = only !== 'changes' && (!scoped || !!(kind && name));
    const changesOk = only !== 'timeline';
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
      if (
        !open ||
        !timelineOk ||
        !wants(ev.kind, ev.name) ||
        (ev.id !== undefined && (ev.id <= after || sent.has(ev.id)))
      )
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
              cursor = c.rv;
              if (!visible(principal, c.object)) continue;
              res.write(
                `id: ${c.rv}\nevent: change\ndata: ${JSON.stringify({ type: c.type, object: c.object })}\n\n`,
              );
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
      if (changesOk && wants(w.object.kind, w.object.metadata.name)) void pull();
    });
    if (kind && name && query.has('after')) {
      for (const ev of await resources.store.listEvents({ kind, name, afterId: after })) sendEvent(ev);
    }
    if (changesOk) void pull();
    const ping = setInterval(() => open && res.write(': keepalive\n\n'), KEEPALIVE_MS);
    const poll = setInterval(() => {
      if (changesOk) void pull();
    }, WATCH_POLL_MS);
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
      if (!m) {
        if (this.#deps.fallback?.(req, res, url.pathname)) return;
        throw new StrataError(404, 'NotFound', `no route for ${url.pathname}`);
      }
      const principal = m.route.public ? undefined : await this.#authorize(req, m.route, m.params);
      const ctx: RouteContext = routeContext(
        req,
        res,
        m.params,
        url.searchParams,
        m.route.doc.body?.schema,
        principal,
      );
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

  /** 401 without a known token, 403 when its role or networks do not reach as far as the route. */
  async #authorize(req: IncomingMessage, route: Route, params: Record<string, string>): Promise<Principal> {
    const p = await this.#deps.auth.authenticate(req.headers.authorization);
    if (!p) {
      throw new StrataError(
        401,
        'Unauthorized',
        'missing or invalid bearer token (use --token or STRATA_TOKEN)',
      );
    }
    if (!roleAllows(p.role, route.role))
      throw forbidden(p, `may not ${route.method} ${route.path}: that needs the ${route.role} role`);
    if (!p.networks) return p;
    const scope = route.scope;
    if (scope === 'cluster')
      throw forbidden(
        p,
        `may not ${route.method} ${route.path}: it acts on the whole site, use a token without networks`,
      );
    if (typeof scope === 'object') {
      const node = await this.#deps.resources.get('Node', params[scope.node]!);
      if (node && !visible(p, node))
        throw forbidden(p, `may not act on Node/${node.metadata.name}: it is outside the token's networks`);
    }
    return p;
  }

  /** Serves plain HTTP, or HTTPS with `tls` (the same routes, the same upgrade path for exec). */
  async listen(host: string, port: number, tls?: { cert: string; key: string }): Promise<AddressInfo> {
    const handle = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    this.#server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handle) : createServer(handle);
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
