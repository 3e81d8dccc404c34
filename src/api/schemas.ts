/**
 * The shapes the API speaks besides the kinds themselves (those come from the kind registry): lists,
 * apply, Status, events, version. They are zod types so that the routes validate with them and the
 * OpenAPI document is generated from the same definitions.
 */
import { z } from 'zod';
import type { KindDef } from '../core/resources/kinds.ts';

/** A reference to a component of the OpenAPI document. */
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

export const statusSchema = z.object({
  kind: z.literal('Status'),
  status: z.enum(['Success', 'Failure']),
  code: z.number().int().optional(),
  reason: z.string().optional().describe('NotFound, Invalid, Conflict, InUse, Unauthorized, BadRequest, …'),
  message: z.string().optional(),
  details: z.unknown().optional(),
});

export const versionSchema = z.object({
  version: z.string().describe('the server version, e.g. 0.1.0'),
  apiVersion: z.string().describe('the resource API version, e.g. strata.dev/v1alpha1'),
});

export const resourceListSchema = z.object({
  kind: z.literal('APIResourceList'),
  resources: z.array(
    z.object({
      kind: z.string(),
      name: z.string(),
      shortNames: z.array(z.string()),
      description: z.string(),
    }),
  ),
});

export const applyFilesSchema = z
  .object({
    files: z
      .array(
        z.object({
          name: z.string().optional().describe('the file name, used in error messages'),
          text: z.string().describe('YAML or JSON manifest text, one or more documents'),
        }),
      )
      .min(1, { message: 'expected at least one file {name, text}' }),
  })
  .strict();

export const applyResultSchema = z.object({
  kind: z.literal('ApplyResult'),
  items: z.array(
    z.object({
      kind: z.string(),
      name: z.string(),
      action: z.enum(['created', 'configured', 'unchanged']),
      object: z
        .record(z.string(), z.unknown())
        .describe('the resource as stored (or as it would be, in a dry run)'),
    }),
  ),
});

export const eventSchema = z.object({
  id: z.number().int().optional(),
  time: z.string(),
  kind: z.string(),
  name: z.string(),
  step: z.string().optional(),
  source: z.string(),
  type: z.enum(['Normal', 'Warning']),
  reason: z.string(),
  message: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});

export const eventListSchema = {
  type: 'object',
  required: ['kind', 'items'],
  properties: { kind: { const: 'EventList' }, items: { type: 'array', items: ref('Event') } },
};

export const deletedSchema = z.object({
  kind: z.literal('Status'),
  status: z.literal('Success'),
  details: z.object({ kind: z.string(), name: z.string(), pending: z.boolean() }),
});

/** `{kind: NodeList, metadata: {resourceVersion, continue}, items}` for one kind. */
export const listOf = (k: KindDef) => ({
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'items'],
  properties: {
    apiVersion: { type: 'string' },
    kind: { const: `${k.kind}List` },
    metadata: ref('ListMeta'),
    items: { type: 'array', items: ref(k.kind) },
  },
});

export const mergePatchSchema = (k: KindDef) => ({
  type: 'object',
  description: `RFC 7386 merge patch of a ${k.kind}: metadata.labels, metadata.annotations and spec; null deletes a key`,
  properties: {
    metadata: {
      type: 'object',
      properties: {
        labels: { type: 'object', additionalProperties: { type: ['string', 'null'] } },
        annotations: { type: 'object', additionalProperties: { type: ['string', 'null'] } },
        resourceVersion: { type: 'string' },
      },
    },
    spec: { type: 'object' },
  },
});
