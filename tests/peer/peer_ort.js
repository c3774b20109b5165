// peer_ort.js -- runs ONNX models in onnxruntime-node (from npm, NODE_PATH)
// for tests/cli/onnx_write.sh:
//   node peer_ort.js OUT
// reads OUT/ort.json (written by peer_onnx_write.py real): for each case
// the template, the same weights written over it and changed weights, run
// on the same inputs; writes OUT/ort-results.json with each model's
// outputs (hex of their bytes; "error" when onnxruntime cannot run the
// template). Also runs OUT/lin (peer_onnx_write.py made): changed.onnx's
// output into OUT/lin/changed.out.bin.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const ARR = {
  float32: Float32Array, float64: Float64Array, int64: BigInt64Array,
  int32: Int32Array, uint8: Uint8Array, int8: Int8Array, bool: Uint8Array,
  float16: Uint16Array,
};

function feeds(inputs) {
  const f = {};
  for (const i of inputs) {
    const b = fs.readFileSync(i.file);
    const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
    const T = ARR[i.type];
    f[i.name] = new ort.Tensor(i.type, new T(ab), i.dims);
  }
  return f;
}

async function outputs(model, inputs) {
  const s = await ort.InferenceSession.create(model, {logSeverityLevel: 3});
  const r = await s.run(feeds(inputs));
  const o = [];
  for (const k of s.outputNames) {
    const d = r[k].data;
    o.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex'));
  }
  return o.join(',');
}

async function main() {
  const out = process.argv[2];
  const cases = JSON.parse(fs.readFileSync(path.join(out, 'ort.json')));
  const res = [];
  for (const c of cases) {
    const r = {name: c.name};
    try {
      r.template = await outputs(c.template, c.inputs);
    } catch (e) {
      r.error = String(e).slice(0, 200);
      res.push(r);
      continue;
    }
    r.same = await outputs(c.same, c.inputs);
    r.changed = await outputs(c.changed, c.inputs);
    res.push(r);
  }
  fs.writeFileSync(path.join(out, 'ort-results.json'), JSON.stringify(res));
  const lin = path.join(out, 'lin');
  const x = [{name: 'X', type: 'float32', dims: [2, 4],
              file: path.join(lin, 'x.bin')}];
  const s = await ort.InferenceSession.create(path.join(lin, 'changed.onnx'));
  const y = (await s.run(feeds(x))).Y.data;
  fs.writeFileSync(path.join(lin, 'changed.out.bin'),
                   Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  const t = await ort.InferenceSession.create(path.join(lin, 'model.onnx'));
  const s2 = await ort.InferenceSession.create(path.join(lin, 'same.onnx'));
  const a = (await t.run(feeds(x))).Y.data, b = (await s2.run(feeds(x))).Y.data;
  if (Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer)) !== 0)
    throw new Error('lin: same weights, other outputs');
  // external data: onnxruntime reads OUT.data beside the model
  const e = await ort.InferenceSession.create(path.join(out, 'ext', 'out.onnx'));
  const z = new Float32Array(64 * 64);
  const ye = (await e.run({X: new ort.Tensor('float32', z, [64, 64])})).Y.data;
  fs.writeFileSync(path.join(out, 'ext', 'ort.out.bin'),
                   Buffer.from(ye.buffer, ye.byteOffset, ye.byteLength));
}

main().catch((e) => { console.error(String(e)); process.exit(1); });
