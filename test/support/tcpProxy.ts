import net from 'node:net';

export interface TcpProxy {
  /** The loopback port it listens on (fixed by the first `open`, kept across cuts). */
  readonly port: number;
  /** Starts (or, after a cut, resumes) listening and relaying to the target. */
  open(): Promise<void>;
  /** An outage: drops every relayed connection and stops listening (new connects are refused). */
  cut(): Promise<void>;
}

/**
 * A TCP relay to one of the shared servers that a test can cut and restore, so one
 * service loses MongoDB or Redis while everything else on the machine keeps it.
 */
export function tcpProxy(targetHost: string, targetPort: number): TcpProxy {
  let server: net.Server | undefined;
  const sockets = new Set<net.Socket>();
  let port = 0;
  return {
    get port() {
      return port;
    },
    open: () =>
      new Promise<void>((resolve, reject) => {
        if (server?.listening) return resolve();
        server = net.createServer((client) => {
          const upstream = net.connect(targetPort, targetHost);
          for (const sock of [client, upstream]) {
            sockets.add(sock);
            sock.on('error', () => undefined);
            sock.on('close', () => {
              sockets.delete(sock);
              client.destroy();
              upstream.destroy();
            });
          }
          client.pipe(upstream).pipe(client);
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          port = (server!.address() as net.AddressInfo).port;
          resolve();
        });
      }),
    cut: () =>
      new Promise<void>((resolve) => {
        for (const sock of sockets) sock.destroy();
        if (!server?.listening) return resolve();
        server.close(() => resolve());
      }),
  };
}
