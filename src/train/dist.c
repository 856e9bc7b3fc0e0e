/* Data parallelism over MPI (OpenMPI when CMake finds it; without it every call is the
 * single-process identity). MPI starts only when a launcher started this process (mpirun
 * sets OMPI_COMM_WORLD_SIZE / PMI_SIZE), so an MPI build runs alone exactly like any other.
 *
 * The collectives move float buffers of any length in chunks below MPI's int counts. */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

#ifdef S1C_HAVE_MPI
#include <mpi.h>

enum { CHUNK = 1 << 27 }; /* floats per collective call */

static bool launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int dist_init(dist *d, s1c_err *err) {
    d->rank = 0;
    d->size = 1;
    d->active = false;
    if (!launched_by_mpi()) return 0;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) return s1c_fail(err, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->active = true;
    return 0;
}

void dist_finalize(dist *d) {
    if (d->active) MPI_Finalize();
    d->active = false;
}

void dist_sum_f32(const dist *d, float *buf, uint64_t n) {
    if (d->size < 2) return;
    for (uint64_t a = 0; a < n; a += CHUNK) {
        int k = (int)(n - a < CHUNK ? n - a : CHUNK);
        MPI_Allreduce(MPI_IN_PLACE, buf + a, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

double dist_sum_f64(const dist *d, double v) {
    if (d->size < 2) return v;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return v;
}

int dist_max_int(const dist *d, int v) {
    if (d->size < 2) return v;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return v;
}

void dist_bcast_f32(const dist *d, float *buf, uint64_t n, int root) {
    if (d->size < 2) return;
    for (uint64_t a = 0; a < n; a += CHUNK) {
        int k = (int)(n - a < CHUNK ? n - a : CHUNK);
        MPI_Bcast(buf + a, k, MPI_FLOAT, root, MPI_COMM_WORLD);
    }
}

void dist_gather_f32(const dist *d, float *full, const float *mine, uint64_t off, uint64_t n, int root) {
    if (d->size < 2) return;
    /* each rank sends its slice's bounds, then its floats, to the root, in rank order */
    for (int r = 0; r < d->size; r++) {
        uint64_t bounds[2] = {off, n};
        if (r != root) {
            if (d->rank == r) MPI_Send(bounds, 2, MPI_UINT64_T, root, 1, MPI_COMM_WORLD);
            if (d->rank == root) MPI_Recv(bounds, 2, MPI_UINT64_T, r, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
        for (uint64_t a = 0; a < bounds[1]; a += CHUNK) {
            int k = (int)(bounds[1] - a < CHUNK ? bounds[1] - a : CHUNK);
            if (r == root && d->rank == root) memcpy(full + bounds[0] + a, mine + a, (size_t)k * sizeof(float));
            else if (d->rank == r) MPI_Send(mine + a, k, MPI_FLOAT, root, 2, MPI_COMM_WORLD);
            else if (d->rank == root)
                MPI_Recv(full + bounds[0] + a, k, MPI_FLOAT, r, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
    }
}

#else

int dist_init(dist *d, s1c_err *err) {
    (void)err;
    d->rank = 0;
    d->size = 1;
    d->active = false;
    return 0;
}
void dist_finalize(dist *d) { (void)d; }
void dist_sum_f32(const dist *d, float *buf, uint64_t n) { (void)d, (void)buf, (void)n; }
double dist_sum_f64(const dist *d, double v) { (void)d; return v; }
int dist_max_int(const dist *d, int v) { (void)d; return v; }
void dist_bcast_f32(const dist *d, float *buf, uint64_t n, int root) { (void)d, (void)buf, (void)n, (void)root; }
void dist_gather_f32(const dist *d, float *full, const float *mine, uint64_t off, uint64_t n, int root) {
    (void)d, (void)root;
    if (full + off != mine) memcpy(full + off, mine, n * sizeof(float));
}

#endif

bool s1c_train_has_mpi(void) { return dist_available(); }

bool dist_available(void) {
#ifdef S1C_HAVE_MPI
    return true;
#else
    return false;
#endif
}
