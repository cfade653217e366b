import assert from "node:assert/strict";
import {
  colorAt,
  heatmap,
  lineChart,
  lineChartLayout,
  matrixHeatmap,
  NAN_COLOR,
  niceTicks,
  PALETTE,
  panelGrid,
  type Rgb,
  writePng,
} from "../lib/plot.ts";
import { decodePng, getPixel, type RgbaImage } from "../lib/png.ts";

/** Asserts `fn` throws a RangeError whose message matches `pattern` and follows the style. */
function assertRangeError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RangeError, `expected a RangeError, got ${e}`);
    assert.match(e.message, pattern);
    assert.match(e.message, /^[A-Z]/, "sentence case");
    assert.doesNotMatch(e.message, /\.$/, "no trailing period");
    return true;
  });
}

function rgbAt(image: RgbaImage, x: number, y: number): number[] {
  return getPixel(image, { x, y }).slice(0, 3);
}

function count(image: RgbaImage, color: Rgb): number {
  let n = 0;
  for (let i = 0; i < image.data.length; i += 4) {
    if (
      image.data[i] === color[0] && image.data[i + 1] === color[1] &&
      image.data[i + 2] === color[2]
    ) n++;
  }
  return n;
}

/** First pixel (row-major) of a colour. */
function find(image: RgbaImage, color: Rgb): { x: number; y: number } | undefined {
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const [r, g, b] = rgbAt(image, x, y);
      if (r === color[0] && g === color[1] && b === color[2]) return { x, y };
    }
  }
  return undefined;
}

const luminance = (c: Rgb) => 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];

Deno.test("colour maps", async (t) => {
  await t.step("diverging: blue at 0, white at 0.5, red at 1", () => {
    const [r0, g0, b0] = colorAt(0);
    assert.ok(b0 > r0 + 60 && b0 > g0 + 40, `blue ${colorAt(0)}`);
    assert.deepEqual(colorAt(0.5), [255, 255, 255]);
    const [r1, g1, b1] = colorAt(1);
    assert.ok(r1 > g1 + 60 && r1 > b1 + 60, `red ${colorAt(1)}`);
  });
  await t.step("diverging lightness rises to white and falls back symmetrically", () => {
    for (let k = 0; k < 10; k++) {
      const a = luminance(colorAt(k / 20));
      const b = luminance(colorAt((k + 1) / 20));
      assert.ok(b > a, `rises at ${k / 20}`);
      const mirror = luminance(colorAt(1 - k / 20));
      assert.ok(Math.abs(mirror - a) < 25, `symmetric at ${k / 20}: ${a} vs ${mirror}`);
    }
  });
  await t.step("sequential: lightness strictly increases (perceptually ordered)", () => {
    let previous = -1;
    for (let k = 0; k <= 50; k++) {
      const l = luminance(colorAt(k / 50, { cmap: "sequential" }));
      assert.ok(l > previous, `monotone at ${k / 50}`);
      previous = l;
    }
    const [r, g, b] = colorAt(0, { cmap: "sequential" });
    assert.ok(b > g && r > g, "dark purple start");
    const [r1, g1, b1] = colorAt(1, { cmap: "sequential" });
    assert.ok(r1 > 200 && g1 > 200 && b1 < 80, "yellow end");
  });
  await t.step("clamps, paints NaN grey, rejects unknown maps", () => {
    assert.deepEqual(colorAt(-3), colorAt(0));
    assert.deepEqual(colorAt(7, { cmap: "sequential" }), colorAt(1, { cmap: "sequential" }));
    assert.deepEqual(colorAt(NaN), NAN_COLOR);
    assertRangeError(
      () => colorAt(0.5, { cmap: "rainbow" as "diverging" }),
      /Invalid colour map "rainbow": allowed values are diverging, sequential/,
    );
  });
});

Deno.test("heatmap", async (t) => {
  await t.step("diverging: min is blue, 0 is white, max is red (symmetric default range)", () => {
    const image = heatmap([[-2, 0, 2, 1]], { cellSize: 3 });
    assert.equal(image.width, 12);
    assert.equal(image.height, 3);
    assert.deepEqual(rgbAt(image, 1, 1), [...colorAt(0)]);
    assert.deepEqual(rgbAt(image, 4, 1), [255, 255, 255]);
    assert.deepEqual(rgbAt(image, 7, 1), [...colorAt(1)]);
    assert.deepEqual(rgbAt(image, 10, 2), [...colorAt(0.75)]);
    // Each value fills its whole cell.
    assert.equal(count(image, colorAt(0)), 9);
  });
  await t.step("0 stays white for a one-sided field", () => {
    const image = heatmap([[0, 1, 4]]);
    assert.deepEqual(rgbAt(image, 0, 0), [255, 255, 255]);
    assert.deepEqual(rgbAt(image, 2, 0), [...colorAt(1)]);
    assert.deepEqual(rgbAt(image, 1, 0), [...colorAt(0.625)]);
  });
  await t.step("row 0 is drawn at the top", () => {
    const image = heatmap([[1, 1], [-1, -1]]);
    assert.deepEqual(rgbAt(image, 0, 0), [...colorAt(1)]);
    assert.deepEqual(rgbAt(image, 1, 1), [...colorAt(0)]);
  });
  await t.step("sequential spans [min, max]; explicit ranges clamp", () => {
    const image = heatmap([[3, 5, 7]], { cmap: "sequential" });
    assert.deepEqual(rgbAt(image, 0, 0), [...colorAt(0, { cmap: "sequential" })]);
    assert.deepEqual(rgbAt(image, 1, 0), [...colorAt(0.5, { cmap: "sequential" })]);
    assert.deepEqual(rgbAt(image, 2, 0), [...colorAt(1, { cmap: "sequential" })]);
    const clamped = heatmap([[-10, 10]], { range: [-1, 1] });
    assert.deepEqual(rgbAt(clamped, 0, 0), [...colorAt(0)]);
    assert.deepEqual(rgbAt(clamped, 1, 0), [...colorAt(1)]);
  });
  await t.step("NaN paints grey; infinities take the end colours; all-NaN does not crash", () => {
    const image = heatmap([[NaN, 1, -Infinity, Infinity]]);
    assert.deepEqual(rgbAt(image, 0, 0), [...NAN_COLOR]);
    assert.deepEqual(rgbAt(image, 2, 0), [...colorAt(0)]);
    assert.deepEqual(rgbAt(image, 3, 0), [...colorAt(1)]);
    assert.deepEqual(rgbAt(heatmap([[NaN, NaN]]), 1, 0), [...NAN_COLOR]);
  });
  await t.step("rejects bad grids, ranges and sizes", () => {
    assertRangeError(
      () => heatmap([[1, 2], [3]]),
      /Invalid values: row 1 has 1 values but row 0 has 2; the grid must be rectangular/,
    );
    assertRangeError(() => heatmap([]), /Invalid values: it must be a non-empty array of rows/);
    assertRangeError(() => heatmap([[]]), /Invalid values: row 0 must be a non-empty array/);
    assertRangeError(
      () => heatmap([[1]], { range: [NaN, 1] }),
      /Invalid range \[NaN, 1\]: it must be two finite numbers \[low, high\] with low < high/,
    );
    assertRangeError(() => heatmap([[1]], { range: [2, 1] }), /Invalid range \[2, 1\]/);
    assertRangeError(
      () => heatmap([[1]], { cellSize: 0 }),
      /Invalid cell size 0: it must be a positive integer/,
    );
  });
});

Deno.test("panelGrid", async (t) => {
  const constant = (rows: number, cols: number, v: number) =>
    Array.from({ length: rows }, () => Array(cols).fill(v));
  const red = colorAt(1);
  const blue = colorAt(0);

  await t.step("lays out 2 × 16 titled 96 px panels", () => {
    const panels = Array.from({ length: 32 }, (_, k) => ({
      values: constant(20, 20, k % 2 ? 1 : -1),
      title: `${k < 16 ? "learned" : "true"} ${(k % 16) + 1}`,
    }));
    const image = panelGrid(panels, { columns: 16 });
    assert.ok(image.width >= 16 * 96 && image.width < 16 * 96 + 16 * 20, `width ${image.width}`);
    assert.ok(image.height >= 2 * 96 && image.height < 2 * (96 + 80), `height ${image.height}`);
    assert.equal(count(image, red), 16 * 96 * 96);
    assert.equal(count(image, blue), 16 * 96 * 96);
    // Titles are dark text, above the panels of their row.
    const firstPanelRow = find(image, blue)!.y;
    let titlePixels = 0;
    for (let y = 0; y < firstPanelRow; y++) {
      for (let x = 0; x < image.width; x++) {
        if (rgbAt(image, x, y).every((c) => c < 80)) titlePixels++;
      }
    }
    assert.ok(titlePixels > 16 * 20, `title pixels ${titlePixels}`);
  });
  await t.step("scales each panel on its own symmetric range, or on a shared one", () => {
    const small = { values: [[0.001, -0.001]], title: "small" };
    const large = { values: [[1000, -1000]], title: "large" };
    // A 1×2 grid fits a 10×5 box: the positive half is 5×5 pixels.
    const own = panelGrid([small, large], { columns: 2, panelSize: 10 });
    assert.equal(count(own, red), 2 * 5 * 5);
    const shared = panelGrid([small, large], { columns: 2, panelSize: 10, scale: "shared" });
    assert.equal(count(shared, red), 5 * 5);
    const fixed = panelGrid([small, large], { columns: 2, panelSize: 10, range: [-0.001, 0.001] });
    assert.equal(count(fixed, red), 2 * 5 * 5);
  });
  await t.step("averages larger grids and repeats smaller ones", () => {
    const checker = Array.from(
      { length: 192 },
      (_, i) => Array.from({ length: 192 }, (_, j) => ((i + j) % 2 ? 1 : -1)),
    );
    const averaged = panelGrid([{ values: checker, title: "fine" }], {
      columns: 1,
      range: [-1, 1],
    });
    assert.equal(count(averaged, [255, 255, 255]) >= 96 * 96, true, "averages to white");
    assert.equal(count(averaged, red), 0);
    const quadrants = panelGrid([{ values: [[1, -1], [-1, 1]], title: "coarse" }], {
      columns: 1,
    });
    assert.equal(count(quadrants, red), 2 * 48 * 48);
    assert.equal(count(quadrants, blue), 2 * 48 * 48);
  });
  await t.step("keeps the aspect ratio and paints NaN grey", () => {
    const wide = constant(48, 96, 1);
    wide[0][0] = NaN;
    const image = panelGrid([{ values: wide, title: "wide" }], { columns: 1 });
    assert.equal(count(image, red), 96 * 48 - 1);
    assert.equal(count(image, NAN_COLOR), 1);
  });
  await t.step("fits titles: double size, wrapped, or shortened", () => {
    const long = panelGrid([{ values: [[1]], title: "a very long panel title indeed" }], {
      columns: 1,
      panelSize: 40,
    });
    assert.ok(long.width < 100, "the title does not widen the grid");
  });
  await t.step("rejects bad input", () => {
    assertRangeError(() => panelGrid([], { columns: 2 }), /Invalid panels/);
    assertRangeError(
      () => panelGrid([{ values: [[1]], title: "a" }], { columns: 0 }),
      /Invalid column count 0: it must be a positive integer/,
    );
    assertRangeError(
      () =>
        panelGrid([{ values: [[1]], title: "a" }, { values: [[1], [2, 3]], title: "b" }], {
          columns: 2,
        }),
      /Invalid values of panel 1: row 1 has 2 values but row 0 has 1/,
    );
    assertRangeError(
      () => panelGrid([{ values: [[1]], title: "a" }], { columns: 1, panelSize: -5 }),
      /Invalid panel size -5/,
    );
  });
});

Deno.test("niceTicks", async (t) => {
  await t.step("uses 1-2-5 steps covering the interval", () => {
    assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(niceTicks(-0.013, 0.021, { count: 4 }), [-0.01, 0, 0.01, 0.02]);
    assert.deepEqual(niceTicks(0.5, 16.5, { count: 8 }), [2, 4, 6, 8, 10, 12, 14, 16]);
    assert.deepEqual(niceTicks(1, 3, { count: 8, integer: true }), [1, 2, 3]);
    assert.deepEqual(niceTicks(-1234, 5678, { count: 3 }), [0, 5000]);
    assert.ok(Object.is(niceTicks(-1, 1, { count: 2 })[1], 0), "no negative zero");
  });
  await t.step("rejects empty or non-finite intervals", () => {
    assertRangeError(() => niceTicks(1, 1), /Invalid tick interval \[1, 1\]/);
    assertRangeError(() => niceTicks(0, Infinity), /Invalid tick interval \[0, Infinity\]/);
    assertRangeError(() => niceTicks(0, 1, { count: 0 }), /Invalid tick count 0/);
  });
});

Deno.test("lineChart", async (t) => {
  const options = { xRange: [0, 10] as [number, number], yRange: [0, 100] as [number, number] };
  const expected = (layout: ReturnType<typeof lineChartLayout>, x: number, y: number) => {
    const { plot, xDomain, yDomain } = layout;
    return {
      x: plot.x + Math.round(((x - xDomain[0]) / (xDomain[1] - xDomain[0])) * (plot.width - 1)),
      y: plot.y + plot.height - 1 -
        Math.round(((y - yDomain[0]) / (yDomain[1] - yDomain[0])) * (plot.height - 1)),
    };
  };

  await t.step("draws markers where the data points belong", () => {
    const series = [
      { name: "dots", x: [5, 2], y: [50, 80], color: [200, 0, 0] as Rgb, marker: "dot" as const },
      {
        name: "crosses",
        x: [7.7],
        y: [33],
        color: [0, 0, 200] as Rgb,
        marker: "cross" as const,
        line: false,
      },
    ];
    const layout = lineChartLayout(series, { ...options, title: "t", xLabel: "x", yLabel: "y" });
    const image = lineChart(series, { ...options, title: "t", xLabel: "x", yLabel: "y" });
    assert.equal(image.width, 800);
    assert.equal(image.height, 500);
    const centre = expected(layout, 5, 50);
    assert.equal(centre.x, layout.plot.x + Math.round(0.5 * (layout.plot.width - 1)));
    for (const [x, y] of [[5, 50], [2, 80]]) {
      const p = expected(layout, x, y);
      assert.deepEqual(rgbAt(image, p.x, p.y), [200, 0, 0], `dot at (${x}, ${y})`);
      assert.deepEqual(rgbAt(image, p.x + 2, p.y), [200, 0, 0], "dots have a radius");
    }
    // The line between the two dots passes through their midpoint.
    const mid = expected(layout, 3.5, 65);
    const near = [-1, 0, 1].some((d) => rgbAt(image, mid.x, mid.y + d).join() === "200,0,0");
    assert.ok(near, "line joins the dots");
    const c = expected(layout, 7.7, 33);
    for (const [dx, dy] of [[0, 0], [3, 3], [-3, -3], [3, -3], [-3, 3]]) {
      assert.deepEqual(rgbAt(image, c.x + dx, c.y + dy), [0, 0, 200], `cross arm ${dx},${dy}`);
    }
    assert.deepEqual(rgbAt(image, c.x + 3, c.y), [255, 255, 255], "cross has no horizontal arm");
    // Nothing but the legend sample of the crosses series is drawn with a line.
    assert.deepEqual(rgbAt(image, c.x - 10, c.y), [255, 255, 255]);
  });
  await t.step("frames the plot and puts the legend to its right", () => {
    const series = [{ name: "a", x: [0, 1], y: [0, 1] }];
    const layout = lineChartLayout(series, options);
    const image = lineChart(series, options);
    const { plot } = layout;
    const frameLeft = rgbAt(image, plot.x - 1, plot.y + 10);
    assert.ok(frameLeft.every((v) => v < 120), `frame ${frameLeft}`);
    assert.ok(layout.legend && layout.legend.x > plot.x + plot.width);
    // The legend's line sample uses the series colour.
    const legend = layout.legend!;
    let sample = 0;
    for (let y = legend.y; y < legend.y + legend.height; y++) {
      for (let x = legend.x; x < legend.x + legend.width; x++) {
        if (rgbAt(image, x, y).join() === PALETTE[0].join()) sample++;
      }
    }
    assert.ok(sample >= 20, `legend sample pixels ${sample}`);
  });
  await t.step("picks nice ticks and labels for linear axes", () => {
    const layout = lineChartLayout([{ name: "", x: [1, 16], y: [-0.0123, 0.05] }], {});
    const steps = layout.yTicks.slice(1).map((t, i) => t.value - layout.yTicks[i].value);
    const step = steps[0];
    assert.ok(steps.every((s) => Math.abs(s - step) < 1e-12));
    const mantissa = step / 10 ** Math.floor(Math.log10(step));
    assert.ok([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9), `step ${step}`);
    assert.ok(layout.yTicks.length >= 4 && layout.yTicks.length <= 14);
    assert.ok(layout.yTicks.every((t) => t.value >= layout.yDomain[0]));
    assert.ok(layout.xTicks.every((t) => Number.isInteger(t.value)), "integer x data");
    assert.ok(layout.xTicks.some((t) => t.label === "0" || t.label === "2"));
    assert.equal(layout.legend, undefined, "no legend without names");
    const labels = layout.yTicks.map((t) => t.label);
    assert.ok(labels.includes("0.000") || labels.includes("0.00"), labels.join(" "));
  });
  await t.step("puts log-axis ticks on decades and maps them logarithmically", () => {
    const series = [{
      name: "loss",
      x: [0, 1, 2, 3],
      y: [1e-4, 1e-2, 1, 100],
      marker: "dot" as const,
      color: [0, 150, 0] as Rgb,
    }];
    const layout = lineChartLayout(series, { logY: true, yRange: [1e-4, 100] });
    assert.deepEqual(layout.yTicks.map((t) => t.label).slice(0, 3), ["1e-4", "0.001", "0.01"]);
    assert.ok(layout.yTicks.every((t) => Number.isInteger(Math.round(Math.log10(t.value)))));
    const image = lineChart(series, { logY: true, yRange: [1e-4, 100] });
    const { plot, xDomain } = layout;
    const x = plot.x +
      Math.round(((1 - xDomain[0]) / (xDomain[1] - xDomain[0])) * (plot.width - 1));
    const y = plot.y + plot.height - 1 - Math.round((2 / 6) * (plot.height - 1));
    assert.deepEqual(rgbAt(image, x, y), [0, 150, 0], "1e-2 sits a third of the way up");
  });
  await t.step("skips NaN points and non-positive values on a log axis", () => {
    const image = lineChart([{ name: "s", x: [0, 1, 2, 3], y: [1, NaN, -1, 0.5] }], {
      logY: true,
    });
    assert.equal(image.width, 800);
    const layout = lineChartLayout([{ name: "s", x: [0, 1, 2, 3], y: [1, NaN, -1, 0.5] }], {
      logY: true,
    });
    assert.ok(layout.yDomain[0] > 0 && layout.yDomain[0] < 0.5 && layout.yDomain[1] > 1);
  });
  await t.step("draws the title text inside the image's top margin", () => {
    const image = lineChart([{ name: "", x: [0, 1], y: [0, 1] }], { title: "Spectrum" });
    const layout = lineChartLayout([{ name: "", x: [0, 1], y: [0, 1] }], { title: "Spectrum" });
    let dark = 0;
    for (let y = 0; y < layout.plot.y - 2; y++) {
      for (let x = 0; x < image.width; x++) if (rgbAt(image, x, y).every((c) => c < 80)) dark++;
    }
    assert.ok(dark > 8 * 20, `title pixels ${dark}`);
  });
  await t.step("rejects bad input", () => {
    assertRangeError(
      () => lineChart([{ name: "a", x: [1, 2], y: [1] }]),
      /Invalid series 0 \("a"\): x has 2 values but y has 1; they must have the same length/,
    );
    assertRangeError(
      () => lineChart([], { width: 0 }),
      /Invalid width 0: it must be a positive integer/,
    );
    assertRangeError(() => lineChart([], { width: 60 }), /Invalid width 60: it must leave/);
    assertRangeError(() => lineChart([], { yRange: [NaN, 2] }), /Invalid y range \[NaN, 2\]/);
    assertRangeError(
      () => lineChart([], { logY: true, yRange: [0, 2] }),
      /Invalid y range \[0, 2\]: a log axis needs a positive low end/,
    );
    assertRangeError(
      () => lineChart([{ name: "a", x: [1], y: [1], marker: "star" as "dot" }]),
      /Invalid marker "star" of series 0 \("a"\): allowed values are dot, cross, none/,
    );
  });
});

Deno.test("matrixHeatmap", async (t) => {
  const hi = colorAt(1, { cmap: "sequential" });
  const lo = colorAt(0, { cmap: "sequential" });

  await t.step("draws cells row-major from the top-left, with a colour bar", () => {
    const m = [[1, 0, 0], [0, 1, 0], [0, NaN, 1]];
    const image = matrixHeatmap(m, { cellSize: 20, annotate: false, title: "C" });
    const origin = find(image, hi)!;
    const at = (i: number, j: number) =>
      rgbAt(image, origin.x + 20 * j + 10, origin.y + 20 * i + 10);
    assert.deepEqual(at(0, 0), [...hi]);
    assert.deepEqual(at(1, 1), [...hi]);
    assert.deepEqual(at(0, 1), [...lo]);
    assert.deepEqual(at(2, 1), [...NAN_COLOR]);
    // The colour bar: high at the top, low at the bottom, to the right of the matrix.
    let bar: { x: number; y: number } | undefined;
    for (let x = origin.x + 60; x < image.width && !bar; x++) {
      if (rgbAt(image, x, origin.y).join() === [...hi].join()) bar = { x, y: origin.y };
    }
    assert.ok(bar, "colour bar found");
    let bottom = bar.y;
    while (bottom + 1 < image.height && rgbAt(image, bar.x, bottom + 1).join() !== "170,170,170") {
      bottom++;
    }
    assert.deepEqual(rgbAt(image, bar.x + 8, bottom), [...lo]);
    assert.ok(bottom - bar.y >= 59, "bar at least as tall as the matrix");
  });
  await t.step("annotates small matrices with readable contrasting text", () => {
    const image = matrixHeatmap([[1, 0.02], [0.02, 1]], { cmap: "diverging", cellSize: 60 });
    const red = colorAt(1);
    const origin = find(image, red)!;
    let white = 0;
    for (let y = origin.y; y < origin.y + 60; y++) {
      for (let x = origin.x; x < origin.x + 60; x++) {
        if (rgbAt(image, x, y).join() === "255,255,255") white++;
      }
    }
    assert.ok(white > 30, `white label pixels on the dark cell: ${white}`);
  });
  await t.step("labels large matrices sparsely without crashing", () => {
    const big = Array.from({ length: 64 }, (_, i) => Array.from({ length: 64 }, (_, j) => i - j));
    const image = matrixHeatmap(big, { cmap: "diverging" });
    assert.ok(image.width > 64 * 7 && image.height > 64 * 7);
  });
  await t.step("rejects bad input", () => {
    assertRangeError(() => matrixHeatmap([[1, 2], [3]]), /Invalid matrix: row 1 has 1 values/);
    assertRangeError(() => matrixHeatmap([[1]], { range: [1, NaN] }), /Invalid range \[1, NaN\]/);
    assertRangeError(() => matrixHeatmap([[1]], { cellSize: 1.5 }), /Invalid cell size 1.5/);
  });
});

Deno.test("writePng from plot.ts saves a decodable chart", () => {
  const path = Deno.makeTempFileSync({ suffix: ".png" });
  try {
    const image = lineChart([{ name: "a", x: [0, 1, 2], y: [3, 1, 2], marker: "dot" }], {
      width: 320,
      height: 200,
    });
    writePng(path, image);
    const back = decodePng(Deno.readFileSync(path));
    assert.equal(back.width, 320);
    assert.deepEqual(back.data, image.data);
  } finally {
    Deno.removeSync(path);
  }
});
