/**
 * The media layer: boot media (ISO, USB image) that bring a machine to Strata's HTTP boot where firmware
 * cannot network boot — the seed's "USB manager/worker → stick" path through steps 1 and 2.
 *
 * Manager (API): `POST /api/v1/media/builds` checks the request (the Network exists, the Node if named,
 * the static address), renders the medium's iPXE script with the network's boot server and the site's
 * enrolment token for that network (src/boot/enrolment.ts: minted on first use, sealed in the store),
 * records a build and asks a media worker to make each image; progress comes back over the transport. Each image goes into an
 * artifact store of its own (`<dataDir>/media-store`: the registry's content-addressed store, by
 * SHA-256) as `media/NETWORK/FORMAT:BUILD-ID`. Not the global registry: its pull token and every
 * segment's local registry list and serve what it holds without an API token, and an image carries the
 * enrolment token.
 * `GET …/builds/ID` follows a build, `GET …/builds/ID/FORMAT` downloads an image. The token never
 * appears in an API response; it is inside the image only, which is why downloading needs an operator.
 *
 * The worker hands back a file path, so the worker's data dir must be the manager's (as in `strata up`);
 * a worker on another machine would have to upload the image instead (not done yet).
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { enrolmentToken } from '../boot/enrolment.ts';
import { sendJson } from '../core/http.ts';
import type { NetworkResource } from '../core/kinds/network.ts';
import type { Layer, ManagerContext, Stoppable } from '../core/layer.ts';
import { StrataError } from '../core/resources/errors.ts';
import { type ArtifactStore, FileRefs, openArtifactStore } from '../registry/store.ts';
import type { MediaFormat } from './build.ts';
import {
  BUILDS,
  type MediaBuild,
  type MediaBuildReply,
  type MediaBuildRequest,
  type MediaProgressReport,
  subjects,
} from './protocol.ts';
import { MediaInputError, parseStatic, renderMediaScript, type StaticAddress } from './script.ts';
import { serveMediaWorker } from './worker.ts';

export const MEDIA_BUILDS_PATH = '/api/v1/media/builds';
const MEDIA_TYPES: Record<MediaFormat, string> = {
  iso: 'application/vnd.efi.iso',
  usb: 'application/vnd.efi.img',
};
/** A build of one image under emulation-free conditions takes seconds; a busy worker queues them. */
const BUILD_TIMEOUT_MS = 10 * 60_000;

const buildBody = z.object({
  network: z.string().min(1).describe('The Network the machine boots on.'),
  node: z.string().min(1).optional().describe('The Node the medium is for (optional).'),
  format: z.enum(['iso', 'usb', 'both']).describe('iso: hybrid ISO (CD and USB); usb: disk image; both.'),
  static: z
    .string()
    .optional()
    .describe('A static address for networks without DHCP: ADDRESS/PREFIX/GATEWAY[/DNS].'),
});
type BuildBody = z.infer<typeof buildBody>;

const buildSchema = {
  type: 'object',
  properties: {
    kind: { const: 'MediaBuild' },
    id: { type: 'string' },
    network: { type: 'string' },
    node: { type: 'string' },
    formats: { type: 'array', items: { enum: ['iso', 'usb'] } },
    address: { type: 'string' },
    phase: { enum: ['Building', 'Succeeded', 'Failed'] },
    percent: { type: 'number' },
    doing: { type: 'string' },
    error: { type: 'string' },
    createdAt: { type: 'string' },
    finishedAt: { type: 'string' },
    images: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          format: { enum: ['iso', 'usb'] },
          size: { type: 'integer' },
          sha256: { type: 'string' },
          artifact: { type: 'string' },
          download: { type: 'string' },
        },
      },
    },
  },
};

async function mustGetBuild(ctx: ManagerContext, id: string): Promise<MediaBuild> {
  const b = (await ctx.store.getRecord(BUILDS, id)) as MediaBuild | undefined;
  if (!b) throw new StrataError(404, 'NotFound', `media build ${id} not found`);
  return b;
}

async function startBuild(ctx: ManagerContext, artifacts: ArtifactStore, body: BuildBody) {
  const net = await ctx.resources.get<NetworkResource>('Network', body.network);
  if (!net)
    throw new StrataError(
      404,
      'NotFound',
      `network: Network ${body.network} not found; see \`strata get networks\` for the ones that exist`,
    );
  if (body.node && !(await ctx.resources.get('Node', body.node)))
    throw new StrataError(404, 'NotFound', `node: Node ${body.node} not found; see \`strata get nodes\``);
  let address: StaticAddress | undefined;
  try {
    address = body.static === undefined ? undefined : parseStatic(body.static);
  } catch (e) {
    if (e instanceof MediaInputError) throw new StrataError(422, 'Invalid', e.message);
    throw e;
  }
  const spec = net.spec;
  const script = renderMediaScript({
    baseUrl: `http://${spec.serverAddress}:${spec.boot.httpPort}`,
    network: body.network,
    token: await enrolmentToken(ctx, body.network),
    ...(body.node ? { node: body.node } : {}),
    ...(address ? { static: address } : {}),
  });
  const formats: MediaFormat[] = body.format === 'both' ? ['iso', 'usb'] : [body.format];
  const build: MediaBuild = {
    kind: 'MediaBuild',
    id: randomUUID(),
    network: body.network,
    ...(body.node ? { node: body.node } : {}),
    formats,
    address: address ? `${address.address}/${address.prefix} via ${address.gateway}` : 'dhcp',
    phase: 'Building',
    percent: 0,
    doing: 'queued',
    createdAt: new Date().toISOString(),
    images: [],
  };
  await save(ctx, build);
  void runBuild(ctx, artifacts, build, script);
  return build;
}

const save = (ctx: ManagerContext, b: MediaBuild) => ctx.store.putRecords(BUILDS, [{ key: b.id, value: b }]);

/** Live progress by build id (the store gets the phases, not every percent). */
const live = new Map<string, MediaBuild>();

async function runBuild(ctx: ManagerContext, artifacts: ArtifactStore, build: MediaBuild, script: string) {
  live.set(build.id, build);
  try {
    for (const [i, format] of build.formats.entries()) {
      const r = await ctx.transport.request<MediaBuildRequest, MediaBuildReply>(
        subjects.build,
        { id: `${build.id}-${format}`, format, script },
        { timeout: BUILD_TIMEOUT_MS },
      );
      if (!existsSync(r.file))
        throw new Error(
          `the media worker's image ${r.file} is not on this machine: run the media role with the manager's data dir (strata up, or strata worker --roles media --data-dir DIR on the same machine)`,
        );
      try {
        const put = await artifacts.putBlob(createReadStream(r.file), `sha256:${r.sha256}`);
        const name = `media/${build.network}/${format}`;
        await artifacts.tag(name, build.id, put.digest, MEDIA_TYPES[format]);
        build.images.push({
          format,
          size: put.size,
          sha256: r.sha256,
          artifact: `${name}:${build.id}`,
          download: `${MEDIA_BUILDS_PATH}/${build.id}/${format}`,
        });
      } finally {
        await rm(r.file, { force: true });
      }
      build.percent = Math.round(((i + 1) / build.formats.length) * 100);
    }
    build.phase = 'Succeeded';
    build.doing = 'done';
    ctx.log.info('boot media built', { id: build.id, network: build.network, formats: build.formats });
  } catch (e) {
    build.phase = 'Failed';
    build.error = (e as Error).message;
    build.doing = 'failed';
    ctx.log.warn('boot media build failed', { id: build.id, err: build.error });
  } finally {
    build.finishedAt = new Date().toISOString();
    live.delete(build.id);
    await save(ctx, build).catch((e) => ctx.log.error('could not record a media build', { err: e }));
  }
}

function routes(ctx: ManagerContext, artifacts: ArtifactStore): void {
  ctx.router.add(
    'POST',
    MEDIA_BUILDS_PATH,
    async ({ json, res }) => {
      sendJson(res, 202, await startBuild(ctx, artifacts, await json<BuildBody>()));
      return undefined;
    },
    {
      operationId: 'mediaBuild',
      summary: 'Build boot media (ISO, USB image) that chain to this network’s HTTP boot',
      tags: ['media'],
      body: { schema: buildBody },
      response: { status: 202, schema: buildSchema },
      errors: [404, 422],
    },
  );
  ctx.router.add(
    'GET',
    `${MEDIA_BUILDS_PATH}/:id`,
    async ({ params }) => live.get(params.id!) ?? mustGetBuild(ctx, params.id!),
    {
      operationId: 'mediaBuildStatus',
      summary: 'A media build: its phase, progress and images',
      tags: ['media'],
      response: { schema: buildSchema },
      errors: [404],
    },
  );
  ctx.router.add(
    'GET',
    `${MEDIA_BUILDS_PATH}/:id/:format`,
    async ({ params, res }) => {
      const b = await mustGetBuild(ctx, params.id!);
      const img = b.images.find((i) => i.format === params.format);
      if (!img)
        throw new StrataError(
          404,
          'NotFound',
          `media build ${b.id} has no ${params.format} image (${b.phase})`,
        );
      const blob = await artifacts.openBlob(`sha256:${img.sha256}`);
      if (!blob)
        throw new StrataError(404, 'NotFound', `image ${img.artifact} is gone from the artifact store`);
      res.statusCode = 200;
      res.setHeader('Content-Type', 'application/octet-stream');
      res.setHeader('Content-Length', blob.size);
      res.setHeader('Digest', `sha-256=${Buffer.from(img.sha256, 'hex').toString('base64')}`);
      res.setHeader(
        'Content-Disposition',
        `attachment; filename="strata-${b.network}.${img.format === 'iso' ? 'iso' : 'img'}"`,
      );
      blob.stream.on('error', () => res.destroy());
      blob.stream.pipe(res);
      await new Promise((resolve) => res.once('close', resolve));
      return undefined;
    },
    {
      operationId: 'mediaDownload',
      summary: 'Download a built image (it carries the enrolment token: operators only)',
      tags: ['media'],
      role: 'operator',
      response: { contentType: 'application/octet-stream', schema: { type: 'string', format: 'binary' } },
      errors: [404],
    },
  );
}

export const mediaLayer: Layer = {
  name: 'media',
  roles: ['media'],
  async manager(ctx): Promise<Stoppable> {
    const root = join(ctx.dataDir, 'media-store');
    const artifacts = await openArtifactStore({ root, refs: new FileRefs(join(root, 'refs.json')) });
    routes(ctx, artifacts);
    const sub = await ctx.transport.subscribe<MediaProgressReport>(subjects.progress, (p) => {
      const id = p.id.replace(/-(iso|usb)$/, '');
      const b = live.get(id);
      if (!b) return;
      const i = b.formats.indexOf(p.format);
      b.percent = Math.round(((i + p.percent / 100) / b.formats.length) * 100);
      b.doing = `${p.format}: ${p.doing}`;
    });
    return { stop: () => sub.unsubscribe() };
  },
  worker: (ctx) => serveMediaWorker(ctx),
};
