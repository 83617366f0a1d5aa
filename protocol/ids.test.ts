import { test } from 'node:test';
import assert from 'node:assert/strict';
import { idTime, newId } from './ids.js';

test('ids are 26 characters, unique and strictly increasing within a process', () => {
  const ids = Array.from({ length: 5000 }, () => newId());
  assert.equal(new Set(ids).size, ids.length);
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]}`);
  assert.ok(ids.every((id) => /^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)));
});

test('ids sort by time and carry it', () => {
  const a = newId(1_700_000_000_000);
  const b = newId(1_800_000_000_000);
  assert.ok(a < b);
  assert.equal(idTime(b), 1_800_000_000_000);
  assert.ok(Number.isNaN(idTime('not-an-id')));
});
