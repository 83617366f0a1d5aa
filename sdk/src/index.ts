/**
 * Browser SDK for the push platform. No runtime dependencies; in Node pass
 * `ws`'s `WebSocket` class as the `WebSocket` option.
 *
 *   const client = new PushClient({ token, nodes });
 *   client.on('message', (m) => render(m.payload));
 *   client.connect();
 */
export { PushClient } from './pushClient.js';
export { DEFAULTS, PushOptionsError, type PushClientOptions, type TokenGrant, type ConnectivityTarget } from './options.js';
export type { PushEvents, ClientState, Listener } from './events.js';
export type { MessageFrame } from './frames.js';
export type { WebSocketLike, WebSocketConstructor } from './socket.js';
export { CLIENT_ERROR } from './clientErrors.js';
export { CLOSE, NO_RECONNECT_CODES, FRAME_ERROR } from '../../protocol/codes.js';
