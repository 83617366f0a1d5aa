import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './support/services.js';

interface ComposeService {
  image?: string;
  build?: unknown;
  ports?: string[];
  command?: string[];
  environment?: Record<string, string | number>;
}

const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};

// The defaults of the external contract (shared/CONTRACT.md: the operator API is the admin
// service's), and the dispatcher's own health and metrics port.
const CONTRACT_PORTS: Record<string, number> = {
  collector: 8080,
  auth: 8081,
  admin: 8082,
  dispatcher: 8083,
  pusher: 8090,
  kafka: 9092,
  redis: 6379,
  mongo: 27017,
};

test('docker-compose.yml describes the whole stack on the contract ports, loopback only', () => {
  assert.deepEqual(Object.keys(compose.services).sort(), Object.keys(CONTRACT_PORTS).sort());
  for (const [name, port] of Object.entries(CONTRACT_PORTS)) {
    const svc = compose.services[name]!;
    assert.deepEqual(svc.ports, [`127.0.0.1:${port}:${port}`], `${name} ports`);
  }
});

test('docker-compose.yml uses the official images and the repo build for our services', () => {
  assert.match(compose.services.kafka!.image!, /^apache\/kafka:3\.9\./);
  assert.match(compose.services.redis!.image!, /^redis:7/);
  assert.match(compose.services.mongo!.image!, /^mongo:7/);
  for (const name of ['auth', 'collector', 'dispatcher', 'admin', 'pusher']) {
    const svc = compose.services[name]!;
    assert.equal(svc.build, '.', `${name} build`);
    assert.deepEqual(svc.command, ['node', '--import', 'tsx', `${name}/src/main.ts`]);
    // The dispatcher's own port serves only health, readiness and metrics; DISPATCHER_PORT names the operator API's (the admin service's).
    const portVar = name === 'dispatcher' ? 'DISPATCHER_METRICS_PORT' : `${name.toUpperCase()}_PORT`;
    assert.equal(Number(svc.environment?.[portVar]), CONTRACT_PORTS[name], `${name} ${portVar}`);
    assert.equal(svc.environment?.KAFKA_BROKERS, 'kafka:9092');
  }
});
