"""Reading TF.js graph models (model.json + .bin) and TF's op semantics in numpy, shared by the
converters scripts/faceres_to_onnx.py and scripts/faceboxes_to_onnx.py.
"""
import base64
import json

import numpy as np


def load_graph(model_json, model_bin):
    """Returns (nodes in graph order, weights by name as numpy arrays)."""
    with open(model_json) as f:
        model = json.load(f)
    with open(model_bin, "rb") as f:
        data = f.read()
    weights = {}
    offset = 0
    for group in model["weightsManifest"]:
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q is not None:
                if q.get("dtype") != "float16" or w["dtype"] != "float32":
                    raise SystemExit("unexpected quantization of %s: %s" % (w["name"], q))
                stored, size = np.float16, 2
            else:
                stored, size = {"float32": np.float32, "int32": np.int32}[w["dtype"]], 4
            nbytes = count * size
            if offset + nbytes > len(data):
                raise SystemExit("%s: weights end early (%s)" % (model_bin, w["name"]))
            arr = np.frombuffer(data, stored, count, offset).reshape(w["shape"])
            weights[w["name"]] = arr.astype(np.float32) if q is not None else arr
            offset += nbytes
    if offset != len(data):
        raise SystemExit("%s: %d bytes left over after the weights" % (model_bin, len(data) - offset))
    return model["modelTopology"]["node"], weights


def attr_ints(node, key):
    return [int(i) for i in node["attr"][key]["list"]["i"]]


def attr_str(node, key):
    return base64.b64decode(node["attr"][key]["s"]).decode()


def fused_ops(node):
    return [base64.b64decode(s).decode() for s in node["attr"]["fused_ops"]["list"]["s"]]


def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def conv_nhwc(x, w, strides, depthwise):
    """x [1,H,W,C]; w HWIO (or HW C M for depthwise); TF 'SAME' padding."""
    _, h, wd, c = x.shape
    kh, kw = w.shape[0], w.shape[1]
    sh, sw = strides
    pt, pb = same_pads(h, kh, sh)
    pl, pr = same_pads(wd, kw, sw)
    xp = np.pad(x[0], ((pt, pb), (pl, pr), (0, 0)))
    oh, ow = -(-h // sh), -(-wd // sw)
    if depthwise:
        out = np.zeros((oh, ow, c * w.shape[3]))
        ww = w.reshape(kh, kw, c * w.shape[3])
        for i in range(kh):
            for j in range(kw):
                out += xp[i:i + sh * oh:sh, j:j + sw * ow:sw, :] * ww[i, j]
        return out[None]
    out = np.zeros((oh, ow, w.shape[3]))
    for i in range(kh):
        for j in range(kw):
            out += xp[i:i + sh * oh:sh, j:j + sw * ow:sw, :] @ w[i, j]
    return out[None]
