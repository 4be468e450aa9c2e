"""ONNX Runtime's latency on the files `distill bench --onnx DIR` wrote.

Usage: onnx_latency.py DIR [THREADS]. Times each DIR/*.onnx on one 1x3x256x256
input: 10 warm-up runs, then the median of 50, with THREADS intra-op threads
(default 2, as `distill bench`).
"""
import glob
import os
import sys
import time

import numpy as np
import onnxruntime as ort


def main(folder, threads):
    print(f"network  ONNX Runtime {ort.__version__}, 1x3x256x256 ({threads} threads, median of 50)")
    x = np.random.default_rng(5).random((1, 3, 256, 256), dtype=np.float32)
    for path in sorted(glob.glob(os.path.join(folder, "*.onnx"))):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        times = []
        for i in range(60):
            start = time.perf_counter()
            session.run(["logits"], {"image": x})
            if i >= 10:
                times.append((time.perf_counter() - start) * 1000)
        print(f"{os.path.basename(path)[:-5]:8} {sorted(times)[len(times) // 2]:.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
