#!/usr/bin/env python3
"""Tiny dataset folders for the golden diagnostics of `distill check` that read a
dataset's headers (W0801 ... E0806). Run once; the folders are committed.

    cd Tests/SpecTests/Fixtures/data && python3 make_data_fixtures.py
"""
import json
import os
import shutil

import nibabel as nib
import numpy as np

AFFINE = np.diag([2.0, 2.0, 3.0, 1.0])


def save(array, path, affine=AFFINE):
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, path)


def folder(name, cases=2, modality=("CT",)):
    shutil.rmtree(name, ignore_errors=True)
    os.makedirs(name + "/imagesTr")
    os.makedirs(name + "/labelsTr")
    training = []
    for i in range(1, cases + 1):
        image = np.full((6, 5, 4), 40 * i, np.int16)
        label = np.zeros((6, 5, 4), np.uint8)
        label[2:4, 2:4, 1:3] = 1
        save(image, f"{name}/imagesTr/case_{i}.nii.gz")
        save(label, f"{name}/labelsTr/case_{i}.nii.gz")
        training.append({"image": f"./imagesTr/case_{i}.nii.gz", "label": f"./labelsTr/case_{i}.nii.gz"})
    with open(name + "/dataset.json", "w") as f:
        json.dump({"name": name, "modality": {str(i): m for i, m in enumerate(modality)}, "labels": {"0": "background", "1": "organ"},
                   "numTraining": cases, "training": training}, f, indent=1)


folder("good")
folder("badjson")
with open("badjson/dataset.json", "w") as f:
    f.write("{ this is not JSON")
folder("unlisted")
save(np.zeros((6, 5, 4), np.int16), "unlisted/imagesTr/case_9.nii.gz")
folder("badheader")
with open("badheader/labelsTr/case_2.nii.gz", "wb") as f:
    f.write(b"not a NIfTI file at all")
folder("shifted")
moved = AFFINE.copy()
moved[0, 3] = 20.0
label = np.zeros((6, 5, 4), np.uint8)
save(label, "shifted/labelsTr/case_2.nii.gz", moved)
