import { chromium, type Browser } from 'playwright-core';

/**
 * The system's headless Chromium, driven by playwright-core: no sandbox (tests
 * run as root in containers), no GPU, no QUIC, and none of the background
 * traffic (updates, sync) a first run would start.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
