#!/usr/bin/env python3
"""An independent computation of the patient-grid metrics, with nibabel and
scipy.ndimage: per class, TP, FP and FN voxels, Dice, HD95 (mm) and NSD.

Surfaces: a class's voxels that binary erosion with the 6-connected structure
removes (scipy's border_value=0: beyond the volume is outside). Distances:
scipy's exact Euclidean distance transform with the voxel sizes (`sampling`).
HD95 in both conventions: MONAI's (`hd95_monai`: the larger of the two directed
95th percentiles, as compute_hausdorff_distance(percentile=95) takes them) and
MedPy's (`hd95_medpy`: numpy's 95th percentile, linear, of both directions'
distances pooled).
NSD: the share of both surfaces within the tolerance of the other.

Reads on stdin a JSON list of {"truth": file, "pred": file, "values": [label
value of each class], "tolerance": [mm of each class]}; writes a JSON list of
lists (one entry per class) of {tp, fp, fn, dice, hd95_monai, hd95_medpy, nsd}
(null: undefined).
"""
import json
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage


def compare(truth_file, pred_file, values, tolerance):
    t_img, p_img = nib.load(truth_file), nib.load(pred_file)
    truth, pred = np.asarray(t_img.dataobj), np.asarray(p_img.dataobj)
    zooms = t_img.header.get_zooms()[:3]
    structure = ndimage.generate_binary_structure(3, 1)
    out = []
    for value, tol in zip(values, tolerance):
        a, b = pred == value, truth == value
        tp, fp, fn = int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum())
        row = {"tp": tp, "fp": fp, "fn": fn, "dice": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
               "hd95_monai": None, "hd95_medpy": None, "nsd": None}
        if a.any() and b.any():
            sa = a & ~ndimage.binary_erosion(a, structure, border_value=0)
            sb = b & ~ndimage.binary_erosion(b, structure, border_value=0)
            da = ndimage.distance_transform_edt(~sb, sampling=zooms)[sa]
            db = ndimage.distance_transform_edt(~sa, sampling=zooms)[sb]
            both = np.concatenate([da, db])
            row["hd95_monai"] = float(max(np.percentile(da, 95), np.percentile(db, 95)))
            row["hd95_medpy"] = float(np.percentile(both, 95))
            row["nsd"] = float(((da <= tol).sum() + (db <= tol).sum()) / both.size)
        out.append(row)
    return out


def main():
    problems = json.load(sys.stdin)
    json.dump([compare(p["truth"], p["pred"], p["values"], p["tolerance"]) for p in problems], sys.stdout)


if __name__ == "__main__":
    main()
