/**
 * The segment's artifacts handed to a real nginx (spec.boot.artifactServer nginx): Node has no sendfile
 * and measured at 0.56–0.66× nginx for downloads however many processes serve them (BENCHMARKS.md), so
 * the worker can start its own nginx where its HTTP server listened, serving `/artifacts/` from the same
 * directory with sendfile and passing every other path (scripts, reports, the worker's prefixes) to the
 * worker's Node server on a unix socket in a directory only this user can enter. Strata keeps every
 * decision; nginx only moves bytes.
 *
 * Each worker's nginx is its own: its configuration, pid file, temp dirs and socket live in the worker's
 * run dir (`dataDir/run/http-NETWORK`); its master is the worker's child, stopped with the worker. A
 * watchdog (`sh`, reading its stdin, a pipe from the worker) stops the master when the worker dies however
 * it dies, and a worker starting again first kills whatever the previous one's pid file still names, with
 * its workers (only if that process runs this very configuration: another instance's nginx is never
 * touched). nginx's workers outlive a master killed with -9, so those are looked up and killed too.
 *
 * Fetch reports keep coming: nginx logs every `/artifacts/` request as one JSON line, buffered, to a file
 * in the run dir that the worker reads as it grows (src/boot/fetch-log.ts: why a file) and parses into
 * the FetchSummary Node's handler reports (src/ipxe/http.ts). A line that does not parse is dropped and
 * counted, never fatal.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Logger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import type { FetchSummary } from '../ipxe/http.ts';
import { FETCH_LOG_BUFFER, FetchLogTail } from './fetch-log.ts';

export type ArtifactServer = 'node' | 'nginx';

const ARTIFACT_SERVERS: readonly ArtifactServer[] = ['node', 'nginx'];

/** Who serves `/artifacts/`: spec.boot.artifactServer, else STRATA_BOOT_ARTIFACT_SERVER, else node. */
export function artifactServer(
  boot: { artifactServer?: ArtifactServer | undefined },
  env = process.env,
): ArtifactServer {
  if (boot.artifactServer) return boot.artifactServer;
  const text = env.STRATA_BOOT_ARTIFACT_SERVER;
  if (text === undefined || text === '') return 'node';
  if ((ARTIFACT_SERVERS as readonly string[]).includes(text)) return text as ArtifactServer;
  throw new Error(
    `STRATA_BOOT_ARTIFACT_SERVER=${JSON.stringify(text)} is not an artifact server: set node or nginx, or unset it for node`,
  );
}

/** Where nginx is looked for beside PATH: Debian puts it in /usr/sbin, which a user's PATH may lack. */
const SBIN = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

/** The nginx binary: STRATA_NGINX, else the first `nginx` on PATH or in the sbin directories. */
export function findNginx(env = process.env, sbin = SBIN): string {
  if (env.STRATA_NGINX) return env.STRATA_NGINX;
  const dirs = [...(env.PATH ?? '').split(delimiter), ...sbin];
  for (const d of dirs.filter(Boolean)) {
    try {
      accessSync(join(d, 'nginx'), constants.X_OK);
      return join(d, 'nginx');
    } catch {}
  }
  throw new Error(
    'spec.boot.artifactServer is nginx (or STRATA_BOOT_ARTIFACT_SERVER=nginx) but no nginx is installed: ' +
      'install it (`apt-get install nginx-light`, as scripts/setup.sh does) or set spec.boot.artifactServer to node',
  );
}

/** The log line nginx sends per artifact request (escape=json keeps it one valid JSON object). */
const LOG_FORMAT =
  '{"a":"$remote_addr","m":"$request_method","u":"$request_uri","s":$status,"b":$body_bytes_sent,' +
  '"t":$request_time,"c":"$request_completion","r":"$http_range"}';

export interface NginxConfigOptions {
  /** The run dir: pid file and temp dirs. */
  dir: string;
  host: string;
  port: number;
  artifacts: string;
  /** The worker's Node server. */
  socket: string;
  /** The fetch log file the worker reads (src/boot/fetch-log.ts). */
  fetchLog: string;
  processes: number;
  /** Cache-Control max-age of artifacts, as Node's handler sends (0 by default). */
  maxAgeSeconds?: number;
  /** Runs as root: nginx's workers then stay root (the artifacts and socket are the worker's). */
  root: boolean;
}

/**
 * The top of an nginx configuration of Strata's own (the segment's, and the benchmarks' peer): in the
 * foreground, its pid file and temp directories in `dir` (not the system nginx's), sendfile, keep-alive,
 * no access log unless a location asks; ends inside the http block, for the caller's servers.
 */
export function nginxHead(o: { dir: string; processes: number | 'auto'; root: boolean }): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
    (name) => `${name}_temp_path ${join(o.dir, name)};`,
  );
  return `daemon off;
${o.root ? 'user root;\n' : ''}worker_processes ${o.processes};
pid ${join(o.dir, 'nginx.pid')};
error_log stderr error;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  ${temp.join('\n  ')}
`;
}

/** nginx's configuration for one segment (pure: the caller writes it). */
export function nginxConfig(o: NginxConfigOptions): string {
  const paths = { dir: o.dir, artifacts: o.artifacts, socket: o.socket, fetchLog: o.fetchLog };
  for (const [field, path] of Object.entries(paths))
    if (/["\\\n\r\0;{}$]/.test(path) || /\s/.test(path))
      throw new Error(
        `${field} ${JSON.stringify(path)} cannot go into nginx's configuration: use a plainer path`,
      );
  const listen =
    o.host === '0.0.0.0' ? String(o.port) : `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  return `# Written by the Strata boot worker (src/boot/http-nginx.ts) at every start: edits do not last.
${nginxHead(o)}  server_tokens off;
  # Short sendfile calls: a worker busy with hundreds of downloads gets back to its other connections
  # (scripts, reports, each proxied to the worker) after 256 KiB instead of 2 MiB per download
  # (BENCHMARKS.md, the storm of 1,000: a script took ~1.5 s at the client, 27 ms in Strata's server).
  sendfile_max_chunk 256k;
  log_format strata_fetch escape=json '${LOG_FORMAT}';
  upstream strata {
    server unix:${o.socket};
    keepalive 32;
    keepalive_timeout 60s;
  }
  server {
    # reuseport: a listening socket per nginx worker, so the kernel spreads connections over them evenly
    # (one shared socket let one worker take most of 200 downloads arriving at once).
    listen ${listen} reuseport;
    client_max_body_size 0;
    location /artifacts/ {
      alias ${o.artifacts}/;
      # No symbolic link below the root is followed, so none can lead out of it (Node's handler refuses
      # only those whose target leaves the root; nothing Strata writes there is a link).
      disable_symlinks on from=$document_root;
      autoindex off;
      etag on;
      add_header Cache-Control "public, max-age=${o.maxAgeSeconds ?? 0}";
      access_log ${o.fetchLog} strata_fetch ${FETCH_LOG_BUFFER};
      location ~ /\\. { return 404; }
    }
    location / {
      proxy_pass http://strata;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      # Overwritten, never appended: a client cannot pose as another address.
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      # Buffered in memory only (never a temp file): a large answer (a registry blob) waits on the client.
      proxy_buffering on;
      proxy_max_temp_file_size 0;
      proxy_request_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
`;
}

/** One line of nginx's fetch log → the FetchSummary Node's handler would have reported, or undefined. */
export function parseFetchLine(line: string): FetchSummary | undefined {
  const at = line.indexOf('{');
  if (at === -1) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line.slice(at).trimEnd());
  } catch {
    return undefined;
  }
  const { a, m, u, s, b, t, c, r } = v;
  if (typeof a !== 'string' || typeof m !== 'string' || typeof u !== 'string' || !u.startsWith('/'))
    return undefined;
  if (typeof s !== 'number' || typeof b !== 'number' || typeof t !== 'number') return undefined;
  const q = u.indexOf('?');
  const f: FetchSummary = {
    remoteAddress: a,
    method: m,
    path: q === -1 ? u : u.slice(0, q),
    kind: 'artifact',
    status: s,
    bytes: b,
    durationMs: Math.round(t * 1000 * 1000) / 1000,
    completed: c === 'OK',
  };
  if (typeof r === 'string' && r) f.range = r;
  return f;
}

const dropped = counter(
  'strata_http_boot_nginx_log_dropped_total',
  "nginx access log lines the boot worker could not parse (each an artifact fetch missing from a Node's timeline)",
);

export interface NginxFrontOptions {
  /** The worker's run dir for this segment (created; only this user may enter it). */
  dir: string;
  host: string;
  port: number;
  artifacts: string;
  /** Where the worker's Node server listens. */
  socket: string;
  processes: number;
  maxAgeSeconds?: number;
  onFetch(f: FetchSummary): void;
  log: Logger;
  /** The nginx binary (default: findNginx()). */
  nginx?: string;
  /** The fetch log is rotated past this size (default: FetchLogTail's). */
  fetchLogMaxBytes?: number;
}

export interface NginxFront {
  /** The master's pid (changes when it is restarted). */
  pid(): number | undefined;
  /** How many times the fetch log was rotated. */
  logRotations(): number;
  stop(): Promise<void>;
}

/** Starts the segment's nginx; resolves once it listens, rejects with nginx's own words if it cannot. */
export async function startNginxFront(o: NginxFrontOptions): Promise<NginxFront> {
  const bin = o.nginx ?? findNginx();
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const conf = join(o.dir, 'nginx.conf');
  const pidFile = join(o.dir, 'nginx.pid');
  killStale(pidFile, conf, o.log);
  const root = process.getuid?.() === 0;
  const logFile = join(o.dir, 'fetch.log');
  writeFileSync(conf, nginxConfig({ ...o, fetchLog: logFile, root }), { mode: 0o600 });

  let stopping = false;
  let master: ChildProcess | undefined;
  const logs = fetchLog(o, logFile, () => {
    if (!master?.pid || master.exitCode !== null || master.signalCode !== null) return false;
    try {
      return master.kill('SIGUSR1');
    } catch {
      return false;
    }
  });
  let watchdog: ChildProcess | undefined;
  let restart: NodeJS.Timeout | undefined;

  const launch = async (failures: number): Promise<void> => {
    rmSync(pidFile, { force: true });
    // Not detached: a session of its own would be an autogroup of its own too, which the scheduler gives
    // one share however many workers it has (measured: slower with 200 downloads on a busy machine).
    const c = spawn(bin, ['-c', conf, '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
    master = c;
    let stderr = '';
    c.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-4000);
      o.log.warn('nginx', { message: d.trim() });
    });
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    const spawned = await new Promise<boolean>((r) => {
      c.once('spawn', () => r(true));
      c.once('error', (err) => {
        stderr += err.message;
        r(false);
      });
    });
    if (spawned) {
      watchdog = guard(c.pid!);
      // nginx writes its pid file once its sockets are bound.
      for (let i = 0; i < 500 && c.exitCode === null && c.signalCode === null; i++) {
        if (existsSync(pidFile)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    if (!spawned || c.exitCode !== null || c.signalCode !== null || !existsSync(pidFile)) {
      await kill(c, watchdog);
      throw new Error(
        `nginx (spec.boot.artifactServer) did not start on ${o.host}:${o.port}: ${stderr.trim() || 'no reason given'}`,
      );
    }
    const at = Date.now();
    void exited.then(() => {
      if (stopping) return;
      const next = Date.now() - at > 60_000 ? 0 : failures + 1;
      const inMs = Math.min(30_000, 500 * 2 ** next);
      o.log.warn('nginx exited; restarting', { code: c.exitCode, signal: c.signalCode, inMs });
      void kill(c, watchdog);
      restart = setTimeout(() => {
        if (!stopping)
          launch(next).catch((err) =>
            o.log.error('nginx cannot start again', { err: (err as Error).message }),
          );
      }, inMs);
    });
  };

  try {
    await launch(0);
  } catch (err) {
    logs.stop();
    throw err;
  }
  o.log.info('artifacts served by nginx', { pid: master?.pid, listen: `${o.host}:${o.port}` });
  return {
    pid: () => master?.pid,
    logRotations: () => logs.rotations,
    async stop() {
      stopping = true;
      clearTimeout(restart);
      if (master) await kill(master, watchdog);
      logs.stop();
      rmSync(pidFile, { force: true });
    },
  };
}

/** Reads nginx's fetch log into `o.onFetch`; `reopen` signals the running master, if any. */
function fetchLog(o: NginxFrontOptions, path: string, reopen: () => boolean): FetchLogTail {
  const tail = new FetchLogTail({
    path,
    reopen,
    ...(o.fetchLogMaxBytes ? { maxBytes: o.fetchLogMaxBytes } : {}),
    log: o.log,
    onLine(line) {
      const f = parseFetchLine(line);
      if (!f) {
        dropped.inc();
        return;
      }
      try {
        o.onFetch(f);
      } catch (err) {
        o.log.warn('onFetch observer threw', { err });
      }
    },
  });
  tail.start();
  return tail;
}

/** The processes whose parent is `pid` (an nginx master's workers), from /proc. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // After the command's closing parenthesis: state, then the parent's pid.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {}
  }
  return out;
}

/** SIGKILL to those of `pids` that still run nginx (a zombie's or a reused pid's command line differs). */
function killNginx(pids: number[]): void {
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('nginx')) process.kill(pid, 'SIGKILL');
    } catch {}
  }
}

/**
 * Kills an nginx a previous worker left running (master and workers), named by its pid file, but only if
 * that process runs this configuration file: a pid reused since, or another instance's nginx, is left alone.
 */
export function killStale(pidFile: string, conf: string, log: Logger): void {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return;
  }
  if (!cmdline.includes('nginx') || !cmdline.split('\0').includes(conf)) return;
  log.warn('stopping the nginx a previous boot worker left', { pid });
  const workers = childrenOf(pid);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
  killNginx(workers);
}

/**
 * The watchdog: a shell reading a pipe from this process. When the pipe closes (this process ended,
 * however: even -9), its read returns and it asks nginx's master for a fast shutdown, which ends its
 * workers too.
 */
function guard(pid: number): ChildProcess {
  const w = spawn('sh', ['-c', `read _ ; kill -TERM ${pid} 2>/dev/null`], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  w.on('error', () => {});
  w.stdin!.on('error', () => {});
  return w;
}

/** Stops nginx: fast shutdown (TERM), KILL after 3 s; then any worker a master killed so left behind. */
async function kill(master: ChildProcess, watchdog: ChildProcess | undefined): Promise<void> {
  // The watchdog first, so that it never signals a pid reused later.
  watchdog?.kill('SIGKILL');
  const workers = master.pid ? childrenOf(master.pid) : [];
  if (master.exitCode === null && master.signalCode === null) {
    const gone = new Promise<void>((r) => master.once('exit', () => r()));
    master.kill('SIGTERM');
    const timer = setTimeout(() => master.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  }
  killNginx(workers);
}
