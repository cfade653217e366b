/**
 * File output helpers: an append-only CSV log and JSON writing, with errors that name the path.
 *
 * @module
 */

/**
 * Checks that `dir` can be created and written; throws a clear error otherwise.
 *
 * @example Creates missing parents and checks they can be written
 * ```ts
 * import { ensureWritableDir } from "./io.ts";
 * const dir = await Deno.makeTempDir();
 * ensureWritableDir(`${dir}/runs/a`);
 * console.log(Deno.statSync(`${dir}/runs/a`).isDirectory); // true
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function ensureWritableDir(dir: string): void {
  try {
    Deno.mkdirSync(dir, { recursive: true });
    const probe = `${dir}/.write-probe`;
    Deno.writeTextFileSync(probe, "");
    Deno.removeSync(probe);
  } catch (e) {
    const why = e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied
      ? "write permission is missing (run with --allow-write=<dir>)"
      : (e as Error).message;
    throw new RangeError(`Cannot write to output directory "${dir}": ${why}`);
  }
}

/**
 * Writes pretty JSON to a file.
 *
 * @example Writing a summary and reading it back
 * ```ts
 * import { writeJson } from "./io.ts";
 * const dir = await Deno.makeTempDir();
 * writeJson(`${dir}/summary.json`, { step: 10, loss: -0.5 });
 * console.log(JSON.parse(Deno.readTextFileSync(`${dir}/summary.json`)).loss); // -0.5
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function writeJson(path: string, value: unknown): void {
  Deno.writeTextFileSync(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * A CSV file written row by row (header first), flushed on every row so a crash loses nothing.
 *
 * @example
 * ```ts
 * import { CsvLog } from "./io.ts";
 * const path = Deno.makeTempFileSync({ suffix: ".csv" });
 * const log = new CsvLog(path, ["step", "loss"]);
 * log.append([1, -0.5]);
 * console.log(JSON.stringify(Deno.readTextFileSync(path))); // "step,loss\n1,-0.5\n"
 * Deno.removeSync(path);
 * ```
 */
export class CsvLog {
  /** Column names. */
  readonly columns: string[];
  /** File path. */
  readonly path: string;

  /** Creates (truncates) the file and writes the header, or appends when `append` is set. */
  constructor(path: string, columns: string[], options: { append?: boolean } = {}) {
    this.path = path;
    this.columns = columns;
    if (!options.append) Deno.writeTextFileSync(path, columns.join(",") + "\n");
  }

  /** Appends one row; numbers are written in shortest round-trip form. */
  append(row: (number | string)[]): void {
    if (row.length !== this.columns.length) {
      throw new RangeError(
        `Mismatched CSV row: ${row.length} values for ${this.columns.length} columns`,
      );
    }
    Deno.writeTextFileSync(this.path, row.map(String).join(",") + "\n", { append: true });
  }
}
