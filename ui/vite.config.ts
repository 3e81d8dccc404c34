/**
 * Builds the web UI into ui/dist, which `strata up` serves (src/api/ui.ts). Preact's JSX through Vite's
 * own transform (no plugin); no inline script or style in the output, so the page runs under a CSP of
 * 'self' only; content-hashed file names under /assets, which the server caches as immutable.
 */
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
