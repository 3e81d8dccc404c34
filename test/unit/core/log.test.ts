/**
 * The logger keeps tokens out of log lines whichever way they travel: as a field, inside a URL's query
 * (`?token=`, for installers that cannot send a header), inside an Authorization header or an error
 * message, or on a kernel command line.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/core/log.ts';

const SECRET = 'Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Njc4';

function lines(fn: (log: ReturnType<typeof createLogger>) => void): string {
  const out: string[] = [];
  fn(createLogger({}, (l) => out.push(l)));
  return out.join('\n');
}

describe('log redaction', () => {
  it('a token in a URL query, a header, an error or a kernel command line never reaches the line', () => {
    const text = lines((log) => {
      log.warn('install request failed', {
        err: new Error(`request to /install/c1/config?token=${SECRET} timed out`),
        path: `/install/c1/answers/kickstart?token=${SECRET}`,
      });
      log.warn('relay', { header: `Bearer ${SECRET}`, url: `http://x/y?a=1&token=${SECRET}&b=2` });
      log.info(`kernel args strata.url=http://10.0.0.1/ strata.token=${SECRET} console=ttyS0`);
    });
    assert.ok(!text.includes(SECRET), text);
    assert.match(text, /config\?token=\[REDACTED\] timed out/);
    assert.match(text, /token=\[REDACTED\]&b=2/);
    assert.match(text, /strata\.token=\[REDACTED\] console=ttyS0/);
  });

  it('leaves ordinary text alone', () => {
    const text = lines((log) => log.info('GET /boot/ipxe?mac=52:54:00:12:34:56 → 200', { tokens: 3 }));
    assert.match(text, /\?mac=52:54:00:12:34:56 → 200/);
  });
});
