import assert from "node:assert/strict";
import { deflateSync, inflateSync } from "node:zlib";
import {
  crc32,
  createImage,
  decodePng,
  decodePngHeader,
  decodePngSize,
  drawImage,
  drawLine,
  drawText,
  encodePng,
  fillCircle,
  fillRect,
  FONT_CHARACTERS,
  FONT_METRICS,
  getPixel,
  type RgbaImage,
  setPixel,
  textSize,
  writePng,
} from "../lib/png.ts";

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

/** Deterministic pseudo-random bytes (a 32-bit LCG). */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Chunks of a PNG as [type, data], read independently of the decoder. */
function chunks(png: Uint8Array): [string, Uint8Array][] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: [string, Uint8Array][] = [];
  for (let pos = 8; pos < png.length;) {
    const length = view.getUint32(pos);
    const type = new TextDecoder().decode(png.subarray(pos + 4, pos + 8));
    out.push([type, png.subarray(pos + 8, pos + 8 + length)]);
    pos += 12 + length;
  }
  return out;
}

/** A PNG chunk assembled by hand with the CRC under test. */
function rawChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function inked(image: RgbaImage, background = 255): { x: number; y: number }[] {
  const out: { x: number; y: number }[] = [];
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const i = (y * image.width + x) * 4;
      if (
        image.data[i] !== background || image.data[i + 1] !== background ||
        image.data[i + 2] !== background
      ) out.push({ x, y });
    }
  }
  return out;
}

Deno.test("crc32", async (t) => {
  await t.step("matches the standard check values", () => {
    assert.equal(crc32("123456789"), 0xcbf43926);
    assert.equal(crc32(""), 0);
    assert.equal(crc32("The quick brown fox jumps over the lazy dog"), 0x414fa339);
    assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  });
  await t.step("gives the well-known CRC of the IEND chunk", () => {
    assert.equal(crc32("IEND"), 0xae426082);
  });
});

Deno.test("encodePng", async (t) => {
  const image = createImage(5, 3, { background: [10, 20, 30, 40] });
  const png = encodePng(image);

  await t.step("starts with the PNG signature", () => {
    assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  });
  await t.step("writes IHDR, IDAT, IEND with 8-bit RGBA header fields", () => {
    const list = chunks(png);
    assert.deepEqual(list.map(([type]) => type), ["IHDR", "IDAT", "IEND"]);
    const ihdr = new DataView(list[0][1].buffer, list[0][1].byteOffset, 13);
    assert.equal(list[0][1].length, 13);
    assert.equal(ihdr.getUint32(0), 5, "width");
    assert.equal(ihdr.getUint32(4), 3, "height");
    assert.deepEqual([...list[0][1].subarray(8)], [8, 6, 0, 0, 0]);
    assert.deepEqual([...png.subarray(png.length - 4)], [0xae, 0x42, 0x60, 0x82], "IEND CRC");
  });
  await t.step("stores chunk CRCs over type and data", () => {
    const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
    let pos = 8;
    for (const [, data] of chunks(png)) {
      const stored = view.getUint32(pos + 8 + data.length);
      assert.equal(stored, crc32(png.subarray(pos + 4, pos + 8 + data.length)));
      pos += 12 + data.length;
    }
  });
  await t.step("IDAT inflates to filter byte + RGBA per row", () => {
    const idat = chunks(encodePng(image, { filter: "none" }))[1][1];
    const raw = new Uint8Array(inflateSync(idat));
    assert.equal(raw.length, 3 * (1 + 5 * 4));
    for (let y = 0; y < 3; y++) {
      assert.equal(raw[y * 21], 0, "filter type 0");
      assert.deepEqual([...raw.subarray(y * 21 + 1, y * 21 + 5)], [10, 20, 30, 40]);
    }
  });
  await t.step("rejects malformed images", () => {
    assertRangeError(
      () => encodePng({ width: 2, height: 2, data: new Uint8Array(15) }),
      /data length 15: a 2x2 RGBA image needs exactly 16 bytes/,
    );
    assertRangeError(
      () => encodePng({ width: 0, height: 2, data: new Uint8Array(0) }),
      /Invalid image width 0: it must be a positive integer/,
    );
    assertRangeError(() => encodePng(image, { level: 12 }), /compression level 12/);
  });
});

Deno.test("decodePng", async (t) => {
  await t.step("round-trips random pixels with every filter strategy", () => {
    for (const [w, h] of [[1, 1], [1, 7], [13, 1], [37, 23]]) {
      const image: RgbaImage = { width: w, height: h, data: bytes(w * h * 4, w * 31 + h) };
      for (const filter of ["none", "adaptive"] as const) {
        const back = decodePng(encodePng(image, { filter }));
        assert.equal(back.width, w);
        assert.equal(back.height, h);
        assert.deepEqual(back.data, image.data, `${w}x${h} ${filter}`);
      }
    }
  });
  await t.step("round-trips a smooth image, where adaptive filtering compresses better", () => {
    const image = createImage(64, 64);
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) setPixel(image, { x, y, color: [x * 4, y * 4, (x + y) * 2] });
    }
    const adaptive = encodePng(image);
    const plain = encodePng(image, { filter: "none" });
    assert.deepEqual(decodePng(adaptive).data, image.data);
    assert.ok(adaptive.length < plain.length, `${adaptive.length} < ${plain.length}`);
  });
  await t.step("reads size and header", () => {
    const png = encodePng(createImage(300, 2));
    assert.deepEqual(decodePngSize(png), { width: 300, height: 2 });
    assert.deepEqual(decodePngHeader(png), {
      width: 300,
      height: 2,
      bitDepth: 8,
      colorType: 6,
      interlace: 0,
    });
  });
  await t.step("decodes hand-made RGB and greyscale PNGs using Sub, Up, Average, Paeth", () => {
    // 2×2 RGB: row 0 Sub-filtered, row 1 Up-filtered.
    const pixels = [[[10, 20, 30], [15, 25, 40]], [[12, 20, 31], [200, 100, 50]]];
    const raw = new Uint8Array([
      1,
      10,
      20,
      30,
      5,
      5,
      10,
      2,
      2,
      0,
      1,
      185,
      75,
      10,
    ]);
    const ihdr = new Uint8Array([0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
    const png = concat([
      new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
      rawChunk("IHDR", ihdr),
      rawChunk("tEXt", new TextEncoder().encode("Comment\0ignored")),
      rawChunk("IDAT", new Uint8Array(deflateSync(raw))),
      rawChunk("IEND", new Uint8Array(0)),
    ]);
    const rgb = decodePng(png);
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 2; x++) {
        assert.deepEqual(getPixel(rgb, { x, y }), [...pixels[y][x], 255]);
      }
    }
    // 3×2 greyscale: row 0 Average (no previous row), row 1 Paeth.
    // Row 0 values 100, 120, 90: Average predicts floor(left / 2).
    // Row 1 values 101, 119, 95: Paeth(a, b, c) picks b (above) each time: 100, 120, 90.
    const grey = new Uint8Array([3, 100, 120 - 50, 90 - 60, 4, 1, 255, 5]);
    const gpng = concat([
      new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
      rawChunk("IHDR", new Uint8Array([0, 0, 0, 3, 0, 0, 0, 2, 8, 0, 0, 0, 0])),
      rawChunk("IDAT", new Uint8Array(deflateSync(grey))),
      rawChunk("IEND", new Uint8Array(0)),
    ]);
    const g = decodePng(gpng);
    const values = [0, 1].flatMap((y) => [0, 1, 2].map((x) => getPixel(g, { x, y })));
    assert.deepEqual(values.map((p) => p[0]), [100, 120, 90, 101, 119, 95]);
    assert.ok(values.every((p) => p[0] === p[1] && p[1] === p[2] && p[3] === 255));
  });
  await t.step("rejects corrupt files with a clear error", () => {
    const png = encodePng(createImage(4, 4));
    const corrupt = png.slice();
    corrupt[20] ^= 0xff; // inside IHDR data
    assertRangeError(() => decodePng(corrupt), /Invalid PNG chunk IHDR at offset 8: CRC is/);
    assertRangeError(() => decodePng(png.subarray(1)), /PNG signature is missing/);
    assertRangeError(
      () => decodePng(png.subarray(0, 48)),
      /Invalid PNG chunk length \d+ at offset 33/,
    );
  });
  await t.step({
    name: "inflates with Python's zlib too (when python3 and --allow-run are there)",
    ignore: Deno.permissions.querySync({ name: "run", command: "/usr/bin/python3" }).state !==
      "granted",
    fn: async () => {
      const image: RgbaImage = { width: 9, height: 4, data: bytes(9 * 4 * 4, 7) };
      const path = Deno.makeTempFileSync({ suffix: ".png" });
      writePng(path, image);
      const script = [
        "import sys, struct, zlib",
        "b = open(sys.argv[1], 'rb').read()",
        "pos, idat = 8, b''",
        "while pos < len(b):",
        "    n, = struct.unpack('>I', b[pos:pos + 4]); t = b[pos + 4:pos + 8]",
        "    crc, = struct.unpack('>I', b[pos + 8 + n:pos + 12 + n])",
        "    assert zlib.crc32(b[pos + 4:pos + 8 + n]) == crc",
        "    idat += b[pos + 8:pos + 8 + n] if t == b'IDAT' else b''",
        "    pos += 12 + n",
        "print(len(zlib.decompress(idat)))",
      ].join("\n");
      let output;
      try {
        output = await new Deno.Command("/usr/bin/python3", { args: ["-c", script, path] })
          .output();
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return; // no python3: nothing to cross-check
        throw e;
      } finally {
        Deno.removeSync(path);
      }
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      assert.equal(new TextDecoder().decode(output.stdout).trim(), String(4 * (1 + 9 * 4)));
    },
  });
});

Deno.test("writePng writes a file that decodes to the same pixels", () => {
  const path = Deno.makeTempFileSync({ suffix: ".png" });
  try {
    const image: RgbaImage = { width: 6, height: 5, data: bytes(6 * 5 * 4, 99) };
    writePng(path, image);
    assert.deepEqual(decodePng(Deno.readFileSync(path)).data, image.data);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("createImage, getPixel, setPixel", async (t) => {
  await t.step("fills with the background (opaque white by default)", () => {
    assert.deepEqual(getPixel(createImage(3, 2), { x: 2, y: 1 }), [255, 255, 255, 255]);
    const image = createImage(3, 2, { background: [1, 2, 3] });
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 3; x++) assert.deepEqual(getPixel(image, { x, y }), [1, 2, 3, 255]);
    }
  });
  await t.step("sets pixels row-major, clips outside, rounds coordinates", () => {
    const image = createImage(4, 3);
    setPixel(image, { x: 3, y: 1, color: [9, 8, 7, 6] });
    assert.deepEqual([...image.data.subarray((1 * 4 + 3) * 4, (1 * 4 + 3) * 4 + 4)], [9, 8, 7, 6]);
    const before = image.data.slice();
    setPixel(image, { x: -1, y: 0, color: [0, 0, 0] });
    setPixel(image, { x: 4, y: 0, color: [0, 0, 0] });
    setPixel(image, { x: 0, y: 3, color: [0, 0, 0] });
    assert.deepEqual(image.data, before);
    setPixel(image, { x: 0.6, y: 1.4, color: [0, 0, 0] });
    assert.deepEqual(getPixel(image, { x: 1, y: 1 }), [0, 0, 0, 255]);
  });
  await t.step("rejects bad sizes, coordinates and colours", () => {
    assertRangeError(() => createImage(0, 5), /Invalid width 0: it must be a positive integer/);
    assertRangeError(() => createImage(5, 2.5), /Invalid height 2.5/);
    assertRangeError(() => createImage(1e5, 1e5), /at most \d+ pixels/);
    const image = createImage(2, 2);
    assertRangeError(() => setPixel(image, { x: NaN, y: 0, color: [0, 0, 0] }), /Invalid x NaN/);
    assertRangeError(
      () => setPixel(image, { x: 0, y: 0, color: [0, 300, 0] }),
      /Invalid color \[0, 300, 0\]: each channel must be a number in 0–255/,
    );
    assertRangeError(() => getPixel(image, { x: 2, y: 0 }), /Invalid x 2: it must be an integer/);
  });
});

Deno.test("fillRect, drawLine, fillCircle, drawImage", async (t) => {
  await t.step("fillRect paints exactly its clipped rectangle", () => {
    const image = createImage(10, 8);
    fillRect(image, { x: 7, y: -2, width: 5, height: 4, color: [0, 0, 0] });
    const painted = inked(image);
    assert.equal(painted.length, 3 * 2);
    assert.ok(painted.every(({ x, y }) => x >= 7 && x <= 9 && y >= 0 && y <= 1));
    assertRangeError(
      () => fillRect(image, { x: 0, y: 0, width: -1, height: 1, color: [0, 0, 0] }),
      /Invalid width -1/,
    );
  });
  await t.step("drawLine covers both end points with one pixel per major-axis step", () => {
    const image = createImage(20, 10);
    drawLine(image, { x0: 2, y0: 1, x1: 15, y1: 6, color: [0, 0, 0] });
    const painted = inked(image);
    assert.equal(painted.length, 14);
    assert.deepEqual(getPixel(image, { x: 2, y: 1 }), [0, 0, 0, 255]);
    assert.deepEqual(getPixel(image, { x: 15, y: 6 }), [0, 0, 0, 255]);
    assert.equal(new Set(painted.map((p) => p.x)).size, 14, "one pixel per column");
    for (const { x, y } of painted) {
      const ideal = 1 + ((x - 2) * 5) / 13;
      assert.ok(Math.abs(y - ideal) <= 0.5 + 1e-9, `(${x}, ${y}) is near the ideal line`);
    }
  });
  await t.step("drawLine draws vertical, reversed and thick lines", () => {
    const image = createImage(10, 10);
    drawLine(image, { x0: 4, y0: 8, x1: 4, y1: 2, color: [0, 0, 0] });
    assert.deepEqual(inked(image).map((p) => p.y), [2, 3, 4, 5, 6, 7, 8]);
    const thick = createImage(10, 10);
    drawLine(thick, { x0: 1, y0: 5, x1: 8, y1: 5, color: [0, 0, 0], width: 3 });
    assert.equal(inked(thick).length, 3 * 10);
    assert.deepEqual(new Set(inked(thick).map((p) => p.y)), new Set([4, 5, 6]));
  });
  await t.step("fillCircle paints a symmetric disc", () => {
    const image = createImage(11, 11);
    fillCircle(image, { x: 5, y: 5, radius: 3, color: [0, 0, 0] });
    const painted = inked(image);
    for (const [x, y] of [[5, 5], [8, 5], [2, 5], [5, 2], [5, 8]]) {
      assert.ok(painted.some((p) => p.x === x && p.y === y), `(${x}, ${y}) inside`);
    }
    assert.ok(!painted.some((p) => p.x === 8 && p.y === 8), "corner outside");
    const mirrored = painted.map((p) => `${10 - p.x},${p.y}`).sort();
    assert.deepEqual(mirrored, painted.map((p) => `${p.x},${p.y}`).sort());
    const dot = createImage(3, 3);
    fillCircle(dot, { x: 1, y: 1, radius: 0, color: [0, 0, 0] });
    assert.equal(inked(dot).length, 1);
  });
  await t.step("drawImage composites source over target", () => {
    const target = createImage(4, 1, { background: [100, 100, 100] });
    const source = createImage(3, 1, { background: [0, 0, 0, 0] });
    setPixel(source, { x: 0, y: 0, color: [200, 0, 0, 255] });
    setPixel(source, { x: 1, y: 0, color: [200, 0, 0, 128] });
    drawImage(target, source, { x: 1, y: 0 });
    assert.deepEqual(getPixel(target, { x: 0, y: 0 }), [100, 100, 100, 255]);
    assert.deepEqual(getPixel(target, { x: 1, y: 0 }), [200, 0, 0, 255]);
    const half = getPixel(target, { x: 2, y: 0 });
    assert.ok(Math.abs(half[0] - 150) <= 1 && Math.abs(half[1] - 50) <= 1, `blend ${half}`);
    assert.deepEqual(getPixel(target, { x: 3, y: 0 }), [100, 100, 100, 255], "transparent");
  });
});

Deno.test("bitmap text", async (t) => {
  await t.step("textSize follows the 5×7 font metrics", () => {
    assert.deepEqual(textSize("E=-0.0123"), { width: 9 * 6 - 1, height: 9 });
    assert.deepEqual(textSize("mode 3", { scale: 3 }), { width: (6 * 6 - 1) * 3, height: 27 });
    assert.deepEqual(textSize("ab\nc"), { width: 11, height: 9 + 2 + 9 });
    assert.deepEqual(textSize(""), { width: 0, height: 9 });
    assertRangeError(() => textSize("x", { scale: 0 }), /Invalid text scale 0/);
  });
  await t.step("every glyph but space inks pixels inside its cell", () => {
    const { glyphWidth, ascent, descent } = FONT_METRICS;
    for (const char of FONT_CHARACTERS) {
      const image = createImage(9, 13);
      drawText(image, char, { x: 2, y: 2 });
      const painted = inked(image);
      if (char === " ") {
        assert.equal(painted.length, 0);
        continue;
      }
      assert.ok(painted.length > 0, `"${char}" draws something`);
      for (const { x, y } of painted) {
        assert.ok(x >= 2 && x < 2 + glyphWidth && y >= 2 && y < 2 + ascent + descent, char);
      }
    }
  });
  await t.step("the required characters all have distinct glyphs", () => {
    const required = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-+=()/,:_";
    const seen = new Map<string, string>();
    for (const char of required) {
      assert.ok(FONT_CHARACTERS.includes(char), `font has "${char}"`);
      const image = createImage(5, 9);
      drawText(image, char, { x: 0, y: 0 });
      const key = inked(image).map((p) => `${p.x},${p.y}`).join(" ");
      assert.ok(!seen.has(key), `"${char}" differs from "${seen.get(key)}"`);
      seen.set(key, char);
    }
  });
  await t.step("labels render inside the returned box, scaled and aligned", () => {
    for (const scale of [1, 2, 3]) {
      const image = createImage(200, 60);
      const box = drawText(image, "E=-0.0123 (mode 3)", { x: 5, y: 7, scale, color: [0, 0, 200] });
      assert.deepEqual(box, { x: 5, y: 7, ...textSize("E=-0.0123 (mode 3)", { scale }) });
      const painted = inked(image);
      assert.ok(painted.length > 50 * scale * scale);
      for (const { x, y } of painted) {
        assert.ok(x >= box.x && x < box.x + box.width && y >= box.y && y < box.y + box.height);
        assert.deepEqual(getPixel(image, { x, y }), [0, 0, 200, 255]);
      }
      // The "E" of the label: its top bar spans the first glyph cell.
      for (let k = 0; k < 5 * scale; k++) {
        assert.deepEqual(getPixel(image, { x: 5 + k, y: 7 }), [0, 0, 200, 255]);
      }
    }
    const centred = drawText(createImage(100, 20), "abc", { x: 50, y: 0, align: "center" });
    assert.equal(centred.x, Math.round(50 - 17 / 2));
    const right = drawText(createImage(100, 20), "abc", { x: 50, y: 0, align: "right" });
    assert.equal(right.x + right.width, 50);
  });
  await t.step("unknown characters draw a hollow box; the typographic minus a hyphen", () => {
    const box = createImage(5, 9);
    drawText(box, "\u03bb", { x: 0, y: 0 });
    assert.equal(inked(box).length, 5 + 5 + 5 + 5);
    const minus = createImage(5, 9);
    const hyphen = createImage(5, 9);
    drawText(minus, "\u2212", { x: 0, y: 0 });
    drawText(hyphen, "-", { x: 0, y: 0 });
    assert.deepEqual(minus.data, hyphen.data);
  });
  await t.step("multi-line text stacks lines and centres each one", () => {
    const image = createImage(40, 30);
    drawText(image, "abc\nd", { x: 20, y: 0, align: "center" });
    const lower = inked(image).filter((p) => p.y >= 11);
    const xs = lower.map((p) => p.x);
    assert.ok(Math.min(...xs) >= 17 && Math.max(...xs) <= 22, `second line centred: ${xs}`);
  });
});
