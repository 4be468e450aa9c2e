#!/usr/bin/env python3
"""Writes the NIfTI fixtures of MedicalTests with nibabel, once; the outputs are
committed as data (the tests never run Python). Regenerate with:

    pip install nibabel numpy && python3 Tests/MedicalTests/Fixtures/make_fixtures.py

twin_nifti1.nii.gz / twin_nifti2.nii.gz: the same int16 volume (12 x 10 x 6, voxel
sizes 0.8 x 0.9 x 2.5 mm, stored LPS with an offset) as NIfTI-1 and NIfTI-2.
expected.json: what nibabel reads back from them in canonical RAS+ order
(nib.as_closest_canonical): shape, zooms, axis codes of the file, a few voxels, the sum.
modalities_4d.nii.gz: three modalities of one 12 x 10 x 6 grid on the fourth axis (MSD's
multi-modal layout), int16 with scl_slope 0.5 and scl_inter -20, stored LPS;
expected_4d.json: nibabel's scaled values in canonical order, per modality: a few voxels
and the sum.
"""
import json, os
import numpy as np
import nibabel as nib

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
data = rng.integers(-1000, 1500, size=(12, 10, 6)).astype(np.int16)
affine = np.array([[-0.8, 0, 0, 40.0], [0, -0.9, 0, 30.0], [0, 0, 2.5, -60.0], [0, 0, 0, 1]])
for name, cls in [("twin_nifti1.nii.gz", nib.Nifti1Image), ("twin_nifti2.nii.gz", nib.Nifti2Image)]:
    img = cls(data, affine)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    nib.save(img, os.path.join(here, name))

img = nib.load(os.path.join(here, "twin_nifti2.nii.gz"))
canonical = nib.as_closest_canonical(img)
c = np.asarray(canonical.dataobj)
expected = {
    "shape": list(c.shape),
    "zooms": [float(z) for z in canonical.header.get_zooms()],
    "file_axcodes": "".join(nib.aff2axcodes(img.affine)),
    "voxels": [[int(x), int(y), int(z), int(c[x, y, z])] for (x, y, z) in [(0, 0, 0), (11, 9, 5), (3, 7, 2), (6, 1, 4)]],
    "sum": int(c.astype(np.int64).sum()),
}
with open(os.path.join(here, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
print(expected)

data4 = rng.integers(-600, 900, size=(12, 10, 6, 3)).astype(np.int16)
img4 = nib.Nifti1Image(data4, affine)
img4.header.set_qform(affine, code=1)
img4.header.set_sform(affine, code=1)
img4.header.set_slope_inter(0.5, -20.0)
nib.save(img4, os.path.join(here, "modalities_4d.nii.gz"))
c4 = nib.as_closest_canonical(nib.load(os.path.join(here, "modalities_4d.nii.gz"))).get_fdata()
expected4 = {
    "shape": list(c4.shape),
    "modalities": [{
        "voxels": [[x, y, z, float(c4[x, y, z, m])] for (x, y, z) in [(0, 0, 0), (11, 9, 5), (3, 7, 2), (6, 1, 4)]],
        "sum": float(c4[..., m].sum()),
    } for m in range(3)],
}
with open(os.path.join(here, "expected_4d.json"), "w") as f:
    json.dump(expected4, f, indent=1, sort_keys=True)
    f.write("\n")
print(expected4["shape"])
