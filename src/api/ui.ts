/**
 * Serves the built web UI (`ui/dist`, made by `scripts/build/ui.sh` from `ui/`) on the API's own address:
 * `/` is the page, `/assets/*` its content-hashed scripts and styles. The UI is a client of the same API
 * with the same bearer token (it asks for it on a login page), so this module serves files only and needs
 * no token: the files hold no data.
 *
 * It stays outside the router on purpose: /openapi.json describes the API, not the page's files. Headers:
 * a strict Content-Security-Policy (scripts, styles and fetches from this origin only; no inline script,
 * no framing), `nosniff`, no referrer; hashed assets are cached for a year as immutable, the page itself is
 * revalidated on every load so a new build is picked up. A missing build is answered with a page saying
 * how to build it, and `uiStatus` lets `strata up` say the same once at start.
 */
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import send from 'send';

/** Where the built UI is: `STRATA_UI_DIR`, else `ui/dist` of this checkout. */
export function uiDir(): string {
  return process.env.STRATA_UI_DIR
    ? resolve(process.env.STRATA_UI_DIR)
    : resolve(import.meta.dirname, '../../ui/dist');
}

export const BUILD_HINT = 'run "bash scripts/setup.sh" (or "npm run build:ui") in the Strata checkout';

/** Undefined when the UI is built, else the sentence to log. */
export function uiStatus(dir = uiDir()): string | undefined {
  return existsSync(join(dir, 'index.html'))
    ? undefined
    : `the web UI is not built (no ${join(dir, 'index.html')}): ${BUILD_HINT}; the API works without it`;
}

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const ASSET = /^\/assets\/[A-Za-z0-9._-]+$/;

function securityHeaders(res: ServerResponse): void {
  res.setHeader('content-security-policy', CSP);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('x-frame-options', 'DENY');
}

/**
 * Answers GET/HEAD of the UI's paths and returns true; returns false for every other path, which the API
 * then answers (404 as JSON).
 */
export function serveUi(req: IncomingMessage, res: ServerResponse, pathname: string, dir = uiDir()): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const page = pathname === '/' || pathname === '/index.html';
  if (!page && !ASSET.test(pathname) && pathname !== '/favicon.svg') return false;
  securityHeaders(res);
  const missing = uiStatus(dir);
  if (missing) {
    if (!page) return false;
    const body = `<!doctype html><meta charset="utf-8"><title>Strata: web UI not built</title><h1>The web UI is not built</h1><p>${escapeHtml(missing)}.</p><p>The API is at <a href="/api/v1">/api/v1</a>, its description at <a href="/openapi.json">/openapi.json</a>.</p>\n`;
    res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
  const file = page ? '/index.html' : pathname;
  res.setHeader('cache-control', ASSET.test(pathname) ? 'public, max-age=31536000, immutable' : 'no-cache');
  const stream = send(req, file, { root: dir, index: false, dotfiles: 'deny', cacheControl: false });
  stream.on('headers', (r: ServerResponse, path: string) => {
    if (path.endsWith('.html')) r.setHeader('content-type', 'text/html; charset=utf-8');
  });
  stream.on('error', (err: { status?: number }) => {
    const status = err.status ?? 500;
    res.setHeader('cache-control', 'no-store');
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(status === 404 ? 'not found\n' : 'error\n');
  });
  stream.pipe(res);
  return true;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
