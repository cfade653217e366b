/**
 * Progress reporting with an ETA that reads well both on a terminal (one line rewritten in place)
 * and in a log file (a full line every few percent or every half minute).
 *
 * @module
 */

/**
 * Formats seconds as h:mm:ss or m:ss.
 *
 * @example Minutes, hours, and an unknown duration
 * ```ts
 * import { formatDuration } from "./progress.ts";
 * console.log(formatDuration(65), formatDuration(3725), formatDuration(NaN)); // 1:05 1:02:05 ?
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}

/** Options of {@linkcode ProgressReporter}. */
export interface ProgressOptions {
  /** Total steps. */
  total: number;
  /** Label at the start of each line; default "train". */
  label?: string;
  /** Whether the sink is a terminal; default: standard error's TTY status. */
  tty?: boolean;
  /** Where text goes; default standard error. */
  write?: (text: string) => void;
  /** Clock in seconds; default performance.now()/1000. */
  now?: () => number;
}

/**
 * Reports `step/total (pct) fields… elapsed ETA` lines.
 *
 * @example
 * ```ts
 * import { ProgressReporter } from "./progress.ts";
 * const lines: string[] = [];
 * const p = new ProgressReporter({ total: 10, tty: false, write: (t) => lines.push(t) });
 * for (let i = 1; i <= 10; i++) p.update(i, { loss: "-1.0" });
 * p.done();
 * console.log(lines.length > 0); // true
 * ```
 */
export class ProgressReporter {
  #opts: Required<ProgressOptions>;
  #start: number;
  #lastPrint = -Infinity;
  #lastPct = -1;
  #lastLine = "";

  /** Starts the clock. */
  constructor(options: ProgressOptions) {
    const encoder = new TextEncoder();
    let tty = false;
    try {
      tty = Deno.stderr.isTerminal();
    } catch {
      tty = false;
    }
    this.#opts = {
      label: "train",
      tty,
      write: (t: string) => Deno.stderr.writeSync(encoder.encode(t)),
      now: () => performance.now() / 1000,
      ...options,
    };
    this.#start = this.#opts.now();
  }

  /** Reports that `step` steps are done, with extra `name value` fields. */
  update(step: number, fields: Record<string, string> = {}): void {
    const { total, tty, now, label } = this.#opts;
    const t = now();
    const elapsed = t - this.#start;
    const pct = Math.floor((100 * step) / total);
    const eta = step > 0 ? (elapsed / step) * (total - step) : NaN;
    const extras = Object.entries(fields).map(([k, v]) => `${k} ${v}`).join("  ");
    const line = `${label} ${step}/${total} (${pct}%)  ${extras}  elapsed ${
      formatDuration(elapsed)
    }  ETA ${formatDuration(eta)}`;
    this.#lastLine = line;
    if (tty) {
      if (t - this.#lastPrint >= 0.1 || step === total) {
        this.#opts.write(`\r\x1b[2K${line}`);
        this.#lastPrint = t;
      }
      return;
    }
    const stepPct = Math.floor(pct / 5) * 5;
    if (stepPct > this.#lastPct || t - this.#lastPrint >= 30 || step === total) {
      this.#opts.write(`${line}\n`);
      this.#lastPct = stepPct;
      this.#lastPrint = t;
    }
  }

  /** Ends the in-place line on a terminal. */
  done(): void {
    if (this.#opts.tty && this.#lastLine) this.#opts.write("\n");
  }
}
