import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { createOptimizer, globalNorm, learningRate, ParameterEma } from "../mod.ts";
import { setup, thrown } from "./helpers.ts";

await setup();

const GRADS = [0.5, -1.5, 2.0, 0.25];

/** Runs an optimiser on a scalar with a fixed gradient sequence. */
function trajectory(name: string, options: Record<string, number>, lr: number): number[] {
  const x = tf.variable(tf.scalar(1));
  const opt = createOptimizer([x], { name, ...options });
  const out: number[] = [];
  for (const g of GRADS) {
    const gt = tf.scalar(g);
    opt.step([gt], lr);
    gt.dispose();
    out.push(x.dataSync()[0]);
  }
  opt.dispose();
  x.dispose();
  return out;
}

function close(a: number[], b: number[], tol = 1e-6) {
  a.forEach((x, i) =>
    assert.ok(Math.abs(x - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `${a} vs ${b}`)
  );
}

Deno.test("createOptimizer rmsprop follows PyTorch: eps outside the square root", () => {
  const alpha = 0.999, eps = 1e-10, lr = 0.01;
  let v = 0, x = 1;
  const expected = GRADS.map((g) => {
    v = alpha * v + (1 - alpha) * g * g;
    x -= lr * g / (Math.sqrt(v) + eps);
    return x;
  });
  close(trajectory("rmsprop", { alpha, epsilon: eps }, lr), expected);
});

Deno.test("createOptimizer adam uses bias-corrected moments with its β₁ and β₂", () => {
  const adam = (b1: number, b2: number) => {
    const eps = 1e-8, lr = 0.1;
    let m = 0, v = 0, x = 1;
    return GRADS.map((g, i) => {
      const t = i + 1;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      x -= lr * (m / (1 - b1 ** t)) / (Math.sqrt(v / (1 - b2 ** t)) + eps);
      return x;
    });
  };
  close(trajectory("adam", {}, 0.1), adam(0.9, 0.999));
  close(trajectory("adam", { beta1: 0.5, beta2: 0.9 }, 0.1), adam(0.5, 0.9));
});

Deno.test("createOptimizer sgd with momentum starts its buffer at the first gradient", () => {
  const mu = 0.9, lr = 0.1;
  let b = 0, x = 1;
  const expected = GRADS.map((g, i) => {
    b = i === 0 ? g : mu * b + g;
    x -= lr * b;
    return x;
  });
  close(trajectory("sgd", { momentum: mu }, lr), expected);
});

Deno.test("createOptimizer rejects unknown names and mismatched gradients", () => {
  const x = tf.variable(tf.scalar(0));
  assert.match(
    thrown(() => createOptimizer([x], { name: "adagrad" })).message,
    /Unknown optimizer "adagrad": allowed values are rmsprop, adam, sgd/,
  );
  const opt = createOptimizer([x], { name: "adam" });
  assert.match(thrown(() => opt.step([], 0.1)).message, /Mismatched gradients: 0 for 1 variables/);
  opt.dispose();
  x.dispose();
});

Deno.test("learningRate: cosine decays from lr to 0, warm-up is linear", () => {
  const o = { schedule: "cosine", lr: 1, totalSteps: 100 };
  assert.equal(learningRate(0, o), 1);
  assert.ok(Math.abs(learningRate(50, o) - 0.5) < 1e-12);
  assert.ok(Math.abs(learningRate(100, o)) < 1e-12);
  assert.equal(learningRate(70, { ...o, schedule: "constant" }), 1);
  assert.ok(
    Math.abs(
      learningRate(4, { ...o, warmupSteps: 10 }) - 0.5 * 0.5 * (1 + Math.cos(Math.PI * 0.04)),
    ) < 1e-12,
  );
});

Deno.test("ParameterEma uses the warm-up decay min(decay, (1+t)/(10+t))", async () => {
  const x = tf.variable(tf.scalar(0));
  const ema = new ParameterEma([x], 0.995);
  let shadow = 0;
  for (let t = 0; t < 5; t++) {
    x.assign(tf.scalar(t + 1));
    ema.update();
    const d = Math.min(0.995, (1 + t) / (10 + t));
    shadow = d * shadow + (1 - d) * (t + 1);
  }
  assert.ok(Math.abs(ema.shadow[0].dataSync()[0] - shadow) < 1e-6);
  const inside = await ema.withAveraged(() => x.dataSync()[0]);
  assert.ok(Math.abs(inside - shadow) < 1e-6);
  assert.equal(x.dataSync()[0], 5);
  ema.dispose();
  x.dispose();
});

Deno.test("globalNorm is the L2 norm over all gradients", () => {
  const n = tf.tidy(() => globalNorm([tf.tensor1d([3]), tf.tensor2d([[4, 12]])]).dataSync()[0]);
  assert.ok(Math.abs(n - 13) < 1e-6);
});
