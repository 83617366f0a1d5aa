import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Connection, type ConnectionLimits } from './connection.js';
import { socketOf, wireFrame } from '../../platform/patches/wireFrame.js';
import { wsLoopback } from '../../test/support/wsLoopback.js';

const limits = (coalesce: boolean): ConnectionLimits => ({
  maxBufferedBytes: 1 << 20,
  frameRate: 100,
  maxPendingLive: 1000,
  upstreamRate: 10,
  upstreamBurst: 20,
  upstreamMaxRefused: 50,
  coalesce,
});

/** A real ws server and client pair; the server side is wrapped in a Connection whose socket writes are counted. */
describe('connection writes', { timeout: 20_000 }, () => {
  const loopback = wsLoopback();

  async function pair(coalesce: boolean) {
    const { client, server: ws } = await loopback.connect();
    const received: string[] = [];
    client.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'every message is a text frame');
      received.push(String(data));
    });
    const conn = new Connection(ws, 'c1', 'app', 'u1', 'd1', 'open', limits(coalesce));
    conn.finishResume();
    // Count what reaches the socket's write path: one call is one write to the kernel.
    const socket = socketOf(ws)!;
    const writes: { chunks: number; first: unknown }[] = [];
    const write = socket._write.bind(socket);
    const writev = socket._writev!.bind(socket);
    socket._write = (chunk, encoding, cb) => (writes.push({ chunks: 1, first: chunk }), write(chunk, encoding, cb));
    socket._writev = (chunks, cb) => (writes.push({ chunks: chunks.length, first: chunks[0]?.chunk }), writev(chunks, cb));
    const receivedAll = async (n: number) => {
      const deadline = Date.now() + 5000;
      while (received.length < n && Date.now() < deadline) await once(client, 'message');
    };
    return { conn, client, received, writes, receivedAll };
  }

  const burst = (n: number) => Array.from({ length: n }, (_, i) => (i % 5 === 4 ? `{"type":"note","i":${i}}` : wireFrame(`{"type":"message","i":${i}}`)));
  const texts = (frames: ReturnType<typeof burst>) => frames.map((f) => (typeof f === 'string' ? f : f.text));

  test('a burst in one turn is one write after the first with coalescing on, each message still its own frame, in order', async () => {
    const { conn, client, received, writes, receivedAll } = await pair(true);
    const frames = burst(30);
    for (const f of frames) assert.equal(conn.send(f), true);
    await receivedAll(30);
    assert.deepEqual(received, texts(frames));
    assert.equal(writes.length, 2, `writes: ${JSON.stringify(writes.map((w) => w.chunks))}`);
    assert.equal(writes[0]!.chunks, 1);
    assert.ok(writes[1]!.chunks >= 29, 'the rest of the turn goes out in one writev');
    // The next turn starts uncorked again: a single message is written at once.
    conn.send(wireFrame('{"type":"message","i":"next"}'));
    assert.equal(writes.length, 3);
    await receivedAll(31);
    assert.equal(received.at(-1), '{"type":"message","i":"next"}');
    client.close();
  });

  test('with coalescing off every message is its own write', async () => {
    const { conn, client, received, writes, receivedAll } = await pair(false);
    const frames = burst(30);
    for (const f of frames) conn.send(f);
    await receivedAll(30);
    assert.deepEqual(received, texts(frames));
    assert.equal(writes.length, 30);
    client.close();
  });

  test('a pre-built frame is written to the socket as is (the ws internals it relies on are there)', async () => {
    const { conn, client, writes, receivedAll } = await pair(false);
    const f = wireFrame('{"type":"message","i":0}');
    conn.send(f);
    assert.equal(writes.length, 1);
    assert.equal(writes[0]!.first, f.bytes, 'the same buffer, not a frame ws built again');
    await receivedAll(1);
    client.close();
  });

  test('frames of every header size and multi-byte text arrive intact', async () => {
    const { conn, client, received, receivedAll } = await pair(true);
    const texts = [125, 126, 65_535, 65_536, 70_000].map((n) => 'x'.repeat(n));
    texts.push('é€😀'.repeat(50)); // UTF-8 length differs from string length
    for (const t of texts) conn.send(wireFrame(t));
    await receivedAll(texts.length);
    assert.deepEqual(received, texts);
    client.close();
  });

  test('after close nothing more is written and send says so', async () => {
    const { conn, client, writes } = await pair(true);
    const closed = once(client, 'close');
    conn.close(4008, 'test');
    const before = writes.length;
    assert.equal(conn.send(wireFrame('{"type":"message"}')), false);
    assert.equal(writes.length, before);
    const [code] = (await closed) as [number];
    assert.equal(code, 4008);
  });
});
