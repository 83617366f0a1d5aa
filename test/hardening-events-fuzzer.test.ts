import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { newSigningSecret, SIGNATURE_HEADER } from '../protocol/eventSignature.js';
import { decodeRecord, SCHEMA_HEADER } from '../schemas/registry.js';
import type { BusinessEvent, DeadLetter } from '../schemas/types.js';
import { connectClient, wsOf } from './support/stack.js';
import { useEventsStack } from './support/eventsStack.js';
import { eventually } from './support/eventually.js';
import { businessEvent, eventRecord, eventsLag, type RawRecord } from './support/eventRecords.js';

/**
 * Kafka fuzzer (issue 12): random and hand-made poison BusinessEvent records on
 * push.events, mixed with valid ones. Every poison record must reach push.dlq
 * exactly once with a reason, every valid one must be delivered, the consumer
 * group's lag must return to zero, and a valid record sent last must still
 * reach a live client. Seeded: PUSH_FUZZ_SEED=<n> replays a run.
 */
const SEED = Number(process.env.PUSH_FUZZ_SEED ?? Date.now() % 2 ** 31);
const RANDOM_POISON = 400;
const VALID = 60;

/** mulberry32: small, fast, good enough to pick cases. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = prng(SEED);
const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(0, 255)));

/** A JSON value nested exactly `depth` levels deep, with a few random siblings along the way. */
function tree(depth: number): unknown {
  if (depth === 0) return pick([0, 1, -7, 3.5, true, false, null, 'x', 'é✓', '']);
  const child = tree(depth - 1);
  const siblings = Array.from({ length: int(0, 2) }, () => tree(0));
  if (rnd() < 0.5) return [...siblings, child];
  return Object.fromEntries([...siblings.map((v, i) => [`k${i}`, v]), ['deep', child]]);
}
/** `depth` levels as JSON text, built as text so it can be far deeper than the stack allows for objects. */
const deepText = (depth: number) => (rnd() < 0.5 ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '0' + '}'.repeat(depth));

type Case = { record: RawRecord; kind: string; codes: readonly string[] | 'any' };

const DECODE = ['UNDECODABLE', 'SCHEMA_HEADER_MISSING', 'SCHEMA_UNKNOWN', 'SCHEMA_KIND_MISMATCH'];
const SEMANTIC = ['INVALID_REQUEST', 'PAYLOAD_TOO_LARGE', 'PAYLOAD_TOO_DEEP', 'UNKNOWN_APP'];

describe('Kafka fuzzer: poison records on push.events', () => {
  const secret = newSigningSecret();
  const bed = useEventsStack('fuzz-test', { signingSecret: secret });

  test(`poison records each reach push.dlq with a reason; valid ones are delivered; lag returns to 0 (seed ${SEED})`, { timeout: 180_000 }, async () => {
    console.log(`# kafka fuzzer seed: ${SEED} (PUSH_FUZZ_SEED=${SEED} to replay)`);
    const app = bed.s.app;
    const key = () => `${app}|${pick(['vic', 'u1', 'u2', 'u3'])}`;
    const signed = (ev: BusinessEvent, k: string | null = key()) => eventRecord(ev, k, secret);
    const ok = (over: Partial<BusinessEvent> = {}) => businessEvent(app, ['nobody'], { ok: 1 }, over);
    const withSchema = (rec: RawRecord, schema: string | undefined): RawRecord => {
      const headers = { ...rec.headers };
      if (schema === undefined) delete headers[SCHEMA_HEADER];
      else headers[SCHEMA_HEADER] = schema;
      return { ...rec, headers };
    };

    // Hand-made poison: one of each kind, with the code it must be refused with.
    const cases: Case[] = [
      {
        kind: 'undecodable bytes',
        codes: ['UNDECODABLE'],
        record: { key: key(), value: Buffer.from('definitely not avro'), headers: { [SCHEMA_HEADER]: 'BusinessEvent.v2' } },
      },
      { kind: 'empty value', codes: ['UNDECODABLE'], record: { key: key(), value: Buffer.alloc(0), headers: { [SCHEMA_HEADER]: 'BusinessEvent.v2' } } },
      // 10 bytes claiming 2^31 users: avsc would allocate them all and exhaust the collector's heap.
      {
        kind: 'array count bomb',
        codes: ['UNDECODABLE'],
        record: { key: key(), value: Buffer.from([2, 0x61, 0x80, 0x80, 0x80, 0x80, 0x10, 2, 0x61, 0]), headers: { [SCHEMA_HEADER]: 'BusinessEvent.v2' } },
      },
      { kind: 'null value', codes: ['UNDECODABLE'], record: { key: key(), value: null, headers: { [SCHEMA_HEADER]: 'BusinessEvent.v2' } } },
      { kind: 'no schema header', codes: ['SCHEMA_HEADER_MISSING'], record: withSchema(signed(ok()), undefined) },
      { kind: 'unknown schema id', codes: ['SCHEMA_UNKNOWN'], record: withSchema(signed(ok()), 'BusinessEvent.v99') },
      { kind: 'garbage schema id', codes: ['SCHEMA_UNKNOWN'], record: withSchema(signed(ok()), '\u0000;DROP') },
      { kind: 'schema of another kind', codes: ['SCHEMA_KIND_MISMATCH'], record: withSchema(signed(ok()), 'Ack.v1') },
      { kind: 'v2 bytes labelled v1', codes: ['UNDECODABLE', 'SIGNATURE_INVALID'], record: withSchema(signed(ok()), 'BusinessEvent.v1') },
      { kind: 'unknown app', codes: ['UNKNOWN_APP'], record: signed({ ...ok(), app: 'no-such-app' }) },
      { kind: 'huge app name', codes: ['UNKNOWN_APP'], record: signed({ ...ok(), app: 'a'.repeat(10_000) }) },
      { kind: 'empty users', codes: ['INVALID_REQUEST'], record: signed(ok({ to: { users: [], group: null, all: false } })) },
      { kind: 'bad user id', codes: ['INVALID_REQUEST'], record: signed(ok({ to: { users: ['#all'], group: null, all: false } })) },
      { kind: 'user id with |', codes: ['INVALID_REQUEST'], record: signed(ok({ to: { users: ['a|b'], group: null, all: false } })) },
      {
        kind: '10,001 users',
        codes: ['INVALID_REQUEST'],
        record: signed(ok({ to: { users: Array.from({ length: 10_001 }, (_, i) => `u${i}`), group: null, all: false } })),
      },
      { kind: 'bad group', codes: ['INVALID_REQUEST'], record: signed(ok({ to: { users: [], group: 'no spaces allowed', all: false } })) },
      { kind: 'ttl 0', codes: ['INVALID_REQUEST'], record: signed(ok({ ttlSeconds: 0 })) },
      { kind: 'ttl negative', codes: ['INVALID_REQUEST'], record: signed(ok({ ttlSeconds: -5 })) },
      { kind: 'ttl over 30 days', codes: ['INVALID_REQUEST'], record: signed(ok({ ttlSeconds: 30 * 86_400 + 1 })) },
      { kind: 'payload not JSON', codes: ['INVALID_REQUEST'], record: signed(ok({ payload: '{"a":' })) },
      { kind: 'payload empty text', codes: ['INVALID_REQUEST'], record: signed(ok({ payload: '' })) },
      { kind: 'bad idempotency key', codes: ['INVALID_REQUEST'], record: signed(ok({ idempotencyKey: 'has spaces' })) },
      { kind: 'bad collapse key', codes: ['INVALID_REQUEST'], record: signed(ok({ collapseKey: 'x'.repeat(257) })) },
      { kind: 'payload over 16 KiB', codes: ['PAYLOAD_TOO_LARGE'], record: signed(ok({ payload: JSON.stringify('x'.repeat(20_000)) })) },
      { kind: 'huge record (900 KB)', codes: ['PAYLOAD_TOO_LARGE'], record: signed(ok({ payload: JSON.stringify('y'.repeat(900_000)) })) },
      { kind: '100,000 nested arrays', codes: ['PAYLOAD_TOO_DEEP'], record: signed(ok({ payload: '['.repeat(100_000) + ']'.repeat(100_000) })) },
      { kind: '33 nested objects', codes: ['PAYLOAD_TOO_DEEP'], record: signed(ok({ payload: JSON.stringify(tree(33)) })) },
      { kind: 'unsigned', codes: ['SIGNATURE_MISSING'], record: eventRecord(ok(), key()) },
      { kind: 'signed with another secret', codes: ['SIGNATURE_INVALID'], record: eventRecord(ok(), key(), newSigningSecret()) },
      {
        kind: 'malformed signature',
        codes: ['SIGNATURE_INVALID'],
        record: { ...eventRecord(ok(), key()), headers: { ...eventRecord(ok(), key()).headers, [SIGNATURE_HEADER]: 'v1=xyz' } },
      },
      { kind: 'signature of another key', codes: ['SIGNATURE_INVALID'], record: { ...signed(ok(), `${app}|u1`), key: `${app}|u2` } },
      { kind: 'huge key', codes: ['INVALID_REQUEST'], record: signed(ok({ ttlSeconds: 0 }), 'k'.repeat(10_000)) },
    ];

    // Random poison: raw bytes, bit flips of a valid signed record, and schema-valid records with 1-3 bad fields.
    const badFields: (() => Partial<BusinessEvent>)[] = [
      () => ({ app: pick(['', 'nope', 'x'.repeat(int(1, 300))]) }),
      () => ({ to: { users: pick([[], ['#x'], ['a b'], [''], ['x'.repeat(129)]]), group: null, all: false } }),
      () => ({ to: { users: [], group: pick(['', 'bad group', 'g'.repeat(129), 'é']), all: false } }),
      () => ({ ttlSeconds: pick([0, -1, -(2 ** 31), 30 * 86_400 + 1, 2 ** 31 - 1]) }),
      () => ({ payload: pick(['', 'nope{', '{"a":', '[1,]', 'undefined', "{'a':1}", '\u0000']) }),
      () => ({ payload: deepText(int(33, 50_000)) }),
      () => ({ payload: JSON.stringify('z'.repeat(int(16_400, 60_000))) }),
      () => ({ idempotencyKey: pick(['', 'a b', 'é', 'k'.repeat(257)]) }),
      () => ({ collapseKey: pick(['', 'a b', '\n']) }),
      () => ({ traceId: pick(['', 't t', 'x'.repeat(300)]) }),
    ];
    for (let i = 0; i < RANDOM_POISON; i++) {
      const r = rnd();
      if (r < 0.25) {
        const schema = pick(['BusinessEvent.v2', 'BusinessEvent.v1', undefined, 'IngestRecord.v1', 'BusinessEvent.v3']);
        cases.push({
          kind: 'random bytes',
          codes: 'any',
          record: { key: key(), value: bytes(int(0, 600)), headers: schema ? { [SCHEMA_HEADER]: schema } : {} },
        });
      } else if (r < 0.5) {
        const rec = signed(businessEvent(app, ['vic'], tree(int(0, 6))));
        const value = Buffer.from(rec.value!);
        for (let f = int(1, 8); f > 0; f--) value[int(0, value.length - 1)]! ^= 1 << int(0, 7);
        // A flip that changes nothing in the bytes is no poison: flip one more bit for sure.
        if (value.equals(rec.value!)) value[0]! ^= 1;
        cases.push({ kind: 'bit flips of a signed record', codes: ['SIGNATURE_INVALID', ...DECODE, 'UNKNOWN_APP'], record: { ...rec, value } });
      } else {
        let ev = ok({ payload: JSON.stringify(tree(int(0, 8))) });
        for (let n = int(1, 3); n > 0; n--) ev = { ...ev, ...pick(badFields)() };
        cases.push({ kind: 'schema-valid, semantically invalid', codes: SEMANTIC, record: signed(ev) });
      }
    }

    // Valid records for a live client, random payload trees up to the depth limit.
    const vic = await connectClient(wsOf(bed.s.pushers[0]!.url), (await bed.s.token('vic', 'phone')).token);
    const valid: RawRecord[] = Array.from({ length: VALID }, (_, seq) =>
      signed(businessEvent(app, ['vic'], { seq, tree: tree(int(0, 30)) }, { persistent: rnd() < 0.5 }), `${app}|vic`),
    );

    // Shuffle poison and valid records together; every record carries its case number.
    const all: { record: RawRecord; poison?: Case; valid?: number }[] = [
      ...cases.map((c) => ({ record: c.record, poison: c })),
      ...valid.map((record, v) => ({ record, valid: v })),
    ];
    for (let i = all.length - 1; i > 0; i--) {
      const j = int(0, i);
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    const started = Date.now();
    let chunk: RawRecord[] = [];
    let chunkBytes = 0;
    const flush = async () => {
      if (chunk.length > 0) await bed.kafka.producer.send({ topic: bed.topics.events, messages: chunk });
      chunk = [];
      chunkBytes = 0;
    };
    for (const [i, item] of all.entries()) {
      const size = (item.record.value?.length ?? 0) + (item.record.key?.length ?? 0);
      if (chunkBytes + size > 256 * 1024) await flush();
      chunk.push({ ...item.record, headers: { 'fuzz-case': String(i), ...item.record.headers } });
      chunkBytes += size;
      if (chunk.length >= 25) await flush();
    }
    await flush();

    // Every poison record lands in push.dlq exactly once, with a code it may have and a reason.
    const poisonCount = all.filter((a) => a.poison).length;
    const lettered = () => new Set(bed.letters.filter((l) => l.sourceTopic === bed.topics.events).map((l) => Number(l.headers['fuzz-case'])));
    await eventually(() => lettered().size >= poisonCount || undefined, { timeoutMs: 120_000, what: `${poisonCount} dead letters` }).catch(
      async (err: Error) => {
        // Say which poison records never arrived, so a seed that finds a stall names the culprit.
        const got = lettered();
        const missing = all.flatMap((a, i) => (a.poison && !got.has(i) ? [`case ${i}: ${a.poison.kind} (${a.record.value?.length ?? 0} bytes)`] : []));
        const lag = await eventsLag(bed.kafka.admin, bed.topics).catch(() => Number.NaN);
        throw new Error(
          `${err.message}; ${missing.length} missing, push.events lag ${lag}: ${missing.slice(0, 10).join('; ')}\n${bed.s.collector.output().slice(-3000)}`,
        );
      },
    );
    await vic.waitFor(VALID, 60_000);
    await eventually(async () => (await eventsLag(bed.kafka.admin, bed.topics)) === 0, { timeoutMs: 30_000, what: 'push.events lag 0' });
    const elapsed = Date.now() - started;

    const seen = new Map<number, DeadLetter>();
    const byCode = new Map<string, number>();
    for (const l of bed.letters.filter((x) => x.sourceTopic === bed.topics.events)) {
      const i = Number(l.headers['fuzz-case']);
      const item = all[i];
      assert.ok(item?.poison, `a dead letter for a record that is not poison: case ${i} (${JSON.stringify(l.errorCode)}: ${l.reason})`);
      assert.ok(!seen.has(i), `case ${i} (${item.poison.kind}) dead-lettered twice`);
      seen.set(i, l);
      assert.ok(l.reason.length > 0, `case ${i}: no reason`);
      if (item.poison.codes !== 'any') assert.ok(item.poison.codes.includes(l.errorCode), `case ${i} (${item.poison.kind}): ${l.errorCode}: ${l.reason}`);
      byCode.set(l.errorCode, (byCode.get(l.errorCode) ?? 0) + 1);
      // The original bytes are kept for a replay, unless too big for a dead letter (then the reason says so).
      if (item.record.value && item.record.value.length <= 256 * 1024)
        assert.equal(Buffer.compare(Buffer.from(l.value ?? []), item.record.value), 0, `case ${i}: value not kept`);
      else if (item.record.value) assert.match(l.reason, /not copied/);
    }
    assert.equal(seen.size, poisonCount);

    // Valid ones: each delivered once, payload intact.
    const seqs = vic.messages.map((m) => m.payload.seq as number).sort((a, b) => a - b);
    assert.deepEqual(
      seqs,
      Array.from({ length: VALID }, (_, i) => i),
    );
    for (const m of vic.messages) {
      const sent = valid[m.payload.seq as number]!;
      assert.deepEqual(m.payload, JSON.parse(decodeRecord('BusinessEvent', sent.value, sent.headers).payload));
    }

    // Afterwards the consumer still works: one more valid record reaches the live client.
    await bed.kafka.producer.send({ topic: bed.topics.events, messages: [signed(businessEvent(app, ['vic'], { last: true }), `${app}|vic`)] });
    await vic.waitFor(VALID + 1, 30_000);
    assert.deepEqual(vic.messages.at(-1)!.payload, { last: true });
    await vic.close();
    console.log(
      `# kafka fuzzer: ${all.length + 1} records (${poisonCount} poison: ${cases.length - RANDOM_POISON} hand-made, ${RANDOM_POISON} random; ${VALID + 1} valid) in ${elapsed} ms; dead letters by code: ${JSON.stringify(Object.fromEntries([...byCode].sort()))}`,
    );
  });
});
