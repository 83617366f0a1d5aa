import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { installedVersion, versionGuard } from './versionGuard.js';

test('installedVersion reads a package version, and undefined for a missing package', () => {
  assert.match(installedVersion('ws') ?? '', /^\d+\.\d+\.\d+/);
  assert.equal(installedVersion('no-such-package-here'), undefined);
});

test('a version the patch was not written for turns it off with one warning', async () => {
  const target = { patch: 'testPatch', pkg: 'kafkajs', versions: ['2.2.4'] };
  assert.equal(versionGuard(target, '2.2.4'), true);
  const warning = once(process, 'warning') as Promise<[Error & { code?: string }]>;
  assert.equal(versionGuard(target, '2.3.0'), false);
  const [w] = await warning;
  assert.equal(w.code, 'PUSH_PATCH_OFF');
  assert.match(w.message, /testPatch is off: it was written for kafkajs 2\.2\.4, installed is 2\.3\.0/);
  let again = 0;
  const count = () => again++;
  process.on('warning', count);
  assert.equal(versionGuard(target, '9.9.9'), false);
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', count);
  assert.equal(again, 0, 'warned once per patch');
});
