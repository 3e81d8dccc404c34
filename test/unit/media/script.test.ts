/**
 * The boot medium's iPXE script: DHCP or a static address, the chain URL with MAC, network, node and the
 * enrolment token, and values that could smuggle iPXE commands or break the URL refused with the option
 * to fix named.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaInputError, parseStatic, renderMediaScript } from '../../../src/media/script.ts';

const base = { baseUrl: 'http://10.0.0.1:7421', network: 'lan', token: 'A'.repeat(32) };

describe('media script', () => {
  it('configures DHCP and chains to the per-machine script with the token', () => {
    const s = renderMediaScript(base);
    assert.match(s, /^#!ipxe\n/);
    assert.match(s, /^dhcp \|\| goto retry$/m);
    assert.match(
      s,
      /^chain --autofree http:\/\/10\.0\.0\.1:7421\/boot\/ipxe\?mac=\$\{netX\/mac\}&media=1&network=lan&token=A{32} \|\| goto retry$/m,
    );
    assert.match(s, /^:retry\n.*\nsleep 10\ngoto start$/m);
  });

  it('sets a static address on net0, and names the node', () => {
    const s = renderMediaScript({
      ...base,
      node: 'rack1-07',
      static: parseStatic('10.0.7.17/20/10.0.0.1/10.0.0.53'),
    });
    assert.doesNotMatch(s, /^dhcp/m);
    for (const line of [
      'ifopen net0 || goto retry',
      'set net0/ip 10.0.7.17',
      'set net0/netmask 255.255.240.0',
      'set net0/gateway 10.0.0.1',
      'set dns 10.0.0.53',
    ])
      assert.ok(s.split('\n').includes(line), line);
    assert.match(s, /\?mac=\$\{net0\/mac\}&media=1&network=lan&node=rack1-07&token=/);
  });

  it('refuses what could break out of the script or the URL', () => {
    const bad: [Partial<typeof base> & { node?: string }, RegExp][] = [
      [{ baseUrl: 'http://x/ && shell' }, /^baseUrl: /],
      [{ token: 'short' }, /^token: /],
      [{ token: `${'a'.repeat(20)} || shell` }, /^token: /],
      [{ network: 'lan\nshell' }, /^network: /],
      [{ node: 'n1&token=x' }, /^--node: /],
    ];
    for (const [over, re] of bad)
      assert.throws(
        () => renderMediaScript({ ...base, ...over }),
        (e: Error) => e instanceof MediaInputError && re.test(e.message),
      );
  });

  it('parses --static and names what is wrong', () => {
    assert.deepEqual(parseStatic('192.168.7.50/24/192.168.7.1'), {
      address: '192.168.7.50',
      prefix: 24,
      gateway: '192.168.7.1',
    });
    for (const [text, re] of [
      ['10.0.0.5', /give ADDRESS\/PREFIX\/GATEWAY/],
      ['10.0.0.500/24/10.0.0.1', /10\.0\.0\.500 is not an IPv4 address/],
      ['10.0.0.5/33/10.0.0.1', /prefix 33 must be 1\.\.31/],
      ['10.0.0.5/24/gw', /gateway gw is not an IPv4 address/],
      ['10.0.0.5/24/10.0.0.1/dns', /DNS dns is not an IPv4 address/],
      ['10.0.0.5/24/10.0.0.1/10.0.0.2/x', /give ADDRESS/],
    ] as const)
      assert.throws(
        () => parseStatic(text),
        (e: Error) => e.message.startsWith('--static: ') && re.test(e.message),
        text,
      );
  });
});
