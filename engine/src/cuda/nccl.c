/* nccl.c - gradient averaging across GPUs through NCCL (see nccl_api.h). NCCL is opened with dlopen on first use;
 * each rank's all-reduce runs on the device stream of the backend, so it is ordered after the backward kernels
 * that wrote the gradients and before the optimiser kernels that read them. */
#include <pthread.h>

#include "../internal.h"
#include "nccl_api.h"

#if defined(REALNET_CUDA) && defined(REALNET_NCCL)

#include <dlfcn.h>
#include <nccl.h>

#include "cuda_internal.h"

_Static_assert(NCCL_UNIQUE_ID_BYTES == RN_NCCL_ID_BYTES, "NCCL id size changed");

static struct {
  __typeof__(&ncclGetUniqueId) unique_id;
  __typeof__(&ncclCommInitRank) init_rank;
  __typeof__(&ncclCommInitAll) init_all;
  __typeof__(&ncclAllReduce) all_reduce;
  __typeof__(&ncclGroupStart) group_start;
  __typeof__(&ncclGroupEnd) group_end;
  __typeof__(&ncclCommDestroy) destroy;
  __typeof__(&ncclGetErrorString) error_string;
  char error[512];
} lib;

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void load_nccl(void) {
  void *h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!h) h = dlopen("libnccl.so", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(lib.error, sizeof lib.error, "cannot load NCCL (libnccl.so.2): %s", dlerror());
    return;
  }
#define SYM(field, name) lib.field = (__typeof__(lib.field))dlsym(h, name)
  SYM(unique_id, "ncclGetUniqueId");
  SYM(init_rank, "ncclCommInitRank");
  SYM(init_all, "ncclCommInitAll");
  SYM(all_reduce, "ncclAllReduce");
  SYM(group_start, "ncclGroupStart");
  SYM(group_end, "ncclGroupEnd");
  SYM(destroy, "ncclCommDestroy");
  SYM(error_string, "ncclGetErrorString");
#undef SYM
  if (!lib.unique_id || !lib.init_rank || !lib.init_all || !lib.all_reduce || !lib.group_start || !lib.group_end ||
      !lib.destroy || !lib.error_string) {
    snprintf(lib.error, sizeof lib.error, "libnccl.so.2 lacks an entry point this build needs");
    lib.unique_id = NULL;
  }
}

static rn_status need_lib(void) {
  pthread_once(&lib_once, load_nccl);
  return lib.unique_id ? RN_OK : rn_error(RN_ERR_UNSUPPORTED, "nccl: %s", lib.error);
}

static rn_status nccl_check(ncclResult_t r, const char *call) {
  if (r == ncclSuccess) return RN_OK;
  return rn_error(RN_ERR_DEVICE, "%s failed: %s", call, lib.error_string(r));
}

struct rn_nccl {
  int n;
  int devices[RN_CUDA_MAX_DEVICES];
  ncclComm_t comms[RN_CUDA_MAX_DEVICES];
};

bool rn_nccl_built(void) { return true; }

static rn_status alloc_comm(rn_nccl **out, int n, const int *devices) {
  *out = NULL;
  if (n < 1 || n > RN_CUDA_MAX_DEVICES) return rn_error(RN_ERR_ARG, "nccl: %d local devices (1..%d)", n, RN_CUDA_MAX_DEVICES);
  for (int i = 0; i < n; i++) {
    cudaStream_t s;
    RN_TRY(rn_cu_enter(devices[i], &s)); /* checks the index and creates the device's stream */
  }
  rn_nccl *c = calloc(1, sizeof *c);
  if (!c) return rn_error(RN_ERR_OOM, "nccl: out of memory");
  c->n = n;
  for (int i = 0; i < n; i++) c->devices[i] = devices[i];
  *out = c;
  return RN_OK;
}

rn_status rn_nccl_new_local(rn_nccl **out, int n, const int *devices) {
  RN_TRY(need_lib());
  rn_nccl *c;
  RN_TRY(alloc_comm(&c, n, devices));
  rn_status st = nccl_check(lib.init_all(c->comms, n, c->devices), "ncclCommInitAll");
  if (st != RN_OK) { free(c); return st; }
  *out = c;
  return RN_OK;
}

rn_status rn_nccl_unique_id(unsigned char id[RN_NCCL_ID_BYTES]) {
  RN_TRY(need_lib());
  ncclUniqueId u;
  RN_TRY(nccl_check(lib.unique_id(&u), "ncclGetUniqueId"));
  memcpy(id, u.internal, RN_NCCL_ID_BYTES);
  return RN_OK;
}

rn_status rn_nccl_new_rank(rn_nccl **out, const unsigned char id[RN_NCCL_ID_BYTES], int nranks, int rank, int device) {
  RN_TRY(need_lib());
  if (nranks < 1 || rank < 0 || rank >= nranks) return rn_error(RN_ERR_ARG, "nccl: rank %d of %d", rank, nranks);
  rn_nccl *c;
  RN_TRY(alloc_comm(&c, 1, &device));
  ncclUniqueId u;
  memcpy(u.internal, id, RN_NCCL_ID_BYTES);
  rn_status st = nccl_check(lib.init_rank(&c->comms[0], nranks, u, rank), "ncclCommInitRank"); /* device is current */
  if (st != RN_OK) { free(c); return st; }
  *out = c;
  return RN_OK;
}

int rn_nccl_local_count(const rn_nccl *c) { return c ? c->n : 0; }

rn_status rn_nccl_all_reduce_mean(rn_nccl *c, int n, rn_tensor *const *tensors) {
  if (!c || n < 0) return rn_error(RN_ERR_ARG, "nccl all-reduce: no communicator");
  for (int d = 0; d < c->n; d++)
    for (int i = 0; i < n; i++) {
      const rn_tensor *t = tensors[d * n + i];
      RN_TRY(rn_cu_need(t, true, true, "nccl all-reduce"));
      if (t->storage->device.index != c->devices[d])
        return rn_error(RN_ERR_DEVICE, "nccl all-reduce: tensor %d of local device %d is on cuda:%d, expected cuda:%d", i + 1,
                        d, t->storage->device.index, c->devices[d]);
      if (rn_tensor_numel(t) != rn_tensor_numel(tensors[i]))
        return rn_error(RN_ERR_SHAPE, "nccl all-reduce: tensor %d differs in size between devices", i + 1);
    }
  RN_TRY(nccl_check(lib.group_start(), "ncclGroupStart"));
  rn_status st = RN_OK;
  for (int d = 0; d < c->n && st == RN_OK; d++) {
    cudaStream_t s;
    st = rn_cu_enter(c->devices[d], &s);
    for (int i = 0; i < n && st == RN_OK; i++) {
      rn_tensor *t = tensors[d * n + i];
      void *p = rn_cu_ptr(t);
      st = nccl_check(lib.all_reduce(p, p, (size_t)rn_tensor_numel(t), ncclFloat32, ncclAvg, c->comms[d], s),
                      "ncclAllReduce");
    }
  }
  rn_status end = nccl_check(lib.group_end(), "ncclGroupEnd"); /* always close the group */
  return st != RN_OK ? st : end;
}

void rn_nccl_free(rn_nccl *c) {
  if (!c) return;
  for (int i = 0; i < c->n; i++)
    if (c->comms[i]) lib.destroy(c->comms[i]);
  free(c);
}

#else /* no NCCL in this build */

bool rn_nccl_built(void) { return false; }

static rn_status absent(void) {
#ifdef REALNET_CUDA
  return rn_error(RN_ERR_UNSUPPORTED, "nccl: this build found no nccl.h (install NCCL and reconfigure)");
#else
  return rn_error(RN_ERR_UNSUPPORTED, "nccl: this build has no CUDA backend");
#endif
}

rn_status rn_nccl_new_local(rn_nccl **out, int n, const int *devices) { *out = NULL; return absent(); }
rn_status rn_nccl_unique_id(unsigned char id[RN_NCCL_ID_BYTES]) { return absent(); }
rn_status rn_nccl_new_rank(rn_nccl **out, const unsigned char id[RN_NCCL_ID_BYTES], int nranks, int rank, int device) {
  *out = NULL;
  return absent();
}
int rn_nccl_local_count(const rn_nccl *c) { return 0; }
rn_status rn_nccl_all_reduce_mean(rn_nccl *c, int n, rn_tensor *const *tensors) { return absent(); }
void rn_nccl_free(rn_nccl *c) {}

#endif
