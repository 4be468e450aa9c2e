// libnifti installs its headers under /usr/include/nifti.
#include "/usr/include/nifti/nifti1_io.h"
