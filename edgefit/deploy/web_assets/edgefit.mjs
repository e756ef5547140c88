// edgefit.mjs: edgefit's preprocessing and classification in the browser (and the resample in Node).
//
// The image becomes the network's input exactly as edgefit's Python does it (edgefit/device/classify.py):
//   1. decode without colour conversion or premultiplied alpha, alpha composited over white as Pillow's
//      Image.alpha_composite does (a PNG without an alpha channel keeps its pixels: its tRNS chunk is dropped,
//      as Pillow ignores it for grayscale and RGB images);
//   2. resize the shorter side to preprocess.resize with a port of Pillow's antialiased resample
//      (src/libImaging/Resample.c: precompute_coeffs, 22-bit fixed-point coefficients, clip8, the same pass
//      order), bilinear or bicubic;
//   3. centre crop (offsets int(round((h - r) / 2.0)), Python's round-half-to-even);
//   4. float32 x / 255, (x - mean) / std per channel, NCHW.
// The resample and the steps after it are pure functions on arrays; only decodeRGBA and the classifier need a
// browser.

const PRECISION_BITS = 32 - 8 - 2;

function bilinearFilter(x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

function bicubicFilter(x) {
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

export const FILTERS = {
  bilinear: {filter: bilinearFilter, support: 1.0},
  bicubic: {filter: bicubicFilter, support: 2.0},
};

// Pillow's precompute_coeffs (box = the whole image) followed by normalize_coeffs_8bpc.
function precomputeCoeffs(inSize, outSize, filterp) {
  const scale = inSize / outSize;
  const filterscale = scale < 1.0 ? 1.0 : scale;
  const support = filterp.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const pre = new Float64Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  const invFilterscale = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = 0 + (xx + 0.5) * scale;
    let ww = 0.0;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const k = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = filterp.filter((x + xmin - center + 0.5) * invFilterscale);
      pre[k + x] = w;
      ww += w;
    }
    if (ww !== 0.0) {
      for (let x = 0; x < xmax; x++) pre[k + x] /= ww;
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  const kk = new Int32Array(outSize * ksize);
  for (let i = 0; i < kk.length; i++) {
    const v = pre[i] * (1 << PRECISION_BITS);
    kk[i] = pre[i] < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v);
  }
  return {ksize, bounds, kk};
}

function clip8(ss) {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// One pass along x: rows [offset, offset + outH) of src (inW wide) -> outW x outH.
function horizontal(src, inW, outW, outH, offset, c) {
  const out = new Uint8Array(outW * outH * 3);
  const {ksize, bounds, kk} = c;
  for (let yy = 0; yy < outH; yy++) {
    const row = (yy + offset) * inW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], k = xx * ksize;
      let ss0 = 1 << (PRECISION_BITS - 1), ss1 = ss0, ss2 = ss0;
      for (let x = 0; x < xmax; x++) {
        const p = row + (x + xmin) * 3, w = kk[k + x];
        ss0 += src[p] * w;
        ss1 += src[p + 1] * w;
        ss2 += src[p + 2] * w;
      }
      const o = (yy * outW + xx) * 3;
      out[o] = clip8(ss0);
      out[o + 1] = clip8(ss1);
      out[o + 2] = clip8(ss2);
    }
  }
  return out;
}

// One pass along y: src (w wide) -> w x outH, row bounds from c.
function vertical(src, w, outH, c) {
  const out = new Uint8Array(w * outH * 3);
  const {ksize, bounds, kk} = c;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1], k = yy * ksize;
    for (let xx = 0; xx < w; xx++) {
      let ss0 = 1 << (PRECISION_BITS - 1), ss1 = ss0, ss2 = ss0;
      for (let y = 0; y < ymax; y++) {
        const p = ((y + ymin) * w + xx) * 3, wt = kk[k + y];
        ss0 += src[p] * wt;
        ss1 += src[p + 1] * wt;
        ss2 += src[p + 2] * wt;
      }
      const o = (yy * w + xx) * 3;
      out[o] = clip8(ss0);
      out[o + 1] = clip8(ss1);
      out[o + 2] = clip8(ss2);
    }
  }
  return out;
}

/** Pillow's Image.resize((outW, outH), BILINEAR | BICUBIC) of an 8-bit RGB image (HWC, 3 bytes a pixel):
 * ImagingResampleInner, vertical pass first when the height shrinks more than twice as much as the width. */
export function resample(rgb, inW, inH, outW, outH, interpolation) {
  const filterp = FILTERS[interpolation];
  if (!filterp) throw new Error(`unknown interpolation ${interpolation}; one of ${Object.keys(FILTERS).join(', ')}`);
  if (inW === outW && inH === outH) return Uint8Array.from(rgb);
  const needH = outW !== inW, needV = outH !== inH;
  const horizontalFirst = !((inH - outH) > 0 && (inH - outH) > (inW - outW) * 2);
  let vert = null, hor = null, yFirst = 0, yLast = inH;
  if ((needH && horizontalFirst) || needV) vert = precomputeCoeffs(inH, outH, filterp);
  if (needH) {
    if (horizontalFirst) {
      yFirst = vert.bounds[0];
      yLast = vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1];
      for (let i = 0; i < outH; i++) vert.bounds[i * 2] -= yFirst;
    }
    hor = precomputeCoeffs(inW, outW, filterp);
  }
  let img = rgb;
  if (horizontalFirst) {
    if (needH) img = horizontal(img, inW, outW, yLast - yFirst, yFirst, hor);
    if (needV) img = vertical(img, outW, outH, vert);
  } else {
    if (needV) img = vertical(img, inW, outH, vert);
    if (needH) img = horizontal(img, inW, outW, outH, 0, hor);
  }
  return img;
}

/** RGBA (as decoded, not premultiplied) -> RGB, alpha composited over opaque white with Pillow's
 * ImagingAlphaComposite integer arithmetic (src/libImaging/AlphaComposite.c). */
export function compositeOverWhite(rgba, w, h) {
  const out = new Uint8Array(w * h * 3);
  const shiftDiv255 = (a) => (((a >> 8) + a) >> 8);
  for (let i = 0, o = 0; i < w * h * 4; i += 4, o += 3) {
    const sa = rgba[i + 3];
    if (sa === 0) {
      out[o] = out[o + 1] = out[o + 2] = 255;
      continue;
    }
    const blend = 255 * (255 - sa);
    const outa255 = sa * 255 + blend;
    const coef1 = Math.floor(sa * 255 * 255 * (1 << 7) / outa255);
    const coef2 = 255 * (1 << 7) - coef1;
    for (let c = 0; c < 3; c++) out[o + c] = shiftDiv255(rgba[i + c] * coef1 + 255 * coef2 + (0x80 << 7)) >> 7;
  }
  return out;
}

/** (width, height) with the shorter side `size`, the longer one floor(size * long / short). */
export function resizedSize(w, h, size) {
  return w <= h ? [size, Math.trunc(size * h / w)] : [Math.trunc(size * w / h), size];
}

/** Python's round() of a float (half to even). */
export function roundHalfEven(v) {
  const f = Math.floor(v), d = v - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** The centred size x size crop of an RGB image (zero-padded where smaller, as numpy.pad). */
export function centerCrop(rgb, w, h, size) {
  let src = rgb;
  if (h < size || w < size) {
    const ph = Math.max(0, size - h), pw = Math.max(0, size - w);
    const top = Math.floor(ph / 2), left = Math.floor(pw / 2), nw = w + pw, nh = h + ph;
    src = new Uint8Array(nw * nh * 3);
    for (let y = 0; y < h; y++) src.set(rgb.subarray(y * w * 3, (y + 1) * w * 3), ((y + top) * nw + left) * 3);
    w = nw;
    h = nh;
  }
  const top = roundHalfEven((h - size) / 2.0), left = roundHalfEven((w - size) / 2.0);
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const s = ((y + top) * w + left) * 3;
    out.set(src.subarray(s, s + size * 3), y * size * 3);
  }
  return out;
}

/** uint8 HWC -> float32 NCHW: x / 255 then (x - mean) / std, each step rounded to float32 as numpy does. */
export function normalizeNCHW(rgb, size, mean, std) {
  const out = new Float32Array(3 * size * size);
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]), s = Math.fround(std[c]);
    for (let i = 0; i < plane; i++) {
      const x = Math.fround(rgb[i * 3 + c] / 255);
      out[c * plane + i] = Math.fround(x - m) / s;
    }
  }
  return out;
}

/** Steps 2-4 on an RGB image: the network's float32 NCHW input for edgefit.json's "preprocess". */
export function preprocessRGB(rgb, w, h, pp) {
  const size = 'resize' in pp ? Math.trunc(pp.resize) : Math.trunc(pp.resolution / pp.crop_pct);
  const [nw, nh] = resizedSize(w, h, size);
  const resized = resample(rgb, w, h, nw, nh, pp.interpolation || 'bilinear');
  return normalizeNCHW(centerCrop(resized, nw, nh, pp.resolution), pp.resolution, pp.mean, pp.std);
}

// PNG colour types 0 (gray) and 2 (RGB) have no alpha channel; Pillow ignores their tRNS chunk.
function withoutGrayOrRgbTransparency(bytes) {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (bytes.length < 33 || sig.some((b, i) => bytes[i] !== b) || ![0, 2].includes(bytes[25])) return bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keep = [bytes.subarray(0, 8)];
  let dropped = false;
  for (let p = 8; p + 12 <= bytes.length;) {
    const end = p + 12 + view.getUint32(p);
    const type = String.fromCharCode(...bytes.subarray(p + 4, p + 8));
    if (type === 'tRNS') dropped = true;
    else keep.push(bytes.subarray(p, end));
    p = end;
  }
  if (!dropped) return bytes;
  const out = new Uint8Array(keep.reduce((n, b) => n + b.length, 0));
  keep.reduce((o, b) => (out.set(b, o), o + b.length), 0);
  return out;
}

/** Step 1 in a browser: an image Blob -> {rgb, width, height} (upright per EXIF, alpha over white). */
export async function decodeRGB(blob) {
  const bytes = withoutGrayOrRgbTransparency(new Uint8Array(await blob.arrayBuffer()));
  const bitmap = await createImageBitmap(new Blob([bytes], {type: blob.type}),
    {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
  const {width, height} = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return {rgb: compositeOverWhite(ctx.getImageData(0, 0, width, height).data, width, height), width, height};
}

/** An image Blob -> the network's float32 NCHW input. */
export async function preprocess(blob, pp) {
  const {rgb, width, height} = await decodeRGB(blob);
  return preprocessRGB(rgb, width, height, pp);
}

export function softmax(logits) {
  const m = Math.max(...logits);
  const e = Array.from(logits, (z) => Math.exp(z - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** Load onnxruntime-web (vendored beside this file), the model, labels and edgefit.json. */
export async function loadClassifier(base = new URL('./', import.meta.url)) {
  const ort = await import('./ort.wasm.min.mjs');
  ort.env.wasm.wasmPaths = new URL('./', import.meta.url).href;
  // Threads need cross-origin isolation (COOP/COEP headers); a plain static server gets one thread.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const get = async (name) => {
    const r = await fetch(new URL(name, base));
    if (!r.ok) throw new Error(`${name}: HTTP ${r.status}`);
    return r;
  };
  const meta = await (await get('edgefit.json')).json();
  const labels = (await (await get('labels.txt')).text()).split('\n').filter((l) => l.length);
  const model = meta.deploy.model;
  const session = await ort.InferenceSession.create(new Uint8Array(await (await get(model)).arrayBuffer()),
    {executionProviders: ['wasm'], graphOptimizationLevel: 'all'});
  const pp = meta.preprocess;
  const input = session.inputNames[0], output = session.outputNames[0];
  return {
    labels, pp, ort,
    /** An image Blob -> {label, score, probs}: score is the softmax probability of the label. */
    async classify(blob) {
      const x = await preprocess(blob, pp);
      const feeds = {[input]: new ort.Tensor('float32', x, [1, 3, pp.resolution, pp.resolution])};
      const probs = softmax((await session.run(feeds))[output].data);
      let best = 0;
      for (let i = 1; i < probs.length; i++) if (probs[i] > probs[best]) best = i;
      return {label: labels[best], score: probs[best], probs};
    },
  };
}
