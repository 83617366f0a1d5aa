import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, envBool, envBrokers, envIdentifier, envInt, envPort, loadCommonConfig } from './config.js';

test('envInt parses, applies defaults and bounds, and names the variable', () => {
  assert.equal(envInt({}, 'X', 5), 5);
  assert.equal(envInt({ X: ' 42 ' }, 'X', 5), 42);
  assert.throws(
    () => envInt({ X: 'abc' }, 'X', 5),
    (e: unknown) => e instanceof ConfigError && /X: expected an integer/.test(e.message),
  );
  assert.throws(() => envInt({ X: '0' }, 'X', 5, { min: 1 }), /X: must be >= 1/);
  assert.throws(() => envPort({ P: '70000' }, 'P', 1), /P: must be <= 65535/);
});

test('envBool and envBrokers reject values they cannot read', () => {
  assert.equal(envBool({ B: 'yes' }, 'B', false), true);
  assert.equal(envBool({ B: 'off' }, 'B', true), false);
  assert.throws(() => envBool({ B: 'maybe' }, 'B', true), /B: expected true\/false/);
  assert.deepEqual(envBrokers({ K: 'a:1, b:2' }, 'K', 'x:9'), ['a:1', 'b:2']);
  assert.throws(() => envBrokers({ K: 'nohost' }, 'K', 'x:9'), /K: expected host:port/);
});

test('envIdentifier keeps node ids safe for topic names and keys', () => {
  assert.equal(envIdentifier({ N: 'node-1.a_b' }, 'N', 'x'), 'node-1.a_b');
  assert.throws(() => envIdentifier({ N: 'bad id' }, 'N', 'x'), /N: expected 1-64 characters/);
});

test('production mode refuses the default operator key', () => {
  assert.equal(loadCommonConfig({ PUSH_MODE: 'development' }).operatorKey, 'operator-key');
  assert.throws(() => loadCommonConfig({}), /OPERATOR_KEY: required in production mode/);
  assert.throws(() => loadCommonConfig({ PUSH_MODE: 'production' }), /OPERATOR_KEY/);
  assert.throws(() => loadCommonConfig({ PUSH_MODE: 'production', OPERATOR_KEY: 'operator-key' }), /OPERATOR_KEY/);
  assert.equal(loadCommonConfig({ PUSH_MODE: 'production', OPERATOR_KEY: 's3cret' }).operatorKey, 's3cret');
  assert.throws(() => loadCommonConfig({ PUSH_MODE: 'development', REDIS_URL: 'http://x' }), /REDIS_URL: expected a redis: or rediss: URL/);
  assert.throws(() => loadCommonConfig({ PUSH_MODE: 'staging' }), /PUSH_MODE: expected one of development, production/);
});

test('topic and key prefixes are checked against what Kafka and Redis accept', () => {
  const dev = { PUSH_MODE: 'development' };
  assert.equal(loadCommonConfig({ ...dev, KAFKA_TOPIC_PREFIX: 'staging.', REDIS_KEY_PREFIX: 'staging:' }).redisKeyPrefix, 'staging:');
  assert.throws(() => loadCommonConfig({ ...dev, KAFKA_TOPIC_PREFIX: 'a:b' }), /KAFKA_TOPIC_PREFIX: expected up to 100 characters of \[A-Za-z0-9._-\]/);
  assert.throws(() => loadCommonConfig({ ...dev, REDIS_KEY_PREFIX: 'a b' }), /REDIS_KEY_PREFIX/);
});
