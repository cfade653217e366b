/**
 * Command-line parsing for the experiment scripts: typed flags with presets, `--help` generated from
 * the flag table, and errors that name the flag and what is allowed (exit status 2).
 *
 * @module
 */
import { parseArgs } from "node:util";

/** A flag's type. */
export type FlagType = "number" | "integer" | "string" | "boolean";

/** How a missing value's flag is described ("it takes an integer"). */
const VALUE_KINDS: Record<string, string> = {
  string: "a string",
  integer: "an integer",
  number: "a number",
};

/** One flag of a script. */
export interface FlagSpec {
  /** Value type. */
  type: FlagType;
  /** One-line help text. */
  description: string;
  /** Allowed values (strings) — anything else is an error. */
  choices?: readonly string[];
  /** Smallest allowed value (numbers). */
  min?: number;
  /** Largest allowed value (numbers). */
  max?: number;
  /** Whether `min` itself is excluded (e.g. learning rate > 0). */
  exclusiveMin?: boolean;
  /** Whether `max` itself is excluded (e.g. a decay rate < 1). */
  exclusiveMax?: boolean;
  /** Whether the flag may be left unset (no preset value and no default); default false. */
  optional?: boolean;
}

/** Parsed flag values by name. */
export type FlagValues = Record<string, string | number | boolean | undefined>;

/**
 * A usage error: the script prints it and exits with status 2.
 *
 * @example parseCli throws one for a value out of range
 * ```ts
 * import { CliError, parseCli } from "../mod.ts";
 * try {
 *   parseCli(["--steps", "0"], {
 *     usage: "demo",
 *     flags: { steps: { type: "integer", description: "steps", min: 1 } },
 *     presets: { default: { steps: 100 } },
 *   });
 * } catch (e) {
 *   console.log(e instanceof CliError); // true
 *   console.log((e as CliError).message); // Invalid value "0" for --steps: expected an integer ≥ 1
 * }
 * ```
 */
export class CliError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** Options of {@linkcode parseCli}. */
export interface ParseCliOptions {
  /** The script's flags. `preset` and `help` are added automatically when presets exist. */
  flags: Record<string, FlagSpec>;
  /** Named presets: complete default values for every flag. The first is the default preset. */
  presets: Record<string, FlagValues>;
  /** Usage line and description printed by `--help`. */
  usage: string;
}

/** Result of {@linkcode parseCli}. */
export interface ParsedCli {
  /** `true` when `--help` was given (the caller prints `help` and exits 0). */
  help: boolean;
  /** The help text. */
  helpText: string;
  /** The chosen preset's name. */
  preset: string;
  /** Final values: preset values overridden by the flags given. */
  values: FlagValues;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function convert(name: string, spec: FlagSpec, raw: string | boolean): string | number | boolean {
  const flag = `--${kebab(name)}`;
  if (spec.type === "boolean") {
    if (typeof raw === "boolean") return raw;
    if (raw === "true" || raw === "false") return raw === "true";
    throw new CliError(`Invalid value "${raw}" for ${flag}: expected true or false`);
  }
  if (typeof raw !== "string") throw new CliError(`Missing value for ${flag}`);
  if (spec.type === "string") {
    if (spec.choices && !spec.choices.includes(raw)) {
      throw new CliError(
        `Invalid value "${raw}" for ${flag}: allowed values are ${spec.choices.join(", ")}`,
      );
    }
    return raw;
  }
  const x = Number(raw);
  const what = spec.type === "integer" ? "an integer" : "a number";
  if (
    raw.trim() === "" || !Number.isFinite(x) || (spec.type === "integer" && !Number.isInteger(x))
  ) {
    throw new CliError(`Invalid value "${raw}" for ${flag}: expected ${what}${range(spec)}`);
  }
  const belowMin = spec.min !== undefined && (spec.exclusiveMin ? x <= spec.min : x < spec.min);
  const aboveMax = spec.max !== undefined && (spec.exclusiveMax ? x >= spec.max : x > spec.max);
  if (belowMin || aboveMax) {
    throw new CliError(`Invalid value "${raw}" for ${flag}: expected ${what}${range(spec)}`);
  }
  return x;
}

function range(spec: FlagSpec): string {
  const lo = spec.min !== undefined ? `${spec.exclusiveMin ? ">" : "≥"} ${spec.min}` : "";
  const hi = spec.max !== undefined ? `${spec.exclusiveMax ? "<" : "≤"} ${spec.max}` : "";
  return lo || hi ? ` ${[lo, hi].filter(Boolean).join(" and ")}` : "";
}

/**
 * The `--help` text for a flag table and its presets.
 *
 * @example A flag's line lists its range and each preset's value
 * ```ts
 * import { helpText } from "../mod.ts";
 * const text = helpText({
 *   usage: "demo [flags]",
 *   flags: { steps: { type: "integer", description: "training steps", min: 1 } },
 *   presets: { default: { steps: 100 }, smoke: { steps: 5 } },
 * });
 * const lines = text.split("\n"); // the usage, a blank line, "Options:", then a line per flag
 * console.log(lines.at(-1)!.trim()); // --steps INTEGER  training steps ≥ 1 [default=100 smoke=5]
 * ```
 */
export function helpText(options: ParseCliOptions): string {
  const presetNames = Object.keys(options.presets);
  const lines = [options.usage, "", "Options:"];
  const rows: [string, string][] = [
    ["--preset NAME", `settings preset: ${presetNames.join(", ")} (default ${presetNames[0]})`],
    ["--help", "print this help and exit"],
  ];
  for (const [name, spec] of Object.entries(options.flags)) {
    const arg = spec.type === "boolean"
      ? `, --no-${kebab(name)}`
      : ` ${spec.choices ? spec.choices.join("|") : spec.type.toUpperCase()}`;
    const defaults = presetNames
      .map((p) => `${p}=${options.presets[p][name] ?? "-"}`)
      .join(" ");
    rows.push([`--${kebab(name)}${arg}`, `${spec.description}${range(spec)} [${defaults}]`]);
  }
  const width = Math.max(...rows.map((r) => r[0].length)) + 2;
  for (const [a, b] of rows) lines.push(`  ${a.padEnd(width)}${b}`);
  return lines.join("\n");
}

/**
 * Parses `args`: `--preset NAME` picks the base values, other flags override them.
 *
 * @example
 * ```ts
 * import { parseCli } from "./cli.ts";
 * const cli = parseCli(["--steps", "10"], {
 *   usage: "demo",
 *   flags: { steps: { type: "integer", description: "steps", min: 1 } },
 *   presets: { default: { steps: 100 } },
 * });
 * console.log(cli.values.steps); // 10
 * ```
 */
export function parseCli(args: string[], options: ParseCliOptions): ParsedCli {
  const presetNames = Object.keys(options.presets);
  const parseOptions: Record<string, { type: "string" | "boolean" }> = {
    preset: { type: "string" },
    help: { type: "boolean" },
  };
  const byKebab = new Map<string, string>();
  for (const [name, spec] of Object.entries(options.flags)) {
    parseOptions[kebab(name)] = { type: spec.type === "boolean" ? "boolean" : "string" };
    byKebab.set(kebab(name), name);
    if (spec.type === "boolean") parseOptions[`no-${kebab(name)}`] = { type: "boolean" };
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options: parseOptions, strict: true, allowPositionals: false });
  } catch (e) {
    const msg = (e as Error).message;
    const unknown = msg.match(/Unknown option '([^']+)'/);
    if (unknown) {
      throw new CliError(`Unknown flag ${unknown[1]}: run with --help to list the flags`);
    }
    const ambiguous = msg.match(/Option '([^']+)' argument is ambiguous/);
    if (ambiguous) {
      throw new CliError(
        `Ambiguous value for ${ambiguous[1]}: write ${
          ambiguous[1]
        }=VALUE when the value starts with "-"`,
      );
    }
    const valued = msg.match(/Option '--([^' ]+)' does not take an argument/);
    if (valued) {
      throw new CliError(
        `Invalid value for --${valued[1]}: a switch takes no value; write --${valued[1]} or --no-${
          valued[1]
        }`,
      );
    }
    const missing = msg.match(/Option '(--[^' ]+)(?: <value>)?' argument missing/);
    if (missing) {
      const type = options.flags[byKebab.get(missing[1].slice(2)) ?? ""]?.type ?? "";
      const what = VALUE_KINDS[type] ?? "a value";
      throw new CliError(`Missing value for ${missing[1]}: it takes ${what} (${missing[1]} VALUE)`);
    }
    const positional = msg.match(/Unexpected argument '([^']+)'/);
    if (positional) {
      const before = args[args.indexOf(positional[1]) - 1] ?? "";
      const name = byKebab.get(before.replace(/^--/, ""));
      if (name && options.flags[name].type === "boolean") {
        throw new CliError(
          `Unexpected argument "${positional[1]}" after ${before}: a switch takes no value; ` +
            `write ${before} or --no-${kebab(name)}`,
        );
      }
      throw new CliError(`Unexpected argument "${positional[1]}": this script takes only flags`);
    }
    throw new CliError(msg.replace(/\.$/, ""));
  }
  const raw = { ...parsed.values } as Record<string, string | boolean | undefined>;
  const text = helpText(options);
  const preset = (raw.preset as string | undefined) ?? presetNames[0];
  if (!options.presets[preset]) {
    throw new CliError(`Unknown preset "${preset}": allowed values are ${presetNames.join(", ")}`);
  }
  const values: FlagValues = { ...options.presets[preset] };
  for (const [key, v] of Object.entries(raw)) {
    if (key === "preset" || key === "help" || v === undefined) continue;
    if (!byKebab.has(key) && key.startsWith("no-")) {
      values[byKebab.get(key.slice(3))!] = false;
      continue;
    }
    const name = byKebab.get(key)!;
    values[name] = convert(name, options.flags[name], v);
  }
  for (const [name, spec] of Object.entries(options.flags)) {
    if (values[name] === undefined && !spec.optional) {
      throw new CliError(`Missing value for --${kebab(name)}: preset ${preset} does not set it`);
    }
  }
  return { help: raw.help === true, helpText: text, preset, values };
}

/**
 * Runs a script's main function: usage errors print and exit 2, other errors print their message
 * and exit 1 (no stack trace unless NEURALSVD_DEBUG is set).
 *
 * @example A script's main that returns normally: runMain returns too
 * ```ts
 * import { initBackend, runMain } from "../mod.ts";
 * await runMain(async () => {
 *   const info = await initBackend();
 *   console.log(info.backend); // wasm
 * });
 * console.log("done"); // done: had main thrown, runMain would have exited with status 1 or 2
 * ```
 */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    const err = e as Error;
    const envAllowed =
      Deno.permissions.querySync({ name: "env", variable: "NEURALSVD_DEBUG" }).state === "granted";
    const debug = envAllowed && Deno.env.get("NEURALSVD_DEBUG") !== undefined;
    console.error(`error: ${err.message}`);
    if (debug) console.error(err.stack);
    Deno.exit(e instanceof CliError || e instanceof RangeError || e instanceof TypeError ? 2 : 1);
  }
}
