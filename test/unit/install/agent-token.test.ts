/**
 * The installer agent sends its install token only to Strata's install endpoints: every command line of
 * src/install/agent.sh that carries `$TOKEN` (or `$INSTALLED_TOKEN`) must be aimed at `$API/…` (or the
 * report URL the server gave), never at the image URL, which may be any host.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const AGENT = join(import.meta.dirname, '../../../src/install/agent.sh');

/** The agent's commands, with backslash-continued lines joined and comments dropped. */
function commands(): string[] {
  return readFileSync(AGENT, 'utf8')
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'));
}

describe('installer agent: where the token goes', () => {
  it('every request with the install token goes to $API', () => {
    const withToken = commands().filter((l) => /\$\{?TOKEN\b/.test(l) && /\b(wget|curl)\b/.test(l));
    assert.ok(withToken.length >= 2, 'the agent does send its token to the install endpoints');
    for (const l of withToken) assert.match(l, /"\$API\/\$1"/, `token sent elsewhere: ${l.trim()}`);
  });

  it('the image download carries no Authorization header', () => {
    const image = commands().filter((l) => /\$IMAGE_URL"/.test(l) && /\bwget\b/.test(l));
    assert.equal(image.length, 1);
    assert.doesNotMatch(image[0]!, /Authorization/);
  });

  it('the installed token goes only to the report URL the server gave', () => {
    const lines = commands().filter((l) => /\$INSTALLED_TOKEN\b/.test(l) && /\bcurl\b/.test(l));
    assert.ok(lines.length >= 1);
    for (const l of lines) assert.match(l, /"\$STRATA_URL\/install\/\$STRATA_NODE\/installed"/);
  });
});
