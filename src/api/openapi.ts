/**
 * The OpenAPI 3.1 document, generated from the kind registry so it never drifts from what the API accepts.
 */
import { z } from 'zod';
import { allKinds } from '../core/resources/kinds.ts';

export function buildOpenApi(version: string): Record<string, unknown> {
  const schemas: Record<string, unknown> = {
    ObjectMeta: {
      type: 'object',
      required: ['name'],
      properties: {
        name: { type: 'string' },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        resourceVersion: { type: 'string' },
        uid: { type: 'string' },
        generation: { type: 'integer' },
        creationTimestamp: { type: 'string', format: 'date-time' },
        deletionTimestamp: { type: 'string', format: 'date-time' },
      },
    },
    Status: {
      type: 'object',
      properties: {
        kind: { const: 'Status' },
        code: { type: 'integer' },
        reason: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'array' },
      },
    },
    Event: {
      type: 'object',
      properties: {
        id: { type: 'integer' },
        time: { type: 'string' },
        kind: { type: 'string' },
        name: { type: 'string' },
        step: { type: 'string' },
        source: { type: 'string' },
        type: { enum: ['Normal', 'Warning'] },
        reason: { type: 'string' },
        message: { type: 'string' },
        data: { type: 'object' },
      },
    },
  };
  const paths: Record<string, unknown> = {
    '/healthz': { get: { summary: 'Liveness', security: [], responses: { 200: { description: 'ok' } } } },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics',
        security: [],
        responses: { 200: { description: 'text exposition' } },
      },
    },
    '/api/v1/apply': {
      post: {
        summary: 'Create or update every resource of a YAML/JSON manifest, all or nothing',
        requestBody: { content: { 'application/yaml': { schema: { type: 'string' } } } },
        responses: {
          200: { description: 'applied' },
          422: {
            description: 'invalid',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Status' } } },
          },
        },
      },
    },
    '/api/v1/stream': {
      get: {
        summary: 'Server-Sent Events: `change` (resource watch) and `timeline` events',
        parameters: ['kind', 'name', 'after'].map((n) => ({
          name: n,
          in: 'query',
          schema: { type: 'string' },
        })),
        responses: { 200: { description: 'text/event-stream' } },
      },
    },
  };
  for (const k of allKinds()) {
    schemas[`${k.kind}Spec`] = z.toJSONSchema(k.spec, { unrepresentable: 'any', io: 'input' });
    schemas[k.kind] = {
      type: 'object',
      required: ['apiVersion', 'kind', 'metadata', 'spec'],
      properties: {
        apiVersion: { const: 'strata.dev/v1alpha1' },
        kind: { const: k.kind },
        metadata: { $ref: '#/components/schemas/ObjectMeta' },
        spec: { $ref: `#/components/schemas/${k.kind}Spec` },
        status: { type: 'object' },
      },
    };
    const ref = { $ref: `#/components/schemas/${k.kind}` };
    const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
    const name = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
    paths[`/api/v1/${k.plural}`] = {
      get: {
        summary: `List ${k.plural}`,
        parameters: [{ name: 'labelSelector', in: 'query', schema: { type: 'string' } }],
        responses: {
          200: {
            description: 'list',
            ...json({ type: 'object', properties: { items: { type: 'array', items: ref } } }),
          },
        },
      },
      post: {
        summary: `Create a ${k.kind}`,
        requestBody: json(ref),
        responses: {
          201: { description: 'created', ...json(ref) },
          409: { description: 'exists' },
          422: { description: 'invalid' },
        },
      },
    };
    paths[`/api/v1/${k.plural}/{name}`] = {
      get: {
        summary: `Get a ${k.kind}`,
        parameters: [name],
        responses: { 200: { description: k.kind, ...json(ref) }, 404: { description: 'not found' } },
      },
      put: {
        summary: `Replace a ${k.kind} (optimistic concurrency on metadata.resourceVersion)`,
        parameters: [name],
        requestBody: json(ref),
        responses: { 200: { description: 'updated', ...json(ref) }, 409: { description: 'conflict' } },
      },
      delete: {
        summary: `Delete a ${k.kind}`,
        parameters: [name],
        responses: { 200: { description: 'deleted or deletion started' }, 404: { description: 'not found' } },
      },
    };
    paths[`/api/v1/${k.plural}/{name}/events`] = {
      get: {
        summary: `Timeline of a ${k.kind}`,
        parameters: [name, { name: 'after', in: 'query', schema: { type: 'integer' } }],
        responses: {
          200: {
            description: 'events',
            ...json({
              type: 'object',
              properties: { items: { type: 'array', items: { $ref: '#/components/schemas/Event' } } },
            }),
          },
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Strata API', version, license: { name: 'Apache-2.0' } },
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas },
    paths,
  };
}
