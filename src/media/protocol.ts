/**
 * What the media manager and a media worker say to each other over the transport, and what the API shows
 * of a build. The manager decides what goes on the medium (the script, with the site's enrolment token)
 * and keeps the result; the worker only turns a script into an image file.
 */
import { type WireContract, wireContract } from '../core/wire.ts';
import type { MediaFormat } from './build.ts';

export const subjects = {
  /** Request MediaBuildRequest → MediaBuildReply (one format per request). */
  build: 'media.build',
  /** Published MediaProgressReport while a worker builds. */
  progress: 'media.progress',
} as const;

/** Build records by id. */
export const BUILDS = 'media.builds';

/** Who sends and who receives each subject, and what the media layer keeps (docs/wire.md). */
export const wire: WireContract = wireContract(
  'media',
  subjects,
  {
    build: {
      kind: 'request',
      from: ['manager'],
      to: ['media'],
      message: 'MediaBuildRequest → MediaBuildReply: one format per request',
    },
    progress: { kind: 'publish', from: ['media'], to: ['manager'], message: 'MediaProgressReport' },
  },
  [
    {
      name: BUILDS,
      key: 'build id',
      holds: 'MediaBuild: what was asked, its phase and progress, the built images by SHA-256',
      writers: ['manager'],
      readers: ['manager'],
    },
  ],
);

export interface MediaBuildRequest {
  id: string;
  format: MediaFormat;
  script: string;
}

export interface MediaBuildReply {
  format: MediaFormat;
  /** The image on the worker's machine (the manager moves it into the artifact store). */
  file: string;
  size: number;
  sha256: string;
}

export interface MediaProgressReport {
  id: string;
  format: MediaFormat;
  percent: number;
  doing: string;
}

export type BuildPhase = 'Building' | 'Succeeded' | 'Failed';

/** A build as `GET /api/v1/media/builds/ID` shows it (no token: that is inside the image only). */
export interface MediaBuild {
  kind: 'MediaBuild';
  id: string;
  network: string;
  node?: string;
  formats: MediaFormat[];
  /** `dhcp`, or the static address the medium configures. */
  address: string;
  phase: BuildPhase;
  /** 0..100 over all formats. */
  percent: number;
  doing: string;
  error?: string;
  createdAt: string;
  finishedAt?: string;
  /** Each built image: its artifact (name:version) in the artifact store, and where to download it. */
  images: { format: MediaFormat; size: number; sha256: string; artifact: string; download: string }[];
}
