import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Relative asset URLs, as the example apps use: `sealbase --web-app` serves
// the build at the root of its own origin. The SDK starts its database in a
// module worker, hence `worker.format: 'es'`.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: { outDir: 'dist', emptyOutDir: true },
  worker: { format: 'es' },
  logLevel: 'warn',
});
