import { loadCommonConfig } from '../../common/src/config.js';

/** Addresses of the shared local stack that `npm test` brought up. */
export const stack = loadCommonConfig(process.env);

export const uniqueId = (prefix: string): string =>
  `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
