import type { Duplex } from 'node:stream';

/**
 * Answers a request that Node's HTTP parser refused before any route saw it
 * (headers over the size limit, a malformed request line or header, a request
 * that took too long to arrive) with the same JSON error shape as every other
 * refusal, instead of Node's bare status line. The connection is closed: after
 * a parse error the rest of its bytes cannot be trusted.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  // A peer that reset, or a socket already answering, gets nothing more.
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE', 'request line and headers are larger than the server accepts']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'REQUEST_TIMEOUT', 'the request did not arrive in time']
        : [400, 'Bad Request', 'INVALID_REQUEST', 'malformed HTTP request'];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
