/**
 * One check, and one message, for each kind of value a setting takes: a name from a list (the
 * optimiser, schedule, activation, nesting, envelope, kinetic method, representation, sampling), a
 * positive integer (counts and sizes), a positive number (scales, widths, steps) and a finite number.
 * Each throws a RangeError that names the setting, the value given and what is allowed.
 *
 * @module
 */

/**
 * `value` as one of `allowed`; throws a RangeError naming the value and the allowed ones
 * (`Unknown optimizer "lbfgs": allowed values are rmsprop, adam, sgd`).
 *
 * @example
 * ```ts
 * import { parseChoice } from "./checks.ts";
 * const kind = parseChoice("sgd", { what: "optimizer", allowed: ["adam", "sgd"] as const });
 * console.log(kind); // "sgd"
 * ```
 */
export function parseChoice<T extends string>(
  value: string,
  options: { what: string; allowed: readonly T[] },
): T {
  if (!(options.allowed as readonly string[]).includes(value)) {
    throw new RangeError(
      `Unknown ${options.what} "${value}": allowed values are ${options.allowed.join(", ")}`,
    );
  }
  return value as T;
}

/**
 * Throws unless `value` is a positive integer:
 * `Invalid number of modes 0: it must be a positive integer`.
 *
 * @example
 * ```ts
 * import { assertPositiveInteger } from "./checks.ts";
 * assertPositiveInteger(16, "number of modes"); // passes
 * try {
 *   assertPositiveInteger(2.5, "batch size");
 * } catch (e) {
 *   console.log((e as Error).message); // Invalid batch size 2.5: it must be a positive integer
 * }
 * ```
 */
export function assertPositiveInteger(value: unknown, what: string): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
    throw new RangeError(`Invalid ${what} ${value}: it must be a positive integer`);
  }
}

/**
 * Throws unless `value` is a number above zero (NaN is not):
 * `Invalid radius -1: it must be positive`.
 *
 * @example
 * ```ts
 * import { assertPositive } from "./checks.ts";
 * assertPositive(0.01, "finite-difference step"); // passes
 * ```
 */
export function assertPositive(value: number, what: string): void {
  if (!(value > 0)) throw new RangeError(`Invalid ${what} ${value}: it must be positive`);
}

/**
 * Throws unless `value` is a finite number: `Invalid shift NaN: it must be a finite number`.
 *
 * @example
 * ```ts
 * import { assertFinite } from "./checks.ts";
 * assertFinite(-20, "shift"); // passes
 * ```
 */
export function assertFinite(value: number, what: string): void {
  if (!Number.isFinite(value)) {
    throw new RangeError(`Invalid ${what} ${value}: it must be a finite number`);
  }
}
