#!/usr/bin/env python3
"""Writes the multi-class loss cases Distillery added to the reference
(torch/dice_softmax.safetensors, torch/dice_ce.safetensors), with the
conventions of ../README.md: float32 inputs, outputs and gradients computed in
float64 from them and rounded once, int64 class targets [N,H,W].

Run once with PyTorch (2.13.0+cpu was used):  python3 multiclass_cases.py
The files are data; the tests never run this script."""
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "torch")


def save(path, tensors, metadata):
    """safetensors by hand: 8-byte little-endian header length, JSON header, raw bytes."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().numpy()
        a = np.ascontiguousarray(a).reshape(a.shape)  # ascontiguousarray alone makes a scalar [1]
        dtype = {np.float32: "F32", np.int64: "I64"}[a.dtype.type]
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def softmax_dice(logits, target, smooth):
    """nnU-Net's batch Dice without background: 1 - mean_k (2 sum p_k t_k + s) / (sum p_k + sum t_k + s)."""
    c = logits.shape[1]
    p = torch.softmax(logits, dim=1)
    onehot = torch.nn.functional.one_hot(target, c).permute(0, 3, 1, 2).to(p.dtype)
    dims = (0, 2, 3)
    inter = (p * onehot).sum(dims)[1:]
    den = p.sum(dims)[1:] + onehot.sum(dims)[1:]
    return 1 - ((2 * inter + smooth) / (den + smooth)).mean()


def case(name, op, description, params, loss_fn, seed):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = 2, 4, 8, 8
    logits32 = (torch.randn(n, c, h, w, generator=g) * 2).float()
    # Every class present, background most common, as in a label map.
    target = torch.randint(0, c, (n, h, w), generator=g)
    logits = logits32.double().requires_grad_(True)
    loss = loss_fn(logits, target)
    loss.backward()
    meta = {
        "op": op, "case": name, "seed": str(seed), "params": json.dumps(params, sort_keys=True),
        "atol": "1e-07", "rtol": "0.0001", "description": description,
        "reference": "float64 autograd from float32 inputs, rounded once (Distillery's tools/multiclass_cases.py)",
    }
    save(os.path.join(OUT, name + ".safetensors"),
         {"in.logits": logits32, "in.target": target, "out.loss": loss.detach().float(), "grad.logits": logits.grad.float()}, meta)


if __name__ == "__main__":
    case("dice_softmax", "dice_softmax", "Softmax Dice over the foreground classes, pooled over the batch (nnU-Net batch Dice)",
         {"smooth": 1e-5, "classes": 4}, lambda x, t: softmax_dice(x, t, 1e-5), 1301)
    case("dice_ce", "dice_ce", "Cross-entropy (mean) + softmax Dice over the foreground classes (nnU-Net's loss)",
         {"smooth": 1e-5, "classes": 4},
         lambda x, t: torch.nn.functional.cross_entropy(x, t) + softmax_dice(x, t, 1e-5), 1302)
