/**
 * A real browser for the web UI's tests: Debian's Chromium (`/usr/bin/chromium`, installed by
 * scripts/setup.sh) driven by playwright-core, which downloads no browser of its own. Headless, and
 * closed in the suite's `after`. Also builds the UI first (scripts/build/ui.sh, skipped when fresh), as
 * `strata up` serves it from ui/dist.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import type { Cleanup } from './services.ts';
import { REPO } from './strata.ts';

export const CHROMIUM = process.env.STRATA_CHROMIUM ?? '/usr/bin/chromium';

/** Builds ui/dist when it is missing or older than its sources. */
export function buildUi(): void {
  execFileSync('bash', [join(REPO, 'scripts/build/ui.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
}

export async function launchChromium(t: Cleanup): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run "bash scripts/setup.sh" (it installs Debian's chromium)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium refuses to start its renderer sandbox as root (it needs an unprivileged user for the
    // setuid/namespace sandbox), and these tests run as root like the rest of the suite (they make
    // network namespaces). --no-sandbox is safe here: the browser only loads the Strata UI of a server the
    // test started on 127.0.0.1, never a page from elsewhere.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  t.after(() => browser.close());
  return browser;
}
