/* tensor.h - n-dimensional views over refcounted storage.
 *
 *   rn_tensor *x = NULL;
 *   int64_t shape[] = {2, 3, 8, 8};
 *   if (rn_tensor_zeros(&x, 4, shape, RN_F32, rn_cpu()) != RN_OK) puts(rn_last_error());
 *   rn_tensor_release(x);
 *
 * Ownership: functions named *_new, *_zeros, *_clone, *_view-makers (narrow, select, ...) hand back one
 * reference that the caller releases with rn_tensor_release (which accepts NULL). *_get_* borrows.
 * A view shares its storage: writing through a view writes the base tensor.
 * Threading: a tensor may be read from many threads; refcounts are not atomic, so retain/release from one
 * thread at a time (the Lua state's thread).
 */
#ifndef REALNET_TENSOR_H
#define REALNET_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define RN_MAX_DIMS 5

typedef enum { RN_F32 = 0, RN_U8, RN_I32, RN_I64, RN_DTYPE_COUNT } rn_dtype;
typedef enum { RN_CPU = 0, RN_CUDA, RN_DEVICE_TYPE_COUNT } rn_device_type;

typedef struct { rn_device_type type; int index; } rn_device;

struct rn_backend;
struct rn_node;

typedef struct rn_storage {
  int refcount;
  void *data;
  size_t bytes;
  rn_device device;
  const struct rn_backend *backend; /* who frees `data` */
  bool borrowed;                    /* data not owned (rn_storage_wrap) */
} rn_storage;

typedef struct rn_tensor {
  int refcount;
  rn_storage *storage;
  int64_t offset;                 /* in elements */
  int ndim;
  int64_t shape[RN_MAX_DIMS];
  int64_t stride[RN_MAX_DIMS];    /* in elements */
  rn_dtype dtype;
  bool requires_grad;             /* a leaf whose gradient is wanted, or the output of such a graph */
  struct rn_tensor *grad;         /* accumulated gradient of a leaf (owned), or NULL */
  struct rn_node *grad_fn;        /* the op that made this tensor (owned), NULL for leaves */
} rn_tensor;

static inline rn_device rn_cpu(void) { rn_device d = {RN_CPU, 0}; return d; }

size_t rn_dtype_size(rn_dtype t);
const char *rn_dtype_name(rn_dtype t);
rn_status rn_dtype_from_name(const char *name, rn_dtype *out);
const char *rn_device_name(rn_device d, char *buf, size_t n); /* "cpu", "cuda:0" */
rn_status rn_device_parse(const char *s, rn_device *out);
bool rn_device_eq(rn_device a, rn_device b);

/* --- creation (each returns a new reference in *out) --- */
rn_status rn_tensor_empty(rn_tensor **out, int ndim, const int64_t *shape, rn_dtype dt, rn_device dev);
rn_status rn_tensor_zeros(rn_tensor **out, int ndim, const int64_t *shape, rn_dtype dt, rn_device dev);
rn_status rn_tensor_full(rn_tensor **out, int ndim, const int64_t *shape, rn_dtype dt, rn_device dev, double v);
rn_status rn_tensor_empty_like(rn_tensor **out, const rn_tensor *t);
rn_status rn_tensor_zeros_like(rn_tensor **out, const rn_tensor *t);
/* A CPU float32 tensor copying `data` (contiguous, row-major). */
rn_status rn_tensor_from_data(rn_tensor **out, int ndim, const int64_t *shape, rn_dtype dt, const void *data);
rn_status rn_tensor_scalar(rn_tensor **out, double v, rn_dtype dt, rn_device dev); /* 0-dim */
rn_status rn_arange(rn_tensor **out, double start, double stop, double step, rn_dtype dt, rn_device dev);

rn_tensor *rn_tensor_retain(rn_tensor *t);
void rn_tensor_release(rn_tensor *t);

/* --- facts --- */
int64_t rn_tensor_numel(const rn_tensor *t);
bool rn_tensor_is_contiguous(const rn_tensor *t);
rn_device rn_tensor_device(const rn_tensor *t);
bool rn_tensor_same_shape(const rn_tensor *a, const rn_tensor *b);
/* "[2,3,8,8]" into buf; returns buf. */
const char *rn_shape_str(const rn_tensor *t, char *buf, size_t n);
/* Host pointer to element 0 of a CPU tensor (storage data + offset); NULL for device tensors. */
void *rn_tensor_data(const rn_tensor *t);
static inline float *rn_f32(const rn_tensor *t) { return (float *)rn_tensor_data(t); }

/* --- views (share storage; no autograd unless stated) --- */
rn_status rn_narrow(rn_tensor **out, rn_tensor *t, int dim, int64_t start, int64_t length);
rn_status rn_select(rn_tensor **out, rn_tensor *t, int dim, int64_t index);
rn_status rn_transpose(rn_tensor **out, rn_tensor *t, int d0, int d1);
rn_status rn_permute(rn_tensor **out, rn_tensor *t, const int *perm);
/* A view when the strides allow, else a contiguous copy; one -1 entry is inferred. Differentiable. */
rn_status rn_reshape(rn_tensor **out, rn_tensor *t, int ndim, const int64_t *shape);
/* Returns t retained when already contiguous, else a contiguous copy. Differentiable. */
rn_status rn_contiguous(rn_tensor **out, rn_tensor *t);
rn_status rn_expand(rn_tensor **out, rn_tensor *t, int ndim, const int64_t *shape); /* stride-0 view */
rn_status rn_squeeze(rn_tensor **out, rn_tensor *t, int dim);
rn_status rn_unsqueeze(rn_tensor **out, rn_tensor *t, int dim);
/* A new tensor header over the same storage without grad_fn / requires_grad (like torch's detach). */
rn_status rn_detach(rn_tensor **out, rn_tensor *t);

/* --- copies --- */
rn_status rn_clone(rn_tensor **out, const rn_tensor *t);              /* contiguous copy, no autograd */
rn_status rn_copy_(rn_tensor *dst, const rn_tensor *src);            /* dst <- src, shapes equal, any strides/devices/dtypes */
rn_status rn_to_device(rn_tensor **out, rn_tensor *t, rn_device dev);
rn_status rn_to_dtype(rn_tensor **out, rn_tensor *t, rn_dtype dt);
rn_status rn_fill_(rn_tensor *t, double v);

/* Element access for tests and the binding (CPU only, flat row-major index over the view). */
rn_status rn_tensor_get(const rn_tensor *t, const int64_t *idx, double *v);
rn_status rn_tensor_set(rn_tensor *t, const int64_t *idx, double v);

/* Broadcast two shapes (numpy rules) into out_shape; error names both shapes. */
rn_status rn_broadcast_shape(const rn_tensor *a, const rn_tensor *b, int *ndim, int64_t *out_shape);

/* Bytes of tensor storage currently allocated per device type (for GC pressure and memory reports). */
size_t rn_allocated_bytes(rn_device_type type);

#endif
