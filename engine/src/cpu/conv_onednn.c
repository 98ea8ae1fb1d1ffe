/* conv_onednn.c - convolution through oneDNN (Debian libdnnl 2.6, C API), primitives cached by shape.
 *
 * Creating a primitive costs milliseconds (jit code generation), so each (kind, sizes, layout, threads)
 * gets one cached entry holding the primitive and the memory objects it runs on; a call only swaps the
 * data pointers in. Two layouts:
 *  - plain: the tensors' own NCHW / OIHW layouts, no copies. oneDNN runs its jit gemm convolution; for
 *    1x1 kernels that is a straight sgemm and the fastest choice.
 *  - blocked: oneDNN picks its layouts (nChw16c ...) and the data is reordered in and out around its
 *    direct kernels; that pays off for spatial kernels where the arithmetic per byte is high.
 * REALNET_ONEDNN_LAYOUT=plain|blocked forces one layout (for measuring). Backward passes use plain layouts.
 * Weights the caller vouches for (a frozen backbone's, rn_cpu_conv2d_packed) keep their blocked copy in a slot
 * the caller owns, so a forward reorders them once instead of on every call (at batch 1 the weight reorders
 * were about a sixth of a ResNet-50's time).
 * oneDNN's OpenMP runtime is the same pool as ours; the thread count is part of the key because a
 * primitive must run with the thread count it was created for.
 */
#include <dnnl.h>
#include <omp.h>

#include "conv_impl.h"

typedef enum { KIND_FWD, KIND_BWD_DATA, KIND_BWD_WEIGHTS } prim_kind;

typedef struct {
  int kind, blocked, bias, threads;
  rn_conv_geom g;
} prim_key;

typedef struct {
  prim_key key;
  bool used;
  uint64_t stamp;
  dnnl_primitive_t prim;
  dnnl_memory_t mem[4];          /* the primitive's operands: src, weights, dst, bias (by role below) */
  int arg[4];                    /* DNNL_ARG_* of each operand */
  int n_mem;
  /* blocked layout: user memories and reorders (NULL when a layout already matches) */
  dnnl_memory_t user[3];         /* src, weights, dst in plain layout */
  dnnl_primitive_t reorder[3];   /* src, weights: user -> blocked; dst: blocked -> user */
  size_t bytes[3];               /* blocked buffer sizes */
} prim_entry;

#define CACHE_SIZE 64
static prim_entry cache[CACHE_SIZE];
static uint64_t cache_clock;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static bool engine_failed;

static void entry_free(prim_entry *e) {
  if (!e->used) return;
  dnnl_primitive_destroy(e->prim);
  for (int i = 0; i < e->n_mem; i++) dnnl_memory_destroy(e->mem[i]);
  for (int i = 0; i < 3; i++) {
    dnnl_memory_destroy(e->user[i]);
    dnnl_primitive_destroy(e->reorder[i]);
  }
  memset(e, 0, sizeof *e);
}

static void onednn_shutdown(void) {
  for (int i = 0; i < CACHE_SIZE; i++) entry_free(&cache[i]);
  if (stream) dnnl_stream_destroy(stream);
  if (engine) dnnl_engine_destroy(engine);
  stream = NULL;
  engine = NULL;
}

static bool engine_ready(void) {
  if (engine) return true;
  if (engine_failed) return false;
  if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
      dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
    engine_failed = true;
    return false;
  }
  atexit(onednn_shutdown);
  return true;
}

/* Spatial kernels go through the blocked layout unless told otherwise; see the header comment. */
static bool want_blocked(const rn_conv_geom *g) {
  const char *s = getenv("REALNET_ONEDNN_LAYOUT");
  if (s && strcmp(s, "plain") == 0) return false;
  if (s && strcmp(s, "blocked") == 0) return true;
  return g->kh * g->kw > 1 && g->g == 1;
}

/* ------------------------------------------------------------------ descriptors */

typedef struct {
  dnnl_memory_desc_t src, wei, dst, bias;
  dnnl_dims_t strides, dilates, pad_l, pad_r;
} conv_descs;

#define OK(expr) ((expr) == dnnl_success)

static bool make_descs(const rn_conv_geom *g, bool any, conv_descs *d) {
  dnnl_dims_t sdims = {g->n, g->c, g->h, g->w}, ddims = {g->n, g->o, g->oh, g->ow};
  dnnl_dims_t wdims = {g->g, g->o / g->g, g->c / g->g, g->kh, g->kw}, bdims = {g->o};
  dnnl_format_tag_t act = any ? dnnl_format_tag_any : dnnl_nchw;
  dnnl_format_tag_t wt = any ? dnnl_format_tag_any : (g->g > 1 ? dnnl_goihw : dnnl_oihw);
  bool ok = OK(dnnl_memory_desc_init_by_tag(&d->src, 4, sdims, dnnl_f32, act)) &&
            OK(dnnl_memory_desc_init_by_tag(&d->dst, 4, ddims, dnnl_f32, act)) &&
            OK(dnnl_memory_desc_init_by_tag(&d->wei, g->g > 1 ? 5 : 4, g->g > 1 ? wdims : wdims + 1, dnnl_f32, wt)) &&
            OK(dnnl_memory_desc_init_by_tag(&d->bias, 1, bdims, dnnl_f32, dnnl_x));
  /* oneDNN counts dilation from 0 and wants the right/bottom padding that makes the sizes consistent; it is
   * negative when the last rows/columns are not reached (PyTorch's floor), which oneDNN mostly accepts */
  d->strides[0] = g->sh; d->strides[1] = g->sw;
  d->dilates[0] = g->dh - 1; d->dilates[1] = g->dw - 1;
  d->pad_l[0] = g->ph; d->pad_l[1] = g->pw;
  d->pad_r[0] = (g->oh - 1) * g->sh + (g->kh - 1) * g->dh + 1 - g->h - g->ph;
  d->pad_r[1] = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1 - g->w - g->pw;
  return ok;
}

static bool fwd_desc(const conv_descs *d, dnnl_prop_kind_t prop, bool bias, dnnl_convolution_desc_t *cd) {
  return OK(dnnl_dilated_convolution_forward_desc_init(cd, prop, dnnl_convolution_direct, &d->src, &d->wei,
                                                       bias ? &d->bias : NULL, &d->dst, d->strides, d->dilates,
                                                       d->pad_l, d->pad_r));
}

/* A memory object for the layout the primitive chose for `what`; with `want` (plain) set, that layout must
 * be exactly `want`, else the entry is unusable. */
static bool bind_at(prim_entry *e, const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index, int arg,
                    const dnnl_memory_desc_t *want) {
  const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, index);
  if (!md || (want && !dnnl_memory_desc_equal(md, want))) return false;
  int i = e->n_mem;
  if (!OK(dnnl_memory_create(&e->mem[i], md, engine, DNNL_MEMORY_NONE))) return false;
  e->arg[i] = arg;
  e->n_mem++;
  return true;
}

static bool bind(prim_entry *e, const_dnnl_primitive_desc_t pd, dnnl_query_t what, int arg,
                 const dnnl_memory_desc_t *want) {
  return bind_at(e, pd, what, 0, arg, want);
}

/* Blocked operand k (0 src, 1 weights, 2 dst): a user memory plus a reorder when the layouts differ. */
static bool bind_reorder(prim_entry *e, int k, const dnnl_memory_desc_t *user_md) {
  const dnnl_memory_desc_t *md = NULL;
  if (!OK(dnnl_memory_get_memory_desc(e->mem[k], &md))) return false;
  e->bytes[k] = dnnl_memory_desc_get_size(md);
  if (dnnl_memory_desc_equal(md, user_md)) return true;
  dnnl_primitive_desc_t rpd = NULL;
  bool ok = OK(k == 2 ? dnnl_reorder_primitive_desc_create(&rpd, md, engine, user_md, engine, NULL)
                      : dnnl_reorder_primitive_desc_create(&rpd, user_md, engine, md, engine, NULL)) &&
            OK(dnnl_primitive_create(&e->reorder[k], rpd)) &&
            OK(dnnl_memory_create(&e->user[k], user_md, engine, DNNL_MEMORY_NONE));
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  return ok;
}

static bool build(prim_entry *e) {
  const rn_conv_geom *g = &e->key.g;
  conv_descs plain, want;
  if (!make_descs(g, false, &plain) || !make_descs(g, e->key.blocked, &want)) return false;
  dnnl_convolution_desc_t cd;
  dnnl_primitive_desc_t pd = NULL, hint = NULL;
  bool ok = false;
  const dnnl_memory_desc_t *chk_src = e->key.blocked ? NULL : &plain.src;
  const dnnl_memory_desc_t *chk_wei = e->key.blocked ? NULL : &plain.wei;
  const dnnl_memory_desc_t *chk_dst = e->key.blocked ? NULL : &plain.dst;
  switch (e->key.kind) {
    case KIND_FWD:
      ok = fwd_desc(&want, dnnl_forward_inference, e->key.bias, &cd) &&
           OK(dnnl_primitive_desc_create(&pd, &cd, NULL, engine, NULL)) &&
           bind(e, pd, dnnl_query_src_md, DNNL_ARG_SRC, chk_src) &&
           bind(e, pd, dnnl_query_weights_md, DNNL_ARG_WEIGHTS, chk_wei) &&
           bind(e, pd, dnnl_query_dst_md, DNNL_ARG_DST, chk_dst) &&
           (!e->key.bias || bind_at(e, pd, dnnl_query_weights_md, 1, DNNL_ARG_BIAS, &plain.bias));
      if (ok && e->key.blocked)
        ok = bind_reorder(e, 0, &plain.src) && bind_reorder(e, 1, &plain.wei) && bind_reorder(e, 2, &plain.dst);
      break;
    case KIND_BWD_DATA:
      ok = fwd_desc(&plain, dnnl_forward_training, false, &cd) &&
           OK(dnnl_primitive_desc_create(&hint, &cd, NULL, engine, NULL)) &&
           OK(dnnl_dilated_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &plain.src, &plain.wei,
                                                               &plain.dst, plain.strides, plain.dilates,
                                                               plain.pad_l, plain.pad_r)) &&
           OK(dnnl_primitive_desc_create(&pd, &cd, NULL, engine, hint)) &&
           bind(e, pd, dnnl_query_diff_src_md, DNNL_ARG_DIFF_SRC, &plain.src) &&
           bind(e, pd, dnnl_query_weights_md, DNNL_ARG_WEIGHTS, &plain.wei) &&
           bind(e, pd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, &plain.dst);
      break;
    case KIND_BWD_WEIGHTS:
      ok = fwd_desc(&plain, dnnl_forward_training, false, &cd) &&
           OK(dnnl_primitive_desc_create(&hint, &cd, NULL, engine, NULL)) &&
           OK(dnnl_dilated_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &plain.src,
                                                                  &plain.wei, NULL, &plain.dst, plain.strides,
                                                                  plain.dilates, plain.pad_l, plain.pad_r)) &&
           OK(dnnl_primitive_desc_create(&pd, &cd, NULL, engine, hint)) &&
           bind(e, pd, dnnl_query_src_md, DNNL_ARG_SRC, &plain.src) &&
           bind(e, pd, dnnl_query_diff_weights_md, DNNL_ARG_DIFF_WEIGHTS, &plain.wei) &&
           bind(e, pd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, &plain.dst);
      break;
  }
  /* oneDNN's reference loops are far slower than im2col: treat them as "no primitive" */
  const char *impl = NULL;
  if (ok) ok = OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl)) && impl &&
               strncmp(impl, "ref", 3) != 0;
  if (ok) ok = OK(dnnl_primitive_create(&e->prim, pd));
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (hint) dnnl_primitive_desc_destroy(hint);
  return ok;
}

static bool key_eq(const prim_key *a, const prim_key *b) {
  const rn_conv_geom *x = &a->g, *y = &b->g;
  return a->kind == b->kind && a->blocked == b->blocked && a->bias == b->bias && a->threads == b->threads &&
         x->n == y->n && x->c == y->c && x->h == y->h && x->w == y->w && x->o == y->o && x->kh == y->kh &&
         x->kw == y->kw && x->oh == y->oh && x->ow == y->ow && x->sh == y->sh && x->sw == y->sw && x->ph == y->ph &&
         x->pw == y->pw && x->dh == y->dh && x->dw == y->dw && x->g == y->g;
}

/* The cached entry for key, built on a miss (evicting the least recently used); NULL when oneDNN has no
 * primitive for it. Misses that fail are not cached: they are rare and fall back to im2col anyway. */
static prim_entry *lookup(const prim_key *key) {
  if (!engine_ready()) return NULL;
  prim_entry *victim = &cache[0];
  for (int i = 0; i < CACHE_SIZE; i++) {
    prim_entry *e = &cache[i];
    if (e->used && key_eq(&e->key, key)) { e->stamp = ++cache_clock; return e; }
    if (!e->used || (victim->used && e->stamp < victim->stamp)) victim = e;
  }
  entry_free(victim);
  victim->key = *key;
  victim->used = true;
  victim->stamp = ++cache_clock;
  if (!build(victim)) { entry_free(victim); return NULL; }
  return victim;
}

static prim_key make_key(const rn_conv_geom *g, prim_kind kind, bool blocked, bool bias) {
  prim_key k;
  k.kind = kind;
  k.blocked = blocked;
  k.bias = bias;
  k.threads = omp_get_max_threads();
  k.g = *g;
  return k;
}

static bool set(dnnl_memory_t m, const void *p) { return !m || OK(dnnl_memory_set_data_handle(m, (void *)p)); }

static rn_status run(prim_entry *e, const void *const *ptr) {
  dnnl_exec_arg_t args[4];
  for (int i = 0; i < e->n_mem; i++) {
    if (!set(e->mem[i], ptr[i])) return RN_ERR_UNSUPPORTED;
    args[i].arg = e->arg[i];
    args[i].memory = e->mem[i];
  }
  if (!OK(dnnl_primitive_execute(e->prim, stream, e->n_mem, args)) || !OK(dnnl_stream_wait(stream)))
    return RN_ERR_UNSUPPORTED;
  return RN_OK;
}

/* Executes reorder k between the user pointer and the blocked buffer. */
static bool reorder(prim_entry *e, int k, const void *user, void *blocked) {
  dnnl_memory_t from = k == 2 ? e->mem[k] : e->user[k], to = k == 2 ? e->user[k] : e->mem[k];
  if (!set(e->user[k], user) || !set(e->mem[k], blocked)) return false;
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  return OK(dnnl_primitive_execute(e->reorder[k], stream, 2, args));
}

/* Blocked weights kept for the caller: valid for `stamp` and the layout `md` of the primitive they were made for. */
struct rn_conv_packed {
  uint64_t stamp;
  dnnl_memory_desc_t md;
  void *data;
  size_t bytes;
};

void rn_conv_packed_free(rn_conv_packed *p) {
  if (!p) return;
  free(p->data);
  free(p);
}

/* The blocked weights of entry e from the slot: reused when packed for this stamp and layout, else reordered into
 * it. RN_ERR_UNSUPPORTED (no message) when oneDNN fails, as the other calls here. */
static rn_status packed_weights(prim_entry *e, const float *w, rn_conv_packed **slot, uint64_t stamp, void **out) {
  const dnnl_memory_desc_t *md = NULL;
  if (!OK(dnnl_memory_get_memory_desc(e->mem[1], &md))) return RN_ERR_UNSUPPORTED;
  rn_conv_packed *p = *slot;
  if (p && p->data && p->stamp == stamp && dnnl_memory_desc_equal(&p->md, md)) {
    *out = p->data;
    return RN_OK;
  }
  if (!p && !(p = *slot = calloc(1, sizeof *p)))
    return rn_error(RN_ERR_OOM, "conv2d: out of memory for packed weights");
  p->stamp = 0; /* invalid until the reorder has run */
  if (p->bytes != e->bytes[1]) {
    free(p->data);
    p->data = aligned_alloc(64, (e->bytes[1] + 63) & ~(size_t)63);
    p->bytes = p->data ? e->bytes[1] : 0;
    if (!p->data) return rn_error(RN_ERR_OOM, "conv2d: out of memory for packed weights");
  }
  if (!reorder(e, 1, w, p->data) || !OK(dnnl_stream_wait(stream))) return RN_ERR_UNSUPPORTED;
  p->stamp = stamp;
  p->md = *md;
  *out = p->data;
  return RN_OK;
}

rn_status rn_conv_onednn_forward(const rn_conv_geom *g, float *y, const float *x, const float *w, const float *bias,
                                 rn_conv_packed **slot, uint64_t stamp) {
  prim_key key = make_key(g, KIND_FWD, want_blocked(g), bias != NULL);
  prim_entry *e = lookup(&key);
  if (!e) return RN_ERR_UNSUPPORTED;
  const void *ptr[4] = {x, w, y, bias};
  if (!key.blocked) return run(e, ptr);
  /* blocked: stage operands whose layout differs in reusable scratch buffers (weights: in the slot if given) */
  bool keep_w = slot && stamp && e->reorder[1];
  void *buf[3];
  for (int k = 0; k < 3; k++) {
    buf[k] = e->reorder[k] && !(k == 1 && keep_w) ? rn_cpu_scratch(2 + k, e->bytes[k]) : NULL;
    if (e->reorder[k] && !(k == 1 && keep_w) && !buf[k])
      return rn_error(RN_ERR_OOM, "conv2d: out of memory for oneDNN buffers");
  }
  if (keep_w) {
    void *pw = NULL;
    RN_TRY(packed_weights(e, w, slot, stamp, &pw));
    ptr[1] = pw;
  }
  for (int k = 0; k < 2; k++)
    if (e->reorder[k] && !(k == 1 && keep_w)) {
      if (!reorder(e, k, ptr[k], buf[k])) return RN_ERR_UNSUPPORTED;
      ptr[k] = buf[k];
    }
  if (e->reorder[2]) ptr[2] = buf[2];
  RN_TRY(run(e, ptr));
  if (e->reorder[2] && (!reorder(e, 2, y, buf[2]) || !OK(dnnl_stream_wait(stream)))) return RN_ERR_UNSUPPORTED;
  return RN_OK;
}

rn_status rn_conv_onednn_backward_data(const rn_conv_geom *g, float *gx, const float *gy, const float *w) {
  prim_key key = make_key(g, KIND_BWD_DATA, false, false);
  prim_entry *e = lookup(&key);
  if (!e) return RN_ERR_UNSUPPORTED;
  const void *ptr[3] = {gx, w, gy};
  return run(e, ptr);
}

rn_status rn_conv_onednn_backward_weight(const rn_conv_geom *g, float *gw, const float *gy, const float *x) {
  prim_key key = make_key(g, KIND_BWD_WEIGHTS, false, false);
  prim_entry *e = lookup(&key);
  if (!e) return RN_ERR_UNSUPPORTED;
  const void *ptr[3] = {x, gw, gy};
  return run(e, ptr);
}
