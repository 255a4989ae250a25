/**
 * Loads the wasm module of `crates/wasm` (wasm-bindgen `--target web`
 * output in `js/wasm/`). All of the SDK's logic lives there; this module
 * only instantiates it once per thread.
 */
import init, * as bindings from '../wasm/sealbase_wasm.js';

export type { AppAuthorization, Store } from '../wasm/sealbase_wasm.js';

/** The wasm module's exports, ready to call. */
export type Wasm = typeof bindings;

let loading: Promise<Wasm> | undefined;

/**
 * Instantiates the module (once; later calls share the first load). The
 * `.wasm` file is located relative to this module with `import.meta.url`,
 * a form bundlers such as Vite recognise and copy as an asset, so apps need
 * no configuration for it.
 */
export function loadWasm(): Promise<Wasm> {
  loading ??= init({
    module_or_path: new URL('../wasm/sealbase_wasm_bg.wasm', import.meta.url),
  }).then(
    () => bindings,
    (error: unknown) => {
      // A failed fetch must not poison every later attempt.
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/**
 * Instantiates the module from bytes or a compiled module already at hand
 * (Node, tests, or an app that fetched the file itself). Idempotent.
 */
export function loadWasmSync(module: BufferSource | WebAssembly.Module): Wasm {
  bindings.initSync({ module });
  loading = Promise.resolve(bindings);
  return bindings;
}
