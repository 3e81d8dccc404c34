#!/usr/bin/env node
/** Entry point of the `strata` command. */
import { main } from '../src/cli/main.ts';

await main(process.argv);
