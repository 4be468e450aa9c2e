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

# One patient in two places (E0809): case_1 listed twice, and case_3 a byte copy of case_1.
folder("duplicate", cases=3)
shutil.copy("duplicate/imagesTr/case_1.nii.gz", "duplicate/imagesTr/case_3.nii.gz")
with open("duplicate/dataset.json") as f:
    manifest = json.load(f)
manifest["training"].insert(2, dict(manifest["training"][0]))
manifest["numTraining"] = 4
with open("duplicate/dataset.json", "w") as f:
    json.dump(manifest, f, indent=1)

# dataset.json naming files outside the folder (E0810).
folder("outside", cases=1)
with open("outside/dataset.json") as f:
    manifest = json.load(f)
manifest["training"].append({"image": "../good/imagesTr/case_2.nii.gz", "label": "/etc/passwd"})
manifest["numTraining"] = 2
with open("outside/dataset.json", "w") as f:
    json.dump(manifest, f, indent=1)

# A label whose qform lies 6 mm off while its sform (code 2) is aligned (W0811): the sform is used.
folder("transforms")
label = np.zeros((6, 5, 4), np.uint8)
label[2:4, 2:4, 1:3] = 1
img = nib.Nifti1Image(label, AFFINE)
moved = AFFINE.copy()
moved[0, 3] += 6
img.set_qform(moved, code=1)
img.set_sform(AFFINE, code=2)
nib.save(img, "transforms/labelsTr/case_2.nii.gz")
