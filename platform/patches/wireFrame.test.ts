import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { installedVersion } from './versionGuard.js';
import { rawWriteEnabled, socketOf, wireFrame, writeFrame, WS_RAW_WRITE } from './wireFrame.js';
import { wsLoopback } from '../../test/support/wsLoopback.js';

const loopback = wsLoopback();

test('the installed ws is the version the raw write was written for, and the raw write is on', () => {
  assert.ok(WS_RAW_WRITE.versions.includes(installedVersion('ws') as '8.23.0'), `ws ${installedVersion('ws')}`);
  assert.equal(rawWriteEnabled, true);
});

test('frames of each header size arrive as the same text, written to the socket as built', async () => {
  const { client, server } = await loopback.connect();
  // The private fields the raw write reads, with the types it expects.
  const internals = server as unknown as { _sender: { _state: unknown; _queue: unknown } };
  assert.equal(internals._sender._state, 0);
  assert.ok(Array.isArray(internals._sender._queue));
  const socket = socketOf(server);
  assert.ok(socket, 'the net.Socket under ws');
  const written: unknown[] = [];
  const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
  socket.write = ((chunk: Buffer) => (written.push(chunk), write(chunk))) as typeof socket.write;

  const texts = ['short', 'é'.repeat(100), 'x'.repeat(70_000)];
  const received: string[] = [];
  client.on('message', (data) => received.push(String(data)));
  for (const t of texts) {
    const frame = wireFrame(t);
    assert.equal(frame.bytes[0], 0x81, 'final text frame');
    writeFrame(server, frame);
    assert.equal(written.at(-1), frame.bytes, 'the pre-built bytes, written as is');
  }
  while (received.length < texts.length) await once(client, 'message');
  assert.deepEqual(received, texts);
  client.close();
  await once(client, 'close');
});
