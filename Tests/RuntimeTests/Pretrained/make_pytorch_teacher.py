#!/usr/bin/env python3
"""Writes the pretrained-teacher fixture: a network trained for a few steps in
PyTorch, saved the way a researcher would save it, with the thesis code's module
names (RisabBiswas/MTMS-Med-Seg-KD, `build_small_unet`) under a DataParallel
`module.` prefix, and with PyTorch's `num_batches_tracked` counters.

  thesis_s1_pytorch.safetensors  the state_dict, as safetensors.torch.save_file writes it
  thesis_s1_io.safetensors       a fixed input and PyTorch's eval-mode logits for it

Run once with PyTorch (2.13.0+cpu was used):  python3 make_pytorch_teacher.py
The files are data; the tests never run this script."""
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "ParityTests", "Reference", "tools"))
from multiclass_cases import save  # noqa: E402  (the reference's safetensors writer)


class ConvBlock(nn.Module):
    """The thesis's block: conv3x3 (padding 1, bias) + BatchNorm + ReLU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Enc(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = ConvBlock(cin, cout)

    def forward(self, x):
        s = self.conv(x)
        return s, nn.functional.max_pool2d(s, 2)


class Dec(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv = ConvBlock(2 * cout, cout)

    def forward(self, x, skip):
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class SmallUNet(nn.Module):
    """S1 of the thesis ('U-Net-S'): widths 16, 32, bottleneck 64, one conv per block."""

    def __init__(self, cin=1):
        super().__init__()
        self.e1, self.e2 = Enc(cin, 16), Enc(16, 32)
        self.b = ConvBlock(32, 64)
        self.d1, self.d2 = Dec(64, 32), Dec(32, 16)
        self.outputs = nn.Conv2d(16, 1, 1)

    def forward(self, x):
        s1, p1 = self.e1(x)
        s2, p2 = self.e2(p1)
        b = self.b(p2)
        return self.outputs(self.d2(self.d1(b, s2), s1))


def main():
    torch.manual_seed(7)
    net = nn.DataParallel(SmallUNet())  # on CPU it only adds the `module.` prefix, as GPU training scripts do
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.rand(4, 1, 64, 64)
    y = (x > 0.6).float()
    net.train()
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(net(x), y)
        loss.backward()
        opt.step()
    net.eval()
    probe = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        logits = net(probe)
    save(os.path.join(HERE, "thesis_s1_pytorch.safetensors"), dict(net.state_dict()), {"format": "pt"})
    save(os.path.join(HERE, "thesis_s1_io.safetensors"), {"in.x": probe, "out.logits": logits},
         {"torch": torch.__version__, "steps": "5", "loss": f"{loss.item():.6f}"})
    print("state_dict keys:", len(net.state_dict()), "loss after 5 steps:", loss.item())


if __name__ == "__main__":
    main()
