/**
 * Publisher child: submits messages over each target's own HTTP publish API,
 * one message per request over keep-alive connections, with the submission
 * time in the payload. Modes: a fixed offered rate (open loop, bounded in
 * flight), saturation (closed loop with a fixed number of requests in flight),
 * or one broadcast.
 */
import http from 'node:http';
import { nowMs, PADDING, type BenchPayload, type PublishCmd, type PublishedEv } from './protocol.js';

let seq = 0;

function body(cmd: PublishCmd, user: string | undefined): string {
  const payload: BenchPayload = { t: nowMs(), r: cmd.run, s: seq++, p: PADDING };
  if (user === undefined) payload.b = 1;
  switch (cmd.kind) {
    case 'ours':
      return JSON.stringify({ to: user === undefined ? { all: true } : { users: [user] }, payload, persistent: false });
    case 'socketio':
      return JSON.stringify(user === undefined ? { data: payload } : { user, data: payload });
    case 'centrifugo':
      return JSON.stringify({ channel: user === undefined ? 'all' : `u-${user}`, data: payload });
    default:
      throw new Error(`no publish API for ${cmd.kind}`);
  }
}

async function run(cmd: PublishCmd): Promise<PublishedEv> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: cmd.concurrency });
  let sent = 0;
  let accepted = 0;
  let errors = 0;
  let skipped = 0;
  let inFlight = 0;
  let firstError: string | undefined;
  const fail = (what: string) => {
    errors++;
    firstError ??= what;
  };

  const post = (url: string, text: string) =>
    new Promise<void>((resolve) => {
      sent++;
      inFlight++;
      const req = http.request(
        url,
        { method: 'POST', agent, headers: { ...cmd.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } },
        (res) => {
          let out = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (out += c));
          res.on('end', () => {
            inFlight--;
            // Centrifugo answers API errors with 200 and an "error" field.
            if (res.statusCode! >= 200 && res.statusCode! < 300 && !out.includes('"error"')) accepted++;
            else fail(`${res.statusCode} ${out.slice(0, 200)}`);
            resolve();
          });
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
      req.on('error', (err) => {
        inFlight--;
        fail(err.message);
        resolve();
      });
      req.end(text);
    });

  const pick = () => cmd.users[Math.floor(Math.random() * cmd.users.length)]!;
  const startedAt = nowMs();
  const t0 = performance.now();
  if (cmd.mode === 'broadcast') {
    await post(cmd.urls[0]!, body(cmd, undefined));
  } else if (cmd.mode === 'saturate') {
    let rr = 0;
    await Promise.all(
      Array.from({ length: cmd.concurrency }, async () => {
        while (performance.now() - t0 < cmd.durationMs) await post(cmd.urls[rr++ % cmd.urls.length]!, body(cmd, pick()));
      }),
    );
  } else {
    // Open loop: every tick, send what the schedule says is due; skip (and count) rather than queue.
    let due = 0;
    let rr = 0;
    const pending = new Set<Promise<void>>();
    while (performance.now() - t0 < cmd.durationMs) {
      const target = Math.floor(((performance.now() - t0) / 1000) * cmd.rate);
      for (; due < target; due++) {
        if (inFlight >= cmd.concurrency) {
          skipped++;
          continue;
        }
        const p = post(cmd.urls[rr++ % cmd.urls.length]!, body(cmd, pick()));
        pending.add(p);
        void p.then(() => pending.delete(p));
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await Promise.all(pending);
  }
  const elapsedMs = performance.now() - t0;
  agent.destroy();
  return { ev: 'published', sent, accepted, errors, skipped, firstError, startedAt, elapsedMs };
}

process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'run') {
    run(m as PublishCmd)
      .then((r) => process.send!(r))
      .catch((err) => process.send!({ ev: 'error', message: String(err) }));
  } else if (m.cmd === 'close') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
process.send!({ ev: 'ready' });
