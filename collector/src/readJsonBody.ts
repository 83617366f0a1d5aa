import type { IncomingMessage } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { PushError } from '../../platform/errors.js';

/**
 * Reading a `POST /v1/messages` body: the content codings and charsets the
 * API accepts, the size limit on the decoded body, and JSON parsing, each
 * refusal with the code and message documented in docs/openapi.yaml (the
 * ones express.json() gave before this reader replaced it).
 */

const tooLarge = () => new PushError('PAYLOAD_TOO_LARGE', 'request body is too large', { status: 413 });
const unsupported = (message: string) => new PushError('UNSUPPORTED_ENCODING', message, { status: 415 });

/** A decoder for the charset of a Content-Type (UTF-8 when none is given), or a 415. */
export function bodyDecoder(contentType: string | undefined): (bytes: Buffer) => string {
  const charset = contentType?.includes(';') ? /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(contentType)?.[1]?.toLowerCase() : undefined;
  if (charset === undefined || charset === 'utf-8' || charset === 'utf8') {
    return (bytes) => {
      const text = bytes.toString('utf8');
      return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    };
  }
  // RFC 8259 allows only Unicode encodings; UTF-16 (either byte order) is read as well.
  if (charset === 'utf-16' || charset === 'utf-16le' || charset === 'utf-16be') {
    const decoder = new TextDecoder(charset);
    return (bytes) => decoder.decode(bytes);
  }
  throw unsupported(`unsupported charset "${charset.toUpperCase()}"`);
}

/** The stream a body is read from under its Content-Encoding, or a 415 for a coding not accepted. */
function decodedStream(req: IncomingMessage): Readable {
  const coding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  const inflate = coding === 'gzip' ? createGunzip() : coding === 'deflate' ? createInflate() : coding === 'br' ? createBrotliDecompress() : undefined;
  if (coding === 'identity') return req;
  if (!inflate) throw unsupported(`unsupported content encoding "${coding}"`);
  req.pipe(inflate);
  return inflate;
}

/** Calls `then` once the request has been read to its end (what is left is read and thrown away). */
function afterDrained(req: IncomingMessage, then: () => void): void {
  if (req.readableEnded || req.destroyed) return then();
  req.once('end', then);
  req.once('close', then);
  req.resume();
}

/**
 * Reads and parses a JSON body whose decoded size is at most `limit` bytes; an
 * empty body is `{}`. An oversized body (declared or inflated) is refused
 * without keeping more than `limit` bytes, once the request is read off to its
 * end, so the client sees the 413 rather than a reset. Throws (synchronously
 * through the promise) the 415 of an unsupported charset or coding before
 * anything is read.
 */
export function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const decode = bodyDecoder(req.headers['content-type']);
    const source = decodedStream(req);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    let settled = false;
    const settle = (err: PushError | undefined, value?: unknown) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(value);
    };
    /** Stops decoding and answers `err` once the request is read off. */
    const refuse = (err: PushError) => {
      over = true;
      chunks.length = 0;
      if (source !== req) {
        req.unpipe(source as Transform);
        source.removeAllListeners('data');
        source.on('error', () => undefined);
        source.destroy();
      }
      afterDrained(req, () => settle(err));
    };
    if (source === req && Number(req.headers['content-length']) > limit) return refuse(tooLarge());
    source.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) refuse(tooLarge());
      else chunks.push(chunk);
    });
    source.on('end', () => {
      if (over) return;
      const text = decode(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      if (text.length === 0) return settle(undefined, {});
      try {
        settle(undefined, JSON.parse(text));
      } catch {
        settle(new PushError('INVALID_JSON', 'request body is not valid JSON', { status: 400 }));
      }
    });
    if (source !== req) {
      // zlib's errors (Z_DATA_ERROR, "unexpected end of file" for a truncated body): the client's.
      source.on('error', (err) =>
        refuse(new PushError('INVALID_REQUEST', `request body could not be decoded with its Content-Encoding: ${err.message}`, { status: 400 })),
      );
    }
    req.on('error', (err) => settle(new PushError('INVALID_REQUEST', `request body could not be read: ${err.message}`, { status: 400 })));
  });
}
