/* nccl_api.h - data-parallel gradient averaging across GPUs through NCCL.
 *
 * Built into every configuration: the real thing needs REALNET_CUDA and nccl.h at build time (REALNET_NCCL)
 * and libnccl.so.2 at run time (opened with dlopen on first use: linking it would cost every process start
 * ~200 MB of loading); otherwise rn_nccl_built() is false and the constructors fail with the reason.
 *
 *   One process, several GPUs:   rn_nccl_new_local(&c, 2, (int[]){0, 1});
 *   One process per GPU (MPI):   rank 0 calls rn_nccl_unique_id(id) and broadcasts the bytes (MPI_Bcast);
 *                                every rank calls rn_nccl_new_rank(&c, id, nranks, rank, local_device).
 *   After each backward pass:    rn_nccl_all_reduce_mean(c, n_params, grads);  then the optimiser step.
 */
#ifndef REALNET_NCCL_API_H
#define REALNET_NCCL_API_H

#include <stdbool.h>

#include "realnet/tensor.h"

#define RN_NCCL_ID_BYTES 128

typedef struct rn_nccl rn_nccl;

bool rn_nccl_built(void);
/* Communicators for the n local devices (one rank each) in this process. */
rn_status rn_nccl_new_local(rn_nccl **out, int n, const int *devices);
/* A fresh id for rn_nccl_new_rank, made by rank 0 and sent to the others. */
rn_status rn_nccl_unique_id(unsigned char id[RN_NCCL_ID_BYTES]);
/* This process's rank of nranks, on `device`. Blocks until every rank has joined. */
rn_status rn_nccl_new_rank(rn_nccl **out, const unsigned char id[RN_NCCL_ID_BYTES], int nranks, int rank, int device);
/* Number of devices this process drives in the communicator. */
int rn_nccl_local_count(const rn_nccl *c);
/* Averages n float32 tensors in place over all ranks. tensors holds n entries per local device, device-major:
 * tensors[d * n + i] is tensor i on the communicator's d-th local device (contiguous, same shape on every rank). */
rn_status rn_nccl_all_reduce_mean(rn_nccl *c, int n, rn_tensor *const *tensors);
void rn_nccl_free(rn_nccl *c); /* accepts NULL */

#endif
