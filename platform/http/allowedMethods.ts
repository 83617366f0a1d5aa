/**
 * The methods an express app answers on a path, found by walking its router
 * the way a request would be routed. Used to tell a client that sent the
 * wrong method `405` with `Allow` (RFC 9110) instead of a misleading 404.
 */
interface LayerLike {
  match(path: string): { path: string } | false;
  route?: { _methods(includeAll?: boolean): string[] };
  handle?: { stack?: LayerLike[] };
}

export function allowedMethods(router: { stack?: LayerLike[] } | undefined, path: string): string[] {
  const found = new Set<string>();
  walk(router?.stack ?? [], path, found, 0);
  if (found.has('GET')) found.add('HEAD');
  return [...found].sort();
}

function walk(stack: LayerLike[], path: string, found: Set<string>, depth: number): void {
  if (depth > 8) return;
  for (const layer of stack) {
    let m: { path: string } | false;
    try {
      m = layer.match(path);
    } catch {
      continue; // a path parameter that does not decode matches nothing
    }
    if (!m) continue;
    if (layer.route) {
      for (const method of layer.route._methods()) found.add(method.toUpperCase());
    } else if (layer.handle?.stack) {
      // A mounted router sees the path without its mount prefix.
      const rest = path.slice(m.path.length);
      walk(layer.handle.stack, rest.startsWith('/') ? rest : `/${rest}`, found, depth + 1);
    }
  }
}
