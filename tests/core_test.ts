import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import {
  activation,
  ACTIVATION_NAMES,
  eigenReport,
  eigh,
  EmbeddingMlp,
  formatDuration,
  generalizedEigh,
  matmul,
  Mlp,
  orthonormalColumns,
  procrustes,
  ProgressReporter,
  randomOrthogonal,
  Rng,
  subspaceDistance,
  subspaceDistanceFromGrams,
  svd,
  TabularModel,
  transpose,
  weightedGram,
} from "../mod.ts";
import { setup, thrown } from "./helpers.ts";
import { hostInputJet, radius } from "../lib/tensor_rows.ts";

await setup();

Deno.test("Rng is reproducible, serialisable and has the right moments", () => {
  const a = new Rng(123), b = new Rng(123);
  const xs = Array.from({ length: 5 }, () => a.uniform());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.uniform()));
  const state = a.getState();
  const next = [a.normal(), a.normal(), a.int(10)];
  const c = new Rng(0);
  c.setState(state);
  assert.deepEqual([c.normal(), c.normal(), c.int(10)], next);
  const z = new Rng(7).normals(200000);
  const mean = z.reduce((s, x) => s + x, 0) / z.length;
  const variance = z.reduce((s, x) => s + (x - mean) ** 2, 0) / z.length;
  assert.ok(Math.abs(mean) < 0.01 && Math.abs(variance - 1) < 0.01, `${mean} ${variance}`);
  const counts = new Array(4).fill(0);
  new Rng(3).ints(40000, 4).forEach((i) => counts[i]++);
  counts.forEach((k) => assert.ok(Math.abs(k - 10000) < 400, `${counts}`));
  assert.match(
    thrown(() => new Rng(-1)).message,
    /Invalid seed -1: the seed must be a non-negative integer/,
  );
  assert.deepEqual([...new Rng(5).permutation(5)].sort(), [0, 1, 2, 3, 4]);
});

Deno.test("Rng.normals and Rng.uniforms take their mean, spread and range as options", () => {
  const moments = (x: Float32Array) => {
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    return [mean, Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length)];
  };
  const [mean, std] = moments(new Rng(11).normals(100000, { mean: -3, std: 0.5 }));
  assert.ok(Math.abs(mean + 3) < 0.01 && Math.abs(std - 0.5) < 0.01, `${mean} ${std}`);
  // the same draws as the unit deviates, moved and scaled (each rounded to float32 once)
  const unit = new Rng(4).normals(5), scaled = new Rng(4).normals(5, { mean: 1, std: 2 });
  unit.forEach((z, i) => assert.ok(Math.abs(scaled[i] - (1 + 2 * z)) < 1e-6, `${scaled[i]} ${z}`));
  const u = new Rng(2).uniforms(20000, { low: -2, high: 6 });
  assert.ok(u.every((v) => v >= -2 && v < 6));
  const [um, us] = moments(u);
  assert.ok(Math.abs(um - 2) < 0.05 && Math.abs(us - 8 / Math.sqrt(12)) < 0.05, `${um} ${us}`);
  assert.ok(new Rng(2).uniforms(1000).every((v) => v >= 0 && v < 1));
});

Deno.test("eigh and svd agree with known decompositions", () => {
  const { values, vectors } = eigh([[2, 1, 0], [1, 2, 0], [0, 0, 5]]);
  [5, 3, 1].forEach((v, i) => assert.ok(Math.abs(values[i] - v) < 1e-12));
  assert.ok(Math.abs(Math.abs(vectors[0][1]) - Math.SQRT1_2) < 1e-12);
  const rng = new Rng(1);
  const q = randomOrthogonal(6, () => rng.normal());
  const qtq = matmul(transpose(q), q);
  qtq.forEach((row, i) =>
    row.forEach((x, j) => assert.ok(Math.abs(x - (i === j ? 1 : 0)) < 1e-12))
  );
  const a = Array.from({ length: 7 }, () => Array.from({ length: 4 }, () => rng.normal()));
  const r = svd(a);
  const back = matmul(
    matmul(r.u, r.s.map((s, i) => r.s.map((_, j) => (i === j ? s : 0)))),
    transpose(r.v),
  );
  back.forEach((row, i) => row.forEach((x, j) => assert.ok(Math.abs(x - a[i][j]) < 1e-10)));
  assert.ok(r.s.every((s, i) => i === 0 || s <= r.s[i - 1]));
  assert.match(thrown(() => eigh([[1, 2]])).message, /shape 1×2 is not square/);
});

Deno.test("generalizedEigh solves A c = λ B c with B-orthonormal vectors, largest first", () => {
  const rng = new Rng(5);
  const n = 6;
  const g = Array.from({ length: n }, () => Array.from({ length: n }, () => rng.normal()));
  const b = matmul(transpose(g), g).map((row, i) => row.map((x, j) => x + (i === j ? 0.5 : 0)));
  const h = Array.from({ length: n }, () => Array.from({ length: n }, () => rng.normal()));
  const a = h.map((row, i) => row.map((x, j) => x + h[j][i]));
  const { values, vectors } = generalizedEigh(a, b);
  const ac = matmul(a, vectors), bc = matmul(b, vectors);
  ac.forEach((row, i) =>
    row.forEach((x, k) => assert.ok(Math.abs(x - values[k] * bc[i][k]) < 1e-9, `A c = λ B c`))
  );
  matmul(transpose(vectors), bc).forEach((row, i) =>
    row.forEach((x, j) => assert.ok(Math.abs(x - (i === j ? 1 : 0)) < 1e-9, "Cᵀ B C = I"))
  );
  assert.ok(values.every((v, i) => i === 0 || v <= values[i - 1]));
  const simple = generalizedEigh([[2, 0], [0, 3]], [[1, 0], [0, 3]]).values;
  [2, 1].forEach((v, i) => assert.ok(Math.abs(simple[i] - v) < 1e-12, `${simple}`));
  assert.match(
    thrown(() => generalizedEigh([[1, 0], [0, 1]], [[1, 0], [0, 0]])).message,
    /Invalid positive definite matrix: smallest eigenvalue 0/,
  );
  assert.match(
    thrown(() => generalizedEigh([[1]], [[1, 0], [0, 1]])).message,
    /shapes 1×1 and 2×2/,
  );
});

Deno.test("eigenReport: Ritz values undo mixing and bound the eigenvalues from below", () => {
  // T = Q diag(λ) Qᵀ on 40 points with orthonormal eigenvectors Q; learned F mixes the top 4.
  const rng = new Rng(9);
  const n = 40, values = [5, 4, 3, 2, 1, 0.5];
  const q = orthonormalColumns(
    Array.from({ length: n }, () => values.map(() => rng.normal())),
  );
  const t = matmul(
    matmul(q, values.map((v, i) => values.map((_, j) => (i === j ? v : 0)))),
    transpose(q),
  );
  const top = q.map((row) => row.slice(0, 4));
  const mixed = matmul(
    top,
    matmul(randomOrthogonal(4, () => rng.normal()), [
      [2, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 0.5, 0],
      [0, 0, 0, 3],
    ]),
  );
  const weights = new Array(n).fill(1);
  const blocks = [[0], [1], [2], [3]];
  const exact = eigenReport(mixed, matmul(t, mixed), {
    weights,
    values: values.slice(0, 4),
    functions: top,
    blocks,
  });
  assert.ok(exact.meanRayleighRelError! > 1e-2, "a mixed basis has wrong Rayleigh quotients");
  assert.ok(exact.meanRitzRelError! < 1e-12, `Ritz error ${exact.meanRitzRelError}`);
  assert.ok(exact.subspaceDistanceAvg! > 1e-2);
  assert.ok(exact.ritzSubspaceDistanceAvg! < 1e-12, `${exact.ritzSubspaceDistanceAvg}`);
  // A subspace that is not invariant: Ritz values lie below the true ones (Cauchy interlacing).
  const tilted = mixed.map((row, i) => row.map((x, j) => x + 0.2 * q[i][4 + (j % 2)]));
  const report = eigenReport(tilted, matmul(t, tilted), { weights, values: values.slice(0, 4) });
  report.modes.forEach((m, l) => {
    assert.ok(m.ritz! <= values[l] + 1e-12, `Ritz ${m.ritz} above λ_${l} = ${values[l]}`);
    assert.ok(m.ritz! > values[l + 2] - 1e-12, `Ritz ${m.ritz} below λ_${l + 2}`);
  });
  // An extra trained mode widens the span: the third mode sits on λ_3's eigenvector and the fourth
  // holds λ_2's; reporting three modes, the Ritz values from all four are exact.
  const swapped = q.map((row) => [row[0], row[1], row[3], row[2]]);
  const three = eigenReport(swapped, matmul(t, swapped), {
    weights,
    values: values.slice(0, 3),
    functions: q.map((row) => row.slice(0, 3)),
    blocks: [[0], [1], [2]],
    reportModes: 3,
  });
  assert.equal(three.modes.length, 3);
  assert.ok(Math.abs(three.modes[2].rayleigh - values[3]) < 1e-12);
  assert.ok(three.meanRitzRelError! < 1e-12, `${three.meanRitzRelError}`);
  assert.ok(three.ritzSubspaceDistanceAvg! < 1e-12);
  assert.ok(three.blockSubspaceDistances![2] > 0.99, "the third mode itself is off");
  assert.match(
    thrown(() => eigenReport(swapped, swapped, { reportModes: 5 })).message,
    /Invalid reportModes 5: expected an integer in \[1, 4\]/,
  );
  const singular = eigenReport(mixed.map((row) => [...row.slice(0, 3), 0]), matmul(t, mixed), {
    weights,
  });
  assert.equal(singular.modes[0].ritz, undefined);
  assert.equal(singular.ritzVectors, undefined);
});

Deno.test("activation: d1 and d2 are the derivatives of fn (central differences)", () => {
  const z = Array.from({ length: 41 }, (_, i) => -8 + 0.4 * i);
  const h = 1e-2;
  for (const name of ACTIVATION_NAMES) {
    const act = activation(name);
    const at = (fn: (t: tf.Tensor) => tf.Tensor, shift: number) =>
      tf.tidy(() => Array.from(fn(tf.tensor1d(z.map((v) => v + shift))).dataSync()));
    const [f, d1, d2] = [act.fn, act.d1, act.d2].map((fn) => at(fn, 0));
    const fdD1 = at(act.fn, h).map((v, i) => (v - at(act.fn, -h)[i]) / (2 * h));
    const fdD2 = at(act.d1, h).map((v, i) => (v - at(act.d1, -h)[i]) / (2 * h));
    z.forEach((_, i) => {
      assert.ok(Number.isFinite(f[i]));
      assert.ok(Math.abs(fdD1[i] - d1[i]) < 2e-3 * (1 + Math.abs(d1[i])), `${name}' at ${z[i]}`);
      assert.ok(Math.abs(fdD2[i] - d2[i]) < 2e-3 * (1 + Math.abs(d2[i])), `${name}'' at ${z[i]}`);
    });
  }
});

Deno.test("subspaceDistance and procrustes measure and undo rotations", () => {
  const rng = new Rng(2);
  const a = orthonormalColumns(Array.from({ length: 8 }, () => [rng.normal(), rng.normal()]));
  const c = Math.cos(0.3), s = Math.sin(0.3);
  const rot = [[c, -s], [s, c]];
  const b = matmul(a, rot);
  assert.ok(subspaceDistance(a, b) < 1e-12);
  const first = subspaceDistance(a.map((r) => [r[0]]), b.map((r) => [r[0]]));
  assert.ok(Math.abs(first - s * s) < 1e-12);
  const r = procrustes(b, a);
  const aligned = matmul(b, r);
  aligned.forEach((row, i) => row.forEach((x, j) => assert.ok(Math.abs(x - a[i][j]) < 1e-10)));
  const other = orthonormalColumns(Array.from({ length: 8 }, () => [rng.normal()]));
  assert.ok(subspaceDistance(a.map((r) => [r[0]]), other) > 0);
});

Deno.test("hostInputJet: the input jet's rows as the tensor ops make them, bit for bit", () => {
  const rng = new Rng(12);
  for (const [d, radial] of [[2, true], [3, true], [2, false]] as const) {
    const B = 37;
    const x = tf.tensor2d(rng.normals(B * d, { std: 3 }), [B, d]);
    const host = hostInputJet(x, { radial });
    const want = tf.tidy(() => {
      const eye = tf.eye(d);
      const unit = (k: number) => tf.tile(tf.slice(eye, [k, 0], [1, d]), [B, 1]);
      if (!radial) {
        return tf.concat([x, ...Array.from({ length: d }, (_, k) => unit(k)), tf.zeros([B, d])]);
      }
      const r = radius(x);
      const grads = Array.from(
        { length: d },
        (_, k) => tf.concat([unit(k), tf.div(tf.slice(x, [0, k], [B, 1]), r)], 1),
      );
      const lap = tf.concat([tf.zeros([B, d]), tf.div(d - 1, r)], 1);
      return tf.concat([tf.concat([x, r], 1), ...grads, lap]);
    });
    assert.deepEqual(host.shape, want.shape);
    assert.deepEqual(host.dataSync(), want.dataSync(), `d = ${d}, radial ${radial}`);
    tf.dispose([x, host, want]);
  }
});

Deno.test("Mlp: disjoint networks equal separate single-output networks", () => {
  const net = new Mlp({
    inputDim: 2,
    outputs: 3,
    hidden: [5, 4],
    disjoint: true,
    activation: "sin",
    rng: new Rng(1),
  });
  const x = [[0.3, -0.2], [1.1, 0.4]];
  const out = net.predict(x);
  const w = net.weights.map((v) => v.arraySync() as unknown as number[][][]);
  const b = net.biases.map((v) => v.arraySync() as unknown as number[][][]);
  for (let l = 0; l < 3; l++) {
    x.forEach((pt, i) => {
      // First layer: columns l·5..l·5+4 of the side-by-side matrix.
      let h = Array.from(
        { length: 5 },
        (_, k) =>
          Math.sin(
            pt[0] * (w[0] as unknown as number[][])[0][l * 5 + k] +
              pt[1] * (w[0] as unknown as number[][])[1][l * 5 + k] +
              (b[0] as unknown as number[])[l * 5 + k],
          ),
      );
      h = Array.from(
        { length: 4 },
        (_, k) =>
          Math.sin(
            h.reduce((s, v, j) => s + v * w[1][l][j][k], 0) +
              (b[1] as unknown as number[])[l * 4 + k],
          ),
      );
      const y = h.reduce((s, v, j) => s + v * w[2][l][j][0], 0) + (b[2] as unknown as number[])[l];
      assert.ok(Math.abs(out[i][l] - y) < 1e-5, `mode ${l}: ${out[i][l]} vs ${y}`);
    });
  }
  net.dispose();
});

Deno.test("Mlp: modesPerNetwork reads m consecutive modes out of each network's features", () => {
  const net = new Mlp({
    inputDim: 2,
    outputs: 4,
    hidden: [5],
    disjoint: true,
    modesPerNetwork: 2,
    activation: "sin",
    rng: new Rng(2),
  });
  assert.equal(net.groups, 2);
  const x = [[0.3, -0.2], [1.1, 0.4]];
  const out = net.predict(x);
  const w0 = net.weights[0].arraySync() as number[][];
  const w1 = net.weights[1].arraySync() as number[][][];
  const b0 = net.biases[0].arraySync() as number[], b1 = net.biases[1].arraySync() as number[];
  x.forEach((pt, i) => {
    for (let g = 0; g < 2; g++) {
      const h = Array.from(
        { length: 5 },
        (_, k) => Math.sin(pt[0] * w0[0][g * 5 + k] + pt[1] * w0[1][g * 5 + k] + b0[g * 5 + k]),
      );
      for (let m = 0; m < 2; m++) {
        const y = h.reduce((s, v, j) => s + v * w1[g][j][m], 0) + b1[g * 2 + m];
        assert.ok(
          Math.abs(out[i][g * 2 + m] - y) < 1e-5,
          `mode ${g * 2 + m}: ${out[i][g * 2 + m]}`,
        );
      }
    }
  });
  net.dispose();
  assert.match(
    thrown(() =>
      new Mlp({ inputDim: 2, outputs: 5, disjoint: true, modesPerNetwork: 2, rng: new Rng(0) })
    ).message,
    /Invalid modes per network 2: it must divide the number of outputs \(5\)/,
  );
  assert.match(
    thrown(() => new Mlp({ inputDim: 2, outputs: 4, modesPerNetwork: 2, rng: new Rng(0) })).message,
    /Invalid modes per network 2: a shared MLP serves all 4 modes/,
  );
});

Deno.test("Mlp: mode chunks give the same outputs, jets and gradients", () => {
  // 7 disjoint networks in chunks of 3 (3 + 3 + 1) against one pass over all of them, with one
  // mode per network and with two.
  const make = (modeChunk: number, modesPerNetwork = 1) =>
    new Mlp({
      inputDim: 2,
      outputs: 7 * modesPerNetwork,
      hidden: [8, 8],
      disjoint: true,
      modesPerNetwork,
      radial: true,
      fourier: { frequencies: 4, scale: 0.5 },
      modeChunk,
      rng: new Rng(11),
    });
  for (const [whole, chunked] of [[make(100), make(3)], [make(100, 2), make(3, 2)]]) {
    const x = tf.tensor2d([[0.3, -0.2], [1.1, 0.4], [-0.7, 0.9]]);
    const close = (a: tf.Tensor, b: tf.Tensor, what: string) => {
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
      const m = tf.tidy(() => tf.max(tf.abs(b)).dataSync()[0]);
      assert.ok(d <= 1e-6 * Math.max(1, m), `${what}: max difference ${d}`);
    };
    tf.tidy(() => {
      close(chunked.apply(x), whole.apply(x), "apply");
      const a = chunked.jet(x), b = whole.jet(x);
      close(a.value, b.value, "jet value");
      close(a.grad, b.grad, "jet gradient");
      close(a.lap, b.lap, "jet Laplacian");
      const grads = (m: Mlp) => tf.variableGrads(() => tf.sum(tf.square(m.apply(x))), m.variables);
      const ga = grads(chunked), gb = grads(whole);
      chunked.variables.forEach((v, i) =>
        close(ga.grads[v.name], gb.grads[whole.variables[i].name], `gradient ${i}`)
      );
    });
    chunked.dispose();
    whole.dispose();
    x.dispose();
  }
  assert.match(
    thrown(() => new Mlp({ inputDim: 1, outputs: 2, modeChunk: -1, rng: new Rng(0) })).message,
    /Invalid mode chunk -1: it must be a non-negative integer/,
  );
});

Deno.test("Mlp: He-normal weights, zero biases, Fourier features, clear errors", () => {
  const net = new Mlp({
    inputDim: 2,
    outputs: 4,
    hidden: [256, 256],
    fourier: { frequencies: 64, scale: 1 },
    rng: new Rng(3),
  });
  const w1 = Array.from(net.weights[1].dataSync());
  const std = Math.sqrt(w1.reduce((s, x) => s + x * x, 0) / w1.length);
  assert.ok(Math.abs(std - Math.sqrt(2 / 256)) < 0.05 * Math.sqrt(2 / 256), `std ${std}`);
  assert.ok(net.biases.every((b) => b.dataSync().every((x) => x === 0)));
  assert.deepEqual(net.widths, [128, 256, 256, 4]);
  const fstd = Math.sqrt(Array.from(net.fourier!.dataSync()).reduce((s, x) => s + x * x, 0) / 128);
  assert.ok(Math.abs(fstd / (2 * Math.PI) - 1) < 0.25, `frequency scale ${fstd}`);
  assert.match(
    thrown(() => net.apply(tf.zeros([3, 5]))).message,
    /Mismatched input shape \[3, 5\]: expected \[B, 2\]/,
  );
  assert.match(
    thrown(() => new Mlp({ inputDim: 2, outputs: 0, rng: new Rng(0) })).message,
    /Invalid number of outputs 0/,
  );
  assert.match(
    thrown(() => new Mlp({ inputDim: 2, outputs: 2, activation: "relu", rng: new Rng(0) })).message,
    /Unknown activation "relu": allowed values are softplus, silu, tanh, sin/,
  );
  net.dispose();
});

Deno.test("Index models predict rows and reject bad indices", () => {
  const table = new TabularModel({ size: 4, outputs: 2, rng: new Rng(0) });
  const all = table.variables[0].arraySync() as number[][];
  assert.deepEqual(table.predict([3, 1]), [all[3], all[1]]);
  assert.match(
    thrown(() => table.predict([4])).message,
    /Invalid index 4: indices must be integers in \[0, 4\)/,
  );
  const mlp = new EmbeddingMlp({ size: 4, outputs: 2, rng: new Rng(0) });
  assert.equal(mlp.predict([0, 1, 2]).length, 3);
  assert.match(
    thrown(() => mlp.apply(tf.zeros([2, 2]))).message,
    /index models take an int32 tensor/,
  );
  table.dispose();
  mlp.dispose();
});

Deno.test("ProgressReporter prints ETA lines every 5% off a terminal", () => {
  const lines: string[] = [];
  let now = 0;
  const p = new ProgressReporter({
    total: 100,
    tty: false,
    write: (t) => lines.push(t),
    now: () => now,
  });
  for (let i = 1; i <= 100; i++) {
    now += 0.5;
    p.update(i, { loss: "1" });
  }
  p.done();
  assert.equal(lines.length, 21);
  assert.equal(lines[10], "train 50/100 (50%)  loss 1  elapsed 0:25  ETA 0:25\n");
  assert.equal(formatDuration(3725), "1:02:05");
});

Deno.test("subspaceDistanceFromGrams equals subspaceDistance on the columns, dependent ones too", () => {
  const rng = new Rng(21);
  for (const [n, k, dependent] of [[40, 1, false], [120, 3, false], [80, 5, true]] as const) {
    const a = Array.from({ length: n }, () => Array.from({ length: k }, () => rng.normal()));
    const b = Array.from({ length: n }, () => Array.from({ length: k }, () => rng.normal()));
    if (dependent) a.forEach((r) => (r[2] = r[0] - 3 * r[1]));
    const ones = new Array(n).fill(1);
    const fromGrams = subspaceDistanceFromGrams({
      aa: weightedGram(a, a, ones),
      ab: weightedGram(a, b, ones),
      bb: weightedGram(b, b, ones),
    });
    assert.ok(Math.abs(fromGrams - subspaceDistance(a, b)) < 1e-12, `${n}×${k}`);
  }
  assert.equal(
    subspaceDistanceFromGrams({ aa: [[1, 0], [0, 1]], ab: [[1, 0], [0, 0]], bb: [[1, 0], [0, 1]] }),
    0.5,
  );
  assert.throws(
    () => subspaceDistanceFromGrams({ aa: [[1]], ab: [[1, 0]], bb: [[1]] }),
    /Mismatched Gram matrices: expected 1×1 blocks/,
  );
});
