// Open MPI's C API through functions Swift can call: MPI_COMM_WORLD, MPI_IN_PLACE
// and the datatypes are macros over internal symbols, which Swift cannot import.
#include <mpi.h>

static inline int distill_mpi_initialized(void) { int flag = 0; MPI_Initialized(&flag); return flag; }
static inline int distill_mpi_init(void) {
    int provided = 0;
    // One thread at a time calls MPI (a stage thread); the kernels' worker threads never do.
    return MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
}
static inline int distill_mpi_finalize(void) { return MPI_Finalize(); }
static inline int distill_mpi_rank(void) { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
static inline int distill_mpi_size(void) { int n = 1; MPI_Comm_size(MPI_COMM_WORLD, &n); return n; }
static inline int distill_mpi_allreduce_doubles(double *values, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static inline int distill_mpi_allreduce_floats(float *values, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static inline int distill_mpi_broadcast(void *bytes, int count, int root) {
    return MPI_Bcast(bytes, count, MPI_BYTE, root, MPI_COMM_WORLD);
}
static inline int distill_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static inline int distill_mpi_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }
static inline double distill_mpi_wtime(void) { return MPI_Wtime(); }
