/**
 * Threaded tfjs-wasm under Deno.
 *
 * `@tensorflow/tfjs-backend-wasm@4.22.0` ships a threaded-SIMD build (emscripten pthreads whose
 * pool XNNPACK uses), but it never loads it under Deno:
 *
 * - its `WASM_HAS_MULTITHREAD_SUPPORT` flag is hard-wired to false whenever tfjs thinks it runs on
 *   Node, and Deno reports `process.versions.node`;
 * - the emscripten glue, seeing Node, would start its pthreads with `worker_threads` on a `blob:`
 *   script and `require` inside it; seeing a browser instead, it starts *classic* web workers that
 *   call `importScripts`, and Deno has only module workers;
 * - the C++ side caps the pool at `navigator.hardwareConcurrency / 2` (read once, when the module's
 *   constructors run), which is 1 on a 2-core machine.
 *
 * {@linkcode withThreadedWasm} patches what it takes for the duration of one backend
 * initialisation and restores them afterwards: it forces the flag, hides `process.versions.node`,
 * reports a large enough `hardwareConcurrency`, replaces the global `Worker` with a stand-in
 * that hosts each emscripten pthread in a Deno `node:worker_threads` worker emulating the classic
 * worker API (`self`, `postMessage`, `importScripts` over pre-fetched text), and hands the glue a
 * `console.warn` that drops its browser-only "blocking on the main thread" warning. The workers are
 * unreferenced once initialisation is over, so a script using threads still exits by itself.
 *
 * Only ops that tfjs-wasm runs through XNNPACK (matMul, convolutions, a few element-wise ops) use
 * the extra threads.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { getThreadsCount, setThreadsCount } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
import process from "node:process";
import { Worker as NodeWorker } from "node:worker_threads";

/** Most threads the threaded tfjs-wasm build can run: its emscripten pthread pool has 8 workers. */
export const MAX_WASM_THREADS = 8;

/** File name of the threaded-SIMD binary inside the tfjs-backend-wasm package. */
export const THREADED_WASM_FILE = "tfjs-backend-wasm-threaded-simd.wasm";

const MULTITHREAD_FLAG = "WASM_HAS_MULTITHREAD_SUPPORT";
const BROWSER_BLOCKING_WARNING = "Blocking on the main thread is very dangerous";

/**
 * Module source of each pthread host. It runs in a `node:worker_threads` worker (which, unlike a
 * Deno web worker, can be unreferenced) and presents emscripten's classic worker script with the
 * browser globals it expects. `workerData` is the `blob:` URL of that script.
 */
const PTHREAD_HOST_SOURCE = `
import { parentPort, workerData } from "node:worker_threads";
Object.defineProperty(globalThis, "process", { value: undefined, writable: true, configurable: true });
globalThis.self = globalThis;
globalThis.postMessage = (message, transfer) => parentPort.postMessage(message, transfer);
const fetched = new Map();
globalThis.importScripts = (...urls) => {
  for (const url of urls) {
    const text = fetched.get(String(url));
    if (text === undefined) throw new Error("importScripts: " + url + " was not fetched first");
    fetched.delete(String(url));
    (0, eval)(text);
  }
};
const textOf = async (source) =>
  typeof source === "string" ? await (await fetch(source)).text() : await source.text();
let pending = textOf(workerData).then((text) => { (0, eval)(text); });
let loads = 0;
parentPort.on("message", (message) => {
  pending = pending.then(async () => {
    let data = message;
    if (data && data.cmd === "load" && data.urlOrBlob != null) {
      const key = "tfjs-wasm-pthread-main-" + loads++ + ".js";
      fetched.set(key, await textOf(data.urlOrBlob));
      data = { ...data, urlOrBlob: key };
    }
    self.onmessage({ data });
  });
});
`;

/** Every pthread host started by a stand-in, so they can be unreferenced after init. */
const hosts = new Set<NodeWorker>();

/**
 * Stand-in for the classic `Worker` emscripten creates for each pthread: same surface as the web
 * API it uses (`onmessage`, `onerror`, `postMessage`, `terminate`), backed by a pthread host.
 */
class PthreadWorker {
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onerror: ((error: unknown) => void) | null = null;
  readonly #host: NodeWorker;

  constructor(scriptUrl: string | URL) {
    const host = new NodeWorker(
      new URL(`data:text/javascript,${encodeURIComponent(PTHREAD_HOST_SOURCE)}`),
      { workerData: String(scriptUrl) },
    );
    host.on("message", (data: unknown) => this.onmessage?.({ data }));
    host.on("error", (error: unknown) => {
      if (this.onerror) this.onerror(error);
      else throw error;
    });
    host.on("exit", () => hosts.delete(host));
    hosts.add(host);
    this.#host = host;
  }

  postMessage(message: unknown, transfer?: Transferable[]): void {
    this.#host.postMessage(message, transfer as never);
  }

  terminate(): void {
    hosts.delete(this.#host);
    this.#host.terminate();
  }
}

/**
 * Throws unless `threads` is an integer from 1 to {@linkcode MAX_WASM_THREADS}.
 *
 * @example
 * ```ts
 * import { checkThreadCount } from "./wasm_threads.ts";
 * checkThreadCount(2); // 2
 * ```
 */
export function checkThreadCount(threads: number): number {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new RangeError(
      `Invalid thread count ${threads}: allowed thread counts are integers from 1 to ${MAX_WASM_THREADS}`,
    );
  }
  return threads;
}

/** Why threads cannot run in this Deno, or undefined when they can. */
function missingThreadSupport(): string | undefined {
  if (typeof SharedArrayBuffer !== "function" || typeof Atomics !== "object") {
    return "this runtime has no SharedArrayBuffer/Atomics";
  }
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch {
    return "this runtime has no shared WebAssembly memory";
  }
  if (typeof NodeWorker !== "function") return "this runtime has no node:worker_threads Worker";
  return undefined;
}

/**
 * Throws a clear error when `threads` (> 1) cannot run here: no SharedArrayBuffer, no shared
 * WebAssembly memory, no workers, or no read permission for the threaded binary in `dir`.
 */
export function assertThreadsPossible(threads: number, dir: URL): void {
  const missing = missingThreadSupport();
  if (missing) {
    throw new Error(`Invalid thread count ${threads}: ${missing}; only 1 thread is possible`);
  }
  if (dir.protocol !== "file:") return;
  const file = new URL(THREADED_WASM_FILE, dir);
  if (Deno.permissions.querySync({ name: "read", path: file }).state !== "granted") {
    throw new Error(
      `Invalid thread count ${threads}: the threaded build must read ${file.pathname}: ` +
        "run Deno with --allow-read",
    );
  }
}

/** Sets an own data property on `target`, returning a function that restores the original. */
function override(target: object, key: PropertyKey, value: unknown): () => void {
  const original = Object.getOwnPropertyDescriptor(target, key);
  Object.defineProperty(target, key, { value, writable: true, configurable: true });
  return () => {
    if (original) Object.defineProperty(target, key, original);
    else delete (target as Record<PropertyKey, unknown>)[key];
  };
}

/**
 * Runs `init` (which must create the wasm backend, e.g. `tf.setBackend("wasm")`) with the threaded
 * build enabled for `threads` pthreads, restores every patched global afterwards, and returns the
 * thread count XNNPACK actually uses. `setWasmPaths` must already point at the package's folder.
 *
 * @example
 * ```ts ignore
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { withThreadedWasm } from "./wasm_threads.ts";
 * const threads = await withThreadedWasm(2, async () => {
 *   await tf.setBackend("wasm");
 *   await tf.ready();
 * });
 * ```
 */
export async function withThreadedWasm(
  threads: number,
  init: () => Promise<void>,
): Promise<number> {
  checkThreadCount(threads);
  const env = tf.env();
  // Pin tfjs's own platform detection before process.versions.node disappears for a moment.
  env.get("IS_NODE");
  // getFlags() is tfjs's live flag table: restoring it leaves the flag as if never touched.
  const flags = env.getFlags();
  const hadFlag = MULTITHREAD_FLAG in flags;
  const previousFlag = flags[MULTITHREAD_FLAG];
  const restores: (() => void)[] = [];
  env.set(MULTITHREAD_FLAG, true);
  setThreadsCount(threads);
  try {
    restores.push(override(process.versions, "node", undefined));
    delete (process.versions as Record<string, unknown>).node; // typeof must say "undefined"
    // The C++ side uses min(threads, hardwareConcurrency / 2, 8).
    restores.push(override(navigator, "hardwareConcurrency", 2 * threads));
    restores.push(override(globalThis, "Worker", PthreadWorker));
    // The glue binds its stderr printer to console.warn now; filter the one warning that is only
    // true of browsers (Deno's main thread may block on Atomics.wait).
    const warn = console.warn;
    restores.push(override(console, "warn", (...args: unknown[]) => {
      if (!String(args[0]).startsWith(BROWSER_BLOCKING_WARNING)) warn.apply(console, args);
    }));
    await init();
  } finally {
    for (const restore of restores.reverse()) restore();
    setThreadsCount(-1);
    if (hadFlag) flags[MULTITHREAD_FLAG] = previousFlag;
    else delete flags[MULTITHREAD_FLAG];
    // Idle pthreads must not keep the process alive; the runtime stops them at exit.
    for (const host of hosts) host.unref();
  }
  return getThreadsCount();
}
