#!/usr/bin/env node
// Runs the TypeScript sources directly (no build step), as consumer scripts are run too.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
