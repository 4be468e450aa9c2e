#!/usr/bin/env python3
"""Writes monai_hd95.json: MONAI's own HD95 (monai.metrics.compute_hausdorff_distance,
percentile=95, with the voxel spacing) of the lobes of the real-data pairs that
make_datasets.py writes, so that the tests check Distillery's default convention against
MONAI itself without installing it. Needs torch and monai (not in the tests' environment):

    python3 make_datasets.py /tmp/rd && python3 monai_hd95.py /tmp/rd > monai_hd95.json
"""
import json
import sys

import nibabel as nib
import numpy as np
import torch
from monai.metrics import compute_hausdorff_distance

LOBES = [1000, 2000, 3000, 4000]


def main():
    out = {"monai": __import__("monai").__version__}
    for name in ["brain_1", "brain_2", "brain_3"]:
        t = nib.load(f"{sys.argv[1]}/pairs/{name}_truth.nii.gz")
        p = nib.load(f"{sys.argv[1]}/pairs/{name}_pred.nii.gz")
        truth, pred = np.asarray(t.dataobj), np.asarray(p.dataobj)
        spacing = [float(z) for z in t.header.get_zooms()[:3]]
        row = []
        for v in LOBES:
            a = torch.from_numpy((pred == v)[None, None].astype(np.float32))
            b = torch.from_numpy((truth == v)[None, None].astype(np.float32))
            if a.sum() == 0 or b.sum() == 0:
                row.append(None)
                continue
            row.append(float(compute_hausdorff_distance(a, b, percentile=95, spacing=spacing).item()))
        out[name] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
