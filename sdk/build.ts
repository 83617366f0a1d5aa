/**
 * `npm run build:sdk`: bundles the browser SDK with esbuild into
 * sdk/dist/push-sdk.mjs (ESM, readable) and sdk/dist/push-sdk.min.js
 * (IIFE exposing the global `PushSDK`, minified), then prints their sizes.
 * Tests import `SDK_BUNDLES` to bundle the same way in memory.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions } from 'esbuild';

const SDK = path.dirname(fileURLToPath(import.meta.url));

const common: BuildOptions = {
  entryPoints: [path.join(SDK, 'src/index.ts')],
  bundle: true,
  platform: 'browser',
  // Evergreen browsers; `??=` and class fields are lowered.
  target: 'es2020',
  legalComments: 'none',
  logLevel: 'warning',
};

export const SDK_BUNDLES = {
  esm: { ...common, format: 'esm', outfile: path.join(SDK, 'dist/push-sdk.mjs') },
  iife: { ...common, format: 'iife', globalName: 'PushSDK', minify: true, outfile: path.join(SDK, 'dist/push-sdk.min.js') },
} satisfies Record<string, BuildOptions>;

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const bundles = Object.values(SDK_BUNDLES);
  await Promise.all(bundles.map((b) => build(b)));
  for (const b of bundles) {
    const bytes = readFileSync(b.outfile);
    const name = path.relative(path.dirname(SDK), b.outfile);
    console.log(`${name.padEnd(25)} ${String(bytes.length).padStart(7)} B raw ${String(gzipSync(bytes, { level: 9 }).length).padStart(7)} B gzip`);
  }
}
