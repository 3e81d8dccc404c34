/**
 * Hostile or broken requests get a clear answer, never a 500 or a reset connection: a malformed
 * %-encoding is a 400 before authentication, an oversized body a 413 the client can read, and keys that
 * reach an object's prototype (`__proto__`, `constructor`, `prototype`) are refused as labels and match
 * nothing in a selector.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { startApi, type TestApi } from '../../helpers/api.ts';
import { suiteCleanup } from '../../helpers/strata.ts';

describe('API hardening', { concurrency: 1 }, () => {
  const t = suiteCleanup();
  let api: TestApi;

  it('starts', async () => {
    api = await startApi(t);
    const r = await api.call(
      'POST',
      '/api/v1/apply',
      [1, 2, 3]
        .map((i) =>
          JSON.stringify({
            apiVersion: 'strata.dev/v1alpha1',
            kind: 'Node',
            metadata: { name: `n${i}` },
            spec: {},
          }),
        )
        .join('\n---\n'),
    );
    assert.equal(r.status, 200, r.text);
  });

  it('a malformed %-encoding in the path is 400 BadRequest, with or without a token', async () => {
    for (const token of [null, undefined]) {
      const r = await api.call('GET', '/api/v1/nodes/%E0%A4%A', undefined, { token });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.reason, 'BadRequest');
      assert.match(r.json.message, /malformed %-encoding/);
    }
  });

  it('a number parameter that is not a number is 400 naming it', async () => {
    for (const path of [
      '/api/v1/nodes/n1/events?after=abc',
      '/api/v1/nodes?limit=-1',
      '/api/v1/stream?after=x',
    ]) {
      const r = await api.call('GET', path);
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.match(r.json.message, /invalid (after|limit) /);
    }
  });

  it('a body over the limit is answered 413, not a reset connection', async () => {
    const big = `# ${'x'.repeat(17 * 1024 * 1024)}\n`;
    const r = await api.call('POST', '/api/v1/apply', big, { contentType: 'application/yaml' });
    assert.equal(r.status, 413);
    assert.equal(r.json.reason, 'RequestEntityTooLarge');
    // Without a Content-Length (chunked), the limit is found while reading; the answer still arrives.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        `${api.url}/api/v1/apply`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/yaml' },
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      const chunk = Buffer.alloc(1024 * 1024, 0x23);
      let sent = 0;
      const pump = () => {
        while (sent < 18) {
          sent++;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(chunked.status, 413);
    assert.match(chunked.body, /RequestEntityTooLarge/);
    assert.equal((await api.call('GET', '/healthz')).status, 200);
  });

  it('__proto__, constructor and prototype are refused as label keys, naming the key', async () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const doc = `{"apiVersion":"strata.dev/v1alpha1","kind":"Node","metadata":{"name":"evil","labels":{"${key}":"x"}},"spec":{}}`;
      const r = await api.call('POST', '/api/v1/apply', doc);
      assert.equal(r.status, 422, `${key}: ${r.text}`);
      assert.match(r.json.message, new RegExp(`metadata\\.labels\\.${key}: label key "${key}" is reserved`));
      const created = await api.call('POST', '/api/v1/nodes', doc, { contentType: 'application/json' });
      assert.equal(created.status, 422, key);
    }
    assert.equal((await api.call('GET', '/api/v1/nodes/evil')).status, 404);
  });

  it('a body of another kind than the URL is refused, not created under the other kind', async () => {
    const net = {
      apiVersion: 'strata.dev/v1alpha1',
      kind: 'Network',
      metadata: { name: 'sneaky' },
      spec: { interface: 'eth0', subnet: '10.6.0.0/24', serverAddress: '10.6.0.1', dhcp: { mode: 'off' } },
    };
    const r = await api.call('POST', '/api/v1/nodes', net);
    assert.equal(r.status, 422, r.text);
    assert.match(r.json.message, /kind: this URL takes nodes, not a Network: send it to \/api\/v1\/networks/);
    assert.equal((await api.call('GET', '/api/v1/networks/sneaky')).status, 404);
  });

  it('labelSelector=__proto__=x does not select every node', async () => {
    const r = await api.call('GET', '/api/v1/nodes?labelSelector=__proto__%3Dx');
    assert.equal(r.status, 400);
    const all = await api.call('GET', '/api/v1/nodes?labelSelector=constructor%3Dx');
    assert.equal(all.status, 200);
    assert.deepEqual(all.json.items, []);
  });
});
