import { defineConfig } from 'vitest/config';

// SEALBASE_WASM_DIR: test against a wasm-bindgen output elsewhere than
// js/wasm (glue and module must come from the same run).
const wasmDir = process.env.SEALBASE_WASM_DIR;

export default defineConfig({
  resolve: {
    alias: wasmDir ? [{ find: /^\.\.\/wasm\/sealbase_wasm\.js$/, replacement: `${wasmDir}/sealbase_wasm.js` }] : [],
  },
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    testTimeout: 20_000,
  },
});
