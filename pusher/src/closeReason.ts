/** RFC 6455: a close frame's body is at most 125 bytes, 2 of them the code. */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * A close reason that `ws.close` accepts: at most 123 bytes of UTF-8, cut
 * before a character that would not fit whole (`ws` throws on a longer
 * reason, and a cut inside a character would send invalid UTF-8, which the
 * client must fail the connection on).
 */
export function closeReason(text: string, maxBytes = MAX_CLOSE_REASON_BYTES): string {
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return text;
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += ch.length;
  }
  return text.slice(0, end);
}
