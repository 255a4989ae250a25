import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Relative asset URLs: the built app works wherever it is served from.
// The SDK runs its database in a module worker, hence `worker.format: 'es'`.
export default defineConfig({
  base: './',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true },
  worker: { format: 'es' },
});
