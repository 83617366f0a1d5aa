import type avro from 'avsc';

/**
 * Walks Avro binary data against its writer's schema without building anything,
 * and throws if a length or count claims more than the bytes can hold.
 *
 * avsc trusts the counts it reads: an array block that says 2^31 items makes it
 * allocate `new Array(2^31)` (or loop that many times reading past the end), so a
 * few bytes of Kafka record could exhaust a consumer's heap. Every string, bytes,
 * map entry and array item takes at least one byte on the wire (an item of a
 * type that takes none, such as null, is allowed up to ZERO_SIZE_ITEMS), so a
 * count above the bytes left is a lie, found here in time linear in the bytes.
 */
export function checkAvroBounds(type: avro.Type, buf: Buffer): void {
  const c: Cursor = { buf, pos: 0, steps: 0, maxSteps: buf.length * 2 + ZERO_SIZE_ITEMS };
  walk(type, c, 0);
}

const ZERO_SIZE_ITEMS = 10_000;
const MAX_DEPTH = 64;

interface Cursor {
  buf: Buffer;
  pos: number;
  steps: number;
  maxSteps: number;
}

class AvroBoundsError extends Error {
  constructor(message: string, pos: number) {
    super(`${message} at byte ${pos}`);
    this.name = 'AvroBoundsError';
  }
}

const left = (c: Cursor) => c.buf.length - c.pos;

function take(c: Cursor, n: number, what: string): void {
  if (n < 0 || n > left(c)) throw new AvroBoundsError(`${what} of ${n} bytes with ${left(c)} left`, c.pos);
  c.pos += n;
}

/** A zig-zag varint as a JS number (exact up to 2^53; larger values only need to compare as huge). */
function readLong(c: Cursor): number {
  let n = 0;
  let scale = 1;
  for (let i = 0; ; i++) {
    if (c.pos >= c.buf.length) throw new AvroBoundsError('truncated number', c.pos);
    if (i >= 10) throw new AvroBoundsError('number longer than 10 bytes', c.pos);
    const b = c.buf[c.pos++]!;
    n += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) break;
  }
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
}

/** Whether a value of this type can take no bytes at all (null, an empty record...). */
function canBeEmpty(type: avro.Type, depth = 0): boolean {
  if (depth > MAX_DEPTH) return false;
  const t = type as AnyType;
  if (t.underlyingType) return canBeEmpty(t.underlyingType, depth + 1);
  switch (t.typeName) {
    case 'null':
      return true;
    case 'fixed':
      return t.size === 0;
    case 'record':
    case 'error':
      return (t.fields ?? []).every((f) => canBeEmpty(f.type, depth + 1));
    default:
      return false;
  }
}

interface AnyType {
  typeName: string;
  underlyingType?: avro.Type;
  fields?: { type: avro.Type }[];
  itemsType?: avro.Type;
  valuesType?: avro.Type;
  types?: avro.Type[];
  symbols?: string[];
  size?: number;
}

/** One block-encoded array or map: counts, then items, until a zero count. */
function walkBlocks(c: Cursor, minItemBytes: number, what: string, item: () => void): void {
  for (;;) {
    let n = readLong(c);
    if (n === 0) return;
    if (n < 0) {
      n = -n;
      const size = readLong(c);
      if (size < 0 || size > left(c)) throw new AvroBoundsError(`${what} block of ${size} bytes with ${left(c)} left`, c.pos);
    }
    const most = minItemBytes > 0 ? Math.floor(left(c) / minItemBytes) : ZERO_SIZE_ITEMS;
    if (n > most) throw new AvroBoundsError(`${what} block of ${n} items with ${left(c)} bytes left`, c.pos);
    for (let i = 0; i < n; i++) {
      if (++c.steps > c.maxSteps) throw new AvroBoundsError(`more than ${c.maxSteps} values`, c.pos);
      item();
    }
  }
}

function walk(type: avro.Type, c: Cursor, depth: number): void {
  if (depth > MAX_DEPTH) throw new AvroBoundsError(`nesting deeper than ${MAX_DEPTH}`, c.pos);
  const t = type as AnyType;
  if (t.underlyingType) return walk(t.underlyingType, c, depth + 1);
  switch (t.typeName) {
    case 'null':
      return;
    case 'boolean':
      return take(c, 1, 'boolean');
    case 'int':
    case 'long':
      readLong(c);
      return;
    case 'float':
      return take(c, 4, 'float');
    case 'double':
      return take(c, 8, 'double');
    case 'string':
    case 'bytes':
      return take(c, readLong(c), t.typeName);
    case 'fixed':
      return take(c, t.size ?? 0, 'fixed');
    case 'enum': {
      const i = readLong(c);
      if (i < 0 || i >= (t.symbols?.length ?? 0)) throw new AvroBoundsError(`enum index ${i} out of range`, c.pos);
      return;
    }
    case 'array': {
      const items = t.itemsType!;
      return walkBlocks(c, canBeEmpty(items) ? 0 : 1, 'array', () => walk(items, c, depth + 1));
    }
    case 'map': {
      const values = t.valuesType!;
      return walkBlocks(c, 1, 'map', () => {
        take(c, readLong(c), 'map key');
        walk(values, c, depth + 1);
      });
    }
    case 'union:unwrapped':
    case 'union:wrapped': {
      const i = readLong(c);
      const branch = t.types?.[i];
      if (i < 0 || !branch) throw new AvroBoundsError(`union index ${i} out of range`, c.pos);
      return walk(branch, c, depth + 1);
    }
    case 'record':
    case 'error':
      for (const f of t.fields ?? []) walk(f.type, c, depth + 1);
      return;
    default:
      throw new AvroBoundsError(`unsupported Avro type ${t.typeName}`, c.pos);
  }
}
