/* cuda_check.h - helpers of the CPU-vs-CUDA agreement tests (tests/cuda/test_cuda_NAME.c).
 *
 * Each test runs a kernel of the CPU backend (the reference) and the same kernel of the CUDA backend on copies
 * of the same inputs, brings the CUDA result back and checks |gpu - cpu| <= atol + rtol * |cpu| elementwise.
 * Without a CUDA build or a GPU, cuda_begin() prints why and the test exits 77, which CTest reports as skipped.
 *
 *   int main(void) {
 *     int skip = cuda_begin("elementwise");
 *     if (skip) return skip;
 *     ...
 *     return test_finish("cuda elementwise");
 *   }
 */
#ifndef REALNET_CUDA_CHECK_H
#define REALNET_CUDA_CHECK_H

#include <math.h>
#include <string.h>

#include "cuda/cuda_api.h"
#include "testutil.h"

/* the kernel tables, set by cuda_begin */
extern const rn_kernels *KC, *KG;
extern rn_device GPU;

/* 0 when a CUDA device is usable (KC/KG/GPU set), else 77 after printing why. */
int cuda_begin(const char *name);

/* A copy of the CPU tensor on the GPU (keeps shape and dtype; contiguous). Exits 2 on failure. */
rn_tensor *to_gpu(const rn_tensor *cpu);
/* A new uninitialised / zeroed tensor of the shape and dtype on a device. */
rn_tensor *new_on(rn_device dev, int ndim, const int64_t *shape, rn_dtype dt, bool zero);
/* Uniform floats in [lo, hi) on the CPU. */
rn_tensor *uniform(int ndim, const int64_t *shape, uint64_t seed, float lo, float hi);
/* int64 CPU tensor of n indices in [0, range) from the seed. */
rn_tensor *rand_index(int ndim, const int64_t *shape, int64_t range, uint64_t seed);
/* Small integers in [0, levels) as float32: many ties, for the tie-breaking rules. */
rn_tensor *rand_levels(int ndim, const int64_t *shape, int levels, uint64_t seed);

/* Brings gpu back and checks it against cpu; prints what and the worst element on failure. */
int agree(const rn_tensor *gpu, const rn_tensor *cpu, double atol, double rtol, const char *what);
/* Exact equality, NaN matching NaN (copies, integer results, indices, max/min). */
int agree_exact(const rn_tensor *gpu, const rn_tensor *cpu, const char *what);

/* Releases up to 16 tensors (NULL-terminated list not needed; NULLs are skipped). */
void release_all(int n, ...);

#endif
