import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './config.js';

const dev = { PUSH_MODE: 'development' };

test('the operator API stays where DISPATCHER_PORT put it before the admin service; ADMIN_PORT wins', () => {
  assert.equal(loadConfig(dev).port, 8082);
  assert.equal(loadConfig({ ...dev, DISPATCHER_PORT: '9100' }).port, 9100);
  assert.equal(loadConfig({ ...dev, DISPATCHER_PORT: '9100', ADMIN_PORT: '9200' }).port, 9200);
  assert.throws(() => loadConfig({ ...dev, DISPATCHER_PORT: 'x' }), /DISPATCHER_PORT/);
});
