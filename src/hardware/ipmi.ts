/**
 * IPMI provider: chassis power and the next boot device over IPMI 2.0 LAN (RMCP+, `lanplus`), by running
 * Debian's `ipmitool` as a child. There is no maintained IPMI library for Node (the npm packages are
 * abandoned and speak only IPMI 1.5, without RMCP+ authentication and encryption), and ipmitool is the tool
 * every BMC vendor tests against, so its quirks are the field's quirks. The password goes to ipmitool
 * through its environment (`-E`, IPMI_PASSWORD), never on the command line where `ps` would show it.
 *
 * IPMI has no virtual media and no host NIC inventory: those actions answer 501.
 */
import { execFile } from 'node:child_process';
import { BmcError, BmcSession, type CallPolicy } from './bmc.ts';
import type { BmcTarget, HardwareOp, PowerReply, PowerState } from './protocol.ts';
import { unsupported } from './provider.ts';

/** host and port of an IPMI address (host or host:port; UDP 623 by default). */
export function ipmiHostPort(address: string): { host: string; port: number } {
  const m = /^(.*?)(?::(\d+))?$/.exec(address)!;
  return { host: m[1]!, port: m[2] ? Number(m[2]) : 623 };
}

export class IpmiClient {
  readonly session: BmcSession;
  readonly #bmc: BmcTarget;
  readonly #bin: string;
  constructor(
    bmc: BmcTarget,
    policy: Partial<CallPolicy> = {},
    bin = process.env.STRATA_IPMITOOL ?? 'ipmitool',
  ) {
    this.#bmc = bmc;
    this.#bin = bin;
    this.session = new BmcSession(`ipmi:${bmc.address}`, policy);
  }

  run(...args: string[]): Promise<string> {
    const { host, port } = ipmiHostPort(this.#bmc.address);
    return this.session.call(`ipmitool ${args.join(' ')}`, (signal) => {
      const argv = ['-I', 'lanplus', '-H', host, '-p', String(port), '-U', this.#bmc.username, '-E'];
      // ipmitool's own retries are off (-R 1) and its timeout well inside the attempt's, so ipmitool says
      // why it gave up (no session, refused credentials) before the attempt is cut off.
      const n = Math.max(1, Math.floor(this.session.timeoutMs / 3000));
      argv.push('-R', '1', '-N', String(n), ...args);
      return new Promise((resolve, reject) => {
        execFile(
          this.#bin,
          argv,
          { signal, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: this.#bmc.password } },
          (err, stdout, stderr) => {
            if (!err) return resolve({ value: stdout, status: 0 });
            if (signal.aborted) return reject(err);
            if ((err as NodeJS.ErrnoException).code === 'ENOENT')
              return reject(
                new BmcError(
                  501,
                  'Unsupported',
                  'ipmitool is not installed on this worker (apt-get install ipmitool)',
                ),
              );
            const text = `${stderr}`.trim().split('\n').slice(-2).join('; ');
            if (/RAKP|unauthorized|password|Invalid user name|insufficient privilege/i.test(text))
              return reject(
                new BmcError(
                  502,
                  'BmcUnauthorized',
                  `the BMC refused the credentials of secret "${this.#bmc.credentialsSecret}" (${text}); fix them with "strata bmc secret ${this.#bmc.credentialsSecret} --username USER"`,
                ),
              );
            if (
              /Unable to establish|no response|timeout|Unable to get Chassis|Get Session Challenge/i.test(
                text,
              )
            )
              return reject(
                new BmcError(
                  504,
                  'BmcUnreachable',
                  `no IPMI session with ${host}:${port} (${text}): the BMC did not answer, or refused the user or password (many BMCs do not say which)`,
                  true,
                ),
              );
            reject(new BmcError(502, 'BmcError', `ipmitool ${args.join(' ')}: ${text || err.message}`, true));
          },
        );
      });
    });
  }

  async power(): Promise<PowerState> {
    const out = await this.run('chassis', 'power', 'status');
    return /is on/i.test(out) ? 'on' : /is off/i.test(out) ? 'off' : 'unknown';
  }
}

async function waitPower(c: IpmiClient, want: PowerState, ms: number): Promise<PowerState> {
  const until = Date.now() + ms;
  for (;;) {
    const s = await c.power();
    if (s === want || Date.now() > until) return s;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const IPMI_OPS: readonly HardwareOp[] = ['status', 'on', 'off', 'off-force', 'cycle', 'reset', 'pxe-once'];

async function run(c: IpmiClient, op: HardwareOp): Promise<PowerReply> {
  if (!IPMI_OPS.includes(op)) return unsupported('ipmi', op);
  const state = await c.power();
  switch (op) {
    case 'status':
      return { state, message: `Chassis Power is ${state}` };
    case 'on':
      if (state !== 'on') await c.run('chassis', 'power', 'on');
      return { state: await waitPower(c, 'on', 30_000) };
    case 'off':
    case 'off-force':
      if (state !== 'off') await c.run('chassis', 'power', op === 'off' ? 'soft' : 'off');
      return { state: await waitPower(c, 'off', op === 'off' ? 60_000 : 30_000) };
    case 'cycle':
      // `chassis power cycle` on a machine that is off fails on many BMCs: switch it on instead.
      await c.run('chassis', 'power', state === 'off' ? 'on' : 'cycle');
      return { state: await waitPower(c, 'on', 30_000) };
    case 'reset':
      await c.run('chassis', 'power', 'reset');
      return { state: await c.power() };
    case 'pxe-once':
      // Without `options=persistent` the BMC keeps the boot flag valid for the next boot only.
      await c.run('chassis', 'bootdev', 'pxe');
      return { state, message: 'next boot: network (PXE), once' };
  }
  return unsupported('ipmi', op);
}

/** The `hardware.ipmi` worker's handler: never throws; failures come back as `error`. */
export async function ipmiAction(
  bmc: BmcTarget,
  op: HardwareOp,
  policy: Partial<CallPolicy> = {},
): Promise<PowerReply> {
  // IPMI 2.0 keys passwords to 20 bytes; ipmitool refuses longer ones before any packet is sent.
  if (Buffer.byteLength(bmc.password) > 20)
    return {
      state: 'unknown',
      error: {
        status: 409,
        reason: 'BmcCredentialsInvalid',
        message: `the password of secret "${bmc.credentialsSecret}" is longer than the 20 bytes IPMI allows: store the BMC's real password with "strata bmc secret ${bmc.credentialsSecret} --username USER"`,
      },
    };
  const c = new IpmiClient(bmc, policy);
  try {
    return { ...(await run(c, op)), calls: c.session.calls };
  } catch (err) {
    const e = err instanceof BmcError ? err : new BmcError(502, 'BmcError', (err as Error).message);
    return { state: 'unknown', error: e.toJSON(), calls: c.session.calls };
  }
}
