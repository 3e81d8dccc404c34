/**
 * The OpenAPI 3.1 document, generated from the routes that exist (the core's and every layer's) and from
 * the kind registry, so it cannot drift from what the server answers: a route registered anywhere is in
 * it, with the schemas it was registered with, or a generic one and a generated operationId. Routes on
 * `/:plural` are expanded per kind, so each kind gets its own typed operations (`listNode`, `patchProfile`).
 * Each operation that needs a token says which role (`x-strata-role`) and how a token limited to networks
 * is treated (`x-strata-scope`: cluster, any, objects or node:PARAM; see RouteScope in core/http.ts).
 */
import { z } from 'zod';
import { generatedOperationId, type Route, type Router, type Schema, type SchemaFor } from '../core/http.ts';
import { allKinds, type KindDef } from '../core/resources/kinds.ts';
import { eventSchema, ref, statusSchema } from './schemas.ts';

const TAGS: Record<string, string> = {
  server: 'Health, version, metrics and this document',
  resources: 'Every kind: list, watch, get, create, replace, patch, delete, apply, timelines',
  tokens: 'API tokens with a role (viewer, operator, admin), optionally limited to networks',
};

function jsonSchema(s: Schema, io: 'input' | 'output'): Record<string, unknown> {
  if (!(s instanceof z.ZodType)) return s;
  const { $schema: _, ...out } = z.toJSONSchema(s, { unrepresentable: 'any', io }) as Record<string, unknown>;
  return out;
}

function resolve(s: SchemaFor | undefined, k: KindDef | undefined, io: 'input' | 'output') {
  if (s === undefined) return undefined;
  if (typeof s === 'function' && !(s instanceof z.ZodType)) {
    return k ? jsonSchema(s(k), io) : { type: 'object' };
  }
  return jsonSchema(s as Schema, io);
}

const fill = (text: string, k: KindDef | undefined) =>
  k ? text.replaceAll('{Kind}', k.kind).replaceAll('{plural}', k.plural) : text;

function operation(route: Route, k: KindDef | undefined): Record<string, unknown> {
  const { doc } = route;
  const baseId = doc.operationId ?? generatedOperationId(route.method, route.path);
  const operationId = k ? (baseId.includes('{Kind}') ? fill(baseId, k) : `${baseId}${k.kind}`) : baseId;
  const summary = doc.summary
    ? k && !doc.summary.includes('{Kind}')
      ? `${doc.summary}: ${k.kind}`
      : fill(doc.summary, k)
    : `${route.method} ${route.path}`;
  const parameters = [
    ...route.keys
      .filter((key) => !(k && key === 'plural'))
      .map((key) => ({ name: key, in: 'path', required: true, schema: { type: 'string' } })),
    ...Object.entries(doc.query ?? {}).map(([name, q]) => ({
      name,
      in: 'query',
      required: q.required ?? false,
      ...(q.description ? { description: q.description } : {}),
      schema: q.schema ? jsonSchema(q.schema, 'input') : { type: 'string' },
    })),
  ];
  const op: Record<string, unknown> = {
    operationId,
    summary,
    ...(doc.description ? { description: doc.description } : {}),
    tags: doc.tags ?? [route.path.split('/').filter(Boolean)[2] ?? 'server'],
    ...(parameters.length ? { parameters } : {}),
  };
  if (['POST', 'PUT', 'PATCH'].includes(route.method)) {
    const body = doc.body;
    const schema = resolve(body?.schema, k, 'input') ?? { type: 'object' };
    const types = body?.contentTypes ?? ['application/json'];
    op.requestBody = {
      required: body?.required ?? false,
      ...(body?.description ? { description: body.description } : {}),
      content: Object.fromEntries(
        types.map((t) => [t, { schema: t.includes('yaml') ? { type: 'string' } : schema }]),
      ),
    };
  }
  const ok = doc.response ?? {};
  const status = ok.status ?? 200;
  const statusRef = { content: { 'application/json': { schema: ref('Status') } } };
  const errors = new Set([
    ...(doc.errors ?? []),
    ...(route.ownCheck ? [401] : route.public ? [] : [401, 403]),
  ]);
  if (!errors.size) errors.add(500);
  op.responses = {
    [status]: {
      description: ok.description ?? 'OK',
      content: {
        [ok.contentType ?? 'application/json']: {
          schema: resolve(ok.schema, k, 'output') ?? { type: 'object' },
        },
      },
    },
    ...Object.fromEntries(
      [...errors].sort().map((c) => [c, { description: ERRORS[c] ?? 'error', ...statusRef }]),
    ),
  };
  if (route.ownCheck) {
    // A handler that checks tokens itself admits viewers on any network, unless the route says a role
    // (the registry's image pushes: admin, site-wide).
    op['x-strata-role'] = route.role;
    op['x-strata-scope'] =
      route.role === 'viewer' ? 'any' : typeof route.scope === 'object' ? 'cluster' : route.scope;
    op.description = [doc.description, `Takes ${route.ownCheck}.`].filter(Boolean).join(' ');
  } else if (route.public) op.security = [];
  else {
    // Who may call it, for clients and for the test that walks every operation with every role.
    op['x-strata-role'] = route.role;
    op['x-strata-scope'] = typeof route.scope === 'object' ? `node:${route.scope.node}` : route.scope;
  }
  return op;
}

const ERRORS: Record<number, string> = {
  400: 'BadRequest: a malformed parameter, selector, token or body',
  401: 'Unauthorized: no, an unknown or a revoked bearer token',
  403: 'Forbidden: the token has a weaker role than x-strata-role, or the object is outside its networks',
  404: 'NotFound',
  409: 'Conflict, AlreadyExists or InUse',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid: the message and details name each field',
  500: 'InternalError',
};

/** The OpenAPI path of a registered one: `/api/v1/:plural/:name` → `/api/v1/nodes/{name}` for Node. */
export function openApiPath(path: string, k?: KindDef): string {
  return (k ? path.replace(':plural', k.plural) : path).replace(/:([a-zA-Z]+)\*?/g, '{$1}');
}

export function buildOpenApi(router: Router, version: string, host?: string): Record<string, unknown> {
  const schemas: Record<string, unknown> = {
    ObjectMeta: {
      type: 'object',
      required: ['name'],
      properties: {
        name: { type: 'string' },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        annotations: { type: 'object', additionalProperties: { type: 'string' } },
        resourceVersion: { type: 'string' },
        uid: { type: 'string' },
        generation: { type: 'integer' },
        creationTimestamp: { type: 'string', format: 'date-time' },
        deletionTimestamp: { type: 'string', format: 'date-time' },
        finalizers: { type: 'array', items: { type: 'string' } },
      },
    },
    ListMeta: {
      type: 'object',
      required: ['resourceVersion'],
      properties: {
        resourceVersion: { type: 'string', description: 'watch from here to miss no later change' },
        continue: { type: 'string', description: 'token for the next page; absent on the last page' },
      },
    },
    Status: jsonSchema(statusSchema, 'output'),
    Event: jsonSchema(eventSchema, 'output'),
  };
  for (const k of allKinds()) {
    schemas[`${k.kind}Spec`] = jsonSchema(k.spec, 'input');
    schemas[k.kind] = {
      type: 'object',
      description: k.description,
      required: ['apiVersion', 'kind', 'metadata', 'spec'],
      properties: {
        apiVersion: { const: 'strata.dev/v1alpha1' },
        kind: { const: k.kind },
        metadata: ref('ObjectMeta'),
        spec: ref(`${k.kind}Spec`),
        status: { type: 'object' },
      },
    };
  }
  const paths: Record<string, Record<string, unknown>> = {};
  const tags = new Set<string>();
  for (const route of router.routes) {
    const kinds = route.keys.includes('plural') ? allKinds() : [undefined];
    for (const k of kinds) {
      const op = operation(route, k);
      for (const t of op.tags as string[]) tags.add(t);
      const p = openApiPath(route.path, k);
      paths[p] ??= {};
      paths[p][route.method.toLowerCase()] = op;
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Strata API',
      version,
      description: 'Nodes, networks, profiles and keys on the ladder from bare metal to service mesh.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: host ? `http://${host}` : 'http://127.0.0.1:7420', description: 'this server' }],
    security: [{ bearer: [] }],
    tags: [...tags]
      .sort()
      .map((name) => ({ name, description: TAGS[name] ?? `Routes of the ${name} layer` })),
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas },
    paths,
  };
}
