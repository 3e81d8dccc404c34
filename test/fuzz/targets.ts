/**
 * The fuzz targets: every decoder Strata runs on input it does not control (DHCP, TFTP and DNS datagrams,
 * manifests, iPXE and answer-file templates, the installer's requests), each with the one error type it may
 * throw. A target's property holds when an input either decodes or is refused with that typed error;
 * anything else thrown (a TypeError, a RangeError, a stack overflow) is a crash. Inputs are fast-check
 * arbitraries mixing plain random data with mutations of the seed corpus in test/vectors/fuzz/<target>/
 * (captured and hand-made valid inputs), so the fuzzer reaches past the first length check.
 *
 * Shared by the short run in the suite (test/fuzz/decoders.test.ts) and the long run (bench/fuzz.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import '../../src/core/kinds/index.ts';
import { StrataError } from '../../src/core/resources/errors.ts';
import { loadManifest } from '../../src/core/resources/manifest.ts';
import {
  DhcpDecodeError,
  decode as decodeDhcp,
  getMessageType,
  Opt,
  parseClientArch,
  parseClientUuid,
  parseUserClass,
} from '../../src/dhcp/codec.ts';
import { clientInfo } from '../../src/dhcp/pxe.ts';
import { answerQuery } from '../../src/dns/authority.ts';
import { decodeQuery, encodeResponse, responseFor, TcpDeframer, udpLimitFor } from '../../src/dns/codec.ts';
import { ZoneData } from '../../src/dns/zone.ts';
import {
  AnswerFileError,
  type AnswerKind,
  renderAnswerFile,
  validateAnswerTemplate,
} from '../../src/install/answers/index.ts';
import {
  InstallProtocolError,
  parseHostKeys,
  parseInstallConfig,
  parseInstallEvent,
  parseInstalledReport,
} from '../../src/install/protocol.ts';
import { type BootMode, IpxeScriptError, renderBootScript, validateTemplate } from '../../src/ipxe/script.ts';
import { OciError, parseOciPath, parseRange } from '../../src/registry/oci.ts';
import { manifestChildren } from '../../src/registry/oci-spec.ts';
import { decode as decodeTftp, negotiate, TftpDecodeError } from '../../src/tftp/codec.ts';

export const CORPUS = resolve(import.meta.dirname, '../vectors/fuzz');

export interface FuzzTarget<T = unknown> {
  name: string;
  /** What the decoder may throw; anything else fails the property. */
  typed: (e: unknown) => boolean;
  arbitrary: fc.Arbitrary<T>;
  /** Runs the decoder (and what consumes its output) on one input. */
  run(input: T): void;
  /** Turns a seed file into an input. */
  fromSeed(bytes: Buffer): T;
}

/** The seed files of a target, read from its corpus directory. */
export function seeds(target: string): Buffer[] {
  let files: string[];
  try {
    files = readdirSync(join(CORPUS, target)).sort();
  } catch {
    return [];
  }
  return files.map((f) => readFileSync(join(CORPUS, target, f)));
}

/** Random bytes, or a seed with a few random edits (flip, insert, delete, truncate, duplicate a slice). */
function bytesFrom(target: string, maxLength = 2048): fc.Arbitrary<Uint8Array> {
  const corpus = seeds(target);
  const random = fc.uint8Array({ maxLength });
  if (corpus.length === 0) return random;
  const edit = fc.tuple(fc.nat(), fc.nat(255), fc.integer({ min: 0, max: 4 }), fc.nat(64));
  const mutated = fc
    .tuple(fc.constantFrom(...corpus), fc.array(edit, { minLength: 1, maxLength: 8 }))
    .map(([seed, edits]) => {
      let b = Buffer.from(seed);
      for (const [at, byte, op, n] of edits) {
        const i = b.length ? at % b.length : 0;
        if (op === 0 && b.length) b[i] = byte;
        else if (op === 1) b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
        else if (op === 2) b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + (n % 8))]);
        else if (op === 3) b = b.subarray(0, i);
        else b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + n), b.subarray(i)]);
      }
      return new Uint8Array(b);
    });
  return fc.oneof({ arbitrary: mutated, weight: 3 }, { arbitrary: random, weight: 1 });
}

/** Text: random strings (with control characters and unicode), or a seed with edits. */
function textFrom(target: string, maxLength = 2048): fc.Arbitrary<string> {
  const random = fc.string({ unit: 'binary', maxLength });
  const corpus = seeds(target);
  if (corpus.length === 0) return random;
  const mutated = bytesFrom(target).map((b) => Buffer.from(b).toString('utf8'));
  const spliced = fc
    .tuple(
      fc.constantFrom(...corpus.map((c) => c.toString('utf8'))),
      fc.nat(),
      fc.string({ unit: 'binary', maxLength: 40 }),
    )
    .map(([s, at, ins]) => s.slice(0, at % (s.length + 1)) + ins + s.slice(at % (s.length + 1)));
  return fc.oneof(
    { arbitrary: mutated, weight: 2 },
    { arbitrary: spliced, weight: 2 },
    { arbitrary: random, weight: 1 },
  );
}

const dhcp: FuzzTarget<Uint8Array> = {
  name: 'dhcp',
  typed: (e) => e instanceof DhcpDecodeError,
  arbitrary: bytesFrom('dhcp'),
  fromSeed: (b) => new Uint8Array(b),
  run(buf) {
    const p = decodeDhcp(buf);
    // What the server reads from every request it accepts must not throw either.
    getMessageType(p);
    parseUserClass(p.options.get(Opt.USER_CLASS));
    parseClientArch(p.options.get(Opt.CLIENT_ARCH));
    parseClientUuid(p.options.get(Opt.CLIENT_UUID));
    clientInfo(p, 'fu:zz', 'fuzz');
  },
};

const tftp: FuzzTarget<Uint8Array> = {
  name: 'tftp',
  typed: (e) => e instanceof TftpDecodeError,
  arbitrary: bytesFrom('tftp', 600),
  fromSeed: (b) => new Uint8Array(b),
  run(buf) {
    const p = decodeTftp(buf);
    if (p.type === 'rrq')
      negotiate(p.options, 123_456, { maxBlksize: 65464, maxWindowsize: 64, maxWindowBytes: 131072 });
  },
};

const ZONE = new ZoneData({ zone: 'fuzz.test', nsAddress: '10.0.0.1' });
ZONE.setHosts([{ name: 'node-1', ipv4: '10.0.0.50' }]);

const dns: FuzzTarget<{ datagram: Uint8Array; chunks: number[] }> = {
  name: 'dns',
  typed: () => false,
  arbitrary: fc.record({
    datagram: bytesFrom('dns', 1024),
    chunks: fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 16 }),
  }),
  fromSeed: (b) => ({ datagram: new Uint8Array(b), chunks: [] }),
  run({ datagram, chunks }) {
    const buf = Buffer.from(datagram);
    const r = decodeQuery(buf);
    if (r.ok) {
      // What the server does with a query it decoded: answer it from the zone, or refuse it.
      const res = answerQuery(ZONE, r.query);
      const limits = { udpLimit: udpLimitFor(r.query) };
      encodeResponse(res.kind === 'outside' ? responseFor(r.query, 5) : res.packet, limits);
    }
    // The same bytes over TCP, framed and split into arbitrary chunks.
    const d = new TcpDeframer();
    const framed = Buffer.concat([Buffer.from([buf.length >> 8, buf.length & 255]), buf]);
    const got: Buffer[] = [];
    let at = 0;
    for (const n of chunks) {
      got.push(...d.push(framed.subarray(at, at + n)));
      at += n;
    }
    got.push(...d.push(framed.subarray(at)));
    if (got.length !== 1 || !got[0]!.equals(buf) || d.buffered !== 0) {
      throw new Error(`TCP deframing lost the message: ${got.length} messages, ${d.buffered} bytes left`);
    }
  },
};

const manifest: FuzzTarget<string> = {
  name: 'manifest',
  typed: (e) => e instanceof StrataError,
  arbitrary: textFrom('manifest', 4096),
  fromSeed: (b) => b.toString('utf8'),
  run(text) {
    loadManifest(text, 'fuzz.yaml');
  },
};

/**
 * The OCI endpoints' parsers of what a client sends: the path after /v2/, a Range header, and a manifest
 * body (whose children garbage collection and bundles follow). Only the path parser may refuse (OciError);
 * a Range is satisfiable within the blob or 'bad', never out of bounds.
 */
const oci: FuzzTarget<string> = {
  name: 'oci',
  typed: (e) => e instanceof OciError,
  arbitrary: textFrom('oci', 4096),
  fromSeed: (b) => b.toString('utf8'),
  run(text) {
    const kids = manifestChildren(text);
    for (const d of [...kids.blobs, ...kids.manifests])
      if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw new Error(`manifestChildren returned "${d}"`);
    const r = parseRange(text, 1000);
    if (r && r !== 'bad' && !(r.start >= 0 && r.start <= r.end && r.end < 1000))
      throw new Error(`parseRange gave ${JSON.stringify(r)} for a 1000-byte blob`);
    parseOciPath(text);
  },
};

const word = fc.string({ unit: 'binary', maxLength: 40 });
const ipxe: FuzzTarget<{
  template: string;
  mode: BootMode;
  name: string;
  mac: string;
  arch: string | number;
  baseUrl: string;
  kernel: string;
  cmdline: string;
  message: string;
  vars: Record<string, string>;
}> = {
  name: 'ipxe',
  typed: (e) => e instanceof IpxeScriptError,
  arbitrary: fc.record({
    template: textFrom('ipxe', 1024),
    mode: fc.constantFrom<BootMode>('install', 'local', 'discovery', 'hold'),
    name: fc.oneof(fc.constant('node-1'), word),
    mac: fc.oneof(fc.constant('52:54:00:12:34:56'), word),
    arch: fc.oneof(fc.integer({ min: -1, max: 70000 }), word, fc.constantFrom('bios', 'efi', 'x86_64-efi')),
    baseUrl: fc.oneof(fc.constant('http://10.0.0.1:7421'), word),
    kernel: fc.oneof(fc.constant('lab/vmlinuz'), word),
    cmdline: fc.oneof(fc.constant('console=ttyS0'), word),
    message: word,
    vars: fc.dictionary(fc.string({ maxLength: 8 }), word, { maxKeys: 4 }),
  }),
  fromSeed: (b) => ({
    template: b.toString('utf8'),
    mode: 'install',
    name: 'node-1',
    mac: '52:54:00:12:34:56',
    arch: 0,
    baseUrl: 'http://10.0.0.1:7421',
    kernel: 'lab/vmlinuz',
    cmdline: 'console=ttyS0',
    message: 'hello',
    vars: { a: 'b' },
  }),
  run(i) {
    validateTemplate(i.template);
    renderBootScript({
      node: { name: i.name, mac: i.mac, arch: i.arch },
      mode: i.mode,
      baseUrl: i.baseUrl,
      message: i.message,
      vars: i.vars,
      profile: { kernel: i.kernel, initrd: ['lab/initrd'], cmdline: i.cmdline, template: i.template },
    });
  },
};

const answers: FuzzTarget<{
  kind: AnswerKind;
  template: string;
  hostname: string;
  script: string;
  key: string;
  release: string;
}> = {
  name: 'answers',
  typed: (e) => e instanceof AnswerFileError,
  arbitrary: fc.record({
    kind: fc.constantFrom<AnswerKind>('kickstart', 'preseed', 'cloud-init'),
    template: textFrom('answers', 1024),
    hostname: fc.oneof(fc.constant('node-1'), word),
    script: fc.oneof(fc.constant('echo hi'), fc.string({ unit: 'binary', maxLength: 80 })),
    key: fc.oneof(fc.constant('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFuzz fuzz@test'), word),
    release: fc.oneof(fc.constant('bookworm'), word),
  }),
  fromSeed: (b) => ({
    kind: b.toString('utf8').startsWith('#cloud-config')
      ? 'cloud-init'
      : b.includes('%packages')
        ? 'kickstart'
        : 'preseed',
    template: b.toString('utf8'),
    hostname: 'node-1',
    script: 'echo hi',
    key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFuzz fuzz@test',
    release: 'bookworm',
  }),
  run(i) {
    validateAnswerTemplate(i.template);
    const family = i.kind === 'kickstart' ? 'fedora' : 'ubuntu';
    renderAnswerFile(i.kind, {
      node: { name: 'node-1', hostname: i.hostname, mac: '52:54:00:12:34:56' },
      profile: {
        os: { family, release: i.release },
        vars: { x: i.hostname },
        sshAuthorizedKeys: [i.key],
        preRebootScript: i.script,
        postRebootScript: i.script,
        answerTemplate: i.template,
      },
      strata: { baseUrl: 'http://10.0.0.1:7421', installedToken: 'tok' },
    });
  },
};

const install: FuzzTarget<{ json: unknown; text: string }> = {
  name: 'install',
  typed: (e) => e instanceof InstallProtocolError,
  arbitrary: fc.record({
    json: fc.oneof(
      fc.jsonValue(),
      fc.record({
        step: fc.oneof(fc.string(), fc.jsonValue()),
        message: fc.oneof(fc.string(), fc.jsonValue()),
        status: fc.oneof(fc.constantFrom('running', 'done', 'failed'), fc.jsonValue()),
        hostname: fc.oneof(fc.string(), fc.jsonValue()),
        kernel: fc.oneof(fc.string(), fc.jsonValue()),
        postRebootExit: fc.oneof(fc.integer(), fc.jsonValue()),
        addresses: fc.oneof(fc.array(fc.jsonValue(), { maxLength: 4 }), fc.jsonValue()),
      }),
    ),
    text: textFrom('install', 2048),
  }),
  fromSeed: (b) => ({ json: safeJson(b.toString('utf8')), text: b.toString('utf8') }),
  run(i) {
    for (const parse of [parseInstallEvent, parseInstalledReport]) {
      try {
        parse(i.json);
      } catch (e) {
        if (!(e instanceof InstallProtocolError)) throw e;
      }
    }
    parseHostKeys(i.text);
    parseInstallConfig(i.text);
  },
};

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

export const TARGETS = [dhcp, tftp, dns, manifest, ipxe, answers, install, oci] as FuzzTarget[];

/** The property of a target: decode, or refuse with the typed error; nothing else may escape. */
export function property(t: FuzzTarget): fc.IPropertyWithHooks<[unknown]> {
  return fc.property(t.arbitrary, (input) => {
    try {
      t.run(input);
    } catch (e) {
      if (!t.typed(e)) throw e;
    }
  });
}
