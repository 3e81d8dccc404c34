/**
 * BMC emulators for the hardware tests: sushy-tools' `sushy-emulator` (a real Redfish service) from the
 * machine-wide venv that scripts/tools/bmc-emulators.sh builds, behind HTTPS with a certificate made for
 * the test (its SHA-256 fingerprint is what a Node pins) and HTTP basic auth from a bcrypt htpasswd file.
 * It runs with sushy's own fake systems driver (no machine behind it), or with its libvirt driver in front
 * of the VMs of a private libvirtd (test/helpers/libvirt.ts). virtualbmc (`vbmcd`/`vbmc`, IPMI) from the
 * same venv fronts a libvirt domain the same way. Also a deliberately broken HTTPS server for the two failures sushy cannot
 * be made to show, a BMC answering 500 and a BMC that hangs: `brokenBmcHttpsServer`, named as such.
 * Everything listens on 127.0.0.1 on free ports and is stopped in the suite's `after`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import type { Cleanup } from './services.ts';
import { freePort } from './services.ts';
import { REPO, tempDir, waitFor } from './strata.ts';

export interface TlsPair {
  cert: string;
  key: string;
  /** SHA-256 fingerprint, lower-case hex with colons (as `openssl x509 -fingerprint` prints it). */
  fingerprint: string;
}

/** A self-signed certificate for 127.0.0.1, as a BMC ships. */
export function selfSignedCert(dir: string, cn = 'bmc.test'): TlsPair {
  const cert = join(dir, `${cn}.crt`);
  const key = join(dir, `${cn}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  const pem = readFileSync(cert, 'utf8');
  return {
    cert: pem,
    key: readFileSync(key, 'utf8'),
    fingerprint: new X509Certificate(pem).fingerprint256.toLowerCase(),
  };
}

/** The venv's bin directory, or a skip reason when PyPI cannot be reached. */
export function bmcEmulatorBin(): { bin?: string; skip?: string } {
  try {
    const out = execFileSync('bash', [join(REPO, 'scripts/tools/bmc-emulators.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { bin: out.trim().split('\n').at(-1)! };
  } catch (err) {
    const e = err as { status?: number; stderr?: string };
    if (e.status === 3) return { skip: `sushy-tools could not be installed: ${e.stderr?.trim()}` };
    throw err;
  }
}

export interface Sushy {
  url: string;
  port: number;
  tls: TlsPair;
  child: ChildProcess;
  log(): string;
}

export interface FakeSystem {
  uuid: string;
  name: string;
  power_state: 'On' | 'Off';
  nics: { mac: string }[];
}

/**
 * sushy-emulator with HTTPS and basic auth (`user`/`password`): its fake driver with `systems`, or its
 * libvirt driver on `libvirtUri` (every domain there is a system).
 */
export async function startSushy(
  t: Cleanup,
  bin: string,
  o: { user: string; password: string } & ({ systems: FakeSystem[] } | { libvirtUri: string }),
): Promise<Sushy> {
  const dir = tempDir(t, 'strata-sushy-');
  const tls = selfSignedCert(dir);
  const hash = execFileSync(
    join(bin, 'python'),
    [
      '-c',
      'import bcrypt,sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(rounds=4)).decode())',
      o.password,
    ],
    { encoding: 'utf8' },
  ).trim();
  writeFileSync(join(dir, 'htpasswd'), `${o.user}:${hash}\n`);
  writeFileSync(join(dir, 'sushy.key'), tls.key);
  writeFileSync(join(dir, 'sushy.crt'), tls.cert);
  const port = await freePort();
  const conf = [
    `SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'`,
    `SUSHY_EMULATOR_LISTEN_PORT = ${port}`,
    `SUSHY_EMULATOR_SSL_CERT = ${JSON.stringify(join(dir, 'sushy.crt'))}`,
    `SUSHY_EMULATOR_SSL_KEY = ${JSON.stringify(join(dir, 'sushy.key'))}`,
    `SUSHY_EMULATOR_AUTH_FILE = ${JSON.stringify(join(dir, 'htpasswd'))}`,
    ...('systems' in o
      ? [
          `SUSHY_EMULATOR_FAKE_DRIVER = True`,
          `SUSHY_EMULATOR_FAKE_SYSTEMS = ${JSON.stringify(o.systems.map((s) => ({ ...s, external_notifier: false })))}`,
        ]
      : [`SUSHY_EMULATOR_LIBVIRT_URI = ${JSON.stringify(o.libvirtUri)}`]),
    `SUSHY_EMULATOR_VMEDIA_VERIFY_SSL = False`,
  ].join('\n');
  writeFileSync(
    join(dir, 'sushy.conf'),
    `${conf.replace(/\bfalse\b/g, 'False').replace(/\btrue\b/g, 'True')}\n`,
  );
  let log = '';
  const child = spawn(join(bin, 'sushy-emulator'), ['--config', join(dir, 'sushy.conf')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // sushy keeps its systems' state in a SQLite file under the temp dir: a private one, so that no run
    // (nor another test on the machine) sees a power state left by an earlier one.
    env: { ...process.env, TMPDIR: dir },
  });
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
  const url = `https://127.0.0.1:${port}`;
  await waitFor(
    `sushy-emulator on ${url} (log: ${log.slice(-300)})`,
    () => log.includes('Running on'),
    60_000,
    200,
  );
  return { url, port, tls, child, log: () => log };
}

/** A deliberately broken BMC (not an emulator): answers every request with 500, or never answers. */
export async function brokenBmcHttpsServer(
  t: Cleanup,
  mode: '500' | 'hang',
): Promise<{ url: string; tls: TlsPair; requests: () => number }> {
  const tls = selfSignedCert(tempDir(t, 'strata-badbmc-'), `bmc-${mode}`);
  let n = 0;
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    n++;
    req.resume();
    if (mode === 'hang') return; // holds the connection open, as a wedged BMC does
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'Base.1.0.InternalError', message: 'internal error' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const port = (server.address() as { port: number }).port;
  return { url: `https://127.0.0.1:${port}`, tls, requests: () => n };
}

export interface IpmiSim {
  /** `127.0.0.1:PORT` (UDP). */
  address: string;
  /** What the chassis was told, in order (`set power 1`, `set boot pxe`, …). */
  chassisCalls(): string[];
}

/**
 * OpenIPMI's `ipmi_sim` (Debian `openipmi`): a real IPMI 2.0 LAN server (RMCP+, lanplus) on 127.0.0.1.
 * Its chassis is a small shell script that keeps the power and boot device in files and logs what it is
 * told: no machine sits behind it (bmc-vm.test.ts puts virtualbmc in front of a real VM).
 */
export async function startIpmiSim(t: Cleanup, o: { user: string; password: string }): Promise<IpmiSim> {
  const dir = tempDir(t, 'strata-ipmisim-');
  const port = await freePort();
  const chassis = join(dir, 'chassis.sh');
  writeFileSync(
    chassis,
    [
      '#!/bin/sh',
      '# ipmi_sim chassis_control: "<mc> get <param>..." prints param:value; "<mc> set <param> <value>..." stores it',
      'D=$(dirname "$0"); echo "$*" >> "$D/calls.log"; shift; op=$1; shift',
      'if [ "$op" = get ]; then for p in "$@"; do case $p in power) echo "power:$(cat "$D/power" 2>/dev/null || echo 0)";; boot) echo "boot:$(cat "$D/boot" 2>/dev/null || echo default)";; esac; done',
      'else while [ $# -gt 1 ]; do echo "$2" > "$D/$1"; shift 2; done; fi',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  writeFileSync(
    join(dir, 'lan.conf'),
    [
      'name "strata-test"',
      'set_working_mc 0x20',
      '  startlan 1',
      `    addr 127.0.0.1 ${port}`,
      '    priv_limit admin',
      '    allowed_auths_admin md5 straight',
      '    guid a123456789abcdefa123456789abcdef',
      '  endlan',
      `  chassis_control "${chassis} 0x20"`,
      `  user 2 true "${o.user}" "${o.password}" admin 10 md5 straight`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'sim.emu'),
    'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n',
  );
  const child = spawn(
    'ipmi_sim',
    ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'sim.emu'), '-s', join(dir, 'state'), '-n'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.resume();
  child.stderr!.resume();
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
  const address = `127.0.0.1:${port}`;
  await waitFor(
    `ipmi_sim on ${address}`,
    () => {
      try {
        execFileSync(
          'ipmitool',
          [
            '-I',
            'lanplus',
            '-H',
            '127.0.0.1',
            '-p',
            String(port),
            '-U',
            o.user,
            '-E',
            '-R',
            '1',
            '-N',
            '1',
            'chassis',
            'power',
            'status',
          ],
          {
            env: { ...process.env, IPMI_PASSWORD: o.password },
            stdio: 'ignore',
          },
        );
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    300,
  );
  return {
    address,
    chassisCalls: () => {
      try {
        return readFileSync(join(dir, 'calls.log'), 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => l.replace(/^0x20 /, ''));
      } catch {
        return [];
      }
    },
  };
}

/**
 * virtualbmc: `vbmcd` with a private config (its own server port, config dir and log), and one IPMI BMC
 * (`vbmc add` + `vbmc start`) on 127.0.0.1 in front of libvirt domain `domain`. Stopped in `t.after`.
 */
export async function startVbmc(
  t: Cleanup,
  bin: string,
  o: { libvirtUri: string; domain: string; user: string; password: string },
): Promise<{ address: string; log(): string }> {
  const dir = tempDir(t, 'strata-vbmc-');
  const conf = join(dir, 'virtualbmc.conf');
  mkdirSync(join(dir, 'bmcs'));
  writeFileSync(
    conf,
    [
      '[default]',
      `config_dir = ${join(dir, 'bmcs')}`,
      `pid_file = ${join(dir, 'vbmcd.pid')}`,
      `server_port = ${await freePort()}`,
      '[log]',
      `logfile = ${join(dir, 'vbmcd.log')}`,
      'debug = true',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, VIRTUALBMC_CONFIG: conf };
  const daemon = spawn(join(bin, 'vbmcd'), ['--foreground'], { stdio: 'ignore', env });
  const vbmc = (...args: string[]) =>
    execFileSync(join(bin, 'vbmc'), args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const log = () => {
    try {
      return readFileSync(join(dir, 'vbmcd.log'), 'utf8');
    } catch {
      return '';
    }
  };
  t.after(async () => {
    if (daemon.exitCode !== null) return;
    try {
      vbmc('stop', o.domain);
    } catch {
      // not started
    }
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  });
  await waitFor(
    'vbmcd answering',
    () => {
      if (daemon.exitCode !== null) throw new Error(`vbmcd exited ${daemon.exitCode}: ${log().slice(-600)}`);
      try {
        vbmc('list');
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    300,
  );
  const port = await freePort();
  vbmc(
    'add',
    o.domain,
    '--address',
    '127.0.0.1',
    '--port',
    String(port),
    '--username',
    o.user,
    '--password',
    o.password,
    '--libvirt-uri',
    o.libvirtUri,
  );
  vbmc('start', o.domain);
  await waitFor(
    `vbmc for ${o.domain} running`,
    () => /\brunning\b/.test(vbmc('show', o.domain)),
    30_000,
    300,
  );
  return { address: `127.0.0.1:${port}`, log };
}
