import { PushError } from '../errors.js';

/**
 * Turns what express, its router and body-parser throw about a malformed
 * request into the JSON error a client can act on. Anything they flag as the
 * client's fault (an http-errors 4xx) is a 4xx here too, never a 500: a bad
 * percent-escape in a path parameter, a body that does not inflate under its
 * Content-Encoding, a body shorter than its Content-Length. Returns undefined
 * for errors that are not about the request (the caller answers 500).
 */
export function requestErrorOf(err: unknown): PushError | undefined {
  if (err instanceof PushError) return err;
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { type?: unknown; status?: unknown; statusCode?: unknown; code?: unknown; message?: unknown; expose?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const message = typeof e.message === 'string' ? e.message : '';
  switch (e.type) {
    case 'entity.too.large':
      return new PushError('PAYLOAD_TOO_LARGE', 'request body is too large', { status: 413 });
    case 'entity.parse.failed':
      return new PushError('INVALID_JSON', 'request body is not valid JSON', { status: 400 });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new PushError('UNSUPPORTED_ENCODING', message || 'unsupported encoding', { status: 415 });
    case 'request.size.invalid':
      return new PushError('INVALID_REQUEST', 'request body length does not match Content-Length', { status: 400 });
    case 'request.aborted':
      return new PushError('INVALID_REQUEST', 'request body was aborted by the client', { status: 400 });
  }
  if (status === undefined || status < 400 || status > 499) return undefined;
  // zlib's codes (Z_DATA_ERROR, Z_BUF_ERROR, ...), from body-parser inflating a gzip/deflate/br body.
  if (typeof e.code === 'string' && e.code.startsWith('Z_')) {
    return new PushError('INVALID_REQUEST', `request body could not be decoded with its Content-Encoding: ${message}`, { status: 400 });
  }
  if (err instanceof URIError) return new PushError('INVALID_REQUEST', `malformed percent-encoding in the path: ${message}`, { status: 400 });
  // Another client error a library raised; its message is only shown when the library marked it safe to expose.
  return new PushError(status === 400 ? 'INVALID_REQUEST' : 'BAD_REQUEST', e.expose === true && message ? message : 'the request could not be handled', {
    status,
  });
}
