/* pc_score.c - anomaly maps and image scores: nearest-neighbour distances to the bank, upsampled to the
 * image and smoothed; the image score as chosen in opts.score (see patchcore.h). */
#include <float.h>

#include "pc_internal.h"

/* The paper's eq. 7 in anomalib's form for one image: s* (1 - softmax(d)_0), d the distances from the worst
 * test patch q to its nearest bank row m* and to m*'s nearest bank rows (m* itself first). */
static rn_status reweight(rn_patchcore *pc, const float *q, int64_t mstar, float sstar, float *score) {
  int64_t d = pc->dim;
  rn_tensor *row = NULL, *sd = NULL, *si = NULL;
  RN_TRY(rn_narrow(&row, pc->bank, 0, mstar, 1));
  rn_status st = rn_pc_knn(&sd, &si, row, pc->bank, pc->o.reweight);
  rn_tensor_release(row);
  if (st != RN_OK) return st;
  const int64_t *sup = (const int64_t *)rn_tensor_data(si);
  const float *pb = rn_f32(pc->bank);
  int b = pc->o.reweight;
  double *dist = (double *)malloc((size_t)b * sizeof *dist), mx = -DBL_MAX;
  if (!dist) {
    rn_tensor_release(sd);
    rn_tensor_release(si);
    return rn_error(RN_ERR_OOM, "patchcore reweight: %d distances", b);
  }
  for (int j = 0; j < b; j++) {
    const float *r = pb + (j == 0 ? mstar : sup[j]) * d; /* m* first even if a duplicate row tied with it */
    double s = 0.0;
    for (int64_t c = 0; c < d; c++) s += ((double)q[c] - r[c]) * ((double)q[c] - r[c]);
    dist[j] = sqrt(s);
    if (dist[j] > mx) mx = dist[j];
  }
  double z = 0.0;
  for (int j = 0; j < b; j++) z += exp(dist[j] - mx);
  *score = (float)((1.0 - exp(dist[0] - mx) / z) * sstar);
  free(dist);
  rn_tensor_release(sd);
  rn_tensor_release(si);
  return RN_OK;
}

rn_status rn_patchcore_score_features(rn_patchcore *pc, rn_tensor *feats, int64_t height, int64_t width,
                                      rn_tensor **maps, rn_tensor **scores) {
  if (!pc || !maps || !scores) return rn_error(RN_ERR_ARG, "patchcore predict: NULL argument");
  *maps = *scores = NULL;
  char b[64];
  if (!pc->bank) return rn_error(RN_ERR_ARG, "patchcore predict: the model has no memory bank (fit or load first)");
  RN_TRY(rn_check_f32(feats, "patchcore predict: features"));
  if (rn_tensor_device(feats).type != RN_CPU) /* the bank and k-NN read host memory */
    return rn_error(RN_ERR_DEVICE, "patchcore predict: features must be on the CPU (copy them with :to(\"cpu\"))");
  if (feats->ndim != 4 || rn_tensor_numel(feats) == 0)
    return rn_error(RN_ERR_SHAPE, "patchcore predict: features must be a non-empty [B, h, w, D], got %s",
                    rn_shape_str(feats, b, 64));
  if (feats->shape[3] != pc->dim)
    return rn_error(RN_ERR_SHAPE, "patchcore predict: features %s have %lld dims but the bank has %lld",
                    rn_shape_str(feats, b, 64), (long long)feats->shape[3], (long long)pc->dim);
  if (height <= 0 || width <= 0 || height > 1 << 16 || width > 1 << 16)
    return rn_error(RN_ERR_ARG, "patchcore predict: image size %lldx%lld out of range", (long long)height,
                    (long long)width);
  int64_t nb = feats->shape[0], h = feats->shape[1], w = feats->shape[2], hw = h * w;
  rn_nograd_scope ng = rn_nograd_begin();
  rn_tensor *fc = NULL, *q = NULL, *dist = NULL, *idx = NULL, *pm = NULL, *up = NULL, *sm = NULL, *sc = NULL;
  int64_t qshape[2] = {nb * hw, pc->dim}, mshape[4] = {nb, 1, h, w}, sshape[1] = {nb};
  rn_status st = rn_contig_nograd(&fc, feats);
  if (st == RN_OK) st = rn_reshape(&q, fc, 2, qshape);
  if (st == RN_OK) st = rn_pc_knn(&dist, &idx, q, pc->bank, 1);
  if (st == RN_OK) st = rn_reshape(&pm, dist, 4, mshape);
  if (st == RN_OK) {
    if (h != height || w != width)
      st = rn_upsample(&up, pm, (int)height, (int)width, RN_UPSAMPLE_BILINEAR, false);
    else
      st = rn_clone(&up, pm);
  }
  if (st == RN_OK) {
    if (pc->o.sigma > 0.0f)
      st = rn_pc_gaussian_blur(&sm, up, pc->o.sigma);
    else
      sm = rn_tensor_retain(up);
  }
  if (st == RN_OK) st = rn_tensor_empty(&sc, 1, sshape, RN_F32, rn_cpu());
  if (st == RN_OK) {
    const float *pd = rn_f32(dist), *ps = rn_f32(sm), *pq = rn_f32(q);
    const int64_t *pi = (const int64_t *)rn_tensor_data(idx);
    float *out = rn_f32(sc);
    for (int64_t i = 0; i < nb && st == RN_OK; i++) {
      int64_t arg = 0;
      for (int64_t p = 1; p < hw; p++)
        if (pd[i * hw + p] > pd[i * hw + arg]) arg = p;
      if (pc->o.score == RN_PC_SCORE_MAP_MAX) {
        float m = -FLT_MAX;
        for (int64_t p = 0; p < height * width; p++) m = fmaxf(m, ps[i * height * width + p]);
        out[i] = m;
      } else if (pc->o.score == RN_PC_SCORE_REWEIGHT) {
        st = reweight(pc, pq + (i * hw + arg) * pc->dim, pi[i * hw + arg], pd[i * hw + arg], &out[i]);
      } else {
        out[i] = pd[i * hw + arg];
      }
    }
  }
  rn_tensor_release(fc);
  rn_tensor_release(q);
  rn_tensor_release(dist);
  rn_tensor_release(idx);
  rn_tensor_release(pm);
  rn_tensor_release(up);
  rn_nograd_end(ng);
  if (st != RN_OK) {
    rn_tensor_release(sm);
    rn_tensor_release(sc);
    return st;
  }
  *maps = sm;
  *scores = sc;
  return RN_OK;
}

rn_status rn_patchcore_predict(rn_patchcore *pc, rn_tensor *images, rn_tensor **maps, rn_tensor **scores) {
  if (!pc || !maps || !scores) return rn_error(RN_ERR_ARG, "patchcore predict: NULL argument");
  *maps = *scores = NULL;
  if (!pc->bank) return rn_error(RN_ERR_ARG, "patchcore predict: the model has no memory bank (fit or load first)");
  rn_tensor *e = NULL;
  RN_TRY(rn_pc_features(pc, images, &e));
  rn_status st = rn_patchcore_score_features(pc, e, images->shape[2], images->shape[3], maps, scores);
  rn_tensor_release(e);
  return st;
}
