/* internal.h - helpers shared by the op files of the engine (not installed). */
#ifndef REALNET_INTERNAL_H
#define REALNET_INTERNAL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "realnet/realnet.h"

/* The kernel table of t's backend (t must be valid). */
const rn_kernels *rn_kernels_of(const rn_tensor *t);

/* Argument checks; each sets a message naming `what` (e.g. "conv2d: weight"). */
rn_status rn_check_tensor(const rn_tensor *t, const char *what);               /* non-NULL */
rn_status rn_check_f32(const rn_tensor *t, const char *what);                  /* non-NULL float32 */
rn_status rn_check_ndim(const rn_tensor *t, int ndim, const char *what);       /* exact rank */
rn_status rn_check_same_device(const rn_tensor *a, const rn_tensor *b, const char *what);
rn_status rn_check_finite_params(const char *what, int n, const double *v);
/* Normalises a possibly negative dim against ndim, or errors naming `what`. */
rn_status rn_norm_dim(int *dim, int ndim, const char *what);

/* A new contiguous tensor of the given shape on t's device and dtype. */
rn_status rn_new_like_shape(rn_tensor **out, const rn_tensor *t, int ndim, const int64_t *shape);
/* Contiguous input for a kernel: t retained when contiguous, else a copy (no autograd). Release after. */
rn_status rn_contig_nograd(rn_tensor **out, const rn_tensor *t);

/* Records a node when needed; sets *node (or NULL). Convenience over rn_record. */
#define RN_RECORD(node, name, bw, out, n, ins) \
  do { rn_status rn_rec_st_ = RN_OK; node = rn_record(name, bw, out, n, ins, &rn_rec_st_); \
       if (rn_rec_st_ != RN_OK) { rn_tensor_release(out); return rn_rec_st_; } (void)(node); } while (0)

/* Grad mode scope for backward functions and optimisers. */
typedef struct { bool prev; } rn_nograd_scope;
static inline rn_nograd_scope rn_nograd_begin(void) { rn_nograd_scope s = {rn_set_grad_enabled(false)}; return s; }
static inline void rn_nograd_end(rn_nograd_scope s) { rn_set_grad_enabled(s.prev); }

/* A gemm operand ([rows, cols] or [B, rows, cols]) whose rows are contiguous, such as a view narrowing the rows of
 * a bigger matrix: its leading dimension (elements between rows) and batch stride (0 for a batch of one, shared).
 * False for other layouts (columns strided, rows overlapping), which the kernels' callers make contiguous first. */
static inline bool rn_gemm_operand(const rn_tensor *t, int64_t *ld, int64_t *batch_stride) {
  int r = t->ndim;
  int64_t rows = t->shape[r - 2], cols = t->shape[r - 1];
  if (cols > 1 && t->stride[r - 1] != 1) return false;
  *ld = rows > 1 ? t->stride[r - 2] : cols;
  if (rows > 1 && *ld < cols) return false;
  if (*ld < 1) *ld = 1;
  *batch_stride = r == 3 && t->shape[0] > 1 ? t->stride[0] : 0;
  return *batch_stride >= 0;
}

#endif
