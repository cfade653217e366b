/**
 * Engine setup: selects and initialises a TensorFlow.js backend, silences its banners, and registers
 * the gradient overrides the toolkit relies on for speed.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { setWasmPaths } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
import { registerFastGradients } from "./gradients.ts";

/** The backends the toolkit can run on. */
export const BACKEND_NAMES = ["wasm", "webgpu", "cpu"] as const;

/** Name of a TensorFlow.js backend: `wasm` (default, SIMD), `webgpu` or `cpu` (pure JS fallback). */
export type BackendName = typeof BACKEND_NAMES[number];

/** What {@linkcode initBackend} obtained. */
export interface BackendInfo {
  /** The active backend. */
  backend: BackendName;
  /** Whether WASM SIMD is in use (always false off the WASM backend). */
  simd: boolean;
  /** Threads used by the backend's kernels (1 unless a threaded build is active). */
  threads: number;
  /** For WebGPU: whether the adapter is a software fallback (e.g. Mesa llvmpipe). */
  fallbackAdapter?: boolean;
}

/** Options for {@linkcode initBackend}. */
export interface InitBackendOptions {
  /** Backend to use; default `wasm`. */
  backend?: string;
}

let current: BackendInfo | undefined;

/** Throws when `name` is not a backend the toolkit knows. */
export function parseBackendName(name: string): BackendName {
  if (!(BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(
      `Unknown backend "${name}": allowed backends are ${BACKEND_NAMES.join(", ")}`,
    );
  }
  return name as BackendName;
}

function wasmDirectory(): URL {
  return new URL("./", import.meta.resolve("npm:@tensorflow/tfjs-backend-wasm@4.22.0"));
}

function assertReadPermission(dir: URL): void {
  if (dir.protocol !== "file:") return;
  const status = Deno.permissions.querySync({ name: "read", path: dir });
  if (status.state !== "granted") {
    throw new Error(
      `The wasm backend must read its .wasm files from ${dir.pathname}: run Deno with --allow-read`,
    );
  }
}

async function initWebGpu(): Promise<boolean> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) {
    throw new Error(
      "WebGPU is not available in this Deno (navigator.gpu is missing): use --backend wasm",
    );
  }
  const adapter = await gpu.requestAdapter() as { isFallbackAdapter?: boolean; info?: unknown };
  if (!adapter) {
    throw new Error("No WebGPU adapter was found on this machine: use --backend wasm");
  }
  await import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");
  return adapter.isFallbackAdapter === true;
}

/**
 * Selects and initialises a backend (idempotent for the same name). The WASM backend needs only
 * `--allow-read`; it runs single-threaded with SIMD under Deno.
 *
 * @example Start the default engine
 * ```ts
 * import { initBackend } from "./backend.ts";
 * const info = await initBackend({ backend: "wasm" });
 * console.log(info.backend, info.simd); // "wasm" true
 * ```
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const backend = parseBackendName(options.backend ?? "wasm");
  if (current?.backend === backend && tf.getBackend() === backend) return current;
  tf.enableProdMode();
  registerFastGradients();
  let fallbackAdapter: boolean | undefined;
  if (backend === "wasm") {
    const dir = wasmDirectory();
    assertReadPermission(dir);
    setWasmPaths(dir.href, true);
  } else if (backend === "webgpu") {
    fallbackAdapter = await initWebGpu();
  }
  const ok = await tf.setBackend(backend);
  if (!ok) throw new Error(`The ${backend} backend failed to initialise`);
  await tf.ready();
  const simd = backend === "wasm" && tf.env().getBool("WASM_HAS_SIMD_SUPPORT") === true;
  current = {
    backend,
    simd,
    threads: 1,
    ...(fallbackAdapter === undefined ? {} : { fallbackAdapter }),
  };
  return current;
}

/** The backend chosen by the last {@linkcode initBackend} call, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}
