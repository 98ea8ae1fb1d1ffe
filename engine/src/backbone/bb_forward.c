/* bb_forward.c - runs a backbone's node program on a batch.
 *
 * Convolutions go straight to the backend's conv kernel with the folded bias (no autograd, no op-layer
 * copies); the residual add and the activation run as one pass over the conv's fresh output, in place.
 * Slots are released right after their last reader, so peak memory stays near two stages' activations.
 * On the CPU each convolution's weights stay in oneDNN's blocked layout between forwards (rn_cpu_conv2d_packed),
 * as long as the backbone alone holds them: a weight tensor someone else also references might be changed in
 * place, so it is reordered afresh on every call, and its earlier copy is never used again. */
#include <pthread.h>

#include "../cpu/cpu_kernels.h"
#include "bb_internal.h"

/* The blocked copies, one slot per unit, valid for generation `gen` (bumped whenever the weights may change). */
struct bb_packed {
  uint64_t gen;
  int n;
  rn_conv_packed *slot[];
};

void bb_weights_changed(rn_backbone *bb) {
  if (bb && bb->packed) __atomic_add_fetch(&bb->packed->gen, 1, __ATOMIC_RELAXED);
}

void bb_packed_free(rn_backbone *bb) {
  if (!bb || !bb->packed) return;
  for (int i = 0; i < bb->packed->n; i++) rn_conv_packed_free(bb->packed->slot[i]);
  free(bb->packed);
  bb->packed = NULL;
}

int bb_packed_filled(const rn_backbone *bb) {
  int n = 0;
  for (int i = 0; bb && bb->packed && i < bb->packed->n; i++) n += bb->packed->slot[i] != NULL;
  return n;
}

/* The slots, made on the first CPU forward (NULL when out of memory: the forward then reorders every call). */
static struct bb_packed *packed_slots(rn_backbone *bb) {
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&lock);
  if (!bb->packed && (bb->packed = calloc(1, sizeof *bb->packed + (size_t)bb->n_unit * sizeof(rn_conv_packed *)))) {
    bb->packed->gen = 1;
    bb->packed->n = bb->n_unit;
  }
  pthread_mutex_unlock(&lock);
  return bb->packed;
}

/* Output size of a conv (kernel k) or max pool along one dim; <= 0 when empty. */
static int64_t out_len(int64_t in, int k, int stride, int pad, bool ceil_mode) {
  int64_t span = in + 2 * pad - k;
  if (span < 0) return 0;
  if (!ceil_mode) return span / stride + 1;
  int64_t o = (span + stride - 1) / stride + 1;
  if ((o - 1) * stride >= in + pad) o--; /* PyTorch: the last window must start inside the input or left pad */
  return o;
}

static void node_hw(const rn_backbone *bb, const bb_node *nd, int64_t h, int64_t w, int64_t *oh, int64_t *ow) {
  if (nd->op == OP_CONV) {
    const bb_unit *u = &bb->unit[nd->unit];
    *oh = out_len(h, u->kh, nd->stride, nd->pad, false);
    *ow = out_len(w, u->kw, nd->stride, nd->pad, false);
  } else if (nd->op == OP_MAXPOOL) {
    *oh = out_len(h, nd->k, nd->stride, nd->pad, nd->ceil_mode);
    *ow = out_len(w, nd->k, nd->stride, nd->pad, nd->ceil_mode);
  } else if (nd->op == OP_GAP || nd->op == OP_FLATTEN) {
    *oh = *ow = 1;
  } else {
    *oh = h, *ow = w;
  }
}

/* Whether an h x w input gives non-empty slots up to node `last`. */
static bool fits(const rn_backbone *bb, int last, int64_t h, int64_t w, int64_t *sh, int64_t *sw, int *bad) {
  sh[0] = h, sw[0] = w;
  for (int i = 0; i <= last; i++) {
    const bb_node *nd = &bb->node[i];
    node_hw(bb, nd, sh[nd->in], sw[nd->in], &sh[nd->out], &sw[nd->out]);
    if (sh[nd->out] < 1 || sw[nd->out] < 1) {
      *bad = i;
      return false;
    }
  }
  return true;
}

/* ------------------------------------------------------------------ elementwise passes */

static inline float act_f(bb_act a, float v) {
  switch (a) {
    case ACT_RELU: return v > 0.f ? v : (v != v ? v : 0.f);
    case ACT_RELU6: return v != v ? v : fminf(fmaxf(v, 0.f), 6.f);
    case ACT_SILU: return v / (1.f + expf(-v));
    case ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    default: return v;
  }
}

/* y = act(y + res) in place (res may be NULL). */
static void epilogue(float *y, const float *res, int64_t n, bb_act a) {
  if (!res && a == ACT_NONE) return;
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) y[i] = act_f(a, res ? y[i] + res[i] : y[i]);
}

/* 1x1 conv on [N,C,1,1] (the squeeze-and-excitation path): a small matrix-vector product per image. */
static void conv_pointwise_vec(float *y, const float *x, const float *w, const float *b, int64_t n, int64_t c, int64_t o) {
#pragma omp parallel for collapse(2) schedule(static) if (n * o * c > 65536)
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < o; k++) {
      double s = b ? b[k] : 0.0;
      const float *wk = w + k * c, *xi = x + i * c;
      for (int64_t j = 0; j < c; j++) s += (double)wk[j] * xi[j];
      y[i * o + k] = (float)s;
    }
}

static rn_status new4(rn_tensor **out, int64_t n, int64_t c, int64_t h, int64_t w) {
  int64_t shape[4] = {n, c, h, w};
  return rn_tensor_empty(out, 4, shape, RN_F32, rn_cpu());
}

/* ------------------------------------------------------------------ nodes */

static rn_status run_conv(const rn_backbone *bb, const bb_node *nd, rn_tensor *x, rn_tensor *res, rn_tensor **y) {
  const bb_unit *u = &bb->unit[nd->unit];
  rn_tensor *w = bb->param[u->w].t, *b = u->b >= 0 ? bb->param[u->b].t : NULL;
  int64_t oh, ow;
  node_hw(bb, nd, x->shape[2], x->shape[3], &oh, &ow);
  RN_TRY(new4(y, x->shape[0], u->o, oh, ow));
  rn_status st = RN_OK;
  if (x->shape[2] == 1 && x->shape[3] == 1 && u->kh == 1 && u->kw == 1 && nd->groups == 1 && nd->pad == 0) {
    conv_pointwise_vec(rn_f32(*y), rn_f32(x), rn_f32(w), b ? rn_f32(b) : NULL, x->shape[0], x->shape[1], u->o);
  } else {
    rn_conv_params p = rn_conv_params_default();
    p.stride[0] = p.stride[1] = nd->stride;
    p.pad[0] = p.pad[1] = nd->pad;
    p.groups = nd->groups;
    struct bb_packed *pk = bb->packed;
    if (pk && x->storage->device.type == RN_CPU) {
      bool shared = w->refcount > 1 || w->storage->refcount > 1 || w->storage->borrowed;
      if (shared) bb_weights_changed((rn_backbone *)bb); /* what was packed before may be stale by the next call */
      uint64_t stamp = shared ? 0 : __atomic_load_n(&pk->gen, __ATOMIC_RELAXED);
      st = rn_cpu_conv2d_packed(*y, x, w, b, &p, &pk->slot[nd->unit], stamp);
    } else {
      st = rn_kernels_of(x)->conv2d(*y, x, w, b, &p);
    }
  }
  if (st == RN_OK) epilogue(rn_f32(*y), res ? rn_f32(res) : NULL, rn_tensor_numel(*y), nd->act);
  if (st != RN_OK) {
    rn_tensor_release(*y);
    *y = NULL;
  }
  return st;
}

static rn_status run_affine(const rn_backbone *bb, const bb_node *nd, rn_tensor *x, rn_tensor **y) {
  const bb_unit *u = &bb->unit[nd->unit];
  const float *sc = rn_f32(bb->param[u->w].t), *sh = rn_f32(bb->param[u->b].t), *xp = rn_f32(x);
  RN_TRY(rn_tensor_empty_like(y, x));
  float *yp = rn_f32(*y);
  int64_t c = x->shape[1], plane = x->shape[2] * x->shape[3], planes = x->shape[0] * c;
  bb_act a = nd->act;
#pragma omp parallel for schedule(static) if (planes * plane > 32768)
  for (int64_t p = 0; p < planes; p++) {
    float s = sc[p % c], t = sh[p % c];
    const float *xi = xp + p * plane;
    float *yi = yp + p * plane;
    for (int64_t i = 0; i < plane; i++) yi[i] = act_f(a, xi[i] * s + t);
  }
  return RN_OK;
}

static rn_status run_maxpool(const rn_backbone *bb, const bb_node *nd, rn_tensor *x, rn_tensor **y) {
  int64_t h = x->shape[2], w = x->shape[3], oh, ow;
  node_hw(bb, nd, h, w, &oh, &ow);
  RN_TRY(new4(y, x->shape[0], x->shape[1], oh, ow));
  const float *xp = rn_f32(x);
  float *yp = rn_f32(*y);
  int64_t planes = x->shape[0] * x->shape[1];
  int k = nd->k, s = nd->stride, pad = nd->pad;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; p++) {
    const float *xi = xp + p * h * w;
    float *yi = yp + p * oh * ow;
    for (int64_t i = 0; i < oh; i++) {
      int64_t h0 = i * s - pad, h1 = h0 + k;
      if (h0 < 0) h0 = 0;
      if (h1 > h) h1 = h;
      for (int64_t j = 0; j < ow; j++) {
        int64_t w0 = j * s - pad, w1 = w0 + k;
        if (w0 < 0) w0 = 0;
        if (w1 > w) w1 = w;
        float m = -INFINITY;
        for (int64_t a = h0; a < h1; a++)
          for (int64_t b = w0; b < w1; b++) {
            float v = xi[a * w + b];
            if (v > m || v != v) m = v;
          }
        yi[i * ow + j] = m;
      }
    }
  }
  return RN_OK;
}

static rn_status run_gap(rn_tensor *x, rn_tensor **y) {
  RN_TRY(new4(y, x->shape[0], x->shape[1], 1, 1));
  const float *xp = rn_f32(x);
  float *yp = rn_f32(*y);
  int64_t planes = x->shape[0] * x->shape[1], plane = x->shape[2] * x->shape[3];
#pragma omp parallel for schedule(static) if (planes * plane > 32768)
  for (int64_t p = 0; p < planes; p++) {
    double s = 0;
    for (int64_t i = 0; i < plane; i++) s += xp[p * plane + i];
    yp[p] = (float)(s / (double)plane);
  }
  return RN_OK;
}

/* x * gate per channel; in place when x is not needed afterwards. */
static rn_status run_mul(rn_tensor *x, rn_tensor *g, bool in_place, rn_tensor **y) {
  if (in_place) *y = rn_tensor_retain(x);
  else RN_TRY(rn_tensor_empty_like(y, x));
  const float *xp = rn_f32(x), *gp = rn_f32(g);
  float *yp = rn_f32(*y);
  int64_t planes = x->shape[0] * x->shape[1], plane = x->shape[2] * x->shape[3];
#pragma omp parallel for schedule(static) if (planes * plane > 32768)
  for (int64_t p = 0; p < planes; p++)
    for (int64_t i = 0; i < plane; i++) yp[p * plane + i] = xp[p * plane + i] * gp[p];
  return RN_OK;
}

static rn_status run_concat(rn_tensor *a, rn_tensor *b, rn_tensor **y) {
  int64_t n = a->shape[0], ca = a->shape[1], cb = b->shape[1], plane = a->shape[2] * a->shape[3];
  RN_TRY(new4(y, n, ca + cb, a->shape[2], a->shape[3]));
  float *yp = rn_f32(*y);
  for (int64_t i = 0; i < n; i++) {
    memcpy(yp + i * (ca + cb) * plane, rn_f32(a) + i * ca * plane, sizeof(float) * (size_t)(ca * plane));
    memcpy(yp + (i * (ca + cb) + ca) * plane, rn_f32(b) + i * cb * plane, sizeof(float) * (size_t)(cb * plane));
  }
  return RN_OK;
}

/* ------------------------------------------------------------------ forward */

static rn_status check_input(const rn_backbone *bb, rn_tensor *x, int last, int need_red) {
  if (!x) return rn_error(RN_ERR_ARG, "backbone %s: input is NULL", bb->arch);
  char s[64];
  if (x->dtype != RN_F32)
    return rn_error(RN_ERR_SHAPE, "backbone %s: input must be float32, got %s", bb->arch, rn_dtype_name(x->dtype));
  if (x->ndim != 4 || x->shape[1] != 3)
    return rn_error(RN_ERR_SHAPE, "backbone %s: input must be [N,3,H,W] (RGB), got %s", bb->arch, rn_shape_str(x, s, sizeof s));
  if (!rn_device_eq(x->storage->device, bb->device)) {
    char d[32], w[32];
    return rn_error(RN_ERR_DEVICE, "backbone %s: weights live on %s, input is on %s (move one with :to)", bb->arch,
                    rn_device_name(bb->device, w, sizeof w), rn_device_name(x->storage->device, d, sizeof d));
  }
  int64_t h = x->shape[2], w = x->shape[3];
  if (x->shape[0] < 1 || h < 1 || w < 1)
    return rn_error(RN_ERR_SHAPE, "backbone %s: input %s is empty", bb->arch, rn_shape_str(x, s, sizeof s));
  int64_t *sh = malloc(sizeof *sh * (size_t)bb->n_slot * 2);
  if (!sh) return rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  int bad = -1;
  bool ok = fits(bb, last, h, w, sh, sh + bb->n_slot, &bad) && h >= need_red && w >= need_red;
  rn_status st = RN_OK;
  if (!ok) {
    int64_t m = need_red > 1 ? need_red : 1;
    while (m < 100000 && !fits(bb, last, m, m, sh, sh + bb->n_slot, &bad)) m++;
    st = rn_error(RN_ERR_SHAPE, "backbone %s: input %lldx%lld is too small for the requested stages (needs at least %lldx%lld)",
                  bb->arch, (long long)h, (long long)w, (long long)m, (long long)m);
  }
  free(sh);
  return st;
}

rn_status rn_backbone_forward_stages(rn_backbone *bb, rn_tensor *x, int n, const int *stages, rn_tensor **out) {
  if (!bb || !out) return rn_error(RN_ERR_ARG, "backbone forward: %s is NULL", bb ? "out" : "backbone");
  for (int k = 0; k < n; k++) out[k] = NULL;
  if (n < 1 || !stages) return rn_error(RN_ERR_ARG, "backbone %s: no stages requested", bb->arch);
  RN_TRY(bb_ensure_init(bb));
  int last = -1, need_red = 1;
  for (int k = 0; k < n; k++) {
    int s = stages[k];
    if (s < 0 || s >= bb->n_stage)
      return rn_error(RN_ERR_ARG, "backbone %s: stage index %d out of range (0..%d)", bb->arch, s, bb->n_stage - 1);
    if (!bb_stage_ready(bb, s)) {
      const char *miss = "?";
      for (int i = 0; i < bb->n_param; i++)
        if (bb->param[i].stage <= s && !bb->param[i].t) { miss = bb->param[i].name; break; }
      return rn_error(RN_ERR_ARG, "backbone %s: stage %s has no weights (the loaded source lacks e.g. %s); request only stages that were loaded",
                      bb->arch, bb->stage[s].name, miss);
    }
    if (bb->stage[s].node > last) last = bb->stage[s].node;
    if (bb->stage[s].reduction > need_red) need_red = bb->stage[s].reduction;
  }
  RN_TRY(check_input(bb, x, last, need_red));

  rn_tensor **slot = calloc((size_t)bb->n_slot, sizeof *slot);
  bool *keep = calloc((size_t)bb->n_slot, sizeof *keep);
  rn_status st = slot && keep ? RN_OK : rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  for (int k = 0; st == RN_OK && k < n; k++) keep[bb->stage[stages[k]].slot] = true;
  if (st == RN_OK) st = rn_contig_nograd(&slot[0], x);
  rn_nograd_scope ng = rn_nograd_begin();
  bool ops = bb->ops_path || bb->device.type != RN_CPU;
  if (!ops) packed_slots(bb);
  for (int i = 0; st == RN_OK && i <= last; i++) {
    const bb_node *nd = &bb->node[i];
    rn_tensor *a = slot[nd->in], *b = nd->in2 >= 0 ? slot[nd->in2] : NULL, *y = NULL;
    if (ops) { /* off the host: every node through the op layer (bb_device.c) */
      st = bb_run_node_ops(bb, nd, a, b, &y);
    } else switch (nd->op) {
      case OP_CONV: st = run_conv(bb, nd, a, b, &y); break;
      case OP_AFFINE: st = run_affine(bb, nd, a, &y); break;
      case OP_MAXPOOL: st = run_maxpool(bb, nd, a, &y); break;
      case OP_GAP: st = run_gap(a, &y); break;
      case OP_MUL: st = run_mul(a, b, nd->in > 0 && bb->slot_last[nd->in] == i && !keep[nd->in], &y); break;
      case OP_CONCAT: st = run_concat(a, b, &y); break;
      case OP_FLATTEN: st = rn_reshape(&y, a, 2, (int64_t[]){a->shape[0], a->shape[1]}); break;
    }
    slot[nd->out] = y;
    /* release inputs read for the last time (kept outputs stay) */
    int ins[2] = {nd->in, nd->in2};
    for (int j = 0; j < 2; j++)
      if (ins[j] >= 0 && bb->slot_last[ins[j]] == i && !keep[ins[j]] && slot[ins[j]]) {
        rn_tensor_release(slot[ins[j]]);
        slot[ins[j]] = NULL;
      }
  }
  rn_nograd_end(ng);
  for (int k = 0; st == RN_OK && k < n; k++) out[k] = rn_tensor_retain(slot[bb->stage[stages[k]].slot]);
  for (int i = 0; slot && i < bb->n_slot; i++) rn_tensor_release(slot[i]);
  free(slot);
  free(keep);
  return st;
}

rn_status rn_backbone_forward(rn_backbone *bb, rn_tensor *x, rn_tensor **out) {
  if (!bb || !out) return rn_error(RN_ERR_ARG, "backbone forward: %s is NULL", bb ? "out" : "backbone");
  int n = rn_backbone_output_count(bb), st[BB_MAX_STAGES];
  if (n == 0) return rn_error(RN_ERR_ARG, "backbone %s: no stage has weights", bb->arch);
  for (int k = 0; k < n; k++) st[k] = rn_backbone_output_stage(bb, k);
  return rn_backbone_forward_stages(bb, x, n, st, out);
}
