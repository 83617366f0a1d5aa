import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root: infra/ sits one level below it. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Everything downloaded, built or stored by the local stack lives here (git-ignored). */
export const infraDir = path.join(repoRoot, '.infra');

export const infraPath = (...parts: string[]): string => path.join(infraDir, ...parts);
