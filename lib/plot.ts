/**
 * Plots rendered straight to RGBA images (see `png.ts`), for experiment scripts that save PNG
 * pictures without native dependencies: colour maps, heatmaps of 2D fields, titled panel grids
 * ("learned vs true eigenfunctions"), line/scatter charts with ticks and a legend ("spectrum vs
 * truth", loss curves) and matrix heatmaps with a colour bar (orthogonality matrices).
 *
 * Grids of values are indexed `values[row][column]` and drawn as a matrix: row 0 at the top,
 * column 0 on the left. To draw a field f(x, y) with y pointing up, pass its rows in order of
 * decreasing y.
 *
 * @example Save a heatmap of a signed field
 * ```ts
 * import { heatmap, writePng } from "./plot.ts";
 * const values = Array.from({ length: 32 }, (_, i) =>
 *   Array.from({ length: 32 }, (_, j) => Math.sin(i / 5) * Math.cos(j / 5)));
 * writePng(Deno.makeTempFileSync({ suffix: ".png" }), heatmap(values, { cellSize: 4 }));
 * ```
 *
 * @module
 */
import {
  type Color,
  createImage,
  drawImage,
  drawLine,
  drawText,
  fillCircle,
  fillRect,
  FONT_METRICS,
  type PixelRect,
  type RgbaImage,
  textSize,
} from "./png.ts";
import { assertPositiveInteger } from "./checks.ts";

export { writePng } from "./png.ts";

/** An opaque colour `[r, g, b]`, channels in 0–255. */
export type Rgb = readonly [number, number, number];

/**
 * A colour map: `"diverging"` (blue → white → red, for signed fields; white at the middle of
 * the range) or `"sequential"` (dark purple → blue → green → yellow, viridis-like, for
 * magnitudes).
 */
export type ColormapName = "diverging" | "sequential";

/** The colour heatmaps paint for NaN values: a mid grey that neither colour map contains. */
export const NAN_COLOR: Rgb = [128, 128, 128];

/** Piecewise-linear stops (position in [0, 1], colour) of each colour map. */
const STOPS: Record<ColormapName, ReadonlyArray<readonly [number, Rgb]>> = {
  // Lightness rises roughly linearly from the dark ends to white in the middle.
  diverging: [
    [0, [24, 50, 130]],
    [0.2, [50, 105, 185]],
    [0.35, [130, 175, 220]],
    [0.5, [255, 255, 255]],
    [0.65, [240, 160, 135]],
    [0.8, [205, 70, 60]],
    [1, [125, 10, 30]],
  ],
  // A hand-tuned viridis look-alike: monotone lightness, purple → blue → teal → green → yellow.
  sequential: [
    [0, [68, 1, 84]],
    [0.125, [71, 42, 122]],
    [0.25, [60, 80, 139]],
    [0.375, [47, 108, 142]],
    [0.5, [36, 134, 142]],
    [0.625, [32, 160, 134]],
    [0.75, [76, 192, 104]],
    [0.875, [160, 218, 57]],
    [1, [253, 231, 37]],
  ],
};

/** Default series colours of {@linkcode lineChart}, in order. */
export const PALETTE: readonly Rgb[] = [
  [33, 102, 172],
  [214, 48, 39],
  [26, 152, 80],
  [240, 140, 0],
  [118, 42, 131],
  [0, 150, 170],
  [150, 90, 40],
  [230, 90, 170],
  [90, 90, 90],
  [170, 170, 0],
];

const TEXT: Rgb = [30, 30, 30];
const AXIS: Rgb = [70, 70, 70];
const GRID: Rgb = [230, 230, 230];
const BORDER: Rgb = [170, 170, 170];

// ---------------------------------------------------------------------------------------------
// Validation

function checkCmap(cmap: string): ColormapName {
  if (cmap !== "diverging" && cmap !== "sequential") {
    throw new RangeError(`Invalid colour map "${cmap}": allowed values are diverging, sequential`);
  }
  return cmap;
}

function checkRange(range: readonly [number, number], name = "range"): [number, number] {
  if (
    !Array.isArray(range) || range.length !== 2 || !Number.isFinite(range[0]) ||
    !Number.isFinite(range[1]) || !(range[0] < range[1])
  ) {
    const shown = Array.isArray(range) ? `[${range.join(", ")}]` : String(range);
    throw new RangeError(
      `Invalid ${name} ${shown}: it must be two finite numbers [low, high] with low < high`,
    );
  }
  return [range[0], range[1]];
}

/** A rectangular grid of numbers: rows of equal, non-zero length. */
export type ValueGrid = ReadonlyArray<ArrayLike<number>>;

function gridShape(values: ValueGrid, name: string): { rows: number; cols: number } {
  if (!Array.isArray(values) || values.length === 0) {
    throw new RangeError(`Invalid ${name}: it must be a non-empty array of rows`);
  }
  const first = values[0];
  const cols = first && typeof first === "object" ? first.length : NaN;
  if (!(cols > 0)) {
    throw new RangeError(`Invalid ${name}: row 0 must be a non-empty array of numbers`);
  }
  for (let i = 1; i < values.length; i++) {
    const row = values[i];
    const length = row && typeof row === "object" ? row.length : undefined;
    if (length !== cols) {
      throw new RangeError(
        `Invalid ${name}: row ${i} has ${length ?? "no"} values but row 0 has ${cols}; ` +
          `the grid must be rectangular`,
      );
    }
  }
  return { rows: values.length, cols };
}

// ---------------------------------------------------------------------------------------------
// Colour maps

/** Options of {@linkcode colorAt}. */
export interface ColorAtOptions {
  /** Colour map; default `"diverging"`. */
  cmap?: ColormapName;
}

/**
 * Colour of position `t` in [0, 1] on a colour map (values outside are clamped; NaN gives
 * {@linkcode NAN_COLOR}). On the diverging map 0 is dark blue, 0.5 white and 1 dark red.
 *
 * @example
 * ```ts
 * import { colorAt } from "./plot.ts";
 * console.log(colorAt(0.5)); // [ 255, 255, 255 ]
 * console.log(colorAt(1, { cmap: "sequential" })); // [ 253, 231, 37 ]
 * ```
 */
export function colorAt(t: number, options: ColorAtOptions = {}): Rgb {
  const stops = STOPS[checkCmap(options.cmap ?? "diverging")];
  if (typeof t !== "number" || Number.isNaN(t)) return NAN_COLOR;
  const u = Math.min(1, Math.max(0, t));
  let k = 1;
  while (k < stops.length - 1 && stops[k][0] < u) k++;
  const [t0, c0] = stops[k - 1];
  const [t1, c1] = stops[k];
  const f = (u - t0) / (t1 - t0);
  return [
    Math.round(c0[0] + f * (c1[0] - c0[0])),
    Math.round(c0[1] + f * (c1[1] - c0[1])),
    Math.round(c0[2] + f * (c1[2] - c0[2])),
  ];
}

/** Finite minimum and maximum over grids, or undefined if no value is finite. */
function finiteExtent(grids: ValueGrid[]): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const grid of grids) {
    for (const row of grid) {
      for (let j = 0; j < row.length; j++) {
        const v = row[j];
        if (Number.isFinite(v)) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
    }
  }
  return lo <= hi ? [lo, hi] : undefined;
}

/**
 * Default colour range of grids: symmetric [−m, m] with m the largest |value| for the
 * diverging map (so 0 is white), [min, max] for the sequential map.
 */
function autoRange(grids: ValueGrid[], cmap: ColormapName): [number, number] {
  const extent = finiteExtent(grids);
  if (cmap === "diverging") {
    const m = extent ? Math.max(Math.abs(extent[0]), Math.abs(extent[1])) : 0;
    return m > 0 ? [-m, m] : [-1, 1];
  }
  if (!extent) return [0, 1];
  if (extent[0] === extent[1]) {
    const d = Math.abs(extent[0]) > 0 ? Math.abs(extent[0]) * 0.5 : 0.5;
    return [extent[0] - d, extent[1] + d];
  }
  return extent;
}

// ---------------------------------------------------------------------------------------------
// Heatmaps

/** Options of {@linkcode heatmap}. */
export interface HeatmapOptions {
  /** Colour map; default `"diverging"`. */
  cmap?: ColormapName;
  /**
   * Values mapped to the two ends of the colour map (values outside are clamped). Default:
   * symmetric [−max|v|, max|v|] for the diverging map, [min, max] for the sequential map.
   */
  range?: readonly [number, number];
  /** Side of the square of pixels each value becomes; default 1. */
  cellSize?: number;
}

/**
 * Renders a grid as an image of `cellSize`×`cellSize` squares, `values[0][0]` at the top-left
 * (row 0 at the top, like a matrix). NaN values paint {@linkcode NAN_COLOR}; ±Infinity take the
 * end colours.
 *
 * @example
 * ```ts
 * import { heatmap } from "./plot.ts";
 * const image = heatmap([[-1, 0, 1], [0.5, NaN, -0.5]], { cellSize: 10 });
 * console.log(image.width, image.height); // 30 20
 * ```
 */
export function heatmap(values: ValueGrid, options: HeatmapOptions = {}): RgbaImage {
  const { rows, cols } = gridShape(values, "values");
  const cmap = checkCmap(options.cmap ?? "diverging");
  const [lo, hi] = options.range ? checkRange(options.range) : autoRange([values], cmap);
  const cell = options.cellSize ?? 1;
  assertPositiveInteger(cell, "cell size");
  const image = createImage(cols * cell, rows * cell);
  const width = image.width;
  const data = image.data;
  for (let i = 0; i < rows; i++) {
    const row = values[i];
    for (let j = 0; j < cols; j++) {
      const v = row[j];
      const c = colorAt(Number.isNaN(v) ? NaN : (v - lo) / (hi - lo), { cmap });
      for (let dy = 0; dy < cell; dy++) {
        let p = ((i * cell + dy) * width + j * cell) * 4;
        for (let dx = 0; dx < cell; dx++, p += 4) {
          data[p] = c[0];
          data[p + 1] = c[1];
          data[p + 2] = c[2];
        }
      }
    }
  }
  return image;
}

/**
 * Resamples a grid to rows×cols: each output cell averages the input cells that fall in it
 * (ignoring NaN), or repeats the nearest one when upsampling.
 */
function resample(values: ValueGrid, rows: number, cols: number): number[][] {
  const r = values.length;
  const c = values[0].length;
  if (r === rows && c === cols) return values.map((row) => Array.from(row));
  const span = (i: number, n: number, m: number): [number, number] => {
    const a = Math.floor((i * n) / m);
    return [a, Math.max(a + 1, Math.floor(((i + 1) * n) / m))];
  };
  const out: number[][] = [];
  for (let i = 0; i < rows; i++) {
    const [r0, r1] = span(i, r, rows);
    const row: number[] = [];
    for (let j = 0; j < cols; j++) {
      const [c0, c1] = span(j, c, cols);
      let sum = 0;
      let n = 0;
      for (let a = r0; a < r1; a++) {
        for (let b = c0; b < c1; b++) {
          const v = values[a][b];
          if (!Number.isNaN(v)) {
            sum += v;
            n++;
          }
        }
      }
      row.push(n > 0 ? sum / n : NaN);
    }
    out.push(row);
  }
  return out;
}

/** Splits a title at spaces into at most two lines of at most `max` characters, if it can. */
function wrapTitle(title: string, max: number): string[] | undefined {
  const chars = [...title];
  if (chars.length <= max) return [title];
  for (let cut = Math.min(chars.length - 1, max); cut > 0; cut--) {
    if (chars[cut] !== " ") continue;
    const first = chars.slice(0, cut).join("").trimEnd();
    const second = chars.slice(cut + 1).join("").trim();
    if ([...second].length <= max && first.length > 0) return [first, second];
  }
  return undefined;
}

/** One titled panel of {@linkcode panelGrid}. */
export interface PlotPanel {
  /** The field, `values[row][column]`, row 0 drawn at the top. */
  values: ValueGrid;
  /** Title drawn above the panel (shortened with ".." if it cannot fit). */
  title: string;
}

/** Options of {@linkcode panelGrid}. */
export interface PanelGridOptions {
  /** Panels per row of the grid (fewer if there are fewer panels). */
  columns: number;
  /** Colour map; default `"diverging"`. */
  cmap?: ColormapName;
  /** Side in pixels of the box each panel is fitted in, keeping its aspect ratio; default 96. */
  panelSize?: number;
  /**
   * Colour scaling: `"panel"` (default) scales each panel on its own range (symmetric about 0 for
   * the diverging map, which suits eigenfunctions whose sign and norm are arbitrary);
   * `"shared"` uses one range for all panels.
   */
  scale?: "panel" | "shared";
  /** Fixed colour range for every panel (overrides `scale`). */
  range?: readonly [number, number];
  /** Title drawn above the whole grid. */
  title?: string;
}

/**
 * Lays titled heatmaps out in a grid (e.g. 2 rows × 16 columns of "learned" and "true"
 * eigenfunctions). Each panel's values are fitted in a `panelSize` box: averaged down when the
 * grid is larger, repeated (nearest) when smaller. Panels fill the grid row by row.
 *
 * @example
 * ```ts
 * import { panelGrid } from "./plot.ts";
 * const s = (k: number, i: number) => Math.sin((k * Math.PI * (i + 0.5)) / 40);
 * const field = (k: number, l: number) =>
 *   Array.from({ length: 40 }, (_, i) => Array.from({ length: 40 }, (_, j) => s(k, j) * s(l, i)));
 * const image = panelGrid(
 *   [[1, 1], [2, 1], [1, 2], [2, 2]].map(([k, l], m) => ({
 *     values: field(k, l),
 *     title: `mode ${m + 1}`,
 *   })),
 *   { columns: 2, panelSize: 64 },
 * );
 * console.log(image.width, image.height); // 164 208
 * ```
 */
export function panelGrid(panels: readonly PlotPanel[], options: PanelGridOptions): RgbaImage {
  if (!Array.isArray(panels) || panels.length === 0) {
    throw new RangeError("Invalid panels: they must be a non-empty array of { values, title }");
  }
  assertPositiveInteger(options?.columns, "column count");
  const size = options.panelSize ?? 96;
  assertPositiveInteger(size, "panel size");
  const cmap = checkCmap(options.cmap ?? "diverging");
  const scaleMode = options.scale ?? "panel";
  if (scaleMode !== "panel" && scaleMode !== "shared") {
    throw new RangeError(`Invalid scale "${scaleMode}": allowed values are panel, shared`);
  }
  const shapes = panels.map((p, k) => gridShape(p?.values, `values of panel ${k}`));
  const fixed = options.range
    ? checkRange(options.range)
    : scaleMode === "shared"
    ? autoRange(panels.map((p) => p.values), cmap)
    : undefined;

  const columns = Math.min(options.columns, panels.length);
  const gridRows = Math.ceil(panels.length / columns);
  const margin = 12;
  const gapX = 12;
  const gapY = 12;
  const room = size + gapX - 4; // width a title may use
  const { ascent, descent, advance, lineGap } = FONT_METRICS;
  // Titles at double size when they fit, wrapped at spaces onto two lines if need be; otherwise
  // at single size on one line, shortened with ".." when still too long.
  const titles = panels.map((p) => String(p.title ?? "").replaceAll("\n", " "));
  const wrapped = titles.map((t) => wrapTitle(t, Math.floor((room + 1) / (advance * 2))));
  const titleScale = size >= 64 && wrapped.every((lines) => lines !== undefined) ? 2 : 1;
  const titleLines = titleScale === 2
    ? wrapped.map((lines) => (lines as string[]).join("\n"))
    : titles.map((t) => {
      const maxChars = Math.max(1, Math.floor((room + 1) / advance));
      return [...t].length > maxChars ? [...t].slice(0, maxChars - 2).join("") + ".." : t;
    });
  const lineCount = Math.max(...titleLines.map((t) => t.split("\n").length));
  const titleH = (lineCount * (ascent + descent) + (lineCount - 1) * lineGap) * titleScale + 4;
  const headH = options.title ? (ascent + descent) * 2 + 12 : 0;

  const gridW = columns * size + (columns - 1) * gapX;
  const headW = options.title ? textSize(options.title, { scale: 2 }).width : 0;
  const width = 2 * margin + Math.max(gridW, headW);
  const height = 2 * margin + headH + gridRows * (titleH + size) + (gridRows - 1) * gapY;
  const image = createImage(width, height);
  const gridX = margin + Math.floor((width - 2 * margin - gridW) / 2);
  if (options.title) {
    drawText(image, options.title, { x: width / 2, y: margin, scale: 2, align: "center" });
  }
  panels.forEach((panel, k) => {
    const { rows, cols } = shapes[k];
    const boxW = cols >= rows ? size : Math.max(1, Math.round((size * cols) / rows));
    const boxH = rows >= cols ? size : Math.max(1, Math.round((size * rows) / cols));
    const cellX = gridX + (k % columns) * (size + gapX);
    const cellY = margin + headH + Math.floor(k / columns) * (titleH + size + gapY);
    const range = fixed ?? autoRange([panel.values], cmap);
    const picture = heatmap(resample(panel.values, boxH, boxW), { cmap, range });
    const px = cellX + Math.floor((size - boxW) / 2);
    const py = cellY + titleH + Math.floor((size - boxH) / 2);
    fillRect(image, { x: px - 1, y: py - 1, width: boxW + 2, height: boxH + 2, color: BORDER });
    drawImage(image, picture, { x: px, y: py });
    const title = titleLines[k];
    const lines = title.split("\n").length;
    const shift = (lineCount - lines) * (ascent + descent + lineGap) * titleScale;
    drawText(image, title, {
      x: cellX + size / 2,
      y: cellY + shift,
      scale: titleScale,
      align: "center",
      color: TEXT,
    });
  });
  return image;
}

// ---------------------------------------------------------------------------------------------
// Ticks

/** Options of {@linkcode niceTicks}. */
export interface NiceTicksOptions {
  /** Largest number of intervals wanted; default 5 (the result has at most count + 1 ticks). */
  count?: number;
  /** Use steps of at least 1 (for integer data such as mode indices); default false. */
  integer?: boolean;
}

/**
 * "Nice" tick positions covering [low, high]: every multiple of a step of 1, 2 or 5 × 10^k
 * inside the interval, with the smallest such step giving at most `count` intervals.
 *
 * @example
 * ```ts
 * import { niceTicks } from "./plot.ts";
 * console.log(niceTicks(-0.013, 0.021, { count: 4 })); // [ -0.01, 0, 0.01, 0.02 ]
 * ```
 */
export function niceTicks(low: number, high: number, options: NiceTicksOptions = {}): number[] {
  return niceTicksWithStep(low, high, options).ticks;
}

function niceTicksWithStep(
  low: number,
  high: number,
  options: NiceTicksOptions,
): { ticks: number[]; step: number } {
  checkRange([low, high], "tick interval");
  const count = options.count ?? 5;
  assertPositiveInteger(count, "tick count");
  const raw = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  let step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * magnitude;
  if (options.integer && step < 1) step = 1;
  const first = Math.ceil(low / step - 1e-9);
  const last = Math.floor(high / step + 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(parseFloat((i * step).toPrecision(12)) + 0);
  return { ticks, step };
}

/** Removes trailing zeros after a decimal point ("1.50" → "1.5", "2.0" → "2"). */
function trimZeros(s: string): string {
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

/**
 * Labels for linear ticks with spacing `step`: fixed decimals enough to tell them apart, or
 * 2.5e-5 style when the values are all tiny (< 1e-3) or huge (≥ 1e6).
 */
function formatTicks(ticks: number[], step: number): string[] {
  const biggest = Math.max(0, ...ticks.map(Math.abs));
  const stepExp = Math.floor(Math.log10(step) + 1e-9);
  if (biggest >= 1e6 || (biggest > 0 && biggest < 1e-3)) {
    return ticks.map((v) => {
      if (Math.abs(v) < step / 2) return "0";
      const e = Math.floor(Math.log10(Math.abs(v)) + 1e-9);
      const digits = Math.min(8, Math.max(0, e - stepExp));
      return `${trimZeros((v / 10 ** e).toFixed(digits))}e${e}`;
    });
  }
  const decimals = Math.min(12, Math.max(0, -stepExp));
  return ticks.map((v) => (Math.abs(v) < step / 2 ? 0 : v).toFixed(decimals));
}

/** Label of a positive log-axis tick: plain within 1e-3..1e4, else 2e-5 style. */
function formatLogTick(v: number): string {
  const e = Math.floor(Math.log10(v) + 1e-9);
  if (e >= -3 && e <= 4) return String(parseFloat(v.toPrecision(6)));
  const mantissa = parseFloat((v / 10 ** e).toPrecision(3));
  return `${mantissa}e${e}`;
}

/** Ticks on a log axis whose domain is [lo, hi] in log10 units. */
function logTicks(lo: number, hi: number, count: number): { ticks: number[]; labels: string[] } {
  const d0 = Math.ceil(lo - 1e-9);
  const d1 = Math.floor(hi + 1e-9);
  if (d1 - d0 >= 2) {
    const stride = Math.max(1, Math.ceil((d1 - d0) / count));
    const ticks: number[] = [];
    for (let d = Math.ceil(d0 / stride) * stride; d <= d1; d += stride) ticks.push(10 ** d);
    return { ticks, labels: ticks.map(formatLogTick) };
  }
  const ticks: number[] = [];
  for (let d = Math.floor(lo) - 1; d <= Math.ceil(hi); d++) {
    for (const m of [1, 2, 5]) {
      const v = parseFloat((m * 10 ** d).toPrecision(6));
      const l = Math.log10(v);
      if (l >= lo - 1e-9 && l <= hi + 1e-9) ticks.push(v);
    }
  }
  if (ticks.length >= 2 && ticks.length <= count + 1) {
    return { ticks, labels: ticks.map(formatLogTick) };
  }
  if (ticks.length > count + 1) {
    const decades = ticks.filter((v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9);
    if (decades.length >= 2) return { ticks: decades, labels: decades.map(formatLogTick) };
  }
  const linear = niceTicksWithStep(10 ** lo, 10 ** hi, { count });
  const positive = linear.ticks.filter((v) => v > 0);
  return { ticks: positive, labels: formatTicks(positive, linear.step) };
}

// ---------------------------------------------------------------------------------------------
// Line charts

/** One data series of {@linkcode lineChart}. */
export interface ChartSeries {
  /** Legend label (series with an empty name are left out of the legend). */
  name: string;
  /** x coordinates. */
  x: ArrayLike<number>;
  /** y coordinates, as many as `x`; non-finite points (and y ≤ 0 on a log axis) are gaps. */
  y: ArrayLike<number>;
  /** Colour; default the next colour of {@linkcode PALETTE}. */
  color?: Rgb;
  /** Marker drawn at each point; default `"none"`. */
  marker?: "dot" | "cross" | "none";
  /** Join consecutive points with straight lines; default true. */
  line?: boolean;
}

/** Options of {@linkcode lineChart} and {@linkcode lineChartLayout}. */
export interface LineChartOptions {
  /** Title above the plot. */
  title?: string;
  /** Label under the x axis. */
  xLabel?: string;
  /** Label beside the y axis (drawn reading upwards). */
  yLabel?: string;
  /** Logarithmic y axis (ticks at decades, or 1-2-5 within a decade); default false. */
  logY?: boolean;
  /** Image width in pixels; default 800. */
  width?: number;
  /** Image height in pixels; default 500. */
  height?: number;
  /** Fixed x interval shown, exactly; default the data extent plus 5% each side. */
  xRange?: readonly [number, number];
  /** Fixed y interval shown, exactly (positive when `logY`); default data extent plus 5%. */
  yRange?: readonly [number, number];
  /** Integer magnification of all text (5×7 font); default 2. */
  fontScale?: number;
}

/** Where {@linkcode lineChart} puts things: the plot area and the mapping into it. */
export interface ChartLayout {
  /** Image width. */
  width: number;
  /** Image height. */
  height: number;
  /**
   * The data area in pixels (the frame is drawn just outside it). A point (x, y) lands at column
   * `plot.x + round((x − x0) / (x1 − x0) · (plot.width − 1))` and row
   * `plot.y + plot.height − 1 − round((y − y0) / (y1 − y0) · (plot.height − 1))`, with
   * [x0, x1] = `xDomain` and [y0, y1] = `yDomain` (log10 of both for y when `logY`).
   */
  plot: PixelRect;
  /** Data interval of the x axis. */
  xDomain: [number, number];
  /** Data interval of the y axis (not logged). */
  yDomain: [number, number];
  /** Whether the y axis is logarithmic. */
  logY: boolean;
  /** x tick positions (data units) and their labels. */
  xTicks: { value: number; label: string }[];
  /** y tick positions (data units) and their labels. */
  yTicks: { value: number; label: string }[];
  /**
   * The legend box, if any series is named: beside the plot on the right, or over the plot's
   * top-right corner when the image is too narrow for that.
   */
  legend?: PixelRect;
}

interface CheckedSeries {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color: Rgb;
  marker: "dot" | "cross" | "none";
  line: boolean;
}

function isRgb(value: unknown): boolean {
  return Array.isArray(value) && value.length === 3 &&
    value.every((c) => typeof c === "number" && c >= 0 && c <= 255);
}

function checkSeries(series: readonly ChartSeries[]): CheckedSeries[] {
  if (!Array.isArray(series)) {
    throw new RangeError(`Invalid series ${series}: it must be an array of { name, x, y }`);
  }
  return series.map((s, k) => {
    const label = `series ${k}${s?.name ? ` ("${s.name}")` : ""}`;
    if (!s || typeof s !== "object" || !s.x || !s.y) {
      throw new RangeError(`Invalid ${label}: it must be an object with x and y arrays`);
    }
    if (s.x.length !== s.y.length) {
      throw new RangeError(
        `Invalid ${label}: x has ${s.x.length} values but y has ${s.y.length}; ` +
          `they must have the same length`,
      );
    }
    const marker = s.marker ?? "none";
    if (marker !== "dot" && marker !== "cross" && marker !== "none") {
      throw new RangeError(
        `Invalid marker "${marker}" of ${label}: allowed values are dot, cross, none`,
      );
    }
    const color: Rgb = s.color ?? PALETTE[k % PALETTE.length];
    if (!isRgb(color)) {
      throw new RangeError(
        `Invalid colour ${color} of ${label}: it must be [r, g, b] with channels in 0–255`,
      );
    }
    return { name: String(s.name ?? ""), x: s.x, y: s.y, color, marker, line: s.line ?? true };
  });
}

function paddedDomain(lo: number, hi: number, fallback: [number, number]): [number, number] {
  if (!(lo <= hi)) return fallback;
  if (lo === hi) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    return [lo - d, hi + d];
  }
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

/**
 * Computes the layout of {@linkcode lineChart}: margins sized to the tick labels, title, axis
 * labels and legend; the data domain; and the ticks. Useful to place annotations or to test
 * where a point lands.
 *
 * @example
 * ```ts
 * import { lineChartLayout } from "./plot.ts";
 * const layout = lineChartLayout([{ name: "loss", x: [0, 10], y: [1, 0.1] }], { logY: true });
 * console.log(layout.yTicks.map((t) => t.label)); // [ "0.1", "0.2", "0.5", "1" ]
 * ```
 */
export function lineChartLayout(
  series: readonly ChartSeries[],
  options: LineChartOptions = {},
): ChartLayout {
  const checked = checkSeries(series);
  const width = options.width ?? 800;
  const height = options.height ?? 500;
  assertPositiveInteger(width, "width");
  assertPositiveInteger(height, "height");
  const fs = options.fontScale ?? 2;
  assertPositiveInteger(fs, "font scale");
  const logY = options.logY ?? false;
  const { ascent, descent, advance } = FONT_METRICS;
  const lineH = (ascent + descent) * fs;
  const charW = advance * fs;
  const pad = 12;
  const tick = 5;

  // Data domain.
  let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity;
  let integerX = true;
  for (const s of checked) {
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i];
      const y = s.y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y) || (logY && !(y > 0))) continue;
      xMin = Math.min(xMin, x);
      xMax = Math.max(xMax, x);
      yMin = Math.min(yMin, y);
      yMax = Math.max(yMax, y);
      if (!Number.isInteger(x)) integerX = false;
    }
  }
  const xDomain = options.xRange
    ? checkRange(options.xRange, "x range")
    : paddedDomain(xMin, xMax, [0, 1]);
  let yDomain: [number, number];
  if (options.yRange) {
    yDomain = checkRange(options.yRange, "y range");
    if (logY && !(yDomain[0] > 0)) {
      throw new RangeError(
        `Invalid y range [${yDomain.join(", ")}]: a log axis needs a positive low end`,
      );
    }
  } else if (logY) {
    const [a, b] = paddedDomain(Math.log10(yMin), Math.log10(yMax), [0, 1]);
    yDomain = [10 ** a, 10 ** b];
  } else {
    yDomain = paddedDomain(yMin, yMax, [0, 1]);
  }

  // Vertical layout (independent of the tick labels).
  const top = pad + (options.title ? lineH + 10 : Math.ceil(lineH / 2));
  const bottom = pad + tick + 4 + lineH + (options.xLabel ? 8 + lineH : 0);
  const plotH = height - top - bottom;
  if (plotH < 20) {
    throw new RangeError(
      `Invalid height ${height}: it must leave at least 20 px for the plot after the labels`,
    );
  }

  // y ticks and their labels decide the left margin.
  const yCount = Math.max(2, Math.floor(plotH / (lineH * 1.8)));
  let yTicks: { value: number; label: string }[];
  if (logY) {
    const t = logTicks(Math.log10(yDomain[0]), Math.log10(yDomain[1]), yCount);
    yTicks = t.ticks.map((value, i) => ({ value, label: t.labels[i] }));
  } else {
    const t = niceTicksWithStep(yDomain[0], yDomain[1], { count: yCount });
    const labels = formatTicks(t.ticks, t.step);
    yTicks = t.ticks.map((value, i) => ({ value, label: labels[i] }));
  }
  const yLabelW = Math.max(0, ...yTicks.map((t) => textSize(t.label, { scale: fs }).width));
  const left = pad + (options.yLabel ? lineH + 10 : 0) + yLabelW + 4 + tick;

  // Legend beside the plot, or over its top-right corner when that would squeeze the plot.
  const named = checked.filter((s) => s.name.length > 0);
  const sample = 28;
  let legend: PixelRect | undefined;
  let right = pad + 3 * charW;
  if (named.length > 0) {
    const nameW = Math.max(...named.map((s) => textSize(s.name, { scale: fs }).width));
    const legendW = 8 + sample + 8 + nameW + 8;
    const legendH = 6 + named.length * (lineH + 6);
    const beside = width - left - (pad + legendW + 16);
    if (beside >= Math.max(100, 0.55 * (width - left - right))) {
      legend = { x: width - pad - legendW, y: top, width: legendW, height: legendH };
      right = pad + legendW + 16;
    } else {
      legend = { x: width - right - 6 - legendW, y: top + 6, width: legendW, height: legendH };
    }
  }
  const plotW = width - left - right;
  if (plotW < 20) {
    throw new RangeError(
      `Invalid width ${width}: it must leave at least 20 px for the plot after the labels`,
    );
  }

  // x ticks: the most that fit without their labels touching.
  let xTicks: { value: number; label: string }[] = [];
  for (let count = Math.max(2, Math.floor(plotW / (charW * 4))); count >= 1; count--) {
    const t = niceTicksWithStep(xDomain[0], xDomain[1], { count, integer: integerX });
    const labels = formatTicks(t.ticks, t.step);
    xTicks = t.ticks.map((value, i) => ({ value, label: labels[i] }));
    const spacing = (t.step / (xDomain[1] - xDomain[0])) * (plotW - 1);
    const widest = Math.max(0, ...labels.map((l) => textSize(l, { scale: fs }).width));
    if (widest + 2 * charW <= spacing) break;
  }
  return {
    width,
    height,
    plot: { x: left, y: top, width: plotW, height: plotH },
    xDomain,
    yDomain,
    logY,
    xTicks,
    yTicks,
    legend,
  };
}

/** Pixel position of a data point in a layout (not clipped). */
function toPixel(layout: ChartLayout, x: number, y: number): { x: number; y: number } {
  const { plot, xDomain, yDomain, logY } = layout;
  const f = logY ? Math.log10 : (v: number) => v;
  const u = (x - xDomain[0]) / (xDomain[1] - xDomain[0]);
  const v = (f(y) - f(yDomain[0])) / (f(yDomain[1]) - f(yDomain[0]));
  return {
    x: plot.x + Math.round(u * (plot.width - 1)),
    y: plot.y + plot.height - 1 - Math.round(v * (plot.height - 1)),
  };
}

function drawMarker(
  image: RgbaImage,
  marker: "dot" | "cross" | "none",
  at: { x: number; y: number },
  color: Color,
  fs: number,
): void {
  if (marker === "dot") fillCircle(image, { x: at.x, y: at.y, radius: fs + 1, color });
  else if (marker === "cross") {
    const a = fs + 2;
    const width = fs >= 2 ? 2 : 1;
    drawLine(image, { x0: at.x - a, y0: at.y - a, x1: at.x + a, y1: at.y + a, color, width });
    drawLine(image, { x0: at.x - a, y0: at.y + a, x1: at.x + a, y1: at.y - a, color, width });
  }
}

/** Rotates an image a quarter turn counter-clockwise. */
function rotateLeft(image: RgbaImage): RgbaImage {
  const out = createImage(image.height, image.width, { background: [0, 0, 0, 0] });
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const s = (y * image.width + x) * 4;
      const t = ((image.width - 1 - x) * out.width + y) * 4;
      out.data.set(image.data.subarray(s, s + 4), t);
    }
  }
  return out;
}

/** Draws text reading upwards, its rotated box centred vertically on `centerY`. */
function drawTextUp(
  image: RgbaImage,
  text: string,
  options: { x: number; centerY: number; scale: number },
): void {
  const size = textSize(text, { scale: options.scale });
  if (size.width === 0) return;
  const flat = createImage(size.width, size.height, { background: [0, 0, 0, 0] });
  drawText(flat, text, { x: 0, y: 0, scale: options.scale, color: TEXT });
  drawImage(image, rotateLeft(flat), {
    x: options.x,
    y: Math.round(options.centerY - size.width / 2),
  });
}

/**
 * Renders series as a chart with a frame, grid lines, "nice" tick labels (1-2-5 steps, decades
 * on a log axis), optional title and axis labels, and a legend of the named series on the right.
 * Each series is drawn as lines and/or markers (dots or crosses) in its colour; points outside
 * the domain are clipped. See {@linkcode lineChartLayout} for where points land.
 *
 * @example Spectrum vs truth
 * ```ts
 * import { lineChart } from "./plot.ts";
 * const modes = [1, 2, 3, 4, 5];
 * const image = lineChart([
 *   { name: "true", x: modes, y: [1, 2, 2, 3, 3], marker: "cross", line: false },
 *   { name: "learned", x: modes, y: [1.01, 1.98, 2.03, 2.9, 3.1], marker: "dot", line: false },
 * ], { title: "Spectrum", xLabel: "mode", yLabel: "eigenvalue" });
 * console.log(image.width, image.height); // 800 500
 * ```
 */
export function lineChart(
  series: readonly ChartSeries[],
  options: LineChartOptions = {},
): RgbaImage {
  const layout = lineChartLayout(series, options);
  const checked = checkSeries(series);
  const fs = options.fontScale ?? 2;
  const { plot } = layout;
  const { ascent } = FONT_METRICS;
  const lineH = (ascent + FONT_METRICS.descent) * fs;
  const image = createImage(layout.width, layout.height);

  // Data area, drawn separately so that lines and markers are clipped to it.
  const area = createImage(plot.width, plot.height);
  for (const t of layout.xTicks) {
    const p = toPixel(layout, t.value, layout.yDomain[0]).x - plot.x;
    drawLine(area, { x0: p, y0: 0, x1: p, y1: plot.height - 1, color: GRID });
  }
  for (const t of layout.yTicks) {
    const p = toPixel(layout, layout.xDomain[0], t.value).y - plot.y;
    drawLine(area, { x0: 0, y0: p, x1: plot.width - 1, y1: p, color: GRID });
  }
  const lineWidth = fs >= 2 ? 2 : 1;
  const points = checked.map((s) => {
    const pts: ({ x: number; y: number } | undefined)[] = [];
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i];
      const y = s.y[i];
      const ok = Number.isFinite(x) && Number.isFinite(y) && (!layout.logY || y > 0);
      if (!ok) {
        pts.push(undefined);
        continue;
      }
      const p = toPixel(layout, x, y);
      // Keep far-away points within Bresenham-friendly bounds.
      const cx = Math.max(-1e5, Math.min(1e5, p.x - plot.x));
      const cy = Math.max(-1e5, Math.min(1e5, p.y - plot.y));
      pts.push({ x: cx, y: cy });
    }
    return pts;
  });
  checked.forEach((s, k) => {
    if (!s.line) return;
    const pts = points[k];
    for (let i = 1; i < pts.length; i++) {
      const a = pts[i - 1];
      const b = pts[i];
      if (a && b) {
        drawLine(area, { x0: a.x, y0: a.y, x1: b.x, y1: b.y, color: s.color, width: lineWidth });
      }
    }
  });
  checked.forEach((s, k) => {
    for (const p of points[k]) if (p) drawMarker(area, s.marker, p, s.color, fs);
  });
  drawImage(image, area, { x: plot.x, y: plot.y });

  // Frame and ticks.
  const x0 = plot.x - 1;
  const y0 = plot.y - 1;
  const x1 = plot.x + plot.width;
  const y1 = plot.y + plot.height;
  drawLine(image, { x0, y0, x1, y1: y0, color: AXIS });
  drawLine(image, { x0, y0: y1, x1, y1, color: AXIS });
  drawLine(image, { x0, y0, x1: x0, y1, color: AXIS });
  drawLine(image, { x0: x1, y0, x1, y1, color: AXIS });
  for (const t of layout.xTicks) {
    const px = toPixel(layout, t.value, layout.yDomain[0]).x;
    drawLine(image, { x0: px, y0: y1 + 1, x1: px, y1: y1 + 5, color: AXIS });
    drawText(image, t.label, { x: px, y: y1 + 9, scale: fs, align: "center", color: TEXT });
  }
  for (const t of layout.yTicks) {
    const py = toPixel(layout, layout.xDomain[0], t.value).y;
    drawLine(image, { x0: x0 - 5, y0: py, x1: x0 - 1, y1: py, color: AXIS });
    const ty = py - Math.floor((ascent * fs) / 2);
    drawText(image, t.label, { x: x0 - 9, y: ty, scale: fs, align: "right", color: TEXT });
  }

  // Title and axis labels.
  if (options.title) {
    drawText(image, options.title, {
      x: plot.x + plot.width / 2,
      y: 12,
      scale: fs,
      align: "center",
      color: TEXT,
    });
  }
  if (options.xLabel) {
    drawText(image, options.xLabel, {
      x: plot.x + plot.width / 2,
      y: y1 + 9 + lineH + 8,
      scale: fs,
      align: "center",
      color: TEXT,
    });
  }
  if (options.yLabel) {
    drawTextUp(image, options.yLabel, { x: 12, centerY: plot.y + plot.height / 2, scale: fs });
  }

  // Legend.
  if (layout.legend) {
    const box = layout.legend;
    fillRect(image, { ...box, color: BORDER });
    fillRect(image, {
      x: box.x + 1,
      y: box.y + 1,
      width: box.width - 2,
      height: box.height - 2,
      color: [255, 255, 255],
    });
    checked.filter((s) => s.name.length > 0).forEach((s, i) => {
      const rowTop = box.y + 6 + i * (lineH + 6);
      const cy = rowTop + Math.floor((ascent * fs) / 2);
      const sx = box.x + 8;
      if (s.line) {
        drawLine(image, { x0: sx, y0: cy, x1: sx + 28, y1: cy, color: s.color, width: lineWidth });
      }
      drawMarker(image, s.marker, { x: sx + 14, y: cy }, s.color, fs);
      drawText(image, s.name, { x: sx + 36, y: rowTop, scale: fs, color: TEXT });
    });
  }
  return image;
}

// ---------------------------------------------------------------------------------------------
// Matrix heatmaps

/** Options of {@linkcode matrixHeatmap}. */
export interface MatrixHeatmapOptions {
  /** Title above the matrix. */
  title?: string;
  /** Colour map; default `"sequential"`. */
  cmap?: ColormapName;
  /** Values at the two ends of the colour map; default as in {@linkcode heatmap}. */
  range?: readonly [number, number];
  /** Side of each cell in pixels; default about 480 px / the larger dimension (2–80). */
  cellSize?: number;
  /** Index of the first row and column in the labels; default 1 (mode numbers). */
  indexBase?: number;
  /** Write each value in its cell; default when the matrix is at most 12×12 and text fits. */
  annotate?: boolean;
  /** Integer magnification of titles and labels; default 2. */
  fontScale?: number;
}

function formatCell(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 0.01 && a < 1000) return v.toFixed(a >= 100 ? 0 : 2);
  const e = Math.floor(Math.log10(a));
  return `${Math.round(v / 10 ** e)}e${e}`;
}

/**
 * Renders a matrix as a heatmap with row and column index labels (row 0 at the top), a colour
 * bar with tick labels, an optional title, and (for small matrices) the values in the cells.
 * Meant for Gram/orthogonality matrices such as C or |C − I|.
 *
 * @example
 * ```ts
 * import { matrixHeatmap } from "./plot.ts";
 * const c = [[1, 0.02, 0], [0.02, 0.97, 0.01], [0, 0.01, 1.01]];
 * const image = matrixHeatmap(c, { title: "C" });
 * console.log(image.width > image.height); // true
 * ```
 */
export function matrixHeatmap(matrix: ValueGrid, options: MatrixHeatmapOptions = {}): RgbaImage {
  const { rows, cols } = gridShape(matrix, "matrix");
  const cmap = checkCmap(options.cmap ?? "sequential");
  const range = options.range ? checkRange(options.range) : autoRange([matrix], cmap);
  const cell = options.cellSize ??
    Math.max(2, Math.min(80, Math.floor(480 / Math.max(rows, cols))));
  assertPositiveInteger(cell, "cell size");
  const fs = options.fontScale ?? 2;
  assertPositiveInteger(fs, "font scale");
  const base = options.indexBase ?? 1;
  if (!Number.isInteger(base)) {
    throw new RangeError(`Invalid index base ${base}: it must be an integer`);
  }
  const { ascent, descent, advance } = FONT_METRICS;
  const lineH = (ascent + descent) * fs;
  const capH = ascent * fs;
  const pad = 12;

  // Label strides: the smallest 1-2-5 step whose labels do not collide.
  const labelW = (i: number) => textSize(String(i + base), { scale: fs }).width;
  const widest = Math.max(labelW(0), labelW(rows - 1), labelW(cols - 1));
  const strideFor = (need: number) => {
    for (const s of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]) {
      if (s * cell >= need) return s;
    }
    return 10000;
  };
  const colGap = 2 * advance * fs;
  const rowGap = capH + 8;
  const colStride = strideFor(widest + colGap);
  const rowStride = strideFor(rowGap);
  // Indices that are multiples of the stride, plus the first one when it has room.
  const labelled = (n: number, stride: number, room: (first: number) => boolean) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) if ((i + base) % stride === 0) out.push(i);
    if (out[0] !== 0 && (out.length === 0 || room(out[0]))) out.unshift(0);
    return out;
  };
  const rowLabels = labelled(rows, rowStride, (i) => i * cell >= rowGap);
  const colLabels = labelled(
    cols,
    colStride,
    (j) => j * cell >= (labelW(0) + labelW(j)) / 2 + colGap,
  );

  const matW = cols * cell;
  const matH = rows * cell;
  const barH = Math.max(matH, 120);
  const barW = 18;
  const barTicks = niceTicksWithStep(range[0], range[1], {
    count: Math.max(2, Math.min(8, Math.floor(barH / (lineH * 2)))),
  });
  const barLabels = formatTicks(barTicks.ticks, barTicks.step);
  const barLabelW = Math.max(0, ...barLabels.map((l) => textSize(l, { scale: fs }).width));
  const rowLabelW = Math.max(labelW(0), labelW(rows - 1));

  const left = pad + rowLabelW + 8;
  const top = pad + (options.title ? lineH + 12 : Math.ceil(capH / 2));
  const titleW = options.title ? textSize(options.title, { scale: fs }).width : 0;
  const contentW = matW + 20 + barW + 6 + barLabelW;
  const width = Math.max(left + contentW + pad, titleW + 2 * pad);
  const height = top + Math.max(matH + 8 + lineH, barH + Math.ceil(capH / 2)) + pad;
  const image = createImage(width, height);

  if (options.title) {
    // Centred over the matrix, but kept inside the image when it is wider than the matrix.
    const cx = Math.min(Math.max(left + matW / 2, pad + titleW / 2), width - pad - titleW / 2);
    drawText(image, options.title, { x: cx, y: pad, scale: fs, align: "center", color: TEXT });
  }
  fillRect(image, { x: left - 1, y: top - 1, width: matW + 2, height: matH + 2, color: BORDER });
  drawImage(image, heatmap(matrix, { cmap, range, cellSize: cell }), { x: left, y: top });

  for (const i of rowLabels) {
    const cy = top + i * cell + Math.floor(cell / 2) - Math.floor(capH / 2);
    drawText(image, String(i + base), { x: left - 6, y: cy, scale: fs, align: "right" });
  }
  for (const j of colLabels) {
    const cx = left + j * cell + cell / 2;
    drawText(image, String(j + base), { x: cx, y: top + matH + 6, scale: fs, align: "center" });
  }

  // Values inside the cells.
  const annotate = options.annotate ??
    (Math.max(rows, cols) <= 12 &&
      Math.max(...matrix.flatMap((r) => Array.from(r, (v) => textSize(formatCell(v)).width))) <=
        cell - 4 &&
      cell >= 14);
  if (annotate) {
    const widestValue = Math.max(
      ...matrix.flatMap((r) => Array.from(r, (v) => textSize(formatCell(v)).width)),
    );
    let scale = fs;
    while (scale > 1 && widestValue * scale > cell - 12) scale--;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const v = matrix[i][j];
        const c = colorAt(Number.isNaN(v) ? NaN : (v - range[0]) / (range[1] - range[0]), {
          cmap,
        });
        const light = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140;
        drawText(image, formatCell(v), {
          x: left + j * cell + cell / 2,
          y: top + i * cell + Math.floor(cell / 2) - Math.floor((ascent * scale) / 2),
          scale,
          align: "center",
          color: light ? [0, 0, 0] : [255, 255, 255],
        });
      }
    }
  }

  // Colour bar: low at the bottom, high at the top.
  const bx = left + matW + 20;
  const by = top;
  fillRect(image, { x: bx - 1, y: by - 1, width: barW + 2, height: barH + 2, color: BORDER });
  for (let k = 0; k < barH; k++) {
    const c = colorAt(1 - k / (barH - 1), { cmap });
    fillRect(image, { x: bx, y: by + k, width: barW, height: 1, color: c });
  }
  barTicks.ticks.forEach((v, k) => {
    const py = by + Math.round((1 - (v - range[0]) / (range[1] - range[0])) * (barH - 1));
    // Tick notches inside the bar: marks outside it would read as minus signs.
    drawLine(image, { x0: bx, y0: py, x1: bx + 3, y1: py, color: AXIS });
    drawLine(image, { x0: bx + barW - 4, y0: py, x1: bx + barW - 1, y1: py, color: AXIS });
    drawText(image, barLabels[k], {
      x: bx + barW + 6,
      y: py - Math.floor(capH / 2),
      scale: fs,
      color: TEXT,
    });
  });
  return image;
}
