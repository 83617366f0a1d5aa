import { createRequire } from 'node:module';

/**
 * Each patch here reaches into a library's internals, which only the version
 * it was checked against is known to have. `versionGuard` says whether the
 * installed version is that one; when it is not, the patch stays off and
 * says so once on stderr (a process warning), so an upgrade never silently
 * runs a patch against a layout it was not written for.
 */
export interface PatchTarget {
  /** The patch, as named in platform/patches/README.md. */
  patch: string;
  /** The npm package it patches. */
  pkg: string;
  /** The versions the patch was checked against (its test fails on any other). */
  versions: readonly string[];
}

const require = createRequire(import.meta.url);

/** The installed version of `pkg`, or undefined when it cannot be read. */
export function installedVersion(pkg: string): string | undefined {
  try {
    return (require(`${pkg}/package.json`) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

const warned = new Set<string>();

/** True when `installed` is a version the patch supports; otherwise warns (once per patch) and returns false. */
export function versionGuard(target: PatchTarget, installed = installedVersion(target.pkg)): boolean {
  if (installed !== undefined && target.versions.includes(installed)) return true;
  if (!warned.has(target.patch)) {
    warned.add(target.patch);
    process.emitWarning(
      `${target.patch} is off: it was written for ${target.pkg} ${target.versions.join(' or ')}, installed is ${installed ?? 'unknown'} (see platform/patches/README.md)`,
      { code: 'PUSH_PATCH_OFF' },
    );
  }
  return false;
}
