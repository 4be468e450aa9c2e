#!/usr/bin/env python3
"""Writes the 3D op cases Distillery added to the reference (torch/*3d*.safetensors),
with the conventions of ../README.md: float32 inputs and parameters, outputs and
gradients computed in float64 from them and rounded once, L = sum(out.y * gout.y).
Volumes are NCDHW; kernel sizes, strides, paddings and dilations are [d, h, w]
lists in `params` (nnU-Net's anisotropic (1, 3, 3) kernels and (1, 2, 2) pooling
among them).

Run once with PyTorch (2.13.0+cpu was used):  python3 volume_cases.py
The files are data; the tests never run this script."""
import json
import os

import torch
import torch.nn.functional as F

from multiclass_cases import save

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch")
REFERENCE = "computed in float64 from the stored float32 inputs, rounded to float32; torch 2.13.0+cpu (Distillery's tools/volume_cases.py)"


def triple(v):
    return list(v) if isinstance(v, (list, tuple)) else [v, v, v]


def write(name, op, description, params, seed, inputs, fn, buffers=None):
    """inputs: name -> float32 tensor (`x` is `in.x`, the rest `param.*`); fn(**float64 leaves) -> y."""
    g = torch.Generator().manual_seed(seed + 1)
    leaves = {k: v.double().requires_grad_(True) for k, v in inputs.items()}
    state = {k: v.double().clone() for k, v in (buffers or {}).items()}
    y = fn(state=state, **leaves)
    gout = torch.randn(y.shape, generator=g).float()
    (y * gout.double()).sum().backward()
    check_float32(name, inputs, buffers, fn, y, gout, leaves)
    tensors = {}
    for k, v in inputs.items():
        tensors[("in." if k == "x" else "param.") + k] = v
    for k, v in (buffers or {}).items():
        tensors["param." + k] = v
    tensors["out.y"] = y.detach().float()
    for k, v in state.items():
        tensors["out." + k] = v.float()
    tensors["gout.y"] = gout
    for k, v in leaves.items():
        tensors["grad." + k] = v.grad.float()
    meta = {"op": op, "case": name, "seed": str(seed), "params": json.dumps(params, sort_keys=True),
            "atol": "0.0001", "rtol": "0.0001", "description": description, "reference": REFERENCE}
    save(os.path.join(OUT, name + ".safetensors"), tensors, meta)


def check_float32(name, inputs, buffers, fn, y64, gout, leaves64):
    """PyTorch's own float32 computation must pass the case's tolerances with a 10x margin."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    state = {k: v.clone() for k, v in (buffers or {}).items()}
    y = fn(state=state, **leaves)
    (y * gout).sum().backward()
    pairs = [(y.detach(), y64.detach())] + [(leaves[k].grad, leaves64[k].grad) for k in leaves]
    for got, ref in pairs:
        ref = ref.float()
        excess = ((got - ref).abs() - (1e-5 + 1e-5 * ref.abs())).max().item()
        assert excess <= 0, f"{name}: float32 PyTorch misses a tenth of the tolerance by {excess}"


def randn(seed, *shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).float()


def conv_case(name, description, seed, x_shape, out_ch, kernel, stride, padding, dilation, bias):
    k, s, p, d = triple(kernel), triple(stride), triple(padding), triple(dilation)
    c = x_shape[1]
    fan = c * k[0] * k[1] * k[2]
    inputs = {"x": randn(seed, *x_shape), "weight": randn(seed + 2, out_ch, c, *k) / fan ** 0.5}
    if bias:
        inputs["bias"] = randn(seed + 3, out_ch) * 0.1
    params = {"kernel_size": k, "stride": s, "padding": p, "dilation": d, "bias": bias}
    write(name, "conv3d", description, params, seed, inputs,
          lambda state, x, weight, bias=None: F.conv3d(x, weight, bias, stride=s, padding=p, dilation=d))


def conv_transpose_case(name, description, seed, x_shape, out_ch, kernel, stride):
    k, s = triple(kernel), triple(stride)
    c = x_shape[1]
    inputs = {"x": randn(seed, *x_shape), "weight": randn(seed + 2, c, out_ch, *k) / c ** 0.5, "bias": randn(seed + 3, out_ch) * 0.1}
    params = {"kernel_size": k, "stride": s, "padding": [0, 0, 0], "output_padding": [0, 0, 0], "bias": True}
    write(name, "conv_transpose3d", description, params, seed, inputs,
          lambda state, x, weight, bias: F.conv_transpose3d(x, weight, bias, stride=s))


def pool_case(name, op, description, seed, x_shape, kernel, stride):
    k, s = triple(kernel), triple(stride)
    params = {"kernel_size": k, "stride": s, "padding": [0, 0, 0], "ceil_mode": False}
    pool = F.max_pool3d if op == "max_pool3d" else F.avg_pool3d
    # Max pooling: distinct values, so every window has one maximum (no ties).
    x = randn(seed, *x_shape)
    if op == "max_pool3d":
        x = (torch.randperm(x.numel(), generator=torch.Generator().manual_seed(seed)).float() / x.numel() - 0.5).reshape(x_shape)
    write(name, op, description, params, seed, {"x": x}, lambda state, x: pool(x, k, s))


conv_case("conv3d_k3s1p1", "3D convolution, 3x3x3 kernel, stride 1, zero padding 1, with bias (a 3D U-Net's block)",
          3101, [2, 3, 6, 7, 8], 4, 3, 1, 1, 1, True)
conv_case("conv3d_k133_p011", "3D convolution, anisotropic 1x3x3 kernel, padding (0, 1, 1), with bias (nnU-Net on thick slices)",
          3102, [2, 4, 5, 6, 7], 3, [1, 3, 3], 1, [0, 1, 1], 1, True)
conv_case("conv3d_k3s122p1_nobias", "3D convolution, 3x3x3 kernel, stride (1, 2, 2), padding 1, no bias (nnU-Net's in-plane down-sampling)",
          3103, [1, 2, 5, 9, 8], 5, 3, [1, 2, 2], 1, 1, False)
conv_case("conv3d_k3s2p2_dil2", "3D convolution, 3x3x3 kernel, stride 2, padding 2, dilation 2, with bias",
          3104, [2, 2, 7, 8, 9], 3, 3, 2, 2, 2, True)
conv_transpose_case("conv_transpose3d_k2s2", "3D transposed convolution, 2x2x2 kernel, stride 2, with bias (3D U-Net up-sampling)",
                    3105, [2, 4, 3, 4, 5], 3, 2, 2)
conv_transpose_case("conv_transpose3d_k122s122", "3D transposed convolution, 1x2x2 kernel, stride (1, 2, 2), with bias (in-plane up-sampling)",
                    3106, [2, 3, 4, 3, 5], 2, [1, 2, 2], [1, 2, 2])
pool_case("maxpool3d_k2s2", "max_pool3d", "2x2x2 max pooling, stride 2, odd sizes floored", 3107, [2, 3, 6, 7, 9], 2, 2)
pool_case("maxpool3d_k122s122", "max_pool3d", "1x2x2 max pooling, stride (1, 2, 2) (in-plane only)", 3108, [2, 2, 3, 6, 8], [1, 2, 2], [1, 2, 2])
pool_case("avgpool3d_k2s2", "avg_pool3d", "2x2x2 average pooling, stride 2", 3109, [2, 3, 6, 8, 5], 2, 2)

# Normalisation over volumes: batch norm (train, running-stat update) and instance norm (nnU-Net's default).
write("batchnorm3d_train", "batch_norm3d", "BatchNorm3d in training mode: batch statistics, running-stat update",
      {"eps": 1e-5, "momentum": 0.1, "training": True}, 3110,
      {"x": randn(3110, 2, 4, 3, 5, 6) * 2 + 0.5, "weight": randn(3112, 4) * 0.2 + 1, "bias": randn(3113, 4) * 0.1},
      lambda state, x, weight, bias: F.batch_norm(x, state["running_mean"], state["running_var"], weight, bias,
                                                  training=True, momentum=0.1, eps=1e-5),
      buffers={"running_mean": randn(3114, 4) * 0.1, "running_var": randn(3115, 4).abs() + 0.5})
write("instancenorm3d_affine", "instance_norm3d", "InstanceNorm3d with affine parameters (nnU-Net's normalisation)",
      {"affine": True, "eps": 1e-5, "track_running_stats": False}, 3116,
      {"x": randn(3116, 2, 3, 4, 5, 6) * 1.5 - 0.3, "weight": randn(3118, 3) * 0.2 + 1, "bias": randn(3119, 3) * 0.1},
      lambda state, x, weight, bias: F.instance_norm(x, weight=weight, bias=bias, eps=1e-5))
