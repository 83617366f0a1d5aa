/**
 * Avro schemas of every Kafka record, versioned as `<Name>.v<N>.avsc`.
 * Writers always use the newest version and put its id in the `push-schema`
 * header; readers resolve any older writer version to the newest one, so
 * records written before a schema evolved stay readable.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import type { RecordTypes } from './types.js';
import { checkAvroBounds } from './checkAvroBounds.js';

export type RecordKind = keyof RecordTypes;
export const SCHEMA_HEADER = 'push-schema';

export const AVRO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'avro');

export class RecordDecodeError extends Error {
  constructor(
    readonly code: 'SCHEMA_HEADER_MISSING' | 'SCHEMA_UNKNOWN' | 'SCHEMA_KIND_MISMATCH' | 'UNDECODABLE',
    message: string,
  ) {
    super(message);
    this.name = 'RecordDecodeError';
  }
}

interface Version {
  id: string;
  kind: string;
  version: number;
  type: avro.Type;
  schema: avro.Schema;
}

function loadVersions(): Map<string, Version> {
  const versions = new Map<string, Version>();
  for (const file of readdirSync(AVRO_DIR).sort()) {
    const m = /^([A-Za-z]+)\.v(\d+)\.avsc$/.exec(file);
    if (!m) continue;
    const schema = JSON.parse(readFileSync(path.join(AVRO_DIR, file), 'utf8')) as avro.Schema;
    const id = `${m[1]}.v${m[2]}`;
    versions.set(id, { id, kind: m[1]!, version: Number(m[2]), schema, type: avro.Type.forSchema(schema) });
  }
  return versions;
}

const versions = loadVersions();
const latest = new Map<string, Version>();
for (const v of versions.values()) {
  const cur = latest.get(v.kind);
  if (!cur || cur.version < v.version) latest.set(v.kind, v);
}
const resolvers = new Map<string, avro.Resolver>();

/** All schema versions, oldest first per kind (for docs and compatibility checks). */
export function schemaVersions(): { id: string; kind: string; version: number; schema: avro.Schema }[] {
  return [...versions.values()].map(({ id, kind, version, schema }) => ({ id, kind, version, schema }));
}

export function latestSchemaId(kind: RecordKind): string {
  return latestVersion(kind).id;
}

function latestVersion(kind: string): Version {
  const v = latest.get(kind);
  if (!v) throw new Error(`no Avro schema for ${kind}`);
  return v;
}

export interface EncodedRecord {
  value: Buffer;
  headers: Record<string, string>;
}

/** Encodes with the newest schema of `kind`; throws if the value does not fit it. */
export function encodeRecord<K extends RecordKind>(kind: K, value: RecordTypes[K]): EncodedRecord {
  const v = latestVersion(kind);
  return { value: v.type.toBuffer(value), headers: { [SCHEMA_HEADER]: v.id } };
}

/**
 * Encodes records of `kind` that differ only in `field`, with the same bytes
 * as `encodeRecord` for each: an Avro record is its fields' encodings in
 * order, so the fields before and after `field` are encoded once and only
 * `field` once per value (a message to many users is one encode, not many).
 */
export function encodeRecordsVarying<K extends RecordKind, F extends keyof RecordTypes[K] & string>(
  kind: K,
  base: Omit<RecordTypes[K], F>,
  field: F,
  values: readonly RecordTypes[K][F][],
): Buffer[] {
  const v = latestVersion(kind);
  const split = splitOf(v, field);
  const head = split.head.toBuffer(base);
  const tail = split.tail.toBuffer(base);
  return values.map((value) => {
    const mid = split.field.toBuffer(value);
    return Buffer.concat([head, mid, tail], head.length + mid.length + tail.length);
  });
}

interface Split {
  head: avro.Type;
  field: avro.Type;
  tail: avro.Type;
}
const splits = new Map<string, Split>();

function splitOf(v: Version, field: string): Split {
  const cacheKey = `${v.id}|${field}`;
  let split = splits.get(cacheKey);
  if (split) return split;
  const schema = v.schema as { name: string; namespace?: string; fields: { name: string; type: avro.Schema }[] };
  const at = schema.fields.findIndex((f) => f.name === field);
  if (at < 0) throw new Error(`${v.id} has no field ${field}`);
  // One registry for the three parts, so a named type defined in one part resolves in the others.
  const registry = {};
  const part = (suffix: string, fields: { name: string; type: avro.Schema }[]) =>
    avro.Type.forSchema({ type: 'record', name: `${schema.name}__${suffix}`, namespace: schema.namespace, fields } as avro.Schema, { registry });
  split = {
    head: part(`head_${field}`, schema.fields.slice(0, at)),
    field: avro.Type.forSchema(schema.fields[at]!.type, { registry }),
    tail: part(`tail_${field}`, schema.fields.slice(at + 1)),
  };
  splits.set(cacheKey, split);
  return split;
}

/**
 * Whether a record written with schema `writerId` is, byte for byte, a valid
 * record of the newest `kind` with the same values: the same fields in the
 * same order with the same types (names of named types aside, which Avro does
 * not encode). Such a record can be forwarded as `kind` without re-encoding.
 */
export function sameEncoding(writerId: string, kind: RecordKind): boolean {
  const cacheKey = `${writerId}>${kind}`;
  let same = sameCache.get(cacheKey);
  if (same === undefined) {
    const writer = versions.get(writerId);
    same = writer !== undefined && JSON.stringify(shape(writer.schema)) === JSON.stringify(shape(latestVersion(kind).schema));
    sameCache.set(cacheKey, same);
  }
  return same;
}
const sameCache = new Map<string, boolean>();

/**
 * A schema without what does not reach the bytes: the names of named types,
 * namespaces, docs, defaults and aliases (field names stay: readers match
 * fields by name). A reference to a named type by name keeps the name, so
 * such schemas compare as different, which is the safe answer.
 */
function shape(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(shape);
  if (typeof schema !== 'object' || schema === null) return schema;
  const named = ['record', 'enum', 'fixed'].includes((schema as { type?: unknown }).type as string);
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(schema)) {
    if ((k === 'name' && named) || k === 'namespace' || k === 'doc' || k === 'default' || k === 'aliases') continue;
    out[k] = shape(val);
  }
  return out;
}

type RawHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined;

/** The schema id a record carries, or undefined. */
export function schemaIdOf(headers: RawHeaders): string | undefined {
  const h = headers?.[SCHEMA_HEADER];
  const first = Array.isArray(h) ? h[0] : h;
  return first === undefined ? undefined : first.toString();
}

/** Decodes a record written with any known version of `kind` into the newest shape. */
export function decodeRecord<K extends RecordKind>(kind: K, value: Buffer | null, headers: RawHeaders): RecordTypes[K] {
  const id = schemaIdOf(headers);
  if (!id) throw new RecordDecodeError('SCHEMA_HEADER_MISSING', `record has no ${SCHEMA_HEADER} header`);
  const writer = versions.get(id);
  if (!writer) throw new RecordDecodeError('SCHEMA_UNKNOWN', `unknown schema id "${id}"`);
  if (writer.kind !== kind) throw new RecordDecodeError('SCHEMA_KIND_MISMATCH', `expected a ${kind} record, got ${id}`);
  if (!value) throw new RecordDecodeError('UNDECODABLE', 'record has no value');
  const reader = latestVersion(kind);
  try {
    // avsc believes the counts it reads (an array "of 2^31 items" is allocated as such): lengths and
    // counts are checked against the bytes first, so a small record cannot exhaust the heap.
    checkAvroBounds(writer.type, value);
    if (writer === reader) return reader.type.fromBuffer(value) as RecordTypes[K];
    let resolver = resolvers.get(id);
    if (!resolver) {
      resolver = reader.type.createResolver(writer.type);
      resolvers.set(id, resolver);
    }
    return reader.type.fromBuffer(value, resolver) as RecordTypes[K];
  } catch (err) {
    throw new RecordDecodeError('UNDECODABLE', `cannot decode ${id}: ${(err as Error).message}`);
  }
}
