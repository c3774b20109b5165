// peer_tfjs.js -- TF.js models written, and read back, by tfjs itself
// (tests/cli/tfjs_interop.sh). Run with NODE_PATH naming a node_modules
// that holds @tensorflow/tfjs-core, -backend-cpu and -layers.
//
//   node peer_tfjs.js gen DIR     writes under DIR:
//     layers/model.json + 3 shards  a tfjs-layers model saved through
//                                   model.save(tf.io.withSaveHandler(..)),
//                                   its weight data cut into shards at
//                                   byte offsets inside tensors
//     quant/manifest.json + shards  a bare manifest of two groups: every
//                                   uint8 value under 40 (scale, min)
//                                   pairs, every uint16 value, every
//                                   float16 bit pattern, int32 from
//                                   uint8/uint16 (halves, wrap-around),
//                                   plain float32/int32/bool
//     graph/model.json + shard      a graph model (format graph-model)
//                                   with string weights
//     each with ref.safetensors: what tf.io.decodeWeights gives, bit for
//     bit (strings left out), from the manifest and the concatenated
//     shards.
//   node peer_tfjs.js ref MANIFEST OUT   decodeWeights of any manifest
//     (model.json or bare) and its shards, as OUT (safetensors).
//   node peer_tfjs.js predict MODEL OUT  tf.loadLayersModel of a layers
//     model.json (its shards read as tfjs's http loader would, through an
//     IOHandler), predict() on 4 fixed inputs; the output's float32 bytes
//     into OUT.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfl = require('@tensorflow/tfjs-layers');

// Deterministic pseudo-random numbers (mulberry32).
let seed = 12345;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

function writeSafetensors(file, tensors) {
  const header = {};
  const bufs = [];
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype === 'string') continue;
    const v = t.dataSync();
    const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    const dt = {float32: 'F32', int32: 'I32', bool: 'BOOL'}[t.dtype];
    header[name] = {dtype: dt, shape: t.shape, data_offsets: [off, off + b.length]};
    bufs.push(b);
    off += b.length;
  }
  let h = Buffer.from(JSON.stringify(header));
  const pad = (8 - (h.length % 8)) % 8;
  h = Buffer.concat([h, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, ...bufs]));
}

function toArrayBuffer(buf) {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}

// decodeWeights of every group of a manifest, from the shard files.
function refOf(manifestFile, out) {
  const j = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  const groups = Array.isArray(j) ? j : j.weightsManifest;
  const dir = path.dirname(manifestFile);
  const all = {};
  for (const g of groups) {
    const data = Buffer.concat(g.paths.map((p) => fs.readFileSync(path.join(dir, p))));
    Object.assign(all, tf.io.decodeWeights(toArrayBuffer(data), g.weights));
  }
  writeSafetensors(out, all);
  return Object.keys(all).length;
}

// Cut buf at the given offsets and write the pieces as shards.
function writeShards(dir, prefix, buf, cuts) {
  const paths = [];
  let prev = 0;
  const ends = [...cuts, buf.length];
  ends.forEach((end, i) => {
    const name = `${prefix}-shard${i + 1}of${ends.length}.bin`;
    fs.writeFileSync(path.join(dir, name), buf.subarray(prev, end));
    paths.push(name);
    prev = end;
  });
  return paths;
}

async function genLayers(dir) {
  fs.mkdirSync(dir, {recursive: true});
  const model = tfl.sequential();
  model.add(tfl.layers.dense({units: 13, inputShape: [7], activation: 'relu'}));
  model.add(tfl.layers.batchNormalization());
  model.add(tfl.layers.dense({units: 5, activation: 'softmax'}));
  let art;
  await model.save(tf.io.withSaveHandler(async (a) => {
    art = a;
    return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
  }));
  const data = Buffer.from(art.weightData);
  // 7*13*4 = 364 bytes of kernel first: cut inside it and inside the
  // batch-norm weights.
  const paths = writeShards(dir, 'group1', data, [150, 401]);
  const mj = {
    modelTopology: art.modelTopology,
    format: art.format,
    generatedBy: art.generatedBy,
    convertedBy: art.convertedBy,
    weightsManifest: [{paths, weights: art.weightSpecs}],
  };
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(mj));
  return refOf(path.join(dir, 'model.json'), path.join(dir, 'ref.safetensors'));
}

function genQuant(dir) {
  fs.mkdirSync(dir, {recursive: true});
  const specs = [];
  const parts = [];
  // uint8: all 256 values under 40 random (scale, min) pairs.
  for (let k = 0; k < 40; k++) {
    const lo = -rand() * 10 ** (rand() * 6 - 3), hi = rand() * 10 ** (rand() * 6 - 3);
    const scale = (hi - lo) / 255, min = lo;
    const q = new Uint8Array(256);
    for (let i = 0; i < 256; i++) q[i] = i;
    specs.push({name: `u8/${k}`, shape: [16, 16], dtype: 'float32',
                quantization: {dtype: 'uint8', scale, min}});
    parts.push(Buffer.from(q.buffer));
  }
  // uint16: every value, two pairs.
  for (let k = 0; k < 2; k++) {
    const q = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) q[i] = i;
    const scale = rand() / 3000, min = -rand() * 7;
    specs.push({name: `u16/${k}`, shape: [256, 256], dtype: 'float32',
                quantization: {dtype: 'uint16', scale, min, original_dtype: 'float32'}});
    parts.push(Buffer.from(q.buffer));
  }
  // float16: every bit pattern (subnormals, infinities, NaN payloads).
  {
    const q = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) q[i] = i;
    specs.push({name: 'f16/all', shape: [65536], dtype: 'float32',
                quantization: {dtype: 'float16'}});
    parts.push(Buffer.from(q.buffer));
  }
  // int32 from uint8 (exact halves, negative halves) and uint16 (values
  // past 2^31: ToInt32 wraps them).
  {
    const q = new Uint8Array(256);
    for (let i = 0; i < 256; i++) q[i] = i;
    specs.push({name: 'i32/u8', shape: [256], dtype: 'int32',
                quantization: {dtype: 'uint8', scale: 0.5, min: -63.5}});
    parts.push(Buffer.from(q.buffer));
    const r = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) r[i] = i;
    specs.push({name: 'i32/u16', shape: [65536], dtype: 'int32',
                quantization: {dtype: 'uint16', scale: 98765.4321, min: -1e9}});
    parts.push(Buffer.from(r.buffer));
  }
  const g1 = Buffer.concat(parts);
  // Cut group 1 inside the first uint16 tensor, at an odd offset.
  const cut = 40 * 256 + 1001;
  const p1 = writeShards(dir, 'group1', g1, [cut]);
  // Group 2: plain dtypes in one shard.
  const f = new Float32Array(37);
  for (let i = 0; i < f.length; i++) f[i] = (rand() - 0.5) * 1e3;
  const n = new Int32Array(11);
  for (let i = 0; i < n.length; i++) n[i] = ((rand() * 2 ** 32) | 0);
  const b = new Uint8Array(6);
  for (let i = 0; i < b.length; i++) b[i] = rand() < 0.5 ? 0 : 1;
  const g2 = Buffer.concat([Buffer.from(f.buffer), Buffer.from(n.buffer), Buffer.from(b.buffer)]);
  const p2 = writeShards(dir, 'group2', g2, []);
  const manifest = [
    {paths: p1, weights: specs},
    {paths: p2, weights: [
      {name: 'plain/f32', shape: [37], dtype: 'float32'},
      {name: 'plain/i32', shape: [11], dtype: 'int32'},
      {name: 'plain/bool', shape: [2, 3], dtype: 'bool'},
    ]},
  ];
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  return refOf(path.join(dir, 'manifest.json'), path.join(dir, 'ref.safetensors'));
}

function genGraph(dir) {
  fs.mkdirSync(dir, {recursive: true});
  const w = new Float32Array(12);
  for (let i = 0; i < 12; i++) w[i] = rand() - 0.5;
  const strs = ['alpha', 'b\u00e9ta', ''];
  const enc = [];
  for (const s of strs) {
    const b = Buffer.from(s, 'utf8');
    const l = Buffer.alloc(4);
    l.writeUInt32LE(b.length);
    enc.push(l, b);
  }
  const one = Buffer.from('scalar text');
  const l1 = Buffer.alloc(4);
  l1.writeUInt32LE(one.length);
  const shape = new Int32Array([3, 4]);
  const data = Buffer.concat([Buffer.from(w.buffer), ...enc, l1, one,
                              Buffer.from(shape.buffer)]);
  const paths = writeShards(dir, 'group1', data, []);
  const mj = {
    format: 'graph-model',
    generatedBy: '2.15.0',
    convertedBy: 'weightvault test',
    modelTopology: {
      node: [
        {name: 'x', op: 'Placeholder', attr: {dtype: {type: 'DT_FLOAT'}}},
        {name: 'w', op: 'Const', attr: {dtype: {type: 'DT_FLOAT'}}},
        {name: 'y', op: 'MatMul', input: ['x', 'w']},
      ],
      library: {},
      versions: {producer: 1482},
    },
    weightsManifest: [{paths, weights: [
      {name: 'w', shape: [3, 4], dtype: 'float32'},
      {name: 'vocab', shape: [3], dtype: 'string'},
      {name: 'note', shape: [], dtype: 'string'},
      {name: 'shape_const', shape: [2], dtype: 'int32'},
    ]}],
  };
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(mj, null, 1));
  return refOf(path.join(dir, 'model.json'), path.join(dir, 'ref.safetensors'));
}

async function predict(modelFile, out) {
  const j = JSON.parse(fs.readFileSync(modelFile, 'utf8'));
  const dir = path.dirname(modelFile);
  const specs = [], bufs = [];
  for (const g of j.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
  }
  const handler = {load: async () => ({
    modelTopology: j.modelTopology, format: j.format,
    generatedBy: j.generatedBy, convertedBy: j.convertedBy,
    weightSpecs: specs, weightData: toArrayBuffer(Buffer.concat(bufs)),
  })};
  const model = await tfl.loadLayersModel(handler);
  const shape = model.inputs[0].shape.slice(1);
  const n = 4 * shape.reduce((a, b) => a * b, 1);
  const x = tf.tensor(Float32Array.from({length: n}, (_, i) => Math.sin(i + 1)),
                      [4, ...shape]);
  const y = await model.predict(x).data();
  fs.writeFileSync(out, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  return y.length;
}

async function main() {
  await tf.setBackend('cpu');
  const [cmd, a, b] = process.argv.slice(2);
  if (cmd === 'gen') {
    console.log('layers', await genLayers(path.join(a, 'layers')), 'weights');
    console.log('quant', genQuant(path.join(a, 'quant')), 'weights');
    console.log('graph', genGraph(path.join(a, 'graph')), 'weights');
  } else if (cmd === 'ref') {
    console.log('ref', refOf(a, b), 'weights');
  } else if (cmd === 'predict') {
    console.log('predict', await predict(a, b), 'values');
  } else {
    throw new Error('usage: peer_tfjs.js gen DIR | ref MANIFEST OUT | predict MODEL OUT');
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
