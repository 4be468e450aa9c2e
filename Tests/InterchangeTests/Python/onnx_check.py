"""Runs Distillery's ONNX exports in ONNX Runtime and compares with Distillery's logits.

Usage: onnx_check.py FOLDER. Each sub-folder of FOLDER is a case: model.onnx and
pairs NAME.input.f32 / NAME.logits.f32 (raw little-endian float32) with their shapes
in shapes.json. Prints one JSON object: per case, onnx.checker's verdict, the
largest absolute difference and the largest absolute logit of each pair, and the
model's metadata.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main(folder):
    report = {}
    for case in sorted(os.listdir(folder)):
        path = os.path.join(folder, case)
        model_path = os.path.join(path, "model.onnx")
        entry = {}
        try:
            model = onnx.load(model_path)
            onnx.checker.check_model(model, full_check=True)
            entry["checker"] = "ok"
        except Exception as e:  # the verdict is the result
            entry["checker"] = f"{type(e).__name__}: {e}"
            report[case] = entry
            continue
        entry["opset"] = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
        entry["metadata"] = {p.key: p.value for p in model.metadata_props}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        with open(os.path.join(path, "shapes.json")) as f:
            shapes = json.load(f)
        runs = {}
        for name, s in shapes.items():
            x = np.fromfile(os.path.join(path, name + ".input.f32"), dtype="<f4").reshape(s["input"])
            want = np.fromfile(os.path.join(path, name + ".logits.f32"), dtype="<f4").reshape(s["logits"])
            (got,) = session.run(["logits"], {"image": x})
            runs[name] = {
                "shape": list(got.shape),
                "max_abs_difference": float(np.max(np.abs(got - want))) if got.shape == want.shape else None,
                "max_abs_logit": float(np.max(np.abs(want))),
            }
        entry["runs"] = runs
        report[case] = entry
    print(json.dumps(report, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
