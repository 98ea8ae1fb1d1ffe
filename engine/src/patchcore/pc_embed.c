/* pc_embed.c - locally aware patch features (see patchcore.h): neighbourhood averaging of each stage,
 * upsampling to the finest stage grid, concatenation and optional adaptive channel pooling, written
 * channels-last so that every patch is one contiguous row of the memory bank. */
#include <omp.h>

#include "pc_internal.h"

/* adaptive_avg_pool1d of n values into m: output j averages [floor(j n / m), ceil((j+1) n / m)). */
static void pool1d(const float *in, int64_t n, float *out, int64_t m) {
  for (int64_t j = 0; j < m; j++) {
    int64_t s = j * n / m, e = ((j + 1) * n + m - 1) / m;
    double acc = 0.0;
    for (int64_t i = s; i < e; i++) acc += in[i];
    out[j] = (float)(acc / (double)(e - s));
  }
}

/* The stage after averaging and resampling to h x w, channels-last [N, h, w, C] (new reference). */
static rn_status stage_grid(rn_tensor **out, rn_tensor *f, int k, int64_t h, int64_t w) {
  rn_tensor *a = NULL, *u = NULL, *p = NULL;
  rn_pool_params pp = {{k, k}, {1, 1}, {k / 2, k / 2}, false, true};
  rn_status st = k > 1 ? rn_avg_pool2d(&a, f, &pp) : rn_contiguous(&a, f);
  if (st == RN_OK) {
    if (a->shape[2] != h || a->shape[3] != w)
      st = rn_upsample(&u, a, (int)h, (int)w, RN_UPSAMPLE_BILINEAR, false);
    else
      u = rn_tensor_retain(a);
  }
  static const int perm[4] = {0, 2, 3, 1};
  if (st == RN_OK) st = rn_permute(&p, u, perm);
  if (st == RN_OK) st = rn_contiguous(out, p);
  rn_tensor_release(a);
  rn_tensor_release(u);
  rn_tensor_release(p);
  return st;
}

/* Dims of the embedding for stage channel counts ch[0..n). */
static int64_t embed_dim(const rn_patchcore_opts *o, const int64_t *ch) {
  int64_t total = 0;
  for (int l = 0; l < o->n_layers; l++) total += o->pre_dim > 0 ? o->pre_dim : ch[l];
  return o->dim > 0 ? o->dim : total;
}

rn_status rn_patchcore_embed(rn_patchcore *pc, rn_tensor *const *feats, rn_tensor **out) {
  if (!pc || !feats || !out) return rn_error(RN_ERR_ARG, "patchcore embed: NULL argument");
  *out = NULL;
  const rn_patchcore_opts *o = &pc->o;
  int nl = o->n_layers;
  int64_t ch[RN_PC_MAX_LAYERS], n = -1, h = 0, w = 0;
  char b[64], b2[64];
  for (int l = 0; l < nl; l++) {
    char what[64];
    snprintf(what, sizeof what, "patchcore embed: stage feature %d", l + 1);
    RN_TRY(rn_check_f32(feats[l], what));
    if (feats[l]->ndim != 4 || rn_tensor_numel(feats[l]) == 0)
      return rn_error(RN_ERR_SHAPE, "%s must be a non-empty [N,C,h,w], got %s", what, rn_shape_str(feats[l], b, 64));
    if (rn_tensor_device(feats[l]).type != RN_CPU) return rn_error(RN_ERR_DEVICE, "%s must be on the CPU", what);
    if (n >= 0 && feats[l]->shape[0] != n)
      return rn_error(RN_ERR_SHAPE, "%s %s has another batch size than stage 1 %s", what,
                      rn_shape_str(feats[l], b, 64), rn_shape_str(feats[0], b2, 64));
    n = feats[l]->shape[0];
    ch[l] = feats[l]->shape[1];
    if (feats[l]->shape[2] * feats[l]->shape[3] > h * w) { h = feats[l]->shape[2]; w = feats[l]->shape[3]; }
  }
  int64_t d = embed_dim(o, ch);
  if (pc->dim > 0 && d != pc->dim)
    return rn_error(RN_ERR_SHAPE, "patchcore embed: the stage features give %lld dims but the model has %lld "
                    "(another backbone or stage set?)", (long long)d, (long long)pc->dim);
  rn_nograd_scope ng = rn_nograd_begin();
  rn_tensor *g[RN_PC_MAX_LAYERS] = {NULL}, *y = NULL;
  int64_t shape[4] = {n, h, w, d};
  rn_status st = RN_OK;
  for (int l = 0; l < nl && st == RN_OK; l++) st = stage_grid(&g[l], feats[l], o->neighbourhood, h, w);
  if (st == RN_OK) st = rn_tensor_empty(&y, 4, shape, RN_F32, rn_cpu());
  int64_t cat = 0;
  for (int l = 0; l < nl; l++) cat += o->pre_dim > 0 ? o->pre_dim : ch[l];
  float *scratch = NULL;
  int nt = omp_get_max_threads();
  if (st == RN_OK && o->dim > 0) {
    scratch = (float *)malloc((size_t)nt * (size_t)cat * sizeof *scratch);
    if (!scratch) st = rn_error(RN_ERR_OOM, "patchcore embed: %lld-dim scratch", (long long)cat);
  }
  if (st == RN_OK) {
    int64_t rows = n * h * w;
    float *py = rn_f32(y);
    const float *src[RN_PC_MAX_LAYERS];
    for (int l = 0; l < nl; l++) src[l] = rn_f32(g[l]);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; r++) {
      float *row = o->dim > 0 ? scratch + (size_t)omp_get_thread_num() * cat : py + r * d;
      int64_t off = 0;
      for (int l = 0; l < nl; l++) {
        const float *s = src[l] + r * ch[l];
        if (o->pre_dim > 0) {
          pool1d(s, ch[l], row + off, o->pre_dim);
          off += o->pre_dim;
        } else {
          memcpy(row + off, s, (size_t)ch[l] * sizeof *row);
          off += ch[l];
        }
      }
      if (o->dim > 0) pool1d(row, cat, py + r * d, d);
    }
  }
  free(scratch);
  for (int l = 0; l < nl; l++) rn_tensor_release(g[l]);
  rn_nograd_end(ng);
  if (st != RN_OK) {
    rn_tensor_release(y);
    return st;
  }
  *out = y;
  return RN_OK;
}
