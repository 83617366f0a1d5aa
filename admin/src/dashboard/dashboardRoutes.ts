import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router } from 'express';

const DIR = path.dirname(fileURLToPath(import.meta.url));

/**
 * The operator dashboard: a static page and script (no framework) that ask for
 * the operator key, keep it in sessionStorage and poll `GET /v1/admin/status`
 * with it. The page itself holds no data, so it is served without a key.
 */
export function dashboardRoutes(): Router {
  const html = readFileSync(path.join(DIR, 'dashboard.html'));
  const js = readFileSync(path.join(DIR, 'dashboard.js'));
  const router = Router();
  const headers = (type: string) => ({
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
  });
  router.get('/dashboard', (_req, res) => {
    res.set(headers('text/html; charset=utf-8')).send(html);
  });
  router.get('/dashboard/dashboard.js', (_req, res) => {
    res.set(headers('text/javascript; charset=utf-8')).send(js);
  });
  return router;
}
