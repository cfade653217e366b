/**
 * Engine setup: selects and initialises a TensorFlow.js backend, silences its banners, and registers
 * the gradient overrides the toolkit relies on for speed.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { setWasmPaths } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
import { registerFastGradients } from "./gradients.ts";
import { useSimdKernels } from "./wasm_kernels.ts";
import { useGpuMatMul } from "./webgpu_kernels.ts";
import {
  assertThreadsPossible,
  checkThreadCount,
  MAX_WASM_THREADS,
  withThreadedWasm,
} from "./wasm_threads.ts";

export { MAX_WASM_THREADS };

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
  /** For WebGPU: the adapter's description, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  adapter?: string;
  /**
   * Whether the toolkit's own kernels are in use: on WASM the vectorised Softplus, Sin, Cos, matMul,
   * Slice, SplitV, Concat and Sum and the fused optimiser updates, on WebGPU the tiled matMul and
   * fused updates (always false on cpu).
   */
  simdKernels: boolean;
}

/** Options for {@linkcode initBackend}. */
export interface InitBackendOptions {
  /** Backend to use; default `wasm`. */
  backend?: string;
  /**
   * Threads for the WASM backend's XNNPACK kernels (matMul and a few other ops), an integer from 1
   * to {@linkcode MAX_WASM_THREADS}; default 1, the single-threaded SIMD build. More than 1 loads
   * tfjs's threaded-SIMD build with that many pthreads (Deno workers); other backends allow only 1.
   * A process keeps one WASM thread count until {@linkcode shutdownBackend}.
   */
  threads?: number;
  /**
   * WASM backend: replace tfjs-wasm's Softplus, Sin, Cos, BatchMatMul, Slice, SplitV, Concat and
   * Sum kernels with the toolkit's own (WebAssembly SIMD loops and block copies on tfjs's heap,
   * lib/wasm_kernels.ts; `deno task bench:kernels` compares them), and fuse the optimiser and EMA
   * updates; default true. The choice is process-wide; replicas that must stay bit-identical need
   * the same choice. WebGPU backend: replace tfjs-webgpu's matMul with the toolkit's tiled one
   * (lib/webgpu_kernels.ts); default true.
   */
  simdKernels?: boolean;
}

let current: BackendInfo | undefined;
/** Threads requested for, and used by, the WASM backend instance tfjs holds, once created. */
let wasmThreads: { requested: number; inUse: number } | undefined;

/** Whether tfjs holds an initialised instance of `name` (unlike `tf.findBackend`, starts none). */
function hasInstance(name: string): boolean {
  return name in tf.engine().registry;
}

/**
 * Throws when `name` is not a backend the toolkit knows.
 *
 * @example A known name passes through, an unknown one throws
 * ```ts
 * import { parseBackendName } from "../mod.ts";
 * console.log(parseBackendName("webgpu")); // webgpu
 * let message = "";
 * try {
 *   parseBackendName("webgl");
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * console.log(message); // Unknown backend "webgl": allowed backends are wasm, webgpu, cpu
 * ```
 */
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

/** The parts of Deno's WebGPU adapter that the toolkit reads. */
interface GpuAdapterLike {
  features: { has(name: string): boolean };
  limits: Record<string, number>;
  info?: { description?: string; vendor?: string; device?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  requestDevice(descriptor: unknown): Promise<unknown>;
}

type GpuLike = { requestAdapter(options?: unknown): Promise<GpuAdapterLike | null> };

/**
 * The device limits asked for, as high as the adapter allows: tfjs-backend-webgpu's, and the
 * storage buffers per shader stage, whose default of 8 caps how many inputs its Concat and AddN
 * kernels take at once (AddN returns zeros beyond it).
 */
const WEBGPU_LIMITS = [
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupSizeX",
  "maxComputeInvocationsPerWorkgroup",
];

/**
 * Loads tfjs-backend-webgpu and registers its backend with the toolkit's own device set-up: tfjs
 * 4.22 reads the adapter's info after creating the device and passes one feature as a nested
 * array, both of which Deno may refuse on real GPUs (../shared/RUNTIME.md), and asks for too few
 * storage buffers (see `WEBGPU_LIMITS`). Returns the adapter's description.
 */
async function initWebGpu(): Promise<{ description: string; fallback: boolean }> {
  const gpu = (navigator as unknown as { gpu?: GpuLike }).gpu;
  if (!gpu) {
    throw new Error(
      "WebGPU is not available in this Deno (navigator.gpu is missing): use --backend wasm",
    );
  }
  const probe = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!probe) {
    throw new Error("No WebGPU adapter was found on this machine: use --backend wasm");
  }
  const info = probe.info ?? {};
  const { WebGPUBackend } = await import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");
  if (!hasInstance("webgpu")) {
    tf.removeBackend("webgpu");
    tf.registerBackend("webgpu", async () => {
      const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
      if (!adapter) {
        throw new Error("No WebGPU adapter was found on this machine: use --backend wasm");
      }
      const adapterInfo = adapter.info;
      const requiredLimits: Record<string, number> = {};
      for (const name of WEBGPU_LIMITS) requiredLimits[name] = adapter.limits[name];
      const device = await adapter.requestDevice({
        requiredFeatures: ["timestamp-query"].filter((f) => adapter.features.has(f)),
        requiredLimits,
      });
      return new WebGPUBackend(device as any, adapterInfo as any);
    }, 3);
  }
  // GPUAdapterInfo's fields are prototype getters: read them one by one.
  return {
    description: info.description || [info.vendor, info.device]
      .filter(Boolean).join(" ") ||
      "(no description)",
    fallback: (info.isFallbackAdapter ?? probe.isFallbackAdapter) === true,
  };
}

/** Throws unless `threads` can be used with `backend` in this process. */
function checkThreads(backend: BackendName, threads: number): void {
  checkThreadCount(threads);
  if (threads > 1 && backend !== "wasm") {
    throw new RangeError(
      `Invalid thread count ${threads}: the ${backend} backend runs 1 thread, only wasm runs more`,
    );
  }
  if (backend !== "wasm" || !hasInstance("wasm")) return;
  const running = wasmThreads?.requested ?? 1;
  if (running !== threads) {
    throw new RangeError(
      `Invalid thread count ${threads}: the wasm backend of this process already runs ` +
        `${running} thread${running === 1 ? "" : "s"}; call shutdownBackend() first`,
    );
  }
}

/**
 * Selects and initialises a backend (idempotent for the same name and thread count). The WASM
 * backend needs only `--allow-read`; it runs single-threaded with SIMD under Deno unless
 * `threads` asks for more (see {@linkcode InitBackendOptions.threads}).
 *
 * @example Start the default engine
 * ```ts
 * import { initBackend } from "./backend.ts";
 * const info = await initBackend({ backend: "wasm" });
 * console.log(info.backend, info.simd); // "wasm" true
 * ```
 *
 * @example Two WASM threads (a script using them still exits by itself)
 * ```ts
 * import { initBackend, shutdownBackend } from "./backend.ts";
 * await shutdownBackend(); // only needed when this process already started wasm with 1 thread
 * const info = await initBackend({ backend: "wasm", threads: 2 });
 * console.log(info.threads); // 2
 * await shutdownBackend(); // optional: stops the threads now
 * ```
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const backend = parseBackendName(options.backend ?? "wasm");
  const threads = options.threads ?? 1;
  checkThreads(backend, threads);
  const simdKernels = backend !== "cpu" && (options.simdKernels ?? true);
  if (backend === "wasm") useSimdKernels(simdKernels);
  if (backend === "webgpu") useGpuMatMul(simdKernels); // a no-op until tfjs-webgpu is loaded
  if (
    current?.backend === backend && current.threads === threads && tf.getBackend() === backend
  ) return (current = { ...current, simdKernels });
  tf.enableProdMode();
  registerFastGradients();
  let adapter: { fallback: boolean; description?: string } | undefined;
  let threadsInUse = 1;
  if (backend === "wasm") {
    const dir = wasmDirectory();
    if (threads > 1) assertThreadsPossible(threads, dir);
    assertReadPermission(dir);
    setWasmPaths(dir.href, true);
  } else if (backend === "webgpu") {
    adapter = await initWebGpu();
    useGpuMatMul(simdKernels);
    // Training on a GPU is bound by the host issuing kernels: submitting every 60 dispatches
    // instead of tfjs's 15 made the paper step 11–18% faster in one A/B on an H200 (README, Speed).
    tf.env().set("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE", 60);
  }
  let ok: boolean;
  if (backend === "wasm" && threads > 1 && !hasInstance("wasm")) {
    ok = false;
    const inUse = await withThreadedWasm(threads, async () => {
      ok = await tf.setBackend(backend);
    });
    if (ok) wasmThreads = { requested: threads, inUse };
  } else {
    ok = await tf.setBackend(backend);
  }
  if (!ok) throw new Error(`The ${backend} backend failed to initialise`);
  await tf.ready();
  if (backend === "wasm") threadsInUse = wasmThreads?.inUse ?? 1;
  const simd = backend === "wasm" && tf.env().getBool("WASM_HAS_SIMD_SUPPORT") === true;
  current = {
    backend,
    simd,
    threads: threadsInUse,
    simdKernels,
    ...(adapter === undefined ? {} : {
      fallbackAdapter: adapter.fallback,
      adapter: adapter.description,
    }),
  };
  return current;
}

/**
 * Disposes the backend instances tfjs holds (terminating WASM pthreads) and re-registers their
 * factories, so that a later {@linkcode initBackend} starts afresh, e.g. with another thread count.
 * Tensors created before are invalid afterwards. Scripts need not call it to exit: WASM pthreads
 * never keep a Deno process alive.
 *
 * @example Switch from 1 to 2 WASM threads
 * ```ts
 * import { initBackend, shutdownBackend } from "./backend.ts";
 * await initBackend();
 * await shutdownBackend();
 * console.log((await initBackend({ threads: 2 })).threads); // 2
 * await shutdownBackend();
 * ```
 */
export async function shutdownBackend(): Promise<void> {
  await Promise.resolve(); // async for future backends; tf.ready() would start one
  const engine = tf.engine();
  for (const name of BACKEND_NAMES) {
    const entry = engine.registryFactory[name];
    if (!hasInstance(name) || !entry) continue;
    tf.removeBackend(name);
    tf.registerBackend(name, entry.factory, entry.priority);
  }
  wasmThreads = undefined;
  current = undefined;
}

/**
 * The backend chosen by the last {@linkcode initBackend} call, if any.
 *
 * @example After the default initialisation
 * ```ts
 * import { backendInfo, initBackend } from "../mod.ts";
 * await initBackend();
 * const info = backendInfo()!;
 * console.log(info.backend, info.threads); // wasm 1
 * ```
 */
export function backendInfo(): BackendInfo | undefined {
  return current;
}
