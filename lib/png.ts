/**
 * Dependency-free raster images: an RGBA pixel buffer, PNG encoding and decoding (zlib through
 * `node:zlib`, CRC-32 implemented here), drawing primitives (pixels, rectangles, lines, discs,
 * image composition) and text in a built-in 5×7 bitmap font.
 *
 * Coordinates are pixels with the origin at the top-left corner, x to the right and y down.
 * Drawing outside the image is clipped silently; non-finite coordinates throw a `RangeError`.
 *
 * @example Draw a labelled square and save it
 * ```ts
 * import { createImage, drawText, encodePng, fillRect } from "./png.ts";
 * const image = createImage(80, 40);
 * fillRect(image, { x: 4, y: 4, width: 32, height: 32, color: [200, 30, 30] });
 * drawText(image, "E=-0.5", { x: 40, y: 16 });
 * const bytes = encodePng(image);
 * console.log(bytes.length > 0); // true
 * ```
 *
 * @module
 */
import { deflateSync, inflateSync } from "node:zlib";
import { assertFinite, assertPositiveInteger } from "./checks.ts";

/** An 8-bit RGBA image: `data` holds `width * height * 4` bytes, row-major, top row first. */
export interface RgbaImage {
  /** Width in pixels (a positive integer). */
  width: number;
  /** Height in pixels (a positive integer). */
  height: number;
  /** Pixels as R, G, B, A bytes, row by row from the top-left corner. */
  data: Uint8Array;
}

/** A colour as `[r, g, b]` (opaque) or `[r, g, b, a]`, each channel in 0–255. */
export type Color =
  | readonly [number, number, number]
  | readonly [number, number, number, number];

/** A rectangle in pixels: top-left corner and size. */
export interface PixelRect {
  /** Left edge. */
  x: number;
  /** Top edge. */
  y: number;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

/** Largest number of pixels {@linkcode createImage} accepts (2^28, 1 GiB of RGBA). */
export const MAX_PIXELS = 2 ** 28;

// ---------------------------------------------------------------------------------------------
// Validation helpers

function assertImage(image: RgbaImage, name = "image"): void {
  if (image === null || typeof image !== "object") {
    throw new RangeError(`Invalid ${name} ${image}: it must be an object with width, height, data`);
  }
  assertPositiveInteger(image.width, `${name} width`);
  assertPositiveInteger(image.height, `${name} height`);
  if (!(image.data instanceof Uint8Array)) {
    throw new RangeError(`Invalid ${name} data: it must be a Uint8Array of RGBA bytes`);
  }
  const expected = image.width * image.height * 4;
  if (image.data.length !== expected) {
    throw new RangeError(
      `Invalid ${name} data length ${image.data.length}: a ${image.width}x${image.height} ` +
        `RGBA image needs exactly ${expected} bytes`,
    );
  }
}

/** Validates a colour and returns it as four integer channels. */
function rgba(color: Color, name = "color"): [number, number, number, number] {
  if (!Array.isArray(color) || (color.length !== 3 && color.length !== 4)) {
    throw new RangeError(`Invalid ${name} ${color}: it must be [r, g, b] or [r, g, b, a]`);
  }
  const out: [number, number, number, number] = [0, 0, 0, 255];
  for (let i = 0; i < color.length; i++) {
    const c = color[i];
    if (typeof c !== "number" || !(c >= 0 && c <= 255)) {
      throw new RangeError(
        `Invalid ${name} [${color.join(", ")}]: each channel must be a number in 0–255`,
      );
    }
    out[i] = Math.round(c);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (ISO 3309 / ITU-T V.42, the polynomial PNG uses), table-driven

let crcTable: Uint32Array | undefined;

function getCrcTable(): Uint32Array {
  if (crcTable) return crcTable;
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  crcTable = table;
  return table;
}

/** Continues a CRC-32 over `bytes`; start from `0xffffffff` and xor the result with it. */
function crcUpdate(crc: number, bytes: Uint8Array): number {
  const table = getCrcTable();
  let c = crc;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/**
 * CRC-32 checksum (the one PNG chunks, zip and gzip use) of bytes, or of a string's UTF-8 bytes.
 *
 * @example
 * ```ts
 * import { crc32 } from "./png.ts";
 * console.log(crc32("123456789").toString(16)); // "cbf43926"
 * ```
 */
export function crc32(input: Uint8Array | string): number {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
  return (crcUpdate(0xffffffff, bytes) ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// PNG encoding

const PNG_SIGNATURE = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);

function writeU32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = (value >>> 24) & 0xff;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;
}

/** One PNG chunk: length, 4-letter type, data, CRC-32 of type and data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  writeU32(out, 0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  const crc = crcUpdate(0xffffffff, out.subarray(4, 8 + data.length)) ^ 0xffffffff;
  writeU32(out, 8 + data.length, crc >>> 0);
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/** Writes row `row` filtered with `type` into `out` (without the filter-type byte). */
function filterRow(
  type: number,
  row: Uint8Array,
  prev: Uint8Array | undefined,
  bpp: number,
  out: Uint8Array,
): void {
  const n = row.length;
  for (let i = 0; i < n; i++) {
    const x = row[i];
    const a = i >= bpp ? row[i - bpp] : 0;
    const b = prev ? prev[i] : 0;
    const c = prev && i >= bpp ? prev[i - bpp] : 0;
    let v: number;
    switch (type) {
      case 0:
        v = x;
        break;
      case 1:
        v = x - a;
        break;
      case 2:
        v = x - b;
        break;
      case 3:
        v = x - ((a + b) >> 1);
        break;
      default:
        v = x - paeth(a, b, c);
    }
    out[i] = v & 0xff;
  }
}

/** Options of {@linkcode encodePng}. */
export interface EncodePngOptions {
  /**
   * Row filtering: `"adaptive"` (default) picks, per row, the filter type with the smallest sum
   * of absolute residuals (smaller files); `"none"` writes filter type 0 on every row.
   */
  filter?: "none" | "adaptive";
  /** zlib compression level 0–9; default 6. */
  level?: number;
}

/**
 * Encodes an RGBA image as a PNG file (8-bit truecolour with alpha, non-interlaced).
 *
 * @example
 * ```ts
 * import { createImage, encodePng } from "./png.ts";
 * const bytes = encodePng(createImage(4, 3, { background: [0, 128, 255] }));
 * console.log(bytes.subarray(1, 4)); // Uint8Array(3) [ 80, 78, 71 ]  ("PNG")
 * ```
 */
export function encodePng(image: RgbaImage, options: EncodePngOptions = {}): Uint8Array {
  assertImage(image);
  const filter = options.filter ?? "adaptive";
  if (filter !== "none" && filter !== "adaptive") {
    throw new RangeError(`Invalid filter "${filter}": allowed values are none, adaptive`);
  }
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new RangeError(`Invalid compression level ${level}: it must be an integer in 0–9`);
  }
  const { width, height, data } = image;
  const stride = width * 4;
  const raw = new Uint8Array((stride + 1) * height);
  const candidate = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = data.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? data.subarray((y - 1) * stride, y * stride) : undefined;
    const dest = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    let best = 0;
    if (filter === "adaptive") {
      let bestScore = Infinity;
      for (let type = 0; type <= 4; type++) {
        filterRow(type, row, prev, 4, candidate);
        let score = 0;
        for (let i = 0; i < stride; i++) {
          const v = candidate[i];
          score += v < 128 ? v : 256 - v;
        }
        if (score < bestScore) {
          bestScore = score;
          best = type;
        }
      }
    }
    raw[y * (stride + 1)] = best;
    filterRow(best, row, prev, 4, dest);
  }
  const ihdr = new Uint8Array(13);
  writeU32(ihdr, 0, width);
  writeU32(ihdr, 4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type: truecolour with alpha
  ihdr[10] = 0; // compression: deflate
  ihdr[11] = 0; // filter method 0
  ihdr[12] = 0; // no interlace
  const idat = new Uint8Array(deflateSync(raw, { level }));
  const parts = [
    PNG_SIGNATURE,
    chunk("IHDR", ihdr),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// PNG decoding

/** The header fields of a PNG file. */
export interface PngHeader {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Bits per sample. */
  bitDepth: number;
  /** PNG colour type: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA. */
  colorType: number;
  /** Interlace method: 0 none, 1 Adam7. */
  interlace: number;
}

interface PngChunk {
  type: string;
  data: Uint8Array;
}

function* readChunks(bytes: Uint8Array): Generator<PngChunk> {
  if (!(bytes instanceof Uint8Array)) {
    throw new RangeError(`Invalid PNG bytes ${bytes}: they must be a Uint8Array`);
  }
  if (bytes.length < 8 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw new RangeError("Invalid PNG bytes: the 8-byte PNG signature is missing");
  }
  let pos = 8;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) {
      throw new RangeError(`Invalid PNG bytes: truncated chunk header at offset ${pos}`);
    }
    const length = readU32(bytes, pos);
    if (pos + 12 + length > bytes.length) {
      throw new RangeError(
        `Invalid PNG chunk length ${length} at offset ${pos}: only ${
          bytes.length - pos - 12
        } bytes remain`,
      );
    }
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const stored = readU32(bytes, pos + 8 + length);
    const actual = (crcUpdate(0xffffffff, bytes.subarray(pos + 4, pos + 8 + length)) ^
      0xffffffff) >>> 0;
    if (stored !== actual) {
      throw new RangeError(
        `Invalid PNG chunk ${type} at offset ${pos}: CRC is ${stored.toString(16)} but the ` +
          `data gives ${actual.toString(16)}`,
      );
    }
    yield { type, data: bytes.subarray(pos + 8, pos + 8 + length) };
    if (type === "IEND") return;
    pos += 12 + length;
  }
  throw new RangeError("Invalid PNG bytes: the IEND chunk is missing");
}

function parseHeader(data: Uint8Array): PngHeader {
  if (data.length !== 13) {
    throw new RangeError(`Invalid PNG IHDR length ${data.length}: it must be 13 bytes`);
  }
  return {
    width: readU32(data, 0),
    height: readU32(data, 4),
    bitDepth: data[8],
    colorType: data[9],
    interlace: data[12],
  };
}

/**
 * Reads the header (size, bit depth, colour type) of a PNG file without decoding its pixels.
 *
 * @example
 * ```ts
 * import { createImage, decodePngHeader, encodePng } from "./png.ts";
 * const { width, height } = decodePngHeader(encodePng(createImage(7, 5)));
 * console.log(width, height); // 7 5
 * ```
 */
export function decodePngHeader(bytes: Uint8Array): PngHeader {
  for (const c of readChunks(bytes)) {
    if (c.type !== "IHDR") {
      throw new RangeError(`Invalid PNG bytes: the first chunk is ${c.type}, not IHDR`);
    }
    return parseHeader(c.data);
  }
  throw new RangeError("Invalid PNG bytes: the IHDR chunk is missing");
}

/**
 * Width and height of a PNG file, read from its IHDR chunk.
 *
 * @example
 * ```ts
 * import { createImage, decodePngSize, encodePng } from "./png.ts";
 * console.log(decodePngSize(encodePng(createImage(7, 5)))); // { width: 7, height: 5 }
 * ```
 */
export function decodePngSize(bytes: Uint8Array): { width: number; height: number } {
  const { width, height } = decodePngHeader(bytes);
  return { width, height };
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

/**
 * Decodes a PNG file into RGBA pixels. Supports 8-bit, non-interlaced greyscale, grey+alpha, RGB
 * and RGBA images with any row filters (everything {@linkcode encodePng} writes, and most simple
 * PNGs); checks every chunk's CRC.
 *
 * @example
 * ```ts
 * import { createImage, decodePng, encodePng, setPixel } from "./png.ts";
 * const image = createImage(3, 2);
 * setPixel(image, { x: 2, y: 1, color: [10, 20, 30] });
 * const back = decodePng(encodePng(image));
 * console.log(back.data.subarray(20, 24)); // Uint8Array(4) [ 10, 20, 30, 255 ]
 * ```
 */
export function decodePng(bytes: Uint8Array): RgbaImage {
  let header: PngHeader | undefined;
  const idat: Uint8Array[] = [];
  for (const c of readChunks(bytes)) {
    if (!header) {
      if (c.type !== "IHDR") {
        throw new RangeError(`Invalid PNG bytes: the first chunk is ${c.type}, not IHDR`);
      }
      header = parseHeader(c.data);
    } else if (c.type === "IDAT") {
      idat.push(c.data);
    } else if (c.type !== "IEND" && c.type.charCodeAt(0) < 97) {
      throw new RangeError(`Unsupported PNG chunk ${c.type}: palette images are not supported`);
    }
  }
  if (!header) throw new RangeError("Invalid PNG bytes: the IHDR chunk is missing");
  const { width, height, bitDepth, colorType, interlace } = header;
  assertPositiveInteger(width, "PNG width");
  assertPositiveInteger(height, "PNG height");
  if (bitDepth !== 8) {
    throw new RangeError(`Unsupported PNG bit depth ${bitDepth}: only 8-bit images are supported`);
  }
  const channels = CHANNELS[colorType];
  if (channels === undefined) {
    throw new RangeError(
      `Unsupported PNG colour type ${colorType}: allowed types are 0, 2, 4 and 6`,
    );
  }
  if (interlace !== 0) {
    throw new RangeError(`Unsupported PNG interlace method ${interlace}: only 0 is supported`);
  }
  if (idat.length === 0) throw new RangeError("Invalid PNG bytes: no IDAT chunk");
  const compressed = new Uint8Array(idat.reduce((s, d) => s + d.length, 0));
  let offset = 0;
  for (const d of idat) {
    compressed.set(d, offset);
    offset += d.length;
  }
  const raw = new Uint8Array(inflateSync(compressed));
  const stride = width * channels;
  if (raw.length !== (stride + 1) * height) {
    throw new RangeError(
      `Invalid PNG image data length ${raw.length}: a ${width}x${height} image needs ${
        (stride + 1) * height
      } bytes`,
    );
  }
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const type = raw[y * (stride + 1)];
    if (type > 4) throw new RangeError(`Invalid PNG filter type ${type} on row ${y}`);
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : undefined;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels] : 0;
      const b = prev ? prev[i] : 0;
      const c = prev && i >= channels ? prev[i - channels] : 0;
      let predictor = 0;
      if (type === 1) predictor = a;
      else if (type === 2) predictor = b;
      else if (type === 3) predictor = (a + b) >> 1;
      else if (type === 4) predictor = paeth(a, b, c);
      row[i] = (src[i] + predictor) & 0xff;
    }
  }
  if (channels === 4) return { width, height, data: pixels };
  const data = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    const s = p * channels;
    if (channels <= 2) {
      data[4 * p] = data[4 * p + 1] = data[4 * p + 2] = pixels[s];
      data[4 * p + 3] = channels === 2 ? pixels[s + 1] : 255;
    } else {
      data[4 * p] = pixels[s];
      data[4 * p + 1] = pixels[s + 1];
      data[4 * p + 2] = pixels[s + 2];
      data[4 * p + 3] = 255;
    }
  }
  return { width, height, data };
}

/**
 * Encodes an image as PNG and writes it to `path` (needs `--allow-write`).
 *
 * @example
 * ```ts
 * import { createImage, writePng } from "./png.ts";
 * const path = Deno.makeTempFileSync({ suffix: ".png" });
 * writePng(path, createImage(16, 16, { background: [255, 0, 0] }));
 * console.log(Deno.statSync(path).size > 0); // true
 * ```
 */
export function writePng(path: string, image: RgbaImage): void {
  Deno.writeFileSync(path, encodePng(image));
}

// ---------------------------------------------------------------------------------------------
// Images and drawing

/** Options of {@linkcode createImage}. */
export interface CreateImageOptions {
  /** Fill colour; default opaque white `[255, 255, 255, 255]`. */
  background?: Color;
}

/**
 * Creates a `width`×`height` image filled with a background colour (opaque white by default).
 *
 * @example
 * ```ts
 * import { createImage } from "./png.ts";
 * const image = createImage(2, 1, { background: [0, 0, 0, 0] });
 * console.log(image.data.length); // 8
 * ```
 */
export function createImage(
  width: number,
  height: number,
  options: CreateImageOptions = {},
): RgbaImage {
  assertPositiveInteger(width, "width");
  assertPositiveInteger(height, "height");
  if (width * height > MAX_PIXELS) {
    throw new RangeError(
      `Invalid image size ${width}x${height}: it must have at most ${MAX_PIXELS} pixels`,
    );
  }
  const [r, g, b, a] = rgba(options.background ?? [255, 255, 255, 255], "background");
  const data = new Uint8Array(width * height * 4);
  if (r === g && g === b && b === a) data.fill(r);
  else {
    for (let i = 0; i < data.length; i += 4) {
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
      data[i + 3] = a;
    }
  }
  return { width, height, data };
}

/** Writes one pixel without validation; out-of-range coordinates are ignored. */
function put(image: RgbaImage, x: number, y: number, c: readonly number[]): void {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) return;
  const i = (y * image.width + x) * 4;
  image.data[i] = c[0];
  image.data[i + 1] = c[1];
  image.data[i + 2] = c[2];
  image.data[i + 3] = c[3];
}

/** A pixel position. */
export interface PixelPoint {
  /** Column (0 = left). */
  x: number;
  /** Row (0 = top). */
  y: number;
}

/**
 * Reads the `[r, g, b, a]` value of the pixel at integer position (x, y).
 *
 * @example
 * ```ts
 * import { createImage, getPixel } from "./png.ts";
 * console.log(getPixel(createImage(2, 2), { x: 1, y: 1 })); // [ 255, 255, 255, 255 ]
 * ```
 */
export function getPixel(image: RgbaImage, point: PixelPoint): [number, number, number, number] {
  const { x, y } = point;
  if (!Number.isInteger(x) || x < 0 || x >= image.width) {
    throw new RangeError(`Invalid x ${x}: it must be an integer in [0, ${image.width})`);
  }
  if (!Number.isInteger(y) || y < 0 || y >= image.height) {
    throw new RangeError(`Invalid y ${y}: it must be an integer in [0, ${image.height})`);
  }
  const i = (y * image.width + x) * 4;
  const d = image.data;
  return [d[i], d[i + 1], d[i + 2], d[i + 3]];
}

/** Options of {@linkcode setPixel}. */
export interface SetPixelOptions extends PixelPoint {
  /** The colour written (replacing the pixel, alpha included). */
  color: Color;
}

/**
 * Sets the pixel nearest to (x, y) to `color` (no blending); positions outside the image are
 * ignored.
 *
 * @example
 * ```ts
 * import { createImage, getPixel, setPixel } from "./png.ts";
 * const image = createImage(3, 3);
 * setPixel(image, { x: 1, y: 2, color: [255, 0, 0] });
 * console.log(getPixel(image, { x: 1, y: 2 })); // [ 255, 0, 0, 255 ]
 * ```
 */
export function setPixel(image: RgbaImage, options: SetPixelOptions): void {
  assertFinite(options.x, "x");
  assertFinite(options.y, "y");
  put(image, Math.round(options.x), Math.round(options.y), rgba(options.color));
}

/** Options of {@linkcode fillRect}. */
export interface FillRectOptions extends PixelRect {
  /** Fill colour (replaces pixels, no blending). */
  color: Color;
}

/**
 * Fills the rectangle with top-left corner (x, y) and the given size, clipped to the image.
 *
 * @example
 * ```ts
 * import { createImage, fillRect, getPixel } from "./png.ts";
 * const image = createImage(10, 10);
 * fillRect(image, { x: 2, y: 2, width: 3, height: 3, color: [0, 0, 255] });
 * console.log(getPixel(image, { x: 4, y: 4 })); // [ 0, 0, 255, 255 ]
 * ```
 */
export function fillRect(image: RgbaImage, options: FillRectOptions): void {
  const { x, y, width, height } = options;
  assertFinite(x, "x");
  assertFinite(y, "y");
  if (!(width >= 0) || !Number.isFinite(width)) {
    throw new RangeError(`Invalid width ${width}: it must be a finite number ≥ 0`);
  }
  if (!(height >= 0) || !Number.isFinite(height)) {
    throw new RangeError(`Invalid height ${height}: it must be a finite number ≥ 0`);
  }
  const c = rgba(options.color);
  const x0 = Math.max(0, Math.round(x));
  const y0 = Math.max(0, Math.round(y));
  const x1 = Math.min(image.width, Math.round(x) + Math.round(width));
  const y1 = Math.min(image.height, Math.round(y) + Math.round(height));
  for (let yy = y0; yy < y1; yy++) {
    for (let xx = x0; xx < x1; xx++) put(image, xx, yy, c);
  }
}

/** Options of {@linkcode drawLine}. */
export interface DrawLineOptions {
  /** Start column. */
  x0: number;
  /** Start row. */
  y0: number;
  /** End column. */
  x1: number;
  /** End row. */
  y1: number;
  /** Line colour. */
  color: Color;
  /** Thickness in pixels (a square brush); default 1. */
  width?: number;
}

/**
 * Draws a straight line from (x0, y0) to (x1, y1), both ends included (Bresenham's algorithm on
 * the rounded end points), clipped to the image.
 *
 * @example
 * ```ts
 * import { createImage, drawLine, getPixel } from "./png.ts";
 * const image = createImage(10, 10);
 * drawLine(image, { x0: 0, y0: 0, x1: 9, y1: 9, color: [0, 0, 0] });
 * console.log(getPixel(image, { x: 5, y: 5 })); // [ 0, 0, 0, 255 ]
 * ```
 */
export function drawLine(image: RgbaImage, options: DrawLineOptions): void {
  for (const key of ["x0", "y0", "x1", "y1"] as const) assertFinite(options[key], key);
  const width = options.width ?? 1;
  assertPositiveInteger(width, "line width");
  const c = rgba(options.color);
  let x = Math.round(options.x0);
  let y = Math.round(options.y0);
  const xEnd = Math.round(options.x1);
  const yEnd = Math.round(options.y1);
  const dx = Math.abs(xEnd - x);
  const dy = -Math.abs(yEnd - y);
  const sx = x < xEnd ? 1 : -1;
  const sy = y < yEnd ? 1 : -1;
  const lo = Math.floor((width - 1) / 2);
  let err = dx + dy;
  while (true) {
    if (width === 1) put(image, x, y, c);
    else {
      for (let j = 0; j < width; j++) {
        for (let i = 0; i < width; i++) put(image, x - lo + i, y - lo + j, c);
      }
    }
    if (x === xEnd && y === yEnd) break;
    const e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y += sy;
    }
  }
}

/** Options of {@linkcode fillCircle}. */
export interface FillCircleOptions extends PixelPoint {
  /** Radius in pixels (0 paints one pixel). */
  radius: number;
  /** Fill colour. */
  color: Color;
}

/**
 * Fills a disc centred on the pixel nearest to (x, y), clipped to the image.
 *
 * @example
 * ```ts
 * import { createImage, fillCircle, getPixel } from "./png.ts";
 * const image = createImage(9, 9);
 * fillCircle(image, { x: 4, y: 4, radius: 3, color: [0, 128, 0] });
 * console.log(getPixel(image, { x: 4, y: 6 })); // [ 0, 128, 0, 255 ]
 * ```
 */
export function fillCircle(image: RgbaImage, options: FillCircleOptions): void {
  assertFinite(options.x, "x");
  assertFinite(options.y, "y");
  const { radius } = options;
  if (!(radius >= 0) || !Number.isFinite(radius)) {
    throw new RangeError(`Invalid radius ${radius}: it must be a finite number ≥ 0`);
  }
  const c = rgba(options.color);
  const cx = Math.round(options.x);
  const cy = Math.round(options.y);
  const r = Math.floor(radius);
  const limit = radius * radius + radius * 0.8;
  for (let dy = -r; dy <= r; dy++) {
    for (let dx = -r; dx <= r; dx++) {
      if (dx * dx + dy * dy <= limit) put(image, cx + dx, cy + dy, c);
    }
  }
}

/**
 * Draws `source` onto `target` with its top-left corner at (x, y), alpha-compositing ("source
 * over"): opaque source pixels replace, transparent ones leave the target unchanged.
 *
 * @example
 * ```ts
 * import { createImage, drawImage, getPixel } from "./png.ts";
 * const target = createImage(10, 10);
 * drawImage(target, createImage(2, 2, { background: [9, 9, 9] }), { x: 8, y: 8 });
 * console.log(getPixel(target, { x: 9, y: 9 })); // [ 9, 9, 9, 255 ]
 * ```
 */
export function drawImage(target: RgbaImage, source: RgbaImage, options: PixelPoint): void {
  assertImage(source, "source");
  assertFinite(options.x, "x");
  assertFinite(options.y, "y");
  const ox = Math.round(options.x);
  const oy = Math.round(options.y);
  const s = source.data;
  const t = target.data;
  for (let y = Math.max(0, -oy); y < source.height; y++) {
    const ty = y + oy;
    if (ty >= target.height) break;
    for (let x = Math.max(0, -ox); x < source.width; x++) {
      const tx = x + ox;
      if (tx >= target.width) break;
      const si = (y * source.width + x) * 4;
      const ti = (ty * target.width + tx) * 4;
      const a = s[si + 3];
      if (a === 255) {
        t[ti] = s[si];
        t[ti + 1] = s[si + 1];
        t[ti + 2] = s[si + 2];
        t[ti + 3] = 255;
      } else if (a > 0) {
        const ta = t[ti + 3] / 255;
        const sa = a / 255;
        const outA = sa + ta * (1 - sa);
        for (let k = 0; k < 3; k++) {
          t[ti + k] = Math.round((s[si + k] * sa + t[ti + k] * ta * (1 - sa)) / outA);
        }
        t[ti + 3] = Math.round(outA * 255);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Bitmap font: 5 columns × 7 rows above the baseline plus 2 descender rows, one glyph per line.
// Rows are listed top to bottom, "#" marks an inked pixel.

const GLYPHS: Record<string, string> = {
  " ": "",
  "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
  "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  "2": ".###. #...# ....# ...#. ..#.. .#... #####",
  "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
  "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
  "5": "##### #.... ####. ....# ....# #...# .###.",
  "6": "..##. .#... #.... ####. #...# #...# .###.",
  "7": "##### ....# ...#. ..#.. .#... .#... .#...",
  "8": ".###. #...# #...# .###. #...# #...# .###.",
  "9": ".###. #...# #...# .#### ....# ...#. .##..",
  A: ".###. #...# #...# ##### #...# #...# #...#",
  B: "####. #...# #...# ####. #...# #...# ####.",
  C: ".###. #...# #.... #.... #.... #...# .###.",
  D: "###.. #..#. #...# #...# #...# #..#. ###..",
  E: "##### #.... #.... ####. #.... #.... #####",
  F: "##### #.... #.... ####. #.... #.... #....",
  G: ".###. #...# #.... #.### #...# #...# .####",
  H: "#...# #...# #...# ##### #...# #...# #...#",
  I: ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  J: "..### ...#. ...#. ...#. ...#. #..#. .##..",
  K: "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
  L: "#.... #.... #.... #.... #.... #.... #####",
  M: "#...# ##.## #.#.# #.#.# #...# #...# #...#",
  N: "#...# #...# ##..# #.#.# #..## #...# #...#",
  O: ".###. #...# #...# #...# #...# #...# .###.",
  P: "####. #...# #...# ####. #.... #.... #....",
  Q: ".###. #...# #...# #...# #.#.# #..#. .##.#",
  R: "####. #...# #...# ####. #.#.. #..#. #...#",
  S: ".#### #.... #.... .###. ....# ....# ####.",
  T: "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  U: "#...# #...# #...# #...# #...# #...# .###.",
  V: "#...# #...# #...# #...# #...# .#.#. ..#..",
  W: "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
  X: "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
  Y: "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
  Z: "##### ....# ...#. ..#.. .#... #.... #####",
  a: "..... ..... .###. ....# .#### #...# .####",
  b: "#.... #.... ####. #...# #...# #...# ####.",
  c: "..... ..... .###. #.... #.... #...# .###.",
  d: "....# ....# .#### #...# #...# #...# .####",
  e: "..... ..... .###. #...# ##### #.... .###.",
  f: "..##. .#..# .#... ###.. .#... .#... .#...",
  g: "..... ..... .#### #...# #...# #...# .#### ....# .###.",
  h: "#.... #.... #.##. ##..# #...# #...# #...#",
  i: "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
  j: "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..",
  k: "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
  l: ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  m: "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#",
  n: "..... ..... #.##. ##..# #...# #...# #...#",
  o: "..... ..... .###. #...# #...# #...# .###.",
  p: "..... ..... ####. #...# #...# #...# ####. #.... #....",
  q: "..... ..... .#### #...# #...# #...# .#### ....# ....#",
  r: "..... ..... #.##. ##..# #.... #.... #....",
  s: "..... ..... .#### #.... .###. ....# ####.",
  t: ".#... .#... ###.. .#... .#... .#..# ..##.",
  u: "..... ..... #...# #...# #...# #..## .##.#",
  v: "..... ..... #...# #...# #...# .#.#. ..#..",
  w: "..... ..... #...# #...# #.#.# #.#.# .#.#.",
  x: "..... ..... #...# .#.#. ..#.. .#.#. #...#",
  y: "..... ..... #...# #...# #...# #...# .#### ....# .###.",
  z: "..... ..... ##### ...#. ..#.. .#... #####",
  ".": "..... ..... ..... ..... ..... .##.. .##..",
  ",": "..... ..... ..... ..... ..... .##.. .##.. ..#.. .#...",
  ":": "..... .##.. .##.. ..... .##.. .##.. .....",
  ";": "..... .##.. .##.. ..... .##.. .##.. ..#.. .#...",
  "-": "..... ..... ..... ##### ..... ..... .....",
  "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
  "=": "..... ..... ##### ..... ##### ..... .....",
  "_": "..... ..... ..... ..... ..... ..... ..... #####",
  "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
  ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
  "[": ".###. .#... .#... .#... .#... .#... .###.",
  "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
  "/": "....# ....# ...#. ..#.. .#... #.... #....",
  "\\": "#.... #.... .#... ..#.. ...#. ....# ....#",
  "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
  ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
  "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
  "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
  "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
  "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
  "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
  "^": "..#.. .#.#. #...# ..... ..... ..... .....",
  "~": "..... ..... .#... #.#.# ...#. ..... .....",
  "'": "..#.. ..#.. .#... ..... ..... ..... .....",
  '"': ".#.#. .#.#. .#.#. ..... ..... ..... .....",
};

/** Characters drawn as another glyph (typographic minus and dashes, times, middle dot). */
const ALIASES: Record<string, string> = {
  "\u2212": "-",
  "\u2013": "-",
  "\u2014": "-",
  "\u00d7": "x",
  "\u00b7": ".",
};

/** Drawn for characters the font lacks: a hollow box. */
const MISSING_GLYPH = "##### #...# #...# #...# #...# #...# #####";

/** Size of the built-in font at scale 1, in pixels. */
export const FONT_METRICS = {
  /** Inked width of a glyph. */
  glyphWidth: 5,
  /** Horizontal distance from one character to the next. */
  advance: 6,
  /** Height of capitals and digits (rows above the baseline). */
  ascent: 7,
  /** Rows below the baseline (descenders of g, j, p, q, y, comma, underscore). */
  descent: 2,
  /** Blank rows between lines of multi-line text. */
  lineGap: 2,
} as const;

/** Every character the built-in font has a glyph for (others draw as a hollow box). */
export const FONT_CHARACTERS: string = Object.keys(GLYPHS).join("");

const glyphCache = new Map<string, Uint8Array>();

/** Rows (top to bottom, 9 of them) of a glyph as 5-bit masks, bit 4 = leftmost column. */
function glyph(char: string): Uint8Array {
  const cached = glyphCache.get(char);
  if (cached) return cached;
  const source = GLYPHS[char] ?? GLYPHS[ALIASES[char] ?? ""] ?? MISSING_GLYPH;
  const rows = new Uint8Array(FONT_METRICS.ascent + FONT_METRICS.descent);
  source.split(" ").filter((r) => r.length > 0).forEach((row, i) => {
    let mask = 0;
    for (let k = 0; k < 5; k++) if (row[k] === "#") mask |= 1 << (4 - k);
    rows[i] = mask;
  });
  glyphCache.set(char, rows);
  return rows;
}

function positiveScale(scale: number): void {
  if (!Number.isInteger(scale) || scale <= 0 || scale > 64) {
    throw new RangeError(`Invalid text scale ${scale}: it must be an integer in 1–64`);
  }
}

/** Options of {@linkcode textSize}. */
export interface TextSizeOptions {
  /** Integer magnification of the 5×7 font; default 1. */
  scale?: number;
}

/**
 * Size of the box {@linkcode drawText} paints for `text`: `6·n − 1` pixels wide for the longest
 * of its `\n`-separated lines of n characters, and 9 pixels (7 above the baseline, 2 below) per
 * line plus 2 between lines, all times `scale`.
 *
 * @example
 * ```ts
 * import { textSize } from "./png.ts";
 * console.log(textSize("mode 3", { scale: 2 })); // { width: 70, height: 18 }
 * ```
 */
export function textSize(
  text: string,
  options: TextSizeOptions = {},
): { width: number; height: number } {
  const scale = options.scale ?? 1;
  positiveScale(scale);
  const lines = String(text).split("\n");
  const longest = Math.max(...lines.map((l) => [...l].length));
  const { advance, ascent, descent, lineGap } = FONT_METRICS;
  return {
    width: longest > 0 ? (longest * advance - 1) * scale : 0,
    height: (lines.length * (ascent + descent) + (lines.length - 1) * lineGap) * scale,
  };
}

/** Options of {@linkcode drawText}. */
export interface DrawTextOptions extends PixelPoint {
  /** Text colour; default black. */
  color?: Color;
  /** Integer magnification of the 5×7 font; default 1. */
  scale?: number;
  /**
   * Which point of the text `x` names: its left edge (default), its centre, or its right edge;
   * each line of multi-line text is aligned on its own. `y` is always the top of the box (the
   * top of the capitals).
   */
  align?: "left" | "center" | "right";
}

/**
 * Draws `text` in the built-in 5×7 bitmap font and returns the box it occupies (see
 * {@linkcode textSize}). `\n` starts a new line; characters the font lacks (see
 * {@linkcode FONT_CHARACTERS}) draw as a hollow box.
 *
 * @example
 * ```ts
 * import { createImage, drawText } from "./png.ts";
 * const image = createImage(120, 24);
 * const box = drawText(image, "E=-0.0123", { x: 4, y: 4, scale: 2, color: [0, 0, 128] });
 * console.log(box); // { x: 4, y: 4, width: 106, height: 18 }
 * ```
 */
export function drawText(image: RgbaImage, text: string, options: DrawTextOptions): PixelRect {
  assertFinite(options.x, "x");
  assertFinite(options.y, "y");
  const scale = options.scale ?? 1;
  const size = textSize(text, { scale });
  const align = options.align ?? "left";
  if (align !== "left" && align !== "center" && align !== "right") {
    throw new RangeError(`Invalid align "${align}": allowed values are left, center, right`);
  }
  const c = rgba(options.color ?? [0, 0, 0]);
  const { advance, ascent, descent, lineGap } = FONT_METRICS;
  const anchor = options.x;
  const top = Math.round(options.y);
  const boxLeft = Math.round(
    align === "left" ? anchor : align === "center" ? anchor - size.width / 2 : anchor - size.width,
  );
  String(text).split("\n").forEach((line, li) => {
    const lineWidth = textSize(line, { scale }).width;
    const left = Math.round(
      align === "left" ? anchor : align === "center" ? anchor - lineWidth / 2 : anchor - lineWidth,
    );
    const lineTop = top + li * (ascent + descent + lineGap) * scale;
    let col = 0;
    for (const char of line) {
      const rows = glyph(char);
      const gx = left + col * advance * scale;
      for (let r = 0; r < rows.length; r++) {
        const mask = rows[r];
        if (mask === 0) continue;
        for (let k = 0; k < 5; k++) {
          if (!(mask & (1 << (4 - k)))) continue;
          for (let sy = 0; sy < scale; sy++) {
            for (let sx = 0; sx < scale; sx++) {
              put(image, gx + k * scale + sx, lineTop + r * scale + sy, c);
            }
          }
        }
      }
      col++;
    }
  });
  return { x: boxLeft, y: top, width: size.width, height: size.height };
}
