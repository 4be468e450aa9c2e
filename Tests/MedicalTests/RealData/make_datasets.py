#!/usr/bin/env python3
"""Small dataset folders made from real volumes, for the tests of what Distillery
checks before it trains and of what it measures on the patient's grid.

Colin27 (Debian's mricron-data: ch2.nii.gz, a T1 MRI) is the image and AAL
(aal.nii.gz) grouped into lobes the label: frontal 1000, parietal 2000, temporal
3000, occipital 4000 (16-bit codes, as a multi-region atlas has). Each case is the
pair resampled at 3 x 3 x 4 mm from another offset, so the cases differ and the
voxels are anisotropic. Written with nibabel, the way other tools write them.

    make_datasets.py OUT

writes OUT/<folder>/ for every folder below: a clean MSD folder, an nnU-Net
folder with two modality files per case, a 4D two-modality folder, and one
folder per defect (each a copy of the clean one with that defect), and
OUT/pairs/ with label maps and perturbed predictions for the metric tests.
"""
import json
import os
import shutil
import sys

import nibabel as nib
import numpy as np

TEMPLATES = "/usr/share/mricron/templates"
LOBES = {"frontal": 1000, "parietal": 2000, "temporal": 3000, "occipital": 4000}
CASES = 6


def lobes():
    """AAL region -> lobe code, from the atlas's own names."""
    code = {}
    with open(os.path.join(TEMPLATES, "aal.nii.txt")) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            for lobe, value in LOBES.items():
                if lobe.capitalize() in parts[1]:
                    code[int(parts[0])] = value
    return code


def cases():
    image = nib.load(os.path.join(TEMPLATES, "ch2.nii.gz"))
    atlas = nib.load(os.path.join(TEMPLATES, "aal.nii.gz"))
    t1 = np.asarray(image.dataobj).astype(np.int16)
    regions = np.asarray(atlas.dataobj).astype(np.int32)
    table = lobes()
    label = np.zeros(regions.shape, np.uint16)
    for region, value in table.items():
        label[regions == region] = value
    out = []
    for i in range(CASES):
        o = (i % 3, (i + 1) % 3, i % 4)
        step = (3, 3, 4)
        sl = tuple(slice(o[a], None, step[a]) for a in range(3))
        affine = image.affine.copy()
        affine[:3, :3] = image.affine[:3, :3] @ np.diag(step)
        affine[:3, 3] = image.affine[:3, :3] @ np.array(o) + image.affine[:3, 3]
        out.append((f"brain_{i + 1}", t1[sl].copy(), label[sl].copy(), affine))
    return out


def save(array, affine, path, dtype=None, nifti2=False, header=None):
    img = (nib.Nifti2Image if nifti2 else nib.Nifti1Image)(array if dtype is None else array.astype(dtype), affine, header)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, path)


def msd(root, data, modality=("T1",), transform=None):
    os.makedirs(os.path.join(root, "imagesTr"), exist_ok=True)
    os.makedirs(os.path.join(root, "labelsTr"), exist_ok=True)
    training = []
    for name, image, label, affine in data:
        save(image, affine, os.path.join(root, "imagesTr", name + ".nii.gz"))
        save(label, affine, os.path.join(root, "labelsTr", name + ".nii.gz"), np.uint16)
        training.append({"image": f"./imagesTr/{name}.nii.gz", "label": f"./labelsTr/{name}.nii.gz"})
    manifest = {"name": "Colin27 lobes", "modality": {str(i): m for i, m in enumerate(modality)},
                "labels": {"0": "background", **{str(v): k for k, v in LOBES.items()}},
                "numTraining": len(training), "training": training}
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def label_path(root, name):
    return os.path.join(root, "labelsTr", name + ".nii.gz")


def main(out):
    data = cases()
    msd(os.path.join(out, "good"), data)

    # nnU-Net v2: two modality files a case (the T1, and an inverted contrast of it).
    root = os.path.join(out, "nnunet")
    os.makedirs(os.path.join(root, "imagesTr"), exist_ok=True)
    os.makedirs(os.path.join(root, "labelsTr"), exist_ok=True)
    for name, image, label, affine in data:
        save(image, affine, os.path.join(root, "imagesTr", name + "_0000.nii.gz"))
        save((image.max() - image).astype(np.int16), affine, os.path.join(root, "imagesTr", name + "_0001.nii.gz"))
        save(label, affine, label_path(root, name), np.uint16)
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump({"channel_names": {"0": "T1", "1": "T2"}, "labels": {"background": 0, **LOBES},
                   "numTraining": len(data), "file_ending": ".nii.gz"}, f, indent=1)

    # MSD's 4D images: both contrasts on the fourth axis.
    root = os.path.join(out, "fourd")
    msd(root, data, modality=("T1", "T2"))
    for name, image, label, affine in data:
        both = np.stack([image, (image.max() - image).astype(np.int16)], axis=3)
        save(both, affine, os.path.join(root, "imagesTr", name + ".nii.gz"))

    def defect(folder, change):
        root = os.path.join(out, folder)
        shutil.copytree(os.path.join(out, "good"), root)
        change(root)

    def shifted(root):  # the label's origin 20 mm off: it lies elsewhere in the world
        name, image, label, affine = data[1]
        moved = affine.copy()
        moved[0, 3] += 20
        save(label, moved, label_path(root, name), np.uint16)

    def flipped(root):  # the label's header says LAS where the image says RAS, the voxels as they were
        name, image, label, affine = data[2]
        las = affine.copy()
        las[0, :] = -las[0, :]
        save(label, las, label_path(root, name), np.uint16)

    def undeclared(root):  # values no class or background names
        for i, values in [(0, (7, 300)), (3, (300,))]:
            name, image, label, affine = data[i]
            bad = label.copy()
            for j, v in enumerate(values):
                bad[5 + j, 5:8, 5:8] = v
            save(bad, affine, label_path(root, name), np.uint16)

    def fraction(root):  # a label map resampled with interpolation
        name, image, label, affine = data[4]
        bad = label.astype(np.float32)
        bad[10, 10, 10] = 1.5
        save(bad, affine, label_path(root, name), np.float32)

    def nan(root):  # NaN voxels in an image
        name, image, label, affine = data[5]
        bad = image.astype(np.float32)
        bad[3:5, 3:5, 3] = np.nan
        save(bad, affine, os.path.join(root, "imagesTr", name + ".nii.gz"), np.float32)

    def unlisted(root):  # a case added to the folder but not to dataset.json
        name, image, label, affine = data[0]
        save(image, affine, os.path.join(root, "imagesTr", "brain_99.nii.gz"))
        save(label, affine, label_path(root, "brain_99"), np.uint16)

    def transforms(root, moved_form):  # the label's qform or sform 20 mm off, the other aligned
        name, image, label, affine = data[1]
        moved = affine.copy()
        moved[0, 3] += 20
        img = nib.Nifti1Image(label.astype(np.uint16), affine)
        img.set_qform(moved if moved_form == "qform" else affine, code=1)
        img.set_sform(moved if moved_form == "sform" else affine, code=2)
        nib.save(img, label_path(root, name))

    def dims(root):  # a label of another shape
        name, image, label, affine = data[3]
        save(label[:-2], affine, label_path(root, name), np.uint16)

    for folder, change in [("shifted", shifted), ("flipped", flipped), ("undeclared", undeclared), ("fraction", fraction),
                           ("nan", nan), ("unlisted", unlisted), ("dims", dims),
                           ("sformoff", lambda r: transforms(r, "sform")), ("qformoff", lambda r: transforms(r, "qform"))]:
        defect(folder, change)

    # Label maps and perturbed predictions of them, on their grid, for the metric tests.
    root = os.path.join(out, "pairs")
    os.makedirs(root)
    rng = np.random.default_rng(7)
    for i, (name, image, label, affine) in enumerate(data[:3]):
        truth = label.copy()
        pred = np.roll(label, shift=i + 1, axis=i % 3)                   # moved by i + 1 voxels
        noise = rng.random(pred.shape) < 0.01                              # and scattered mistakes
        pred[noise] = rng.choice([0] + list(LOBES.values()), size=int(noise.sum()))
        if i == 2:
            pred[pred == LOBES["occipital"]] = 0                           # a class the prediction misses
        save(truth, affine, os.path.join(root, f"{name}_truth.nii.gz"), np.uint16)
        save(pred, affine, os.path.join(root, f"{name}_pred.nii.gz"), np.uint16)


if __name__ == "__main__":
    main(sys.argv[1])
