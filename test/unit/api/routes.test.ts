/**
 * Every route is documented, even one a layer added with no description: it gets a generated
 * operationId and a generic schema. A zod body schema validates what the handler reads (422 naming the
 * field), and `/:plural` routes become one typed operation per kind.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { buildOpenApi } from '../../../src/api/openapi.ts';
import '../../../src/core/kinds/index.ts';
import { parseJsonBody, Router } from '../../../src/core/http.ts';
import { StrataError } from '../../../src/core/resources/errors.ts';

/** An OpenAPI operation, read field by field. */
type Op = {
  operationId: string;
  summary: string;
  parameters: unknown[];
  requestBody: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content: Record<string, { schema: unknown }> }>;
};
type Doc = { servers: { url: string }[]; paths: Record<string, Record<string, Op>> };

describe('routes and their schemas', () => {
  it('documents an undescribed route with a generated operationId and generic schemas', () => {
    const r = new Router();
    r.add('POST', '/api/v1/things/:id/poke', async () => ({}));
    const doc = buildOpenApi(r, '1.2.3', 'strata.example:7420') as Doc;
    assert.deepEqual(doc.servers, [{ url: 'http://strata.example:7420', description: 'this server' }]);
    const op = doc.paths['/api/v1/things/{id}/poke']!.post!;
    assert.equal(op.operationId, 'postApiV1ThingsIdPoke');
    assert.deepEqual(op.parameters, [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]);
    assert.deepEqual(op.requestBody.content['application/json']!.schema, { type: 'object' });
    assert.deepEqual(op.responses['200']!.content['application/json']!.schema, { type: 'object' });
    assert.ok(op.responses['401'], 'a route that needs a token documents 401');
  });

  it('expands /:plural routes per kind, with the kind in the operationId and schema', () => {
    const r = new Router();
    r.add('GET', '/api/v1/:plural/:name', async () => ({}), {
      operationId: 'read{Kind}',
      response: { schema: (k) => ({ $ref: `#/components/schemas/${k.kind}` }) },
    });
    r.describe('GET', '/api/v1/:plural/:name', { summary: 'Get a {Kind}' });
    const doc = buildOpenApi(r, '1') as Doc;
    const op = doc.paths['/api/v1/profiles/{name}']!.get!;
    assert.equal(op.operationId, 'readProfile');
    assert.equal(op.summary, 'Get a Profile');
    assert.deepEqual(op.responses['200']!.content['application/json']!.schema, {
      $ref: '#/components/schemas/Profile',
    });
    assert.throws(() => r.describe('GET', '/nope', {}), /no route GET \/nope/);
  });

  it('a zod body schema validates the body: 422 naming the field, 400 for JSON that does not parse', () => {
    const schema = z.object({ op: z.enum(['on', 'off']) });
    assert.deepEqual(parseJsonBody('{"op":"on"}', schema), { op: 'on' });
    assert.throws(
      () => parseJsonBody('{"op":"sideways"}', schema),
      (e: unknown) => e instanceof StrataError && e.status === 422 && /request body: op: /.test(e.message),
    );
    assert.throws(
      () => parseJsonBody('{op:', schema),
      (e: unknown) => e instanceof StrataError && e.status === 400 && /not valid JSON/.test(e.message),
    );
  });

  it('a malformed %-encoding in a path parameter is a 400, not an exception', () => {
    const r = new Router();
    r.add('GET', '/api/v1/nodes/:name', async () => ({}));
    const m = r.match('GET', '/api/v1/nodes/n%2D1');
    assert.ok(m && m !== 'method');
    assert.equal(m.params.name, 'n-1');
    assert.throws(
      () => r.match('GET', '/api/v1/nodes/%E0%A4%A'),
      (e: unknown) => e instanceof StrataError && e.status === 400,
    );
  });
});
