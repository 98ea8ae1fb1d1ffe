/* pc_internal.h - what the PatchCore files (engine/src/patchcore/) share. */
#ifndef REALNET_PC_INTERNAL_H
#define REALNET_PC_INTERNAL_H

#include "../internal.h"
#include "realnet/patchcore.h"

struct rn_patchcore {
  rn_patchcore_opts o;
  rn_backbone *bb;       /* borrowed */
  char arch[64];         /* "" until a backbone is attached or a file names one */
  int64_t dim;           /* feature dims D, 0 while unknown */
  float *train;          /* training patches [n_train, dim], row-major, grown by doubling */
  int64_t n_train, cap_train;
  int64_t n_fit;         /* training patches the current bank was built from */
  rn_tensor *bank;       /* [K, dim] */
};

/* A float32 [rows, cols] CPU tensor over a fresh allocation (new reference). */
rn_status rn_pc_matrix(rn_tensor **out, int64_t rows, int64_t cols);
/* Checks that t is a contiguous-able float32 CPU matrix [rows, cols] with rows, cols > 0 (what: the name). */
rn_status rn_pc_check_matrix(const rn_tensor *t, const char *what);
/* Checks the options (and, when bb is given, the stages against it). */
rn_status rn_pc_check_opts(const rn_patchcore_opts *o, const rn_backbone *bb);

/* pc_core.c: images [N,3,H,W] through the borrowed backbone and rn_patchcore_embed: [N, h, w, D]. */
rn_status rn_pc_features(rn_patchcore *pc, rn_tensor *images, rn_tensor **out);

/* pc_coreset.c on raw row-major matrices: greedy k-center into sel[0..k) (1 <= k <= n, start < n), and
 * y [n, dims] = x [n, d] times the seeded Gaussian projection. */
rn_status rn_pc_kcenter_raw(const float *x, int64_t n, int64_t d, int64_t k, int64_t start, int64_t *sel);
rn_status rn_pc_project_raw(const float *x, int64_t n, int64_t d, int dims, uint64_t seed, float *y);

#endif
