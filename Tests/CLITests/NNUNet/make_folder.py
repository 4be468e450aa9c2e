#!/usr/bin/env python3
"""Small MSD folders for the comparison of `auto` with nnU-Net's planner.

    make_folder.py OUT thick    thick slices whose spacing varies by case (nnU-Net's rule
                                for anisotropic data: the coarse axis at the 10th percentile
                                of its spacings), in a zero border (cropping matters)
    make_folder.py OUT large    three 1 mm volumes larger than a patch fits: the patch
                                shrinks to the memory budget
"""
import json
import os
import sys

import nibabel as nib
import numpy as np


def write(out, cases):
    for sub in ("imagesTr", "labelsTr"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    training = []
    for k, (image, label, spacing) in enumerate(cases):
        affine = np.diag(list(spacing) + [1.0])
        name = f"case_{k + 1}.nii.gz"
        nib.save(nib.Nifti1Image(image, affine), os.path.join(out, "imagesTr", name))
        nib.save(nib.Nifti1Image(label, affine), os.path.join(out, "labelsTr", name))
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    manifest = {"name": os.path.basename(out), "modality": {"0": "CT"}, "labels": {"0": "background", "1": "box"},
                "numTraining": len(training), "training": training, "test": []}
    with open(os.path.join(out, "dataset.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def case(rng, shape, spacing, border):
    image = np.zeros(shape, np.int16)
    inner = tuple(slice(b, s - b) for b, s in zip(border, shape))
    image[inner] = (rng.normal(40, 20, tuple(s - 2 * b for b, s in zip(border, shape))) + 100).astype(np.int16)
    label = np.zeros(shape, np.uint8)
    label[tuple(slice(s // 3, 2 * s // 3) for s in shape)] = 1
    return image, label, spacing


def main():
    out, kind = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(7)
    if kind == "thick":
        spacings = [4.0, 4.5, 5.0, 5.0, 5.0, 5.5, 6.0, 3.5]
        write(out, [case(rng, (96, 88 + 4 * (k % 3), int(round(90 / dz))), (0.8, 0.8, dz), (6, 5, 0)) for k, dz in enumerate(spacings)])
    elif kind == "large":
        write(out, [case(rng, (160 + 8 * k, 200, 150), (1.0, 1.0, 1.0), (4, 4, 4)) for k in range(3)])
    else:
        sys.exit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
