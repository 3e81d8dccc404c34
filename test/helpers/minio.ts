/**
 * A private MinIO server for the S3 backend's tests: the real thing, built once per machine by
 * scripts/build/minio.sh (which .ci/run calls). It listens on 127.0.0.1 on free ports with a random root
 * user, keeps its data in a temporary directory, and is killed and removed in the suite's `after`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Cleanup, freePort } from './services.ts';

export const MINIO_BIN = process.env.STRATA_MINIO_BIN ?? '/var/cache/strata/bin/minio';

/** Why the MinIO tests cannot run here, or undefined when they can. */
export function minioSkipReason(): string | undefined {
  try {
    accessSync(MINIO_BIN, constants.X_OK);
    return undefined;
  } catch {
    return `no MinIO binary at ${MINIO_BIN}: build it with scripts/build/minio.sh (about 10 minutes, once per machine)`;
  }
}

export interface MinioServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A bucket made for this server. */
  bucket: string;
  stop(): Promise<void>;
}

export async function startMinio(t: Cleanup): Promise<MinioServer> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-registry-minio-'));
  const accessKeyId = `registry${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(18).toString('base64url');
  const port = await freePort();
  const consolePort = await freePort();
  const child: ChildProcess = spawn(
    MINIO_BIN,
    [
      'server',
      dir,
      '--address',
      `127.0.0.1:${port}`,
      '--console-address',
      `127.0.0.1:${consolePort}`,
      '--quiet',
    ],
    {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        MINIO_ROOT_USER: accessKeyId,
        MINIO_ROOT_PASSWORD: secretAccessKey,
        MINIO_BROWSER: 'off',
        MINIO_UPDATE: 'off',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  child.stdout?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  t.after(stop);
  process.once('exit', () => child.kill('SIGKILL'));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`minio exited (${child.exitCode}) before ready:\n${log}`);
    const ok = await fetch(`${endpoint}/minio/health/live`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`minio not ready after 30 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const bucket = `registry-${randomBytes(4).toString('hex')}`;
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  s3.destroy();
  return { endpoint, accessKeyId, secretAccessKey, bucket, stop };
}
