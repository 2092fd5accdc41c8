// Computes reference 128-d face descriptors with @vladmandic/face-api's own TF.js
// FaceRecognitionNet (pure-JS @tensorflow/tfjs, cpu backend) for two synthetic
// 150x150 RGB chips, scaled so that the network's normalized input equals dlib's
// input_rgb_image normalization (p - mean) / 256.
//
// Usage:
//   cd scripts/tfjs_reference && npm install
//   node reference.mjs /path/to/face-api/package > ../../tests/data/tfjs_reference.json
//
// Diagnostics go to stderr, the JSON to stdout.
//
// face-api's FaceRecognitionNet.forwardInput does
//   x = cast(netInput.toBatchTensor(150, true), 'float32')   // pad-to-square + resizeBilinear only if not 150x150
//   normalized = (x - [122.782, 117.001, 104.298]) / 255
// We feed a float32 150x150x3 tensor x = mean + (p - mean) * 255/256 (each element nudged
// by float32 ulps so face-api's float32 sub/div lands as close as possible to dlib's value).

import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';

const faceApiDir = process.argv[2];
if (!faceApiDir) {
  process.stderr.write('usage: node reference.mjs /path/to/@vladmandic/face-api/package\n');
  process.exit(2);
}

// face-api's dist/face-api.esm-nobundle.js imports '@tensorflow/<pkg>/dist/index.js' (ESM files in
// packages without "type":"module", i.e. meant for bundlers). Redirect those imports to the
// packages' Node entry points, resolved from this script's node_modules (pinned versions).
const hookSource = `
let base;
export async function initialize(data) { base = data.base; }
export async function resolve(specifier, context, next) {
  const m = /^(@tensorflow\\/[^/]+)\\/dist\\/index\\.js$/.exec(specifier);
  if (m) return next(m[1], { ...context, parentURL: base });
  return next(specifier, context);
}
`;
register('data:text/javascript,' + encodeURIComponent(hookSource), {
  parentURL: import.meta.url,
  data: { base: import.meta.url },
});

const pkgJson = JSON.parse(fs.readFileSync(path.join(faceApiDir, 'package.json'), 'utf8'));
const faceapi = await import(pathToFileURL(path.join(faceApiDir, 'dist', 'face-api.esm-nobundle.js')).href);
const tf = faceapi.tf;

await tf.setBackend('cpu');
await tf.ready();

// Node 'fs' is not reachable from face-api's ESM build (it uses require); give it a reader.
// Return Buffers that own their whole ArrayBuffer (face-api uses buffer.buffer).
faceapi.env.monkeyPatch({
  readFile: (p) => new Promise((resolve, reject) => {
    fs.readFile(p, (err, b) => {
      if (err) return reject(err);
      return resolve(Buffer.from(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
    });
  }),
});

const net = faceapi.nets.faceRecognitionNet;
await net.loadFromDisk(path.join(faceApiDir, 'model'));

const log = (...a) => process.stderr.write(a.join(' ') + '\n');
log(`face-api ${pkgJson.version} (${faceapi.version}), tfjs ${tf.version.tfjs}, tfjs-core ${tf.version_core}, backend ${tf.getBackend()}`);

const N = 150;
const MEAN = [122.782, 117.001, 104.298];
const DIVISOR = 256;
const FACEAPI_DIVISOR = 255; // from FaceRecognitionNet.forwardInput: normalize(x, meanRgb).div(255)

const chipFns = {
  A: (r, c, ch) => (r * 3 + c * 5 + ch * 71 + ((r * c) % 23) * 4) % 256,
  B: (r, c, ch) => ((Math.floor(r / 10) + Math.floor(c / 10)) % 2) * 200 + 20 + ch * 10,
};

const f32 = Math.fround;
const meanF = MEAN.map(f32);
// float32 next-after helpers
const fbuf = new Float32Array(1);
const ibuf = new Int32Array(fbuf.buffer);
function nextUp(x) {
  fbuf[0] = x;
  if (x === 0) return 1.4e-45;
  ibuf[0] += x > 0 ? 1 : -1;
  return fbuf[0];
}
function nextDown(x) { return -nextUp(-x); }

// What face-api's cpu kernels compute: Float32 sub, then Float32 div by 255.
const faceapiNorm = (x, ch) => f32(f32(x - meanF[ch]) / FACEAPI_DIVISOR);
// What dlib computes: (unsigned char - float) in float, / 256 (exact).
const dlibNorm = (p, ch) => f32(f32(p - meanF[ch]) / DIVISOR);

function makeChip(fn) {
  const pixels = new Float32Array(N * N * 3); // raw integer pixel values
  const fed = new Float32Array(N * N * 3); // value fed to face-api
  const target = new Float32Array(N * N * 3); // dlib's normalized value
  for (let r = 0; r < N; r++) {
    for (let c = 0; c < N; c++) {
      for (let ch = 0; ch < 3; ch++) {
        const i = (r * N + c) * 3 + ch;
        const p = fn(r, c, ch);
        pixels[i] = p;
        const t = dlibNorm(p, ch);
        target[i] = t;
        // initial guess, then search nearby float32 values for the closest face-api result
        let best = f32(MEAN[ch] + ((p - MEAN[ch]) * FACEAPI_DIVISOR) / DIVISOR);
        let bestErr = Math.abs(faceapiNorm(best, ch) - t);
        let lo = best; let hi = best;
        for (let k = 0; k < 8 && bestErr > 0; k++) {
          lo = nextDown(lo); hi = nextUp(hi);
          for (const x of [lo, hi]) {
            const e = Math.abs(faceapiNorm(x, ch) - t);
            if (e < bestErr) { best = x; bestErr = e; }
          }
        }
        fed[i] = best;
      }
    }
  }
  return { pixels, fed, target };
}

// Reproduce exactly the pre-network part of FaceRecognitionNet.forwardInput with face-api's own helpers.
async function faceapiNormalizedInput(inputTensor) {
  const netInput = await faceapi.toNetInput(inputTensor);
  return tf.tidy(() => {
    const batch = tf.cast(netInput.toBatchTensor(150, true), 'float32');
    return faceapi.normalize(batch, MEAN).div(FACEAPI_DIVISOR);
  });
}

// shortest decimal string that round-trips to the same float32
function fmt(v) {
  if (!Number.isFinite(v)) throw new Error(`non-finite value ${v}`);
  for (let p = 1; p <= 9; p++) {
    const s = Number(v.toPrecision(p));
    if (f32(s) === v) return String(s);
  }
  return v.toPrecision(9);
}

const results = {};
for (const [name, fn] of Object.entries(chipFns)) {
  const { pixels, fed, target } = makeChip(fn);
  const input = tf.tensor3d(fed, [N, N, 3], 'float32');

  const normT = await faceapiNormalizedInput(input);
  if (normT.shape.join('x') !== `1x${N}x${N}x3`) throw new Error(`unexpected normalized shape ${normT.shape}`);
  const norm = await normT.data();
  normT.dispose();
  let maxDevF32 = 0; let maxDevExact = 0; let nExact = 0;
  for (let i = 0; i < norm.length; i++) {
    const ch = i % 3;
    maxDevF32 = Math.max(maxDevF32, Math.abs(norm[i] - target[i]));
    maxDevExact = Math.max(maxDevExact, Math.abs(norm[i] - (pixels[i] - MEAN[ch]) / DIVISOR));
    if (norm[i] === target[i]) nExact++;
  }
  log(`chip ${name}: first pixels ${Array.from(pixels.slice(0, 6)).join(', ')}`);
  log(`chip ${name}: first fed values ${Array.from(fed.slice(0, 6)).map(fmt).join(', ')}`);
  log(`chip ${name}: first face-api normalized ${Array.from(norm.slice(0, 6)).map(fmt).join(', ')}`);
  log(`chip ${name}: first dlib (p-mean)/256    ${Array.from(target.slice(0, 6)).map(fmt).join(', ')}`);
  log(`chip ${name}: normalized vs float32 dlib value: ${nExact}/${norm.length} bit-exact, max |diff| ${maxDevF32.toExponential(3)}; vs exact (p-mean)/256: max |diff| ${maxDevExact.toExponential(3)}`);

  const desc = await net.computeFaceDescriptor(input);
  input.dispose();
  if (!(desc instanceof Float32Array) || desc.length !== 128) throw new Error('unexpected descriptor');
  const l2 = Math.sqrt(desc.reduce((s, v) => s + v * v, 0));
  log(`chip ${name}: descriptor[0..4] ${Array.from(desc.slice(0, 5)).map(fmt).join(', ')}  L2 ${l2.toFixed(6)}`);

  // informational: sensitivity to feeding the raw pixels (face-api's /255 scaling)
  const rawT = tf.tensor3d(pixels, [N, N, 3], 'float32');
  const rawDesc = await net.computeFaceDescriptor(rawT);
  rawT.dispose();
  let d = 0; for (let i = 0; i < 128; i++) d = Math.max(d, Math.abs(rawDesc[i] - desc[i]));
  log(`chip ${name}: (info) raw-pixel input (/255 scaling) differs by max |diff| ${d.toExponential(3)}`);

  results[name] = desc;
}

const source = `@vladmandic/face-api@${pkgJson.version} dist/face-api.esm-nobundle.js, FaceRecognitionNet loaded with loadFromDisk(model/) `
  + `(face_recognition_model uint8-quantized weights, dequantized by tf.io.weightsLoaderFactory), descriptors from `
  + `net.computeFaceDescriptor(float32 tensor3d [150,150,3]); @tensorflow/tfjs@${tf.version.tfjs} pure JS, backend '${tf.getBackend()}', Node ${process.version}. `
  + `face-api normalizes (x - mean_rgb)/255 with no resize/pad for a 150x150 input; fed x = mean + (p - mean)*255/256 `
  + `(nudged by float32 ulps) so the network input equals dlib's (p - mean_rgb)/256 to within float32 rounding. `
  + `Generated by scripts/tfjs_reference/reference.mjs.`;

const fmtArr = (a) => '[\n      ' + Array.from(a).map(fmt).join(', ') + '\n    ]';
let out = '{\n';
out += `  "source": ${JSON.stringify(source)},\n`;
out += `  "mean_rgb": [${MEAN.join(', ')}],\n`;
out += `  "divisor": ${DIVISOR},\n`;
out += `  "chips": {\n`;
out += Object.entries(results).map(([k, v]) => `    ${JSON.stringify(k)}: ${fmtArr(v)}`).join(',\n');
out += '\n  }\n}\n';
JSON.parse(out); // sanity
process.stdout.write(out);
