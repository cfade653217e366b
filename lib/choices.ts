/**
 * One check for every "which of these names" setting (optimiser, schedule, activation, nesting,
 * envelope, kinetic method, representation, sampling), so that each rejects a bad value with the
 * same message.
 *
 * @module
 */

/**
 * `value` as one of `allowed`; throws a RangeError naming the value and the allowed ones
 * (`Unknown optimizer "lbfgs": allowed values are rmsprop, adam, sgd`).
 *
 * @example
 * ```ts
 * import { parseChoice } from "./choices.ts";
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
