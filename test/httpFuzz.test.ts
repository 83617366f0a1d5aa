/**
 * HTTP fuzzing (issue 12, "Fuzzing, in CI, bounded"): schemathesis, pinned and
 * installed from PyPI into .infra/ on first use, generates requests from
 * docs/openapi.yaml (valid ones, and invalid ones for every constraint) and
 * sends them to a running collector, auth, admin service and pusher. It fails on any 5xx,
 * on a status code the spec does not list for the operation, on a response
 * body, header or content type that does not match the spec, on a valid
 * request refused or an invalid one accepted, on a wrong answer to an
 * undeclared method (405) and on an operation that ignores its credentials.
 *
 * Bounded: each service has a time budget (PUSH_HTTP_FUZZ_SECONDS in total,
 * default 90, split 45/20/10/25 between collector, auth, pusher and admin service) and a hard
 * wall-clock kill on top. PUSH_HTTP_FUZZ_SEED replays a run's seed (each run
 * prints its own).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startStack } from './support/stack.js';
import { ROOT } from './support/services.js';
import { ensureSchemathesis, runSchemathesis, type FuzzRun } from './support/schemathesis.js';

const SPEC = path.join(ROOT, 'docs/openapi.yaml');
function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}
const TOTAL_SECONDS = envNumber('PUSH_HTTP_FUZZ_SECONDS', 90);
const SEED = envNumber('PUSH_HTTP_FUZZ_SEED', Math.floor(Math.random() * 2 ** 31));
const OPERATOR_KEY = `fuzz-operator-${process.pid}`;

const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
  'negative_data_rejection',
  'positive_data_acceptance',
  'unsupported_method',
  'missing_required_header',
  'ignored_auth',
];

const bearer = (key: string) => `{ Authorization = "Bearer ${key}" }`;

/**
 * Where the spec cannot say what the server rightly checks, one check is off
 * for one operation (and only there):
 * - a kick reason is limited in UTF-8 bytes (200); JSON Schema's maxLength
 *   counts characters, so 200 multi-byte characters are rightly refused;
 * - a replay's `from` must not be after `to`, and the range is bounded;
 * - GET /v1/admin/dlq/replay and /purge are GET /v1/admin/dlq/{id} with an id
 *   that does not exist (404), not an undeclared method.
 */
const KICK_OPS = `
[[operations]]
include-path = "/v1/users/{userId}/kick"
checks.positive_data_acceptance.enabled = false
`;
const ADMIN_OPS = `${KICK_OPS}
[[operations]]
include-path = "/v1/admin/replays"
include-method = "POST"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-path-regex = "^/v1/admin/dlq/(replay|purge)$"
checks.unsupported_method.enabled = false
`;

test('schemathesis finds no 5xx and no mismatch with docs/openapi.yaml on the collector, auth, admin service and pusher', { timeout: 300_000 }, async (t) => {
  const bin = await ensureSchemathesis();
  // The admin service is there for its operator API, the pusher for its session check.
  const s = await startStack({
    pushers: 1,
    dispatchers: 1,
    env: { OPERATOR_KEY, OPERATOR_AUTH_MAX_FAILURES: '1000000', API_KEY_AUTH_MAX_FAILURES: '1000000' },
  });
  const runs: { name: string; run: FuzzRun }[] = [];
  try {
    const targets: { name: string; url: string; share: number; pathRegex: string; headers: Record<string, string>; operations: string }[] = [
      {
        name: 'collector',
        url: s.collector.url,
        share: 45,
        pathRegex: '^/(v1/messages|v1/tasks|v1/users/|healthz$|readyz$|metrics$)',
        headers: { Authorization: `Bearer ${s.apiKey}` },
        operations: KICK_OPS,
      },
      {
        name: 'auth',
        url: s.auth.url,
        share: 20,
        pathRegex: '^/(v1/tokens$|v1/admin/keys/rotate$|\\.well-known/jwks\\.json$|healthz$|readyz$|metrics$)',
        headers: { Authorization: `Bearer ${s.apiKey}` },
        operations: `[[operations]]\ninclude-path = "/v1/admin/keys/rotate"\nheaders = ${bearer(OPERATOR_KEY)}\n`,
      },
      {
        // Not /v1/admin/drain: it stops the pusher, as documented.
        name: 'pusher',
        url: s.pushers[0]!.url,
        share: 10,
        pathRegex: '^/(v1/session$|healthz$|readyz$|metrics$)',
        headers: {},
        operations: '',
      },
      {
        // Not /v1/admin/nodes/{nodeId}/drain: the stateful phase finds the pusher's id in
        // /v1/admin/status and drains it, which stops it (as documented).
        name: 'admin',
        url: s.admin.url,
        share: 25,
        pathRegex: '^/(v1/tasks|v1/users/\\{userId\\}/kick$|v1/admin/(replays|dlq|status|lag|trace)|dashboard$|healthz$|readyz$|metrics$)',
        headers: { Authorization: `Bearer ${OPERATOR_KEY}` },
        operations: ADMIN_OPS,
      },
    ];
    for (const target of targets) {
      const seconds = Math.max(5, Math.round((TOTAL_SECONDS * target.share) / 100));
      const run = await runSchemathesis(bin, {
        spec: SPEC,
        url: target.url,
        pathRegex: target.pathRegex,
        checks: CHECKS,
        maxExamples: 25,
        maxSeconds: seconds,
        killAfterMs: (seconds + 45) * 1000,
        seed: SEED,
        headers: target.headers,
        operations: target.operations,
      });
      runs.push({ name: target.name, run });
      t.diagnostic(`${target.name}: exit ${run.exit}, ${run.operations} operations, ${run.testCases} test cases in ${run.seconds.toFixed(1)} s (seed ${SEED})`);
      assert.equal(run.timedOut, false, `${target.name}: schemathesis ran past its wall-clock bound\n${run.output}`);
      assert.equal(run.exit, 0, `${target.name}: schemathesis found problems (seed ${SEED}):\n${run.output}`);
      assert.ok(run.operations > 0 && run.testCases > 0, `${target.name}: schemathesis tested nothing:\n${run.output}`);
    }
    // Every service is still up after the run.
    for (const svc of [s.collector, s.auth, s.admin, s.dispatchers[0]!, s.pushers[0]!]) {
      const res = await fetch(`${svc.url}/healthz`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200, `${svc.name} is not healthy after fuzzing`);
    }
    for (const svc of [s.collector, s.auth, s.admin, s.dispatchers[0]!, s.pushers[0]!]) {
      assert.doesNotMatch(svc.output(), /request failed/, `${svc.name} logged a failed request (500)`);
    }
  } finally {
    const total = runs.reduce((n, r) => n + Math.max(0, r.run.testCases), 0);
    const secs = runs.reduce((n, r) => n + r.run.seconds, 0);
    t.diagnostic(`HTTP fuzzing: ${total} test cases in ${secs.toFixed(1)} s over ${runs.length} services (seed ${SEED})`);
    await s.stop();
  }
});
