import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ackBlock,
  blockCount,
  decode,
  encode,
  encodeAck,
  encodeData,
  encodeDataPackets,
  encodeError,
  encodeOack,
  encodeRequest,
  negotiate,
  TftpDecodeError,
} from '../../../src/tftp/codec.ts';

/** Builds a datagram from the RFC diagrams' notation: numbers are 2-byte opcodes/blocks, strings are NUL-terminated. */
function wire(...parts: (number | string | Buffer)[]): Buffer {
  return Buffer.concat(
    parts.map((p) => {
      if (typeof p === 'number') {
        const b = Buffer.alloc(2);
        b.writeUInt16BE(p);
        return b;
      }
      return typeof p === 'string' ? Buffer.from(p + '\0', 'latin1') : p;
    }),
  );
}

const limits = { maxBlksize: 65464, maxWindowsize: 64 };

describe('tftp codec: RFC examples', () => {
  it('RFC 2347/2348: RRQ foobar octet blksize 1432 and its OACK', () => {
    const rrq = wire(1, 'foobar', 'octet', 'blksize', '1432');
    assert.deepEqual(encodeRequest('rrq', 'foobar', 'octet', [['blksize', '1432']]), rrq);
    const p = decode(rrq);
    assert.deepEqual(p, {
      type: 'rrq',
      filename: 'foobar',
      mode: 'octet',
      options: new Map([['blksize', '1432']]),
    });
    const neg = negotiate(p.type === 'rrq' ? p.options : new Map(), 10_000, limits);
    assert.equal(neg.blksize, 1432);
    assert.deepEqual(encodeOack(neg.oack), wire(6, 'blksize', '1432'));
  });

  it('RFC 2349: RRQ with timeout and tsize 0 is answered with the file size', () => {
    const rrq = wire(1, 'foobar', 'octet', 'timeout', '1', 'tsize', '0');
    const p = decode(rrq);
    assert.equal(p.type, 'rrq');
    if (p.type !== 'rrq') return;
    const neg = negotiate(p.options, 673312, limits);
    assert.equal(neg.timeoutMs, 1000);
    assert.deepEqual(encodeOack(neg.oack), wire(6, 'timeout', '1', 'tsize', '673312'));
  });

  it('RFC 7440: windowsize 4 is agreed and echoed', () => {
    const p = decode(wire(1, 'foobar', 'octet', 'windowsize', '4'));
    assert.ok(p.type === 'rrq');
    const neg = negotiate(p.options, 1, limits);
    assert.equal(neg.windowsize, 4);
    assert.deepEqual(encodeOack(neg.oack), wire(6, 'windowsize', '4'));
  });

  it('RFC 1350 DATA, ACK and ERROR layouts', () => {
    assert.deepEqual(encodeData(1, Buffer.from('hi')), Buffer.from([0, 3, 0, 1, 0x68, 0x69]));
    assert.deepEqual(encodeAck(0), Buffer.from([0, 4, 0, 0]));
    assert.deepEqual(encodeError(1, 'File not found'), wire(5, 1, 'File not found'));
    assert.deepEqual(decode(wire(5, 2, 'Access violation')), {
      type: 'error',
      code: 2,
      message: 'Access violation',
    });
    const d = decode(Buffer.from([0, 3, 0xff, 0xff, 1, 2, 3]));
    assert.deepEqual(d, { type: 'data', block: 65535, data: Buffer.from([1, 2, 3]) });
  });

  it('block numbers wrap to 0 after 65535', () => {
    assert.deepEqual(encodeAck(65536), Buffer.from([0, 4, 0, 0]));
    assert.deepEqual(encodeData(65537, Buffer.alloc(0)), Buffer.from([0, 3, 0, 1]));
  });

  it('encode(decode(x)) round-trips every packet type', () => {
    const packets = [
      wire(1, 'pxelinux.0', 'octet', 'tsize', '0', 'blksize', '1468'),
      wire(2, 'upload', 'netascii'),
      encodeData(7, Buffer.alloc(512, 7)),
      encodeAck(42),
      wire(5, 8, 'option negotiation failed'),
      wire(6, 'blksize', '1468', 'tsize', '123'),
    ];
    for (const pkt of packets) assert.deepEqual(encode(decode(pkt)), pkt);
  });

  it('empty DATA (end of a file whose size is a multiple of blksize) decodes', () => {
    assert.deepEqual(decode(Buffer.from([0, 3, 0, 2])), { type: 'data', block: 2, data: Buffer.alloc(0) });
  });

  it("ackBlock reads an ACK's block as decode does, and -1 for anything else", () => {
    for (const block of [0, 1, 255, 256, 65_535]) {
      const ack = encodeAck(block);
      assert.deepEqual(decode(ack), { type: 'ack', block: ackBlock(ack) });
    }
    assert.equal(ackBlock(Buffer.from([0, 4, 1, 2, 9, 9])), 258, 'trailing bytes ignored, as decode does');
    assert.equal(ackBlock(Buffer.from([0, 4, 1])), -1, 'too short (decode calls it short)');
    assert.equal(ackBlock(Buffer.from([1, 4, 0, 1])), -1, 'opcode 260 is no ACK');
    assert.equal(ackBlock(encodeData(1, Buffer.from('x'))), -1);
    assert.equal(ackBlock(encodeError(0, 'x')), -1);
    assert.equal(ackBlock(Buffer.alloc(0)), -1);
  });

  it('encodeDataPackets gives the DATA packets encodeData would, block numbers wrapping, the last short', () => {
    for (const [size, blksize] of [
      [0, 512],
      [1024, 512],
      [1000, 512],
      [8 * 65_536 + 5, 8],
    ] as const) {
      const bytes = Buffer.from(Array.from({ length: size }, (_, i) => (i * 7) & 0xff));
      const packets = encodeDataPackets(bytes, blksize);
      assert.equal(packets.length, blockCount(size, blksize), `${size}/${blksize}`);
      for (const k of new Set(
        [1, 2, packets.length - 1, packets.length].filter((k) => k >= 1 && k <= packets.length),
      )) {
        const data = bytes.subarray((k - 1) * blksize, k * blksize);
        assert.deepEqual(packets[k - 1], encodeData(k, data), `${size}/${blksize} block ${k}`);
      }
      assert.equal(Buffer.concat(packets.map((p) => p.subarray(4))).equals(bytes), true);
    }
  });
});

describe('tftp codec: lenient where real clients need it', () => {
  it('mode and option names are case-insensitive', () => {
    const p = decode(wire(1, 'ipxe.efi', 'OCTET', 'BlkSize', '1468', 'TSIZE', '0'));
    assert.ok(p.type === 'rrq');
    assert.equal(p.mode, 'octet');
    assert.deepEqual([...p.options.keys()], ['blksize', 'tsize']);
  });

  it('NUL padding after the last option is ignored', () => {
    const p = decode(Buffer.concat([wire(1, 'a', 'octet', 'blksize', '1024'), Buffer.alloc(7)]));
    assert.ok(p.type === 'rrq');
    assert.deepEqual(p.options, new Map([['blksize', '1024']]));
  });

  it('a repeated option keeps its first value', () => {
    const p = decode(wire(1, 'a', 'octet', 'blksize', '1024', 'blksize', '8'));
    assert.ok(p.type === 'rrq');
    assert.equal(p.options.get('blksize'), '1024');
  });

  it('an option named __proto__ is just a key', () => {
    const p = decode(wire(1, 'a', 'octet', '__proto__', 'x'));
    assert.ok(p.type === 'rrq');
    assert.equal(p.options.get('__proto__'), 'x');
  });

  it('ERROR without its terminating NUL, and ACK with trailing bytes, are accepted', () => {
    assert.deepEqual(decode(Buffer.from([0, 5, 0, 0, 0x78])), { type: 'error', code: 0, message: 'x' });
    assert.deepEqual(decode(Buffer.from([0, 4, 0, 9, 0, 0])), { type: 'ack', block: 9 });
  });

  it('UTF-8 file names decode', () => {
    const p = decode(encodeRequest('rrq', 'bööt/ø.efi'));
    assert.ok(p.type === 'rrq');
    assert.equal(p.filename, 'bööt/ø.efi');
  });
});

describe('tftp codec: malformed packets are typed errors', () => {
  const cases: [string, Buffer, string][] = [
    ['empty datagram', Buffer.alloc(0), 'short'],
    ['one byte', Buffer.from([0]), 'short'],
    ['opcode 0', Buffer.from([0, 0, 1, 2]), 'opcode'],
    ['opcode 7', Buffer.from([0, 7, 0, 0]), 'opcode'],
    ['RRQ with nothing', Buffer.from([0, 1]), 'short'],
    ['RRQ filename without NUL', Buffer.from('\0\x01abc', 'latin1'), 'unterminated'],
    ['RRQ without mode', wire(1, 'file'), 'unterminated'],
    ['RRQ mode without NUL', Buffer.concat([wire(1, 'file'), Buffer.from('octet')]), 'unterminated'],
    ['RRQ empty filename', wire(1, '', 'octet'), 'filename'],
    [
      'RRQ invalid UTF-8 filename',
      Buffer.concat([wire(1), Buffer.from([0xff, 0xfe, 0]), wire('octet')]),
      'filename',
    ],
    ['RRQ unknown mode', wire(1, 'file', 'binary'), 'mode'],
    ['RRQ option without value', wire(1, 'file', 'octet', 'blksize'), 'option'],
    ['RRQ empty option name then data', wire(1, 'file', 'octet', '', '512'), 'option'],
    [
      'RRQ unterminated option value',
      Buffer.concat([wire(1, 'f', 'octet', 'blksize'), Buffer.from('512')]),
      'unterminated',
    ],
    ['ACK of 3 bytes', Buffer.from([0, 4, 0]), 'short'],
    ['DATA of 3 bytes', Buffer.from([0, 3, 1]), 'short'],
    ['DATA larger than blksize 65464', Buffer.alloc(4 + 65465, 0).fill(3, 1, 2), 'length'],
    ['ERROR of 3 bytes', Buffer.from([0, 5, 0]), 'short'],
    ['OACK unterminated', Buffer.from('\0\x06blksize\x00512', 'latin1'), 'unterminated'],
  ];
  for (const [name, buf, reason] of cases) {
    it(name, () => {
      assert.throws(
        () => decode(buf),
        (err: unknown) => err instanceof TftpDecodeError && err.reason === reason,
      );
    });
  }

  it('random datagrams never throw anything but TftpDecodeError', () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 20_000; i++) {
      const len = rand() % 64;
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = rand() % 4 === 0 ? 0 : rand() & 0xff;
      if (len >= 2) b[0] = 0;
      if (len >= 2) b[1] = rand() % 8;
      try {
        decode(b);
      } catch (err) {
        assert.ok(err instanceof TftpDecodeError, `unexpected ${String(err)} for ${b.toString('hex')}`);
      }
    }
  });
});

describe('tftp option negotiation', () => {
  const opts = (...kv: string[]) => {
    const m = new Map<string, string>();
    for (let i = 0; i < kv.length; i += 2) m.set(kv[i]!, kv[i + 1]!);
    return m;
  };

  it('no options: defaults and no OACK', () => {
    assert.deepEqual(negotiate(new Map(), 10, limits), {
      blksize: 512,
      windowsize: 1,
      timeoutMs: undefined,
      oack: new Map(),
    });
  });

  it('blksize bounds: 8 and 65464 accepted, below 8 ignored, above the limit lowered', () => {
    assert.equal(negotiate(opts('blksize', '8'), 0, limits).blksize, 8);
    assert.equal(negotiate(opts('blksize', '65464'), 0, limits).blksize, 65464);
    const low = negotiate(opts('blksize', '7'), 0, limits);
    assert.equal(low.blksize, 512);
    assert.equal(low.oack.size, 0);
    const high = negotiate(opts('blksize', '65465'), 0, limits);
    assert.equal(high.blksize, 65464);
    assert.equal(high.oack.get('blksize'), '65464');
    const capped = negotiate(opts('blksize', '9000'), 0, { ...limits, maxBlksize: 1468 });
    assert.equal(capped.blksize, 1468);
    assert.equal(capped.oack.get('blksize'), '1468');
  });

  it('non-numeric values are left out of the OACK', () => {
    for (const v of ['', 'abc', '-1', '1e3', '0x200', ' 512', '512.0', '99999999999']) {
      const n = negotiate(opts('blksize', v, 'windowsize', v, 'timeout', v, 'tsize', v), 5, limits);
      assert.equal(n.oack.size, 0, `value ${JSON.stringify(v)}`);
      assert.equal(n.blksize, 512);
    }
  });

  it('timeout 1..255 is echoed unchanged, anything else refused', () => {
    assert.equal(negotiate(opts('timeout', '255'), 0, limits).oack.get('timeout'), '255');
    assert.equal(negotiate(opts('timeout', '255'), 0, limits).timeoutMs, 255_000);
    assert.equal(negotiate(opts('timeout', '0'), 0, limits).oack.has('timeout'), false);
    assert.equal(negotiate(opts('timeout', '256'), 0, limits).oack.has('timeout'), false);
  });

  it('tsize is answered with the real size whatever the client sent', () => {
    assert.equal(negotiate(opts('tsize', '0'), 10_485_760, limits).oack.get('tsize'), '10485760');
    assert.equal(negotiate(opts('tsize', '17'), 0, limits).oack.get('tsize'), '0');
  });

  it('windowsize: 0 refused, larger than the limit lowered, disabled when the server allows none', () => {
    assert.equal(negotiate(opts('windowsize', '0'), 0, limits).oack.has('windowsize'), false);
    assert.equal(negotiate(opts('windowsize', '65535'), 0, limits).windowsize, 64);
    assert.equal(negotiate(opts('windowsize', '65536'), 0, limits).oack.has('windowsize'), false);
    const off = negotiate(opts('windowsize', '8'), 0, { ...limits, maxWindowsize: 0 });
    assert.equal(off.windowsize, 1);
    assert.equal(off.oack.has('windowsize'), false);
  });

  it('blksize × windowsize is capped by maxWindowBytes', () => {
    const n = negotiate(opts('blksize', '65464', 'windowsize', '64'), 0, {
      ...limits,
      maxWindowBytes: 1 << 20,
    });
    assert.equal(n.windowsize, 16);
    assert.equal(n.oack.get('windowsize'), '16');
  });

  it('unknown options are ignored and the client order is kept', () => {
    const n = negotiate(opts('multicast', '', 'tsize', '0', 'foo', 'bar', 'blksize', '1428'), 3, limits);
    assert.deepEqual(
      [...n.oack],
      [
        ['tsize', '3'],
        ['blksize', '1428'],
      ],
    );
  });

  it('block count: the last block is always short', () => {
    assert.equal(blockCount(0, 512), 1);
    assert.equal(blockCount(511, 512), 1);
    assert.equal(blockCount(512, 512), 2);
    assert.equal(blockCount(1024, 512), 3);
    assert.equal(blockCount(10 * 1024 * 1024, 1428), 7343);
  });
});
