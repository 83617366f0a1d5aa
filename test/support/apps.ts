import { DEFAULT_LIMITS, type App, type AppLimits } from '../../store/apps.js';

/** The app `demo` as the collector sees it once its key is checked: any origin, open groups, the default limits but for `limits`. */
export function demoApp(limits: Partial<AppLimits> = {}): App {
  return {
    _id: 'demo',
    name: 'demo',
    apiKeyHashes: [],
    allowedOrigins: ['*'],
    deviceMode: 'coexist',
    openGroups: true,
    limits: { ...DEFAULT_LIMITS, ...limits },
    createdAt: new Date(),
  };
}
