/**
 * /openapi.json is the whole API: every route registered on the running server (the core's and every
 * layer's: work orders, power, lab) is in it with an operationId, a request schema where it takes a body
 * and a response schema; it names its `servers`; and `@redocly/cli lint` finds no error in it (run
 * offline: no telemetry, no update check).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { allKinds } from '../../../src/core/resources/kinds.ts';
import { startApi, type TestApi } from '../../helpers/api.ts';
import { REPO, suiteCleanup, tempDir } from '../../helpers/strata.ts';

type Operation = {
  operationId?: string;
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
};

describe('the OpenAPI document', { concurrency: 1 }, () => {
  const t = suiteCleanup();
  let api: TestApi;
  let doc: {
    servers?: { url: string }[];
    paths: Record<string, Record<string, Operation>>;
  };

  it('is served without a token and names its server', async () => {
    api = await startApi(t);
    const r = await api.call('GET', '/openapi.json', undefined, { token: null });
    assert.equal(r.status, 200);
    doc = r.json;
    assert.deepEqual(
      doc.servers?.map((s) => s.url),
      [api.url],
    );
  });

  it('lists every registered route, each with an operationId and request and response schemas', () => {
    const routes = api.platform.api!.router.routes;
    // The layers' routes are registered on the same router, and so must be in the document.
    for (const p of ['/api/v1/workorders', '/api/v1/nodes/:name/power', '/api/v1/lab/up']) {
      assert.ok(
        routes.some((r) => r.path === p),
        `${p} is registered`,
      );
    }
    const ids = new Set<string>();
    let checked = 0;
    for (const route of routes) {
      // `/:plural` routes serve every kind: each kind has its own path in the document.
      const paths = route.path.includes(':plural')
        ? allKinds().map((k) => route.path.replace(':plural', k.plural))
        : [route.path];
      for (const p of paths) {
        const oaPath = p.replace(/:(\w+)\*?/g, '{$1}');
        const op = doc.paths[oaPath]?.[route.method.toLowerCase()];
        assert.ok(op, `${route.method} ${p} is missing from /openapi.json`);
        assert.ok(op.operationId, `${route.method} ${p} has an operationId`);
        assert.ok(!ids.has(op.operationId), `operationId ${op.operationId} is unique`);
        ids.add(op.operationId);
        if (['POST', 'PUT', 'PATCH'].includes(route.method)) {
          const bodies = Object.values(op.requestBody?.content ?? {});
          assert.ok(
            bodies.length && bodies.every((b) => b.schema),
            `${route.method} ${p} has a request schema`,
          );
        }
        const ok = Object.entries(op.responses ?? {}).filter(([code]) => code.startsWith('2'));
        assert.equal(ok.length, 1, `${route.method} ${p} has one success response`);
        assert.ok(
          Object.values(ok[0]![1].content ?? {})[0]?.schema,
          `${route.method} ${p} has a response schema`,
        );
        checked++;
      }
    }
    // Nothing in the document that the server does not serve.
    const documented = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    assert.equal(documented, checked);
  });

  it('passes @redocly/cli lint with no errors', async () => {
    const file = join(tempDir(t, 'strata-openapi-'), 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    const out = await promisify(execFile)(
      join(REPO, 'node_modules/.bin/redocly'),
      ['lint', '--format', 'json', file],
      {
        cwd: join(file, '..'),
        env: {
          ...process.env,
          REDOCLY_TELEMETRY: 'off',
          REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
          CI: 'true',
        },
        maxBuffer: 16 * 1024 * 1024,
      },
    ).catch((e: { stdout?: string; stderr?: string }) => ({
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    }));
    const report = JSON.parse(out.stdout) as {
      totals: { errors: number };
      problems: { severity: string; message: string; location: { pointer: string }[] }[];
    };
    const errors = report.problems.filter((p) => p.severity === 'error');
    assert.deepEqual(
      errors.map((e) => `${e.location[0]?.pointer}: ${e.message}`),
      [],
    );
    assert.equal(report.totals.errors, 0);
  });
});
