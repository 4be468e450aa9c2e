// libnifti installs its headers under /usr/include/nifti, and they include each
// other by bare name: every target that imports CNifti passes -I/usr/include/nifti
// (see `niftiInclude` in Package.swift). nifti2_io reads NIfTI-1, NIfTI-2 and
// ANALYZE 7.5 headers with one API.
#include <nifti2_io.h>
