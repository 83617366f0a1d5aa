import { createRequire } from 'node:module';
import { versionGuard } from './versionGuard.js';

/**
 * A faster encoder for the records of KafkaJS 2.2.4's produce requests.
 *
 * KafkaJS builds each record of a batch from a chain of small growable
 * encoders (one per record, one per header, a new Buffer per varint), which
 * costs ~10 us of CPU per record: at thousands of messages per second it was
 * the largest single cost of the collector and the dispatcher. This writes
 * the same bytes (Kafka's record format v2: length, attributes, timestamp and
 * offset deltas, key, value, headers) into one exactly sized Buffer.
 *
 * It replaces the module `kafkajs/src/protocol/recordBatch/record/v0` before
 * KafkaJS loads its produce request (which it does lazily, on the first
 * produce), and only for KafkaJS 2.2.4, whose layout it was checked against:
 * `kafkajsRecordEncoder.test.ts` compares its output byte for byte with
 * KafkaJS's own encoder. Records it does not handle (a timestamp delta beyond
 * 2^30 ms) go to KafkaJS's encoder. Importing this module applies it once per
 * process; with another KafkaJS version it stays off, with a warning.
 */

type Bytes = Buffer | string | null | undefined;
interface RecordArgs {
  offsetDelta?: number;
  timestampDelta?: number;
  key?: Bytes;
  value?: Bytes;
  headers?: Record<string, Bytes | Bytes[]>;
}
/** What KafkaJS's batch encoder reads from an encoded record: `buf` (a Buffer) and `buffer`. */
export interface EncodedRecord {
  buf: Buffer;
  offset: number;
  readonly buffer: Buffer;
  size(): number;
}
type RecordEncoder = (args: RecordArgs) => EncodedRecord;

export const KAFKAJS_RECORD_ENCODER = { patch: 'kafkajsRecordEncoder', pkg: 'kafkajs', versions: ['2.2.4'] } as const;
const RECORD_MODULE = 'kafkajs/src/protocol/recordBatch/record/v0/index.js';
const PRODUCE_REQUEST_MODULE = 'kafkajs/src/protocol/requests/produce/v3/request.js';

const zigzag = (n: number) => ((n << 1) ^ (n >> 31)) >>> 0;
const uvarintSize = (u: number) => (u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5);
const varintSize = (n: number) => uvarintSize(zigzag(n));

function writeUVarInt(buf: Buffer, at: number, u: number): number {
  while (u >= 0x80) {
    buf[at++] = (u & 0x7f) | 0x80;
    u >>>= 7;
  }
  buf[at++] = u;
  return at;
}

/** Key, value or header value as KafkaJS writes it: null as length -1, a Buffer as is, anything else as UTF-8 text. */
type Piece = Buffer | string | null;
const asPiece = (v: Bytes): Piece => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v : String(v));
const lengthOf = (p: Buffer | string) => (typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.length);
const pieceSize = (p: Piece) => {
  if (p === null) return 1;
  const n = lengthOf(p);
  return varintSize(n) + n;
};

class Encoded implements EncodedRecord {
  readonly offset: number;
  constructor(readonly buf: Buffer) {
    this.offset = buf.length;
  }
  get buffer(): Buffer {
    return this.buf;
  }
  size(): number {
    return this.offset;
  }
}

/** Writes a length-prefixed piece at `at`; returns where it ends. (Top-level: no closure per record.) */
function writePiece(buf: Buffer, at: number, p: Piece): number {
  if (p === null) return writeUVarInt(buf, at, zigzag(-1));
  const n = lengthOf(p);
  at = writeUVarInt(buf, at, zigzag(n));
  return at + (typeof p === 'string' ? buf.write(p, at, n, 'utf8') : p.copy(buf, at));
}

/** Encodes one record; undefined when it is outside what this encoder handles. */
export function encodeRecordV2({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }: RecordArgs): EncodedRecord | undefined {
  if (!Number.isInteger(timestampDelta) || Math.abs(timestampDelta) >= 2 ** 30 || !Number.isInteger(offsetDelta) || offsetDelta < 0 || offsetDelta >= 2 ** 30)
    return undefined;
  const k = asPiece(key);
  const v = asPiece(value);
  const hs: Piece[] = [];
  for (const name of Object.keys(headers)) {
    const h = headers[name];
    if (Array.isArray(h)) for (const one of h) hs.push(name, asPiece(one));
    else hs.push(name, asPiece(h));
  }
  let body = 1 + varintSize(timestampDelta) + varintSize(offsetDelta) + pieceSize(k) + pieceSize(v) + varintSize(hs.length / 2);
  for (const p of hs) body += pieceSize(p);
  const buf = Buffer.allocUnsafe(varintSize(body) + body);
  let at = writeUVarInt(buf, 0, zigzag(body));
  buf[at++] = 0; // attributes: none used
  at = writeUVarInt(buf, at, zigzag(timestampDelta));
  at = writeUVarInt(buf, at, zigzag(offsetDelta));
  at = writePiece(buf, at, k);
  at = writePiece(buf, at, v);
  at = writeUVarInt(buf, at, zigzag(hs.length / 2));
  for (const p of hs) at = writePiece(buf, at, p);
  return new Encoded(buf);
}

/** KafkaJS's own record encoder, for comparison in tests; undefined when KafkaJS is not the supported version. */
export function kafkajsRecordEncoder(): RecordEncoder | undefined {
  return state.original;
}

/** Whether the faster encoder is in use in this process. */
export function recordEncoderPatched(): boolean {
  return state.patched;
}

const state: { original?: RecordEncoder; patched: boolean } = { patched: false };

function apply(): void {
  try {
    if (!versionGuard(KAFKAJS_RECORD_ENCODER)) return;
    const require = createRequire(import.meta.url);
    const path = require.resolve(RECORD_MODULE);
    const original = require(path) as RecordEncoder & { fast?: boolean };
    if (original.fast) {
      state.patched = true;
      return;
    }
    state.original = original;
    // The produce request takes its record encoder when it is first loaded: too late once it is.
    if (require.cache[require.resolve(PRODUCE_REQUEST_MODULE)]) return;
    const fast = Object.assign((args: RecordArgs) => encodeRecordV2(args) ?? original(args), { fast: true });
    require.cache[path]!.exports = fast;
    state.patched = true;
  } catch {
    // Layout changed: leave KafkaJS as it is.
  }
}

apply();
