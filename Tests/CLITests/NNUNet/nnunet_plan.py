#!/usr/bin/env python3
"""nnU-Net v2's own planner on an MSD folder, for the comparison with `auto`.

    nnunet_plan.py MSD_FOLDER WORK

copies the folder into WORK as an nnU-Net raw dataset (one file per modality, labels
renumbered 0..n in value order, which leaves the foreground as it is), runs nnU-Net's
fingerprint extraction and its default ExperimentPlanner (an 8 GB GPU), and prints the
3d_fullres configuration as JSON on one line, axes in nnU-Net's transposed order
(the coarsest axis first).
"""
import json
import multiprocessing
import multiprocessing.pool
import os
import signal
import sys

import nibabel as nib
import numpy as np


def convert(source, raw):
    with open(os.path.join(source, "dataset.json")) as f:
        manifest = json.load(f)
    values = sorted(int(v) for v in manifest["labels"])
    renumber = {v: i for i, v in enumerate(values)}
    for sub in ("imagesTr", "labelsTr"):
        os.makedirs(os.path.join(raw, sub), exist_ok=True)
    for k, case in enumerate(manifest["training"]):
        name = f"case_{k:03d}"
        image = nib.load(os.path.join(source, case["image"]))
        data = np.asarray(image.dataobj)
        channels = [data] if data.ndim == 3 else [data[..., c] for c in range(data.shape[3])]
        for c, channel in enumerate(channels):
            nib.save(nib.Nifti1Image(channel, image.affine), os.path.join(raw, "imagesTr", f"{name}_{c:04d}.nii.gz"))
        label = nib.load(os.path.join(source, case["label"]))
        values_in = np.asarray(label.dataobj).astype(np.int64)
        out = np.zeros(values_in.shape, np.uint8)
        for v, i in renumber.items():
            out[values_in == v] = i
        nib.save(nib.Nifti1Image(out, label.affine), os.path.join(raw, "labelsTr", f"{name}.nii.gz"))
    dataset = {
        "channel_names": manifest["modality"],
        "labels": {("background" if v == 0 else f"label_{v}"): i for v, i in renumber.items()},
        "numTraining": len(manifest["training"]),
        "file_ending": ".nii.gz",
    }
    with open(os.path.join(raw, "dataset.json"), "w") as f:
        json.dump(dataset, f)


def _threads(processes=None, *args, **kwargs):
    return multiprocessing.pool.ThreadPool(processes)


class _Threads:
    Pool = staticmethod(_threads)


def main():
    # The process that starts this one may block signals (its threads do): unblock them, so
    # that the test's deadline stops it.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    # nnU-Net runs its fingerprint extraction and integrity check in process pools (spawned,
    # and forked by `multiprocessing.Pool`); a worker that dies, or one forked while a thread
    # held a lock, leaves the pool waiting forever (seen on both). The cases are few and
    # small here: pools of threads do the same work in this process, which forks nothing.
    multiprocessing.get_context = lambda method=None: _Threads
    multiprocessing.Pool = _threads
    source, work = sys.argv[1], sys.argv[2]
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[key] = os.path.join(work, key)
        os.makedirs(os.environ[key], exist_ok=True)
    name = "Dataset901_Compare"
    convert(source, os.path.join(os.environ["nnUNet_raw"], name))
    # nnU-Net reads its folders when it is imported.
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments
    extract_fingerprints([901], num_processes=1, check_dataset_integrity=True, clean=True, verbose=False)
    plan_experiments([901])
    with open(os.path.join(os.environ["nnUNet_preprocessed"], name, "nnUNetPlans.json")) as f:
        plans = json.load(f)
    c = plans["configurations"]["3d_fullres"]
    arch = c["architecture"]["arch_kwargs"]
    print(json.dumps({
        "transpose": plans["transpose_forward"],
        "spacing": c["spacing"],
        "patch": c["patch_size"],
        "batch": c["batch_size"],
        "strides": arch["strides"],
        "kernels": arch["kernel_sizes"],
        "features": arch["features_per_stage"],
        "median_shape": c["median_image_size_in_voxels"],
    }))


if __name__ == "__main__":
    main()
