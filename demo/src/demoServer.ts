import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { SDK_BUNDLES } from '../../sdk/build.js';

const PUBLIC = path.join(path.dirname(fileURLToPath(import.meta.url)), '../public');
const MAX_BODY_BYTES = 64 * 1024;
const UPSTREAM_TIMEOUT_MS = 5000;

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

export interface DemoServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  authUrl: string;
  collectorUrl: string;
  /** The app's API key: used here for tokens and sends, never sent to the page. */
  apiKey: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

/** The request body as a JSON object; refuses other content types, oversized bodies and non-objects. */
async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? ''))
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send Content-Type: application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'INVALID_JSON', 'body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'INVALID_REQUEST', 'body must be a JSON object');
  return body as Record<string, unknown>;
}

/** Forwards to a service with the API key and relays its status and JSON body unchanged. */
async function forward(res: http.ServerResponse, url: string, apiKey: string, body: unknown): Promise<void> {
  let answer: Response;
  try {
    answer = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS),
    });
  } catch (err) {
    throw new HttpError(502, 'UPSTREAM_UNAVAILABLE', `${new URL(url).origin} did not answer: ${(err as Error).message}`);
  }
  const text = await answer.text();
  res.writeHead(answer.status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(text);
}

/** GET routes: health, the SDK bundle and the page's files. Returns false when none matches. */
async function serveGet(pathname: string, res: http.ServerResponse, sdkText: string): Promise<boolean> {
  if (pathname === '/healthz' || pathname === '/readyz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","service":"demo"}');
    return true;
  }
  if (pathname === '/push-sdk.mjs') {
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(sdkText);
    return true;
  }
  const asset = STATIC[pathname];
  if (!asset) return false;
  res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' }).end(await readFile(path.join(PUBLIC, asset.file)));
  return true;
}

/** The request handler: the page, the SDK, and the two API helpers that add the API key. */
function createHandler(o: DemoServerOptions, sdkText: string): Handler {
  return async (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && (await serveGet(pathname, res, sdkText))) return;
    if (req.method === 'POST' && pathname === '/api/token') {
      const { userId, deviceId, ttlSeconds } = await readJson(req);
      // Only these fields: the page cannot ask for group grants or anything else.
      return forward(res, `${o.authUrl}/v1/tokens`, o.apiKey, { userId, deviceId, ttlSeconds });
    }
    if (req.method === 'POST' && pathname === '/api/messages') return forward(res, `${o.collectorUrl}/v1/messages`, o.apiKey, await readJson(req));
    throw new HttpError(404, 'NOT_FOUND', `no ${req.method} ${pathname}`);
  };
}

/** An HTTP server running `handle`; its failures become `{ error: { code, message } }` answers (500 for anything but HttpError). */
function serveWithErrors(handle: Handler): http.Server {
  return http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError(500, 'INTERNAL', 'unexpected error');
      if (!res.headersSent)
        res.writeHead(e.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: e.code, message: e.message } }));
    });
  });
}

/** Starts listening; resolves with the server's base URL (the chosen port when `port` is 0). */
async function listen(server: http.Server, host: string, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
}

/**
 * The demo page and its two server-side helpers. The page uses only the SDK's
 * public build (`/push-sdk.mjs`, bundled in memory at start). Tokens and sends
 * go through `/api/token` and `/api/messages`, which add the API key here, so
 * the key never reaches the browser.
 */
export async function createDemoServer(o: DemoServerOptions) {
  const [sdk] = (await build({ ...SDK_BUNDLES.esm, write: false })).outputFiles!;
  const server = serveWithErrors(createHandler(o, sdk!.text));
  return {
    server,
    listen: (): Promise<string> => listen(server, o.host, o.port),
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
