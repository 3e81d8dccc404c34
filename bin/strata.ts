#!/usr/bin/env node
/**
 * Entry point of the `strata` command. It turns on Node's module compile cache first (V8 code and the
 * TypeScript stripping kept on disk, in os.tmpdir()/node-compile-cache unless NODE_COMPILE_CACHE names
 * another directory): a CLI call then starts in about half the time, and the worker processes `strata up`
 * spawns inherit the directory through the environment. A cache that cannot be written is skipped by Node
 * without an error; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 */
import { enableCompileCache } from 'node:module';

const cache = enableCompileCache();
if (cache.directory && !process.env.NODE_COMPILE_CACHE) process.env.NODE_COMPILE_CACHE = cache.directory;
// Imported after the cache is on: a static import would be compiled before this line runs.
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
