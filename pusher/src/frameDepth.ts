/**
 * Whether a JSON text nests arrays/objects deeper than `max` (the outermost
 * value is depth 1), checked on the raw bytes before JSON.parse sees them.
 *
 * Why: V8 parses 30,000 nested brackets fine, but JSON.stringify (and any
 * recursive walk) of the result throws RangeError, and a throw inside ws's
 * 'message' emit takes the whole process down. One pass over at most
 * PUSHER_MAX_FRAME_BYTES bytes is far cheaper than the parse it guards.
 *
 * Byte-level scanning is safe for UTF-8: the bytes of a multi-byte character
 * are all >= 0x80, so they never look like a quote, a backslash or a bracket.
 * Brackets inside strings do not count; malformed input is left to JSON.parse.
 */
export function exceedsDepth(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c)
        i++; // backslash: the next byte is escaped, whatever it is
      else if (b === 0x22) inString = false;
      continue;
    }
    if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return true;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return false;
}
