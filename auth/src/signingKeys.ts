import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { Db } from 'mongodb';
import { newId } from '../../protocol/ids.js';

const ALG = 'ES256';

interface StoredKey {
  _id: string; // kid
  privateJwk: JWK;
  publicJwk: JWK;
  createdAt: Date;
  /** Keys retired this long ago are dropped from the JWKS. */
  retiredAt: Date | null;
}

export interface SigningKey {
  kid: string;
  key: CryptoKey;
}

export interface SigningKeys {
  current(): Promise<SigningKey>;
  /** Public keys pushers verify with: the current one and the recently retired ones. */
  jwks(): Promise<{ keys: JWK[] }>;
  /** Makes a new key current; the old one keeps verifying tokens until they expire. */
  rotate(): Promise<string>;
}

const COLLECTION = 'signing_keys';

/**
 * The private key auth signs with now (the oldest active one), for tools that
 * mint tokens without auth (the benchmarks); undefined when auth made none yet.
 */
export async function currentPrivateKey(db: Db): Promise<{ kid: string; privateJwk: JWK } | undefined> {
  const doc = await db.collection<StoredKey>(COLLECTION).find({ retiredAt: null }).sort({ _id: 1 }).limit(1).next();
  return doc ? { kid: doc._id, privateJwk: doc.privateJwk } : undefined;
}

/**
 * Token signing keys live in MongoDB so every auth instance signs with the
 * same current key. Each instance re-reads them every few seconds, which is
 * how a rotation done on one instance reaches the others.
 */
export function createSigningKeys({ db, retireAfterMs, refreshMs = 5000 }: { db: Db; retireAfterMs: number; refreshMs?: number }): SigningKeys {
  const coll = db.collection<StoredKey>(COLLECTION);
  let loaded: { at: number; current: SigningKey; publics: JWK[] } | undefined;

  const create = async (): Promise<void> => {
    const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
    const kid = newId();
    await coll.insertOne({
      _id: kid,
      privateJwk: { ...(await exportJWK(privateKey)), kid, alg: ALG },
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' },
      createdAt: new Date(),
      retiredAt: null,
    });
  };

  let loading: Promise<NonNullable<typeof loaded>> | undefined;
  const load = async () => {
    if (loaded && Date.now() - loaded.at < refreshMs) return loaded;
    // One load at a time: a burst of first requests must not create a key each.
    loading ??= reload().finally(() => (loading = undefined));
    return loading;
  };
  const reload = async () => {
    let active = await coll.find({ retiredAt: null }).sort({ _id: 1 }).toArray();
    if (active.length === 0) {
      await create();
      active = await coll.find({ retiredAt: null }).sort({ _id: 1 }).toArray();
    }
    // Several instances starting at once may each create a key; all of them sign
    // with the oldest active one, so they agree. rotate() retires every active key.
    const oldest = active[0]!;
    const retired = await coll.find({ retiredAt: { $gt: new Date(Date.now() - retireAfterMs) } }).toArray();
    return (loaded = {
      at: Date.now(),
      current: { kid: oldest._id, key: (await importJWK(oldest.privateJwk, ALG)) as CryptoKey },
      publics: [...active, ...retired].map((k) => k.publicJwk),
    });
  };

  return {
    async current() {
      return (await load()).current;
    },
    async jwks() {
      return { keys: (await load()).publics };
    },
    async rotate() {
      const before = await coll.find({ retiredAt: null }).toArray();
      await create();
      if (before.length > 0) {
        await coll.updateMany({ _id: { $in: before.map((k) => k._id) } }, { $set: { retiredAt: new Date() } });
      }
      loaded = undefined;
      return (await load()).current.kid;
    },
  };
}
