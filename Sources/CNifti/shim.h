// libnifti installs its headers under /usr/include/nifti, and they include each
// other by bare name: every target that imports CNifti passes -I/usr/include/nifti
// (see `niftiInclude` in Package.swift).
#include <nifti1_io.h>
