/**
 * Redfish provider: power, boot-once and virtual media on a BMC over HTTPS (DMTF Redfish, DSP0266), with
 * undici (Node's own HTTP client, a dependency already). No maintained TypeScript Redfish client exists
 * that fits (the ones on npm are unmaintained or browser-only), and the calls Strata needs are a handful of
 * documented JSON requests, so they are written here: the service root, the ComputerSystem, its
 * `#ComputerSystem.Reset` action, a PATCH of `Boot` for a one-time boot override, the Manager's
 * VirtualMedia `InsertMedia` action, and the system's EthernetInterfaces for inventory.
 *
 * TLS is verified by default. BMCs ship self-signed certificates, so a BMC may name a CA (`caCert`) or pin
 * the SHA-256 fingerprint of its certificate (`fingerprint`): the pin is checked by a custom connector on
 * every connection, before any request (and so before the password) is sent. `insecureSkipVerify` turns
 * verification off, and every reply then says so.
 */
import { isIP } from 'node:net';
import tls from 'node:tls';
import { Agent, type Dispatcher, request } from 'undici';
import { BmcError, BmcSession, type CallPolicy } from './bmc.ts';
import type { BmcCall, BmcTarget, HardwareOp, PowerReply, PowerState } from './protocol.ts';
import type { BmcInventory } from './status.ts';

type Json = Record<string, unknown>;

/** `https://host:port` of a BMC address given as host, host:port or https://host:port. */
export function redfishBase(address: string): string {
  const a = address.replace(/\/+$/, '');
  return a.startsWith('https://') ? a : `https://${a}`;
}

const agents = new Map<string, Agent>();

/** A connector that accepts exactly the certificate whose SHA-256 fingerprint is `pin`. */
function pinnedConnector(pin: string): Agent.Options['connect'] {
  return (opts, cb) => {
    let done = false;
    const finish = (err: Error | null, s: tls.TLSSocket | null) => {
      if (done) return;
      done = true;
      if (err) cb(err, null);
      else cb(null, s!);
    };
    const host = opts.hostname;
    const s = tls.connect({
      host,
      port: Number(opts.port) || 443,
      ...(isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    s.once('secureConnect', () => {
      const got = (s.getPeerCertificate().fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
      if (got === pin) return finish(null, s);
      s.destroy();
      const err = new Error(`certificate fingerprint ${got || '(none)'} does not match the pinned ${pin}`);
      (err as NodeJS.ErrnoException).code = 'ERR_BMC_PIN_MISMATCH';
      finish(err, null);
    });
    s.once('error', (e) => finish(e, null));
  };
}

function agentFor(bmc: BmcTarget): Agent {
  const key = `${bmc.address}|${bmc.fingerprint ?? ''}|${bmc.caCert ?? ''}|${bmc.insecureSkipVerify}`;
  let a = agents.get(key);
  if (!a) {
    const connect: Agent.Options['connect'] = bmc.fingerprint
      ? pinnedConnector(bmc.fingerprint)
      : bmc.caCert
        ? { ca: bmc.caCert }
        : bmc.insecureSkipVerify
          ? { rejectUnauthorized: false }
          : {};
    a = new Agent({ connect, keepAliveTimeout: 10_000, connections: 2 });
    agents.set(key, a);
  }
  return a;
}

/** The Redfish error message in a body (`error.@Message.ExtendedInfo[0].Message` or `error.message`). */
function redfishMessage(body: unknown): string | undefined {
  const e = (body as { error?: Json } | undefined)?.error;
  if (!e) return undefined;
  const ext = e['@Message.ExtendedInfo'] as { Message?: string }[] | undefined;
  return ext?.[0]?.Message ?? (e.message as string | undefined);
}

function networkError(err: unknown, base: string): BmcError {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e.code ?? e.cause?.code ?? '';
  const msg = e.cause?.message ?? e.message;
  if (code === 'ERR_BMC_PIN_MISMATCH')
    return new BmcError(502, 'BmcCertificateMismatch', `${base}: ${msg}; check spec.bmc.fingerprint`);
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code))
    return new BmcError(
      502,
      'BmcCertificateUntrusted',
      `${base}: TLS certificate not trusted (${code}); set spec.bmc.fingerprint (sha256 of its certificate) or spec.bmc.caCert`,
    );
  if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ECONNRESET|UND_ERR_SOCKET/.test(code))
    return new BmcError(504, 'BmcUnreachable', `${base}: BMC unreachable (${code})`, true);
  return new BmcError(502, 'BmcError', `${base}: ${msg}`, true);
}

/** One Redfish service, as one user. */
export class RedfishClient {
  readonly base: string;
  readonly session: BmcSession;
  readonly #bmc: BmcTarget;
  readonly #auth: string;
  readonly #dispatcher: Dispatcher;

  constructor(bmc: BmcTarget, policy: Partial<CallPolicy> = {}) {
    this.#bmc = bmc;
    this.base = redfishBase(bmc.address);
    this.session = new BmcSession(this.base, policy);
    this.#auth = `Basic ${Buffer.from(`${bmc.username}:${bmc.password}`).toString('base64')}`;
    this.#dispatcher = agentFor(bmc);
  }

  async call(method: 'GET' | 'POST' | 'PATCH', path: string, body?: Json): Promise<Json> {
    return this.session.call(`${method} ${path}`, async (signal) => {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(`${this.base}${path}`, {
          method,
          dispatcher: this.#dispatcher,
          signal,
          headers: {
            authorization: this.#auth,
            accept: 'application/json',
            ...(body ? { 'content-type': 'application/json' } : {}),
          },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
      } catch (err) {
        if (signal.aborted) throw err;
        throw networkError(err, `${method} ${path}`);
      }
      let text: string;
      try {
        text = await res.body.text();
      } catch (err) {
        if (signal.aborted) throw err;
        throw networkError(err, `${method} ${path}`);
      }
      let json: Json = {};
      try {
        json = text ? (JSON.parse(text) as Json) : {};
      } catch {
        if (res.statusCode < 300)
          throw new BmcError(502, 'BmcBadReply', `${method} ${path}: the BMC answered with non-JSON`);
      }
      const s = res.statusCode;
      const what = `${method} ${path} → ${s}`;
      const detail = redfishMessage(json);
      if (s === 401 || s === 403)
        throw new BmcError(
          502,
          'BmcUnauthorized',
          `${what}: the BMC refused the credentials of secret "${this.#bmc.credentialsSecret}"; fix them with "strata bmc secret ${this.#bmc.credentialsSecret} --username USER"`,
        );
      if (s === 404)
        throw new BmcError(502, 'BmcNotFound', `${what}: not found${detail ? ` (${detail})` : ''}`);
      if (s === 405 || s === 501)
        throw new BmcError(
          501,
          'Unsupported',
          `${what}: the BMC does not implement this${detail ? ` (${detail})` : ''}`,
        );
      if (s >= 500)
        throw new BmcError(502, 'BmcServerError', `${what}: BMC error${detail ? ` (${detail})` : ''}`, true);
      if (s >= 400) throw new BmcError(409, 'BmcRejected', `${what}: ${detail ?? 'request refused'}`);
      return { value: json, status: s };
    });
  }

  /** The path of the ComputerSystem: the configured id, or the only member of /Systems. */
  async systemPath(): Promise<string> {
    if (this.#bmc.systemId) return `/redfish/v1/Systems/${this.#bmc.systemId}`;
    const members = await this.systems();
    if (members.length !== 1)
      throw new BmcError(
        409,
        'BmcAmbiguousSystem',
        `the BMC has ${members.length} systems (${members.join(', ') || 'none'}): set spec.bmc.systemId`,
      );
    return members[0]!;
  }

  async systems(): Promise<string[]> {
    const col = await this.call('GET', '/redfish/v1/Systems');
    return ((col.Members as { '@odata.id': string }[] | undefined) ?? []).map((m) => m['@odata.id']);
  }
}

function powerOf(sys: Json): PowerState {
  const p = String(sys.PowerState ?? '').toLowerCase();
  return p === 'on' || p === 'poweringoff' ? 'on' : p === 'off' || p === 'poweringon' ? 'off' : 'unknown';
}

/** Reset types the system allows; undefined when it does not say. */
function allowedResets(sys: Json): string[] | undefined {
  const a = (sys.Actions as Json | undefined)?.['#ComputerSystem.Reset'] as Json | undefined;
  return a?.['ResetType@Redfish.AllowableValues'] as string[] | undefined;
}

async function reset(c: RedfishClient, path: string, sys: Json, type: string): Promise<void> {
  const a = (sys.Actions as Json | undefined)?.['#ComputerSystem.Reset'] as Json | undefined;
  const target = (a?.target as string | undefined) ?? `${path}/Actions/ComputerSystem.Reset`;
  const allowed = allowedResets(sys);
  if (allowed && !allowed.includes(type))
    throw new BmcError(
      501,
      'Unsupported',
      `the BMC does not offer ResetType ${type} (it offers ${allowed.join(', ')})`,
    );
  await c.call('POST', target, { ResetType: type });
}

async function waitPower(c: RedfishClient, path: string, want: PowerState, ms: number): Promise<Json> {
  const until = Date.now() + ms;
  for (;;) {
    const sys = await c.call('GET', path);
    if (powerOf(sys) === want || Date.now() > until) return sys;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The first virtual CD/DVD drive of the system's manager. */
async function virtualCd(c: RedfishClient, sys: Json): Promise<Json> {
  const managers =
    ((sys.Links as Json | undefined)?.ManagedBy as { '@odata.id': string }[] | undefined) ?? [];
  for (const m of managers) {
    const mgr = await c.call('GET', m['@odata.id']);
    const vmCol = (mgr.VirtualMedia as { '@odata.id': string } | undefined)?.['@odata.id'];
    if (!vmCol) continue;
    const col = await c.call('GET', vmCol);
    for (const member of (col.Members as { '@odata.id': string }[] | undefined) ?? []) {
      const vm = await c.call('GET', member['@odata.id']);
      const types = (vm.MediaTypes as string[] | undefined) ?? [];
      if (types.some((t) => t === 'CD' || t === 'DVD')) return vm;
    }
  }
  throw new BmcError(501, 'Unsupported', 'the BMC offers no virtual CD/DVD drive (Managers/*/VirtualMedia)');
}

async function inventory(c: RedfishClient, sys: Json): Promise<BmcInventory> {
  const inv: BmcInventory = { readAt: new Date().toISOString() };
  for (const k of ['Manufacturer', 'Model', 'SerialNumber', 'UUID'] as const) {
    const v = sys[k];
    if (typeof v === 'string' && v) {
      const key = k === 'SerialNumber' ? 'serial' : (k.toLowerCase() as 'manufacturer' | 'model' | 'uuid');
      inv[key] = v;
    }
  }
  if (typeof sys.PowerState === 'string') inv.powerState = sys.PowerState;
  const cpu = sys.ProcessorSummary as Json | undefined;
  if (cpu)
    inv.cpus = {
      ...(typeof cpu.Count === 'number' ? { count: cpu.Count } : {}),
      ...(typeof cpu.Model === 'string' ? { model: cpu.Model } : {}),
    };
  const mem = (sys.MemorySummary as Json | undefined)?.TotalSystemMemoryGiB;
  if (typeof mem === 'number') inv.memoryGiB = mem;
  const eth = (sys.EthernetInterfaces as { '@odata.id': string } | undefined)?.['@odata.id'];
  if (eth) {
    const col = await c.call('GET', eth);
    inv.nics = [];
    for (const m of (col.Members as { '@odata.id': string }[] | undefined) ?? []) {
      const nic = await c.call('GET', m['@odata.id']);
      const mac = String(nic.MACAddress ?? nic.PermanentMACAddress ?? '').toLowerCase();
      if (/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac))
        inv.nics.push({
          id: String(nic.Id ?? m['@odata.id']),
          mac,
          ...(typeof nic.SpeedMbps === 'number' ? { speedMbps: nic.SpeedMbps } : {}),
        });
    }
  }
  return inv;
}

/** Does `op` on the BMC's system; throws BmcError. */
async function run(c: RedfishClient, op: HardwareOp, imageUrl?: string): Promise<PowerReply> {
  const path = await c.systemPath();
  let sys = await c.call('GET', path);
  const state = powerOf(sys);
  switch (op) {
    case 'status':
      return { state, message: `Redfish PowerState ${String(sys.PowerState)}` };
    case 'inventory':
      return { state, inventory: await inventory(c, sys) };
    case 'on':
      if (state !== 'on') await reset(c, path, sys, 'On');
      sys = await waitPower(c, path, 'on', 30_000);
      break;
    case 'off':
    case 'off-force':
      if (state !== 'off') await reset(c, path, sys, op === 'off' ? 'GracefulShutdown' : 'ForceOff');
      sys = await waitPower(c, path, 'off', op === 'off' ? 60_000 : 30_000);
      break;
    case 'reset':
      await reset(c, path, sys, 'ForceRestart');
      break;
    case 'cycle': {
      const allowed = allowedResets(sys);
      if (state === 'off') await reset(c, path, sys, 'On');
      else if (!allowed || allowed.includes('PowerCycle')) await reset(c, path, sys, 'PowerCycle');
      else {
        await reset(c, path, sys, 'ForceOff');
        await waitPower(c, path, 'off', 30_000);
        await reset(c, path, sys, 'On');
      }
      sys = await waitPower(c, path, 'on', 30_000);
      break;
    }
    case 'pxe-once':
      await c.call('PATCH', path, {
        Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' },
      });
      sys = await c.call('GET', path);
      return { state: powerOf(sys), message: bootMessage(sys), ...notOnce(sys) };
    case 'media-boot': {
      if (!imageUrl) throw new BmcError(409, 'NoImage', 'media-boot needs an image URL');
      const cd = await virtualCd(c, sys);
      const actions = cd.Actions as Json | undefined;
      const insert = (actions?.['#VirtualMedia.InsertMedia'] as Json | undefined)?.target as
        | string
        | undefined;
      const cdPath = String(cd['@odata.id']);
      if (cd.Inserted === true) {
        const eject = (actions?.['#VirtualMedia.EjectMedia'] as Json | undefined)?.target as
          | string
          | undefined;
        await c.call('POST', eject ?? `${cdPath}/Actions/VirtualMedia.EjectMedia`, {});
      }
      await c.call('POST', insert ?? `${cdPath}/Actions/VirtualMedia.InsertMedia`, {
        Image: imageUrl,
        Inserted: true,
        WriteProtected: true,
      });
      await c.call('PATCH', path, {
        Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' },
      });
      sys = await c.call('GET', path);
      return {
        state: powerOf(sys),
        message: `virtual CD ${cdPath} holds ${imageUrl}; ${bootMessage(sys)}`,
        ...notOnce(sys),
      };
    }
  }
  return { state: powerOf(sys), message: `Redfish PowerState ${String(sys.PowerState)}` };
}

/** A BMC that accepted `Once` but reports another mode (some keep every override Continuous). */
function notOnce(sys: Json): { warning?: string } {
  const b = (sys.Boot as Json | undefined) ?? {};
  if (b.BootSourceOverrideEnabled === 'Once') return {};
  return {
    warning: `the BMC reports BootSourceOverrideEnabled ${String(b.BootSourceOverrideEnabled)} after Strata asked for Once: it may boot ${String(b.BootSourceOverrideTarget)} every time; an installed node is still sent to its disk by Strata's boot script`,
  };
}

function bootMessage(sys: Json): string {
  const b = (sys.Boot as Json | undefined) ?? {};
  return `next boot ${String(b.BootSourceOverrideTarget)} (${String(b.BootSourceOverrideEnabled)})`;
}

/** The `hardware.redfish` worker's handler: never throws; failures come back as `error`. */
export async function redfishAction(
  bmc: BmcTarget,
  op: HardwareOp,
  imageUrl?: string,
  policy: Partial<CallPolicy> = {},
): Promise<PowerReply> {
  const c = new RedfishClient(bmc, policy);
  const insecure = bmc.insecureSkipVerify
    ? 'INSECURE: TLS verification is off for this BMC (spec.bmc.insecureSkipVerify): anyone on the path can read its password'
    : undefined;
  const warn = (w?: string) => {
    const all = [insecure, w].filter(Boolean).join('; ');
    return all ? { warning: all } : {};
  };
  try {
    const r = await run(c, op, imageUrl);
    return { ...r, ...warn(r.warning), calls: c.session.calls };
  } catch (err) {
    const e = err instanceof BmcError ? err : new BmcError(502, 'BmcError', (err as Error).message);
    return { state: 'unknown', error: e.toJSON(), calls: c.session.calls, ...warn() };
  }
}

/** `strata bmc discover`: the service root and its systems, for a proposed Node manifest. */
export async function redfishDiscover(
  bmc: BmcTarget,
  policy: Partial<CallPolicy> = {},
): Promise<{
  root: Json;
  systems: { id: string; path: string; inventory: BmcInventory }[];
  calls: BmcCall[];
}> {
  const c = new RedfishClient(bmc, policy);
  const root = await c.call('GET', '/redfish/v1/');
  const systems = [];
  for (const path of await c.systems()) {
    const sys = await c.call('GET', path);
    systems.push({ id: String(sys.Id ?? path.split('/').pop()), path, inventory: await inventory(c, sys) });
  }
  return {
    root: { RedfishVersion: root.RedfishVersion, UUID: root.UUID, Product: root.Product },
    systems,
    calls: c.session.calls,
  };
}
