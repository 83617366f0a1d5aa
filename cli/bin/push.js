#!/usr/bin/env node
// `push` on PATH (package.json "bin"): runs the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('../src/push.ts');
