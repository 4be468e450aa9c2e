#!/usr/bin/env python3
"""Writes torch/unet3d_small.safetensors: one training step of a small 3D U-Net
(nnU-Net's layout: instance norm, anisotropic (1, 3, 3) kernels and (1, 2, 2)
pooling at the first level, transposed-convolution up-sampling mirroring the
pooling, skip concatenation [up-sampled, skip]) with the conventions of
../README.md: parameters named as Distillery's U-Net (encoder.{i}.conv{j},
encoder.{i}.norm{j}, bottleneck.*, decoder.{i}.up, decoder.{i}.conv{j},
head.segmentation), forward in float64 from float32 parameters, the batch Dice
loss (`dice_loss`, smooth 1), every gradient, three taps, and per-tensor
tolerances 2e-4 x max|ref| (outputs) and 2e-3 x max|ref| (gradients).

Run once with PyTorch (2.13.0+cpu was used):  python3 unet3d_case.py
The files are data; the tests never run this script."""
import json
import os

import torch
import torch.nn.functional as F

from multiclass_cases import save

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch")
SEED = 3201
PARAMS = {
    "in_channels": 1, "input": [2, 1, 6, 16, 16], "widths": [4, 8], "bottleneck": 12, "convs_per_block": 2,
    "norm": "instance", "eps": 1e-5, "kernels": [[1, 3, 3], [3, 3, 3], [3, 3, 3]], "pools": [[1, 2, 2], [2, 2, 2]],
    "heads": {"segmentation": 1}, "loss": "dice_loss", "mode": "train", "taps": ["pool.0", "bottleneck", "decoder.1"],
}


def parameters(gen):
    """State-dict order: encoder levels, bottleneck, decoder levels, head."""
    p = PARAMS
    out = {}

    def conv(name, cin, cout, kernel):
        fan = cin * kernel[0] * kernel[1] * kernel[2]
        bound = 1 / fan ** 0.5
        out[name + ".weight"] = (torch.rand(cout, cin, *kernel, generator=gen) * 2 - 1) * bound
        out[name + ".bias"] = (torch.rand(cout, generator=gen) * 2 - 1) * bound

    def norm(name, c):
        out[name + ".weight"] = 1 + 0.1 * torch.randn(c, generator=gen)
        out[name + ".bias"] = 0.1 * torch.randn(c, generator=gen)

    def block(name, cin, cout, kernel):
        for j in range(p["convs_per_block"]):
            conv(f"{name}.conv{j}", cin if j == 0 else cout, cout, kernel)
            norm(f"{name}.norm{j}", cout)

    cin = p["in_channels"]
    for i, w in enumerate(p["widths"]):
        block(f"encoder.{i}", cin, w, p["kernels"][i])
        cin = w
    depth = len(p["widths"])
    block("bottleneck", cin, p["bottleneck"], p["kernels"][depth])
    below = p["bottleneck"]
    for i in range(depth):
        level = depth - 1 - i
        w, pool = p["widths"][level], p["pools"][level]
        fan = w * pool[0] * pool[1] * pool[2]  # PyTorch: fan-in of a transposed conv from weight dim 1 times the kernel
        out[f"decoder.{i}.up.weight"] = (torch.rand(below, w, *pool, generator=gen) * 2 - 1) / fan ** 0.5
        out[f"decoder.{i}.up.bias"] = (torch.rand(w, generator=gen) * 2 - 1) / fan ** 0.5
        block(f"decoder.{i}", 2 * w, w, p["kernels"][level])
        below = w
    conv("head.segmentation", p["widths"][0], 1, [1, 1, 1])
    return {k: v.float() for k, v in out.items()}


def forward(x, w):
    p, taps = PARAMS, {}
    depth = len(p["widths"])

    def block(name, y, kernel):
        pad = [k // 2 for k in kernel]
        for j in range(p["convs_per_block"]):
            y = F.conv3d(y, w[f"{name}.conv{j}.weight"], w[f"{name}.conv{j}.bias"], padding=pad)
            y = F.relu(F.instance_norm(y, weight=w[f"{name}.norm{j}.weight"], bias=w[f"{name}.norm{j}.bias"], eps=p["eps"]))
        return y

    skips, y = [], x
    for i in range(depth):
        y = block(f"encoder.{i}", y, p["kernels"][i])
        taps[f"encoder.{i}"] = y
        skips.append(y)
        y = F.max_pool3d(y, p["pools"][i], p["pools"][i])
        taps[f"pool.{i}"] = y
    z = block("bottleneck", y, p["kernels"][depth])
    taps["bottleneck"] = z
    for i in range(depth):
        level = depth - 1 - i
        up = F.conv_transpose3d(z, w[f"decoder.{i}.up.weight"], w[f"decoder.{i}.up.bias"], stride=p["pools"][level])
        z = block(f"decoder.{i}", torch.cat([up, skips[level]], 1), p["kernels"][level])
        taps[f"decoder.{i}"] = z
    logits = F.conv3d(z, w["head.segmentation.weight"], w["head.segmentation.bias"])
    return logits, taps


def dice_loss(logits, target):
    prob = torch.sigmoid(logits).flatten()
    t = target.flatten()
    return 1 - (2 * (prob * t).sum() + 1) / (prob.sum() + t.sum() + 1)


def run(x32, label32, params32, dtype):
    x = x32.to(dtype).requires_grad_(True)
    w = {k: v.to(dtype).requires_grad_(True) for k, v in params32.items()}
    logits, taps = forward(x, w)
    loss = dice_loss(logits, label32.to(dtype))
    loss.backward()
    return x, w, logits, taps, loss


def main():
    gen = torch.Generator().manual_seed(SEED)
    params = parameters(gen)
    n, c, d, h, wd = PARAMS["input"]
    x = torch.randn(n, c, d, h, wd, generator=gen).float()
    # A blob of foreground per volume, so that the Dice loss is neither 0 nor 1.
    zz, yy, xx = torch.meshgrid(torch.arange(d), torch.arange(h), torch.arange(wd), indexing="ij")
    label = torch.stack([((zz - d / 2) ** 2 / 9 + (yy - h / 2 - s) ** 2 / 16 + (xx - wd / 2 + s) ** 2 / 20 < 1).float()
                         for s in range(n)]).unsqueeze(1)
    x64, w64, logits64, taps64, loss64 = run(x, label, params, torch.float64)
    x32, w32, logits32, taps32, loss32 = run(x, label, params, torch.float32)

    tensors = {"in.x": x, "in.label": label}
    tensors.update({"param." + k: v for k, v in params.items()})
    refs = {"out.logits.segmentation": (logits64, logits32), "out.loss": (loss64, loss32)}
    for t in PARAMS["taps"]:
        refs["out.tap." + t] = (taps64[t], taps32[t])
    grads = {"grad.x": (x64.grad, x32.grad)}
    for k in params:
        grads["grad." + k] = (w64[k].grad, w32[k].grad)
    tolerances, zero = {}, []
    for name, (ref, f32) in list(refs.items()) + list(grads.items()):
        ref = ref.detach()
        scale = 2e-4 if name.startswith("out.") else 2e-3
        atol = scale * ref.abs().max().item()
        if name.startswith("grad.") and ref.abs().max().item() < 1e-12:
            # A conv bias before instance norm: the per-instance mean removes it, its gradient is exactly 0.
            zero.append(name)
            atol = 2e-3 * grads[name.replace(".bias", ".weight")][0].abs().max().item()
        tolerances[name] = [float(f"{atol:.2g}"), 1e-3]
        excess = ((f32.detach().double() - ref).abs() - 0.1 * (atol + 1e-3 * ref.abs())).max().item()
        assert excess <= 0, f"{name}: float32 PyTorch misses a tenth of the tolerance by {excess}"
        tensors[name] = torch.zeros_like(ref).float() if name in zero else ref.float()
    meta = {
        "op": "unet3d", "case": "unet3d_small", "seed": str(SEED), "params": json.dumps(PARAMS, sort_keys=True),
        "atol": "0.0001", "rtol": "0.001",
        "description": "Small 3D U-Net (instance norm, (1,3,3) kernels and (1,2,2) pooling at level 0): forward (train mode), taps, Dice loss, all gradients",
        "reference": "computed in float64 from the stored float32 inputs, rounded to float32; torch 2.13.0+cpu (Distillery's tools/unet3d_case.py)",
        "tolerances": json.dumps(tolerances, sort_keys=True), "zero_grads": json.dumps(sorted(zero)),
    }
    save(os.path.join(OUT, "unet3d_small.safetensors"), tensors, meta)
    print("loss", loss64.item(), "zero grads", len(zero))


if __name__ == "__main__":
    main()
