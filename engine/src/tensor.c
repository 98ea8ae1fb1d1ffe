/* tensor.c - storage, tensor headers, creation, facts and copies. Views live in views.c. */
#include <stdatomic.h>

#include "internal.h"

/* updated from loader threads too, hence atomic */
static size_t allocated[RN_DEVICE_TYPE_COUNT];

size_t rn_dtype_size(rn_dtype t) {
  switch (t) {
    case RN_F32: return 4;
    case RN_U8: return 1;
    case RN_I32: return 4;
    case RN_I64: return 8;
    default: return 0;
  }
}

static const char *dtype_names[RN_DTYPE_COUNT] = {"float32", "uint8", "int32", "int64"};

const char *rn_dtype_name(rn_dtype t) { return (unsigned)t < RN_DTYPE_COUNT ? dtype_names[t] : "?"; }

rn_status rn_dtype_from_name(const char *name, rn_dtype *out) {
  for (int i = 0; i < RN_DTYPE_COUNT; i++)
    if (strcmp(name, dtype_names[i]) == 0) { *out = (rn_dtype)i; return RN_OK; }
  if (strcmp(name, "float") == 0) { *out = RN_F32; return RN_OK; }
  if (strcmp(name, "long") == 0) { *out = RN_I64; return RN_OK; }
  if (strcmp(name, "int") == 0) { *out = RN_I32; return RN_OK; }
  if (strcmp(name, "byte") == 0) { *out = RN_U8; return RN_OK; }
  return rn_error(RN_ERR_ARG, "unknown dtype '%s' (expected float32, uint8, int32 or int64)", name);
}

const char *rn_device_name(rn_device d, char *buf, size_t n) {
  if (d.type == RN_CPU) snprintf(buf, n, "cpu");
  else snprintf(buf, n, "cuda:%d", d.index);
  return buf;
}

rn_status rn_device_parse(const char *s, rn_device *out) {
  if (strcmp(s, "cpu") == 0) { out->type = RN_CPU; out->index = 0; return RN_OK; }
  if (strcmp(s, "cuda") == 0) { out->type = RN_CUDA; out->index = 0; return RN_OK; }
  int idx; char extra;
  if (sscanf(s, "cuda:%d%c", &idx, &extra) == 1 && idx >= 0) { out->type = RN_CUDA; out->index = idx; return RN_OK; }
  return rn_error(RN_ERR_ARG, "unknown device '%s' (expected cpu, cuda or cuda:N)", s);
}

bool rn_device_eq(rn_device a, rn_device b) { return a.type == b.type && a.index == b.index; }

size_t rn_allocated_bytes(rn_device_type type) {
  return (unsigned)type < RN_DEVICE_TYPE_COUNT ? __atomic_load_n(&allocated[type], __ATOMIC_RELAXED) : 0;
}

/* ------------------------------------------------------------------ storage */

static rn_status storage_new(rn_storage **out, size_t bytes, rn_device dev) {
  const rn_backend *be = rn_backend_for(dev);
  if (!be) return RN_ERR_DEVICE;
  rn_storage *s = calloc(1, sizeof *s);
  if (!s) return rn_error(RN_ERR_OOM, "out of memory allocating a storage header");
  rn_status st = be->alloc(be, dev.index, bytes ? bytes : 1, &s->data);
  if (st != RN_OK) { free(s); return st; }
  s->refcount = 1;
  s->bytes = bytes;
  s->device = dev;
  s->backend = be;
  __atomic_fetch_add(&allocated[dev.type], bytes, __ATOMIC_RELAXED);
  *out = s;
  return RN_OK;
}

static void storage_release(rn_storage *s) {
  if (!s || --s->refcount > 0) return;
  if (!s->borrowed) {
    s->backend->free(s->backend, s->device.index, s->data, s->bytes);
    __atomic_fetch_sub(&allocated[s->device.type], s->bytes, __ATOMIC_RELAXED);
  }
  free(s);
}

/* ------------------------------------------------------------------ tensors */

static rn_status check_shape(int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > RN_MAX_DIMS)
    return rn_error(RN_ERR_SHAPE, "a tensor has 0 to %d dims, got %d", RN_MAX_DIMS, ndim);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0) return rn_error(RN_ERR_SHAPE, "negative size %lld in dim %d", (long long)shape[i], i + 1);
  return RN_OK;
}

static void set_contiguous_strides(rn_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) { t->stride[i] = s; s *= t->shape[i]; }
}

rn_status rn_tensor_empty(rn_tensor **out, int ndim, const int64_t *shape, rn_dtype dt, rn_device dev) {
  *out = NULL;
  RN_TRY(check_shape(ndim, shape));
  if ((unsigned)dt >= RN_DTYPE_COUNT) return rn_error(RN_ERR_ARG, "unknown dtype %d", (int)dt);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] && n > INT64_MAX / 16 / shape[i]) return rn_error(RN_ERR_SHAPE, "tensor too large");
    n *= shape[i];
  }
  rn_tensor *t = calloc(1, sizeof *t);
  if (!t) return rn_error(RN_ERR_OOM, "out of memory allocating a tensor header");
  rn_status st = storage_new(&t->storage, (size_t)n * rn_dtype_size(dt), dev);
  if (st != RN_OK) { free(t); return st; }
  t->refcount = 1;
  t->ndim = ndim;
  t->dtype = dt;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  set_contiguous_strides(t);
  *out = t;
  return RN_OK;
}

rn_status rn_tensor_full(rn_tensor **out, int ndim, const int64_t *shape, rn_dtype dt, rn_device dev, double v) {
  RN_TRY(rn_tensor_empty(out, ndim, shape, dt, dev));
  rn_status st = rn_fill_(*out, v);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}

rn_status rn_tensor_zeros(rn_tensor **out, int ndim, const int64_t *shape, rn_dtype dt, rn_device dev) {
  return rn_tensor_full(out, ndim, shape, dt, dev, 0.0);
}

rn_status rn_tensor_empty_like(rn_tensor **out, const rn_tensor *t) {
  return rn_tensor_empty(out, t->ndim, t->shape, t->dtype, t->storage->device);
}

rn_status rn_tensor_zeros_like(rn_tensor **out, const rn_tensor *t) {
  return rn_tensor_zeros(out, t->ndim, t->shape, t->dtype, t->storage->device);
}

rn_status rn_tensor_from_data(rn_tensor **out, int ndim, const int64_t *shape, rn_dtype dt, const void *data) {
  RN_TRY(rn_tensor_empty(out, ndim, shape, dt, rn_cpu()));
  memcpy(rn_tensor_data(*out), data, (size_t)rn_tensor_numel(*out) * rn_dtype_size(dt));
  return RN_OK;
}

rn_status rn_tensor_scalar(rn_tensor **out, double v, rn_dtype dt, rn_device dev) {
  return rn_tensor_full(out, 0, NULL, dt, dev, v);
}

rn_status rn_arange(rn_tensor **out, double start, double stop, double step, rn_dtype dt, rn_device dev) {
  *out = NULL;
  if (!(step != 0) || !isfinite(start) || !isfinite(stop) || !isfinite(step))
    return rn_error(RN_ERR_ARG, "arange: start, stop and step must be finite and step non-zero");
  double nd = ceil((stop - start) / step);
  int64_t n = nd > 0 ? (int64_t)nd : 0;
  rn_tensor *t;
  RN_TRY(rn_tensor_empty(&t, 1, &n, dt, rn_cpu()));
  for (int64_t i = 0; i < n; i++) { int64_t idx = i; rn_tensor_set(t, &idx, start + step * (double)i); }
  if (dev.type != RN_CPU) {
    rn_status st = rn_to_device(out, t, dev);
    rn_tensor_release(t);
    return st;
  }
  *out = t;
  return RN_OK;
}

rn_tensor *rn_tensor_retain(rn_tensor *t) { if (t) t->refcount++; return t; }

void rn_tensor_release(rn_tensor *t) {
  if (!t || --t->refcount > 0) return;
  rn_tensor_release(t->grad);
  rn_node_release(t->grad_fn);
  storage_release(t->storage);
  free(t);
}

int64_t rn_tensor_numel(const rn_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

bool rn_tensor_is_contiguous(const rn_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != s) return false;
    s *= t->shape[i];
  }
  return true;
}

rn_device rn_tensor_device(const rn_tensor *t) { return t->storage->device; }

bool rn_tensor_same_shape(const rn_tensor *a, const rn_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++) if (a->shape[i] != b->shape[i]) return false;
  return true;
}

const char *rn_shape_str(const rn_tensor *t, char *buf, size_t n) {
  size_t k = 0;
  k += snprintf(buf + k, n - k, "[");
  for (int i = 0; i < t->ndim && k < n; i++)
    k += snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)t->shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

void *rn_tensor_data(const rn_tensor *t) {
  if (t->storage->device.type != RN_CPU) return NULL;
  return (char *)t->storage->data + t->offset * (int64_t)rn_dtype_size(t->dtype);
}

/* ------------------------------------------------------------------ copies */

rn_status rn_fill_(rn_tensor *t, double v) { return rn_kernels_of(t)->fill(t, v); }

rn_status rn_copy_(rn_tensor *dst, const rn_tensor *src) {
  if (!rn_tensor_same_shape(dst, src)) {
    char a[64], b[64];
    return rn_error(RN_ERR_SHAPE, "copy: destination %s and source %s differ in shape", rn_shape_str(dst, a, 64),
                    rn_shape_str(src, b, 64));
  }
  rn_device dd = rn_tensor_device(dst), sd = rn_tensor_device(src);
  if (rn_device_eq(dd, sd)) return rn_kernels_of(dst)->copy(dst, src);
  /* across devices: make the source contiguous and of dst's dtype on its own device, then move bytes */
  rn_tensor *tmp = NULL;
  if (src->dtype != dst->dtype || !rn_tensor_is_contiguous(src)) {
    RN_TRY(rn_tensor_empty(&tmp, src->ndim, src->shape, dst->dtype, sd));
    rn_status st = rn_kernels_of(tmp)->copy(tmp, src);
    if (st != RN_OK) { rn_tensor_release(tmp); return st; }
    src = tmp;
  }
  rn_status st = RN_OK;
  if (rn_tensor_is_contiguous(dst)) {
    const rn_backend *be = dd.type != RN_CPU ? dst->storage->backend : src->storage->backend;
    size_t es = rn_dtype_size(dst->dtype);
    st = be->memcpy(be, (char *)dst->storage->data + dst->offset * es, dd,
                    (const char *)src->storage->data + src->offset * es, sd, (size_t)rn_tensor_numel(dst) * es);
  } else {
    rn_tensor *staged = NULL;
    st = rn_tensor_empty(&staged, dst->ndim, dst->shape, dst->dtype, dd);
    if (st == RN_OK) st = rn_copy_(staged, src);
    if (st == RN_OK) st = rn_kernels_of(dst)->copy(dst, staged);
    rn_tensor_release(staged);
  }
  rn_tensor_release(tmp);
  return st;
}

rn_status rn_clone(rn_tensor **out, const rn_tensor *t) {
  RN_TRY(rn_tensor_empty(out, t->ndim, t->shape, t->dtype, rn_tensor_device(t)));
  rn_status st = rn_copy_(*out, t);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}

rn_status rn_to_device(rn_tensor **out, rn_tensor *t, rn_device dev) {
  if (rn_device_eq(rn_tensor_device(t), dev)) { *out = rn_tensor_retain(t); return RN_OK; }
  RN_TRY(rn_tensor_empty(out, t->ndim, t->shape, t->dtype, dev));
  rn_status st = rn_copy_(*out, t);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}

rn_status rn_to_dtype(rn_tensor **out, rn_tensor *t, rn_dtype dt) {
  if (t->dtype == dt) { *out = rn_tensor_retain(t); return RN_OK; }
  RN_TRY(rn_tensor_empty(out, t->ndim, t->shape, dt, rn_tensor_device(t)));
  rn_status st = rn_copy_(*out, t);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}

/* ------------------------------------------------------------------ elements */

static rn_status element_ptr(const rn_tensor *t, const int64_t *idx, char **p) {
  if (rn_tensor_device(t).type != RN_CPU)
    return rn_error(RN_ERR_DEVICE, "element access needs a CPU tensor; move it with :to('cpu') first");
  int64_t off = t->offset;
  for (int i = 0; i < t->ndim; i++) {
    if (idx[i] < 0 || idx[i] >= t->shape[i])
      return rn_error(RN_ERR_ARG, "index %lld out of range for dim %d of size %lld", (long long)idx[i] + 1, i + 1,
                      (long long)t->shape[i]);
    off += idx[i] * t->stride[i];
  }
  *p = (char *)t->storage->data + off * (int64_t)rn_dtype_size(t->dtype);
  return RN_OK;
}

rn_status rn_tensor_get(const rn_tensor *t, const int64_t *idx, double *v) {
  char *p = NULL;
  RN_TRY(element_ptr(t, idx, &p));
  switch (t->dtype) {
    case RN_F32: *v = *(float *)p; break;
    case RN_U8: *v = *(uint8_t *)p; break;
    case RN_I32: *v = *(int32_t *)p; break;
    case RN_I64: *v = (double)*(int64_t *)p; break;
    default: return rn_error(RN_ERR_ARG, "bad dtype");
  }
  return RN_OK;
}

rn_status rn_tensor_set(rn_tensor *t, const int64_t *idx, double v) {
  char *p = NULL;
  RN_TRY(element_ptr(t, idx, &p));
  switch (t->dtype) {
    case RN_F32: *(float *)p = (float)v; break;
    case RN_U8: *(uint8_t *)p = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); break;
    case RN_I32: *(int32_t *)p = (int32_t)v; break;
    case RN_I64: *(int64_t *)p = (int64_t)v; break;
    default: return rn_error(RN_ERR_ARG, "bad dtype");
  }
  return RN_OK;
}

rn_status rn_broadcast_shape(const rn_tensor *a, const rn_tensor *b, int *ndim, int64_t *out) {
  int n = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < n; i++) {
    int ia = a->ndim - n + i, ib = b->ndim - n + i;
    int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char x[64], y[64];
      return rn_error(RN_ERR_SHAPE, "shapes %s and %s cannot be broadcast together", rn_shape_str(a, x, 64),
                      rn_shape_str(b, y, 64));
    }
    out[i] = sa == 1 ? sb : sa;
  }
  *ndim = n;
  return RN_OK;
}

/* ------------------------------------------------------------------ internal helpers */

/* Every kernel the op layer runs is looked up here, once per call: so this also counts them (rn_kernel_calls). */
static _Atomic unsigned long long kernel_calls;

const rn_kernels *rn_kernels_of(const rn_tensor *t) {
  atomic_fetch_add_explicit(&kernel_calls, 1, memory_order_relaxed);
  return t->storage->backend->k;
}

uint64_t rn_kernel_calls(void) { return atomic_load_explicit(&kernel_calls, memory_order_relaxed); }

rn_status rn_check_tensor(const rn_tensor *t, const char *what) {
  if (!t) return rn_error(RN_ERR_ARG, "%s: expected a tensor, got nothing", what);
  return RN_OK;
}

rn_status rn_check_f32(const rn_tensor *t, const char *what) {
  RN_TRY(rn_check_tensor(t, what));
  if (t->dtype != RN_F32) return rn_error(RN_ERR_ARG, "%s: expected float32, got %s", what, rn_dtype_name(t->dtype));
  return RN_OK;
}

rn_status rn_check_ndim(const rn_tensor *t, int ndim, const char *what) {
  RN_TRY(rn_check_tensor(t, what));
  if (t->ndim != ndim) {
    char b[64];
    return rn_error(RN_ERR_SHAPE, "%s: expected %d dims, got shape %s", what, ndim, rn_shape_str(t, b, 64));
  }
  return RN_OK;
}

rn_status rn_check_same_device(const rn_tensor *a, const rn_tensor *b, const char *what) {
  if (a && b && !rn_device_eq(rn_tensor_device(a), rn_tensor_device(b))) {
    char x[16], y[16];
    return rn_error(RN_ERR_DEVICE, "%s: tensors on different devices (%s and %s)", what,
                    rn_device_name(rn_tensor_device(a), x, 16), rn_device_name(rn_tensor_device(b), y, 16));
  }
  return RN_OK;
}

rn_status rn_check_finite_params(const char *what, int n, const double *v) {
  for (int i = 0; i < n; i++)
    if (!isfinite(v[i])) return rn_error(RN_ERR_ARG, "%s: parameter %d is not finite", what, i + 1);
  return RN_OK;
}

rn_status rn_norm_dim(int *dim, int ndim, const char *what) {
  int d = *dim < 0 ? *dim + ndim : *dim;
  if (d < 0 || d >= (ndim ? ndim : 1))
    return rn_error(RN_ERR_ARG, "%s: dim %d out of range for a tensor with %d dims", what, *dim + 1, ndim);
  *dim = d;
  return RN_OK;
}

rn_status rn_new_like_shape(rn_tensor **out, const rn_tensor *t, int ndim, const int64_t *shape) {
  return rn_tensor_empty(out, ndim, shape, t->dtype, rn_tensor_device(t));
}

rn_status rn_contig_nograd(rn_tensor **out, const rn_tensor *t) {
  if (rn_tensor_is_contiguous(t)) { *out = rn_tensor_retain((rn_tensor *)t); return RN_OK; }
  return rn_clone(out, t);
}
