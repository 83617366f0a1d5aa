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
  checkerOf(type)(c);
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

type Check = (c: Cursor) => void;

/** The check of one type, built once per type (records are checked on every hot path). */
const compiled = new WeakMap<avro.Type, Check>();

function checkerOf(type: avro.Type): Check {
  let check = compiled.get(type);
  if (!check) {
    check = compile(type, 0);
    compiled.set(type, check);
  }
  return check;
}

function compile(type: avro.Type, depth: number): Check {
  if (depth > MAX_DEPTH) throw new Error(`Avro schema nests deeper than ${MAX_DEPTH}`);
  const t = type as AnyType;
  if (t.underlyingType) return compile(t.underlyingType, depth + 1);
  switch (t.typeName) {
    case 'null':
      return () => undefined;
    case 'boolean':
      return (c) => take(c, 1, 'boolean');
    case 'int':
    case 'long':
      return (c) => void readLong(c);
    case 'float':
      return (c) => take(c, 4, 'float');
    case 'double':
      return (c) => take(c, 8, 'double');
    case 'string':
    case 'bytes': {
      const what = t.typeName;
      return (c) => take(c, readLong(c), what);
    }
    case 'fixed': {
      const size = t.size ?? 0;
      return (c) => take(c, size, 'fixed');
    }
    case 'enum': {
      const count = t.symbols?.length ?? 0;
      return (c) => {
        const i = readLong(c);
        if (i < 0 || i >= count) throw new AvroBoundsError(`enum index ${i} out of range`, c.pos);
      };
    }
    case 'array': {
      const items = t.itemsType!;
      const min = canBeEmpty(items) ? 0 : 1;
      let item: Check | undefined; // built on first use: a recursive schema refers to itself
      return (c) => walkBlocks(c, min, 'array', () => (item ??= compile(items, depth + 1))(c));
    }
    case 'map': {
      const values = t.valuesType!;
      let value: Check | undefined;
      return (c) =>
        walkBlocks(c, 1, 'map', () => {
          take(c, readLong(c), 'map key');
          (value ??= compile(values, depth + 1))(c);
        });
    }
    case 'union:unwrapped':
    case 'union:wrapped': {
      const branches = (t.types ?? []).map(() => undefined as Check | undefined);
      return (c) => {
        const i = readLong(c);
        const branch = t.types?.[i];
        if (i < 0 || !branch) throw new AvroBoundsError(`union index ${i} out of range`, c.pos);
        (branches[i] ??= compile(branch, depth + 1))(c);
      };
    }
    case 'record':
    case 'error': {
      const fields = t.fields ?? [];
      const checks = fields.map(() => undefined as Check | undefined);
      return (c) => {
        for (let i = 0; i < fields.length; i++) (checks[i] ??= compile(fields[i]!.type, depth + 1))(c);
      };
    }
    default:
      throw new Error(`unsupported Avro type ${t.typeName}`);
  }
}
