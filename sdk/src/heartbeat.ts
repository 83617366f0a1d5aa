/**
 * Client-side liveness: sends a ping every `intervalMs` and declares the
 * link dead when nothing at all has arrived for `timeoutMs`. A silently
 * broken TCP path (a laptop lid, a NAT that forgot us) shows no close event
 * for minutes; this notices it within one timeout.
 */
export interface HeartbeatConfig {
  intervalMs: number;
  timeoutMs: number;
  sendPing(): void;
  onDead(): void;
}

export interface Heartbeat {
  /** Any frame arrived: the link is alive. */
  received(): void;
  stop(): void;
}

export function startHeartbeat({ intervalMs, timeoutMs, sendPing, onDead }: HeartbeatConfig): Heartbeat {
  const pinger = setInterval(sendPing, intervalMs);
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    if (watchdog !== undefined) clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      stop();
      onDead();
    }, timeoutMs);
  };
  const stop = () => {
    clearInterval(pinger);
    if (watchdog !== undefined) clearTimeout(watchdog);
    watchdog = undefined;
  };
  arm();
  return { received: arm, stop };
}

/**
 * The ping interval and dead-link timeout to use. Options win; without
 * `heartbeatMs` the server's interval from the welcome frame is used, halved
 * if it would not leave a pong time to arrive within `heartbeatTimeoutMs`.
 */
export function heartbeatTimings(
  opts: { heartbeatMs: number | undefined; heartbeatTimeoutMs: number | undefined },
  serverMs: number | undefined,
  defaults: { heartbeatMs: number; graceMs: number },
): { intervalMs: number; timeoutMs: number } {
  if (opts.heartbeatMs !== undefined) {
    return { intervalMs: opts.heartbeatMs, timeoutMs: opts.heartbeatTimeoutMs ?? opts.heartbeatMs + defaults.graceMs };
  }
  const suggested = serverMs !== undefined && Number.isFinite(serverMs) && serverMs > 0 ? serverMs : defaults.heartbeatMs;
  const timeoutMs = opts.heartbeatTimeoutMs ?? suggested + defaults.graceMs;
  return { intervalMs: suggested < timeoutMs ? suggested : Math.max(1, Math.floor(timeoutMs / 2)), timeoutMs };
}
