import { loadCommonConfig } from '../../common/src/config.js';

/** Addresses of the shared local stack that `npm test` brought up (read the way a development-mode service reads them). */
export const stack = loadCommonConfig({ PUSH_MODE: 'development', ...process.env });

export const uniqueId = (prefix: string): string =>
  `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
