import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32, sorts like the numbers it encodes

let lastMs = -1;
let lastRandom = Buffer.alloc(10);

/**
 * A 26-character id that sorts by creation time (48-bit ms timestamp, then
 * 80 random bits, ULID layout). Within one millisecond the random part is
 * incremented, so ids from one process are strictly increasing.
 */
export function newId(now: number = Date.now()): string {
  if (now <= lastMs) {
    now = lastMs;
    incrementRandom(lastRandom);
  } else {
    lastMs = now;
    lastRandom = randomBytes(10);
  }
  let out = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32]! + out;
    t = Math.floor(t / 32);
  }
  // 80 random bits = 16 base32 characters, read 5 bits at a time.
  let bits = 0;
  let value = 0;
  for (const byte of lastRandom) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(value >> bits) & 31]!;
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

function incrementRandom(buf: Buffer): void {
  for (let i = buf.length - 1; i >= 0; i--) {
    if (buf[i]! < 255) {
      buf[i]! += 1;
      return;
    }
    buf[i] = 0;
  }
}

/** The creation time encoded in an id from `newId`, or NaN for anything else. */
export function idTime(id: string): number {
  if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)) return NaN;
  let t = 0;
  for (const ch of id.slice(0, 10)) t = t * 32 + ALPHABET.indexOf(ch);
  return t;
}
