/** Artifacts handed to nginx: the setting, the binary, nginx's configuration and its fetch log lines. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { artifactServer, findNginx, nginxConfig, parseFetchLine } from '../../../src/boot/http-nginx.ts';
import { networkSpec } from '../../../src/core/kinds/network.ts';

const net = { interface: 'br0', subnet: '10.0.0.0/24', serverAddress: '10.0.0.1' };

describe('spec.boot.artifactServer', () => {
  it('wins over STRATA_BOOT_ARTIFACT_SERVER, which wins over node', () => {
    assert.equal(
      artifactServer({ artifactServer: 'node' }, { STRATA_BOOT_ARTIFACT_SERVER: 'nginx' }),
      'node',
    );
    assert.equal(artifactServer({}, { STRATA_BOOT_ARTIFACT_SERVER: 'nginx' }), 'nginx');
    assert.equal(artifactServer({}, { STRATA_BOOT_ARTIFACT_SERVER: '' }), 'node');
    assert.equal(artifactServer({}, {}), 'node');
    assert.equal(
      artifactServer(networkSpec.parse({ ...net, boot: { artifactServer: 'nginx' } }).boot),
      'nginx',
    );
  });

  it('a bad value is refused naming the field or variable and the choices', () => {
    const r = networkSpec.safeParse({ ...net, boot: { artifactServer: 'apache' } });
    assert.ok(!r.success);
    assert.deepEqual(r.error.issues[0]?.path, ['boot', 'artifactServer']);
    assert.match(r.error.issues[0]!.message, /expected node .* or nginx/);
    assert.throws(
      () => artifactServer({}, { STRATA_BOOT_ARTIFACT_SERVER: 'apache' }),
      /STRATA_BOOT_ARTIFACT_SERVER="apache" .*set node or nginx/,
    );
  });

  it('no nginx installed: the error names the field and the fix', () => {
    assert.throws(
      () => findNginx({ PATH: '/nonexistent' }, []),
      /spec\.boot\.artifactServer is nginx .*apt-get install nginx-light.*or set spec\.boot\.artifactServer to node/,
    );
    assert.equal(findNginx({ STRATA_NGINX: '/opt/nginx/sbin/nginx' }, []), '/opt/nginx/sbin/nginx');
  });
});

describe("nginx's configuration", () => {
  const o = {
    dir: '/var/lib/strata/run/http-lab',
    host: '10.0.0.1',
    port: 7421,
    artifacts: '/var/lib/strata/artifacts',
    socket: '/var/lib/strata/run/http-lab/node.sock',
    fetchLog: '/var/lib/strata/run/http-lab/fetch.log',
    processes: 2,
    root: true,
  };

  it('serves /artifacts/ with sendfile and no links, logs it to the worker, passes the rest on', () => {
    const c = nginxConfig(o);
    assert.match(c, /^daemon off;$/m);
    assert.match(c, /^worker_processes 2;$/m);
    assert.match(c, /^pid \/var\/lib\/strata\/run\/http-lab\/nginx\.pid;$/m);
    assert.match(c, /listen 10\.0\.0\.1:7421 reuseport;/);
    assert.match(c, /sendfile on;/);
    assert.match(c, /alias \/var\/lib\/strata\/artifacts\/;\s+# [^\n]*\n[^\n]*\n\s+disable_symlinks on/);
    assert.match(
      c,
      /access_log \/var\/lib\/strata\/run\/http-lab\/fetch\.log strata_fetch buffer=64k flush=250ms;/,
    );
    assert.match(c, /server unix:\/var\/lib\/strata\/run\/http-lab\/node\.sock;/);
    assert.match(c, /proxy_set_header X-Real-IP \$remote_addr;/);
    assert.doesNotMatch(c, /\$proxy_add_x_forwarded_for/, 'a client-sent X-Forwarded-For is never passed on');
    assert.doesNotMatch(nginxConfig({ ...o, root: false }), /^user /m);
  });

  it('refuses a path that would break out of its directive', () => {
    assert.throws(
      () => nginxConfig({ ...o, artifacts: '/srv/a; root /' }),
      /artifacts "\/srv\/a; root \/" cannot go/,
    );
    assert.throws(() => nginxConfig({ ...o, dir: '/srv/my dir' }), /dir .* cannot go/);
  });
});

describe("nginx's fetch log lines", () => {
  it('become the FetchSummary Node reports', () => {
    assert.deepEqual(
      parseFetchLine(
        '{"a":"10.0.0.7","m":"GET","u":"/artifacts/debian/vmlinuz?mac=x","s":206,"b":1000,"t":0.012,"c":"OK","r":"bytes=0-999"}',
      ),
      {
        remoteAddress: '10.0.0.7',
        method: 'GET',
        path: '/artifacts/debian/vmlinuz',
        kind: 'artifact',
        status: 206,
        bytes: 1000,
        durationMs: 12,
        completed: true,
        range: 'bytes=0-999',
      },
    );
    const cut = parseFetchLine(
      '{"a":"10.0.0.7","m":"GET","u":"/artifacts/x","s":200,"b":5,"t":1.5,"c":"","r":""}',
    );
    assert.deepEqual([cut?.completed, cut?.range, cut?.durationMs], [false, undefined, 1500]);
  });

  it('that do not parse are dropped, not thrown', () => {
    for (const bad of [
      '',
      'garbage',
      '{"a":"10.0.0.7","m":"GET","u":"/artifacts/x","s":200,"b":5',
      '{"a":"10.0.0.7","m":"GET","u":"/artifacts/x","s":"200","b":5,"t":0.1}',
      '{"a":"10.0.0.7","m":"GET","u":"artifacts/x","s":200,"b":5,"t":0.1}',
      '[1,2]',
    ])
      assert.equal(parseFetchLine(bad), undefined, bad);
  });
});
