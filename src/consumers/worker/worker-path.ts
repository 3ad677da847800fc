import { fileURLToPath } from 'node:url';

/** The file the supervisor forks for each replica (with `execArgv` that loads tsx). */
export const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.ts', import.meta.url));
