/* bind_synth.c - core.synth_core: Perlin and foreground masks, anomaly sources and conversions
 * (engine/include/realnet/synth.h). lua/realnet/synth.lua builds rn.synth on top of it.
 *
 *   local sc = require("realnet.core").synth_core
 *   local s = sc.new({source = "cutpaste", seed = 7, foreground = {method = "otsu", channel = -1, dark = true,
 *                     close = 6, open = 6}}, {})
 *   local A, M, fallbacks = s:apply(images_u8, nil, 0)    -- uint8 [N,H,W,3], uint8 [N,H,W]
 *
 * Images are uint8 [H,W,3] (batches [N,H,W,3]); masks uint8 [H,W] holding 0/1. Sample indices and
 * channels are 0-based here (the C values); rn.synth hides them.
 */
#include <math.h>
#include <string.h>

#include "bind_internal.h"
#include "realnet/synth.h"

#define RN_SYNTH_MT "realnet.Synth"

typedef struct { rn_synth *s; } synth_box;

static rn_synth *check_synth(lua_State *L, int arg) {
  synth_box *b = (synth_box *)luaL_checkudata(L, arg, RN_SYNTH_MT);
  if (!b->s) luaL_argerror(L, arg, "synthesiser has been freed");
  return b->s;
}

/* opts[key] as a pair of finite numbers {lo, hi}; returns 0 when absent. */
static int num_pair(lua_State *L, int arg, const char *key, double v[2]) {
  if (lua_isnoneornil(L, arg) || lua_getfield(L, arg, key) == LUA_TNIL) {
    if (!lua_isnoneornil(L, arg)) lua_pop(L, 1);
    return 0;
  }
  int ok = lua_type(L, -1) == LUA_TTABLE && luaL_len(L, -1) == 2;
  for (int k = 0; ok && k < 2; k++) {
    lua_geti(L, -1, k + 1);
    int isnum = 0;
    v[k] = lua_tonumberx(L, -1, &isnum);
    ok = isnum && isfinite(v[k]);
    lua_pop(L, 1);
  }
  if (!ok) luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s must be a pair of finite numbers {lo, hi}", key));
  lua_pop(L, 1);
  return 1;
}

/* A foreground rule table {method = "none"|"otsu"|"triangle", channel = -1..2, dark, close, open} at arg. */
static rn_fg_rule check_rule(lua_State *L, int arg) {
  static const char *const methods[] = {"none", "otsu", "triangle", NULL};
  rn_fg_rule r = {RN_FG_NONE, -1, 0, 0, 0};
  if (lua_isnoneornil(L, arg)) return r;
  luaL_checktype(L, arg, LUA_TTABLE);
  const char *m = rn_lua_opt_str(L, arg, "method", "none");
  int k = 0;
  while (methods[k] && strcmp(methods[k], m) != 0) k++;
  if (!methods[k]) luaL_argerror(L, arg, lua_pushfstring(L, "foreground method must be none, otsu or triangle, not '%s'", m));
  r.method = (rn_fg_method)k;
  r.channel = (int)rn_lua_opt_int(L, arg, "channel", -1);
  r.dark = rn_lua_opt_bool(L, arg, "dark", 0);
  r.close = (int)rn_lua_opt_int(L, arg, "close", 0);
  r.open = (int)rn_lua_opt_int(L, arg, "open", 0);
  return r;
}

static void perlin_opts(lua_State *L, int arg, rn_perlin_opts *p) {
  if (lua_isnoneornil(L, arg)) return;
  p->min_scale = (int)rn_lua_opt_int(L, arg, "min_scale", p->min_scale);
  p->max_scale = (int)rn_lua_opt_int(L, arg, "max_scale", p->max_scale);
  p->threshold = rn_lua_opt_num(L, arg, "threshold", p->threshold);
  double rot[2];
  if (num_pair(L, arg, "rotation", rot)) { p->rot_lo = rot[0]; p->rot_hi = rot[1]; }
}

/* new(opts, files) -> Synth */
static int s_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  rn_synth_source src;
  rn_lua_check(L, rn_synth_source_parse(rn_lua_opt_str(L, 1, "source", "dtd"), &src), "synth");
  rn_synth_opts o = rn_synth_opts_default(src);
  lua_Integer seed = rn_lua_opt_int(L, 1, "seed", 0);
  if (seed < 0) luaL_argerror(L, 1, "opts.seed must be >= 0");
  o.seed = (uint64_t)seed;
  num_pair(L, 1, "opacity", o.opacity);
  num_pair(L, 1, "area", o.area);
  o.aspect = rn_lua_opt_num(L, 1, "aspect", o.aspect);
  o.retries = (int)rn_lua_opt_int(L, 1, "retries", o.retries);
  o.augmenters = (int)rn_lua_opt_int(L, 1, "augmenters", o.augmenters);
  o.poisson_iters = (int)rn_lua_opt_int(L, 1, "poisson_iters", o.poisson_iters);
  o.poisson_tol = rn_lua_opt_num(L, 1, "poisson_tol", o.poisson_tol);
  if (lua_getfield(L, 1, "perlin") != LUA_TNIL) { luaL_checktype(L, -1, LUA_TTABLE); perlin_opts(L, lua_gettop(L), &o.perlin); }
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "foreground") != LUA_TNIL) o.fg = check_rule(L, lua_gettop(L));
  lua_pop(L, 1);
  int n = (int)luaL_len(L, 2);
  const char **files = (const char **)lua_newuserdatauv(L, sizeof(char *) * (size_t)(n > 0 ? n : 1), 0);
  for (int k = 0; k < n; k++) {
    lua_geti(L, 2, k + 1);
    files[k] = lua_tostring(L, -1);
    if (!files[k]) luaL_argerror(L, 2, "files must be strings");
    lua_pop(L, 1); /* the string stays alive in the table */
  }
  synth_box *b = (synth_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->s = NULL;
  luaL_setmetatable(L, RN_SYNTH_MT);
  rn_lua_check(L, rn_synth_new(&b->s, &o, n, files), "synth");
  return 1;
}

static int s_release(lua_State *L) {
  synth_box *b = (synth_box *)luaL_checkudata(L, 1, RN_SYNTH_MT);
  rn_synth_release(b->s);
  b->s = NULL;
  return 0;
}

static int s_tostring(lua_State *L) {
  synth_box *b = (synth_box *)luaL_checkudata(L, 1, RN_SYNTH_MT);
  if (!b->s) { lua_pushliteral(L, "synth (freed)"); return 1; }
  const rn_synth_opts *o = rn_synth_get_opts(b->s);
  lua_pushfstring(L, "synth(%s, seed %I, opacity %f..%f)", rn_synth_source_name(o->source), (lua_Integer)o->seed,
                  o->opacity[0], o->opacity[1]);
  return 1;
}

static uint64_t check_index(lua_State *L, int arg) {
  lua_Integer i = luaL_optinteger(L, arg, 0);
  if (i < 0) luaL_argerror(L, arg, "sample index must be >= 0");
  return (uint64_t)i;
}

/* s:apply(images [N,H,W,3], others | nil, first) -> A, M, fallbacks */
static int s_apply(lua_State *L) {
  rn_synth *s = check_synth(L, 1);
  rn_tensor *imgs = rn_lua_check_tensor(L, 2), *others = rn_lua_opt_tensor(L, 3);
  uint64_t first = check_index(L, 4);
  rn_tensor **a = rn_lua_new_box(L), **m = rn_lua_new_box(L);
  int fb = 0;
  rn_lua_check(L, rn_synth_batch(s, first, imgs, others, a, m, &fb), "synth");
  lua_pushinteger(L, fb);
  rn_lua_gc_nudge(L);
  return 3;
}

/* s:sample(image [H,W,3], other | nil, index) -> A, M, {draws, fallback, delta, file} */
static int s_sample(lua_State *L) {
  rn_synth *s = check_synth(L, 1);
  rn_tensor *img = rn_lua_check_tensor(L, 2), *other = rn_lua_opt_tensor(L, 3);
  uint64_t index = check_index(L, 4);
  rn_tensor **a = rn_lua_new_box(L), **m = rn_lua_new_box(L);
  rn_synth_info info;
  rn_lua_check(L, rn_synth_sample(s, index, img, other, a, m, &info), "synth");
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, info.draws);
  lua_setfield(L, -2, "draws");
  lua_pushboolean(L, info.fallback);
  lua_setfield(L, -2, "fallback");
  lua_pushnumber(L, info.delta);
  lua_setfield(L, -2, "delta");
  lua_pushinteger(L, info.file + 1); /* 1-based into the file list; 0: none */
  lua_setfield(L, -2, "file");
  return 3;
}

/* perlin_mask(h, w [, opts{seed, stream, generator, min_scale, max_scale, threshold, rotation}]) -> mask, info */
static int f_perlin_mask(lua_State *L) {
  lua_Integer h = luaL_checkinteger(L, 1), w = luaL_checkinteger(L, 2);
  rn_rng scratch;
  rn_rng *g = rn_lua_opt_rng(L, 3, &scratch);
  rn_perlin_opts o = rn_perlin_opts_default();
  perlin_opts(L, 3, &o);
  rn_tensor **box = rn_lua_new_box(L);
  rn_perlin_info info;
  rn_lua_check(L, rn_perlin_mask(box, g, h, w, &o, &info), "perlin_mask");
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, info.rx);
  lua_setfield(L, -2, "rx");
  lua_pushinteger(L, info.ry);
  lua_setfield(L, -2, "ry");
  lua_pushnumber(L, info.degrees);
  lua_setfield(L, -2, "degrees");
  return 2;
}

static int f_perlin_noise(lua_State *L) { /* perlin_noise(h, w, angles [rx+1, ry+1]) */
  lua_Integer h = luaL_checkinteger(L, 1), w = luaL_checkinteger(L, 2);
  rn_tensor *ang = rn_lua_check_tensor(L, 3);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_perlin_noise(box, h, w, ang), "perlin_noise");
  return 1;
}

static int f_foreground_mask(lua_State *L) { /* foreground_mask(image, rule) */
  rn_tensor *img = rn_lua_check_tensor(L, 1);
  rn_fg_rule r = check_rule(L, 2);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_foreground_mask(box, img, &r), "foreground_mask");
  return 1;
}

static int f_threshold(lua_State *L) { /* threshold(plane, "otsu"|"triangle") -> T (bright = v > T) */
  static const char *const kinds[] = {"otsu", "triangle", NULL};
  rn_tensor *p = rn_lua_check_tensor(L, 1);
  int k = luaL_checkoption(L, 2, "otsu", kinds), t = 0;
  rn_lua_check(L, k == 0 ? rn_threshold_otsu(p, &t) : rn_threshold_triangle(p, &t), "threshold");
  lua_pushinteger(L, t);
  return 1;
}

static int f_morph(lua_State *L) { /* morph(mask, "dilate"|"erode"|"close"|"open", n) */
  static const char *const ops[] = {"dilate", "erode", "close", "open", NULL};
  rn_tensor *m = rn_lua_check_tensor(L, 1);
  int op = luaL_checkoption(L, 2, NULL, ops);
  lua_Integer n = luaL_checkinteger(L, 3);
  if (n < 1 || n > 255) luaL_argerror(L, 3, "footprint size must be in 1..255");
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_morph(box, m, (rn_morph_op)op, (int)n), "morph");
  return 1;
}

static int f_blend(lua_State *L) { /* blend(img, src, mask, delta) */
  rn_tensor *img = rn_lua_check_tensor(L, 1), *src = rn_lua_check_tensor(L, 2), *m = rn_lua_check_tensor(L, 3);
  double d = rn_lua_check_finite(L, 4);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_synth_blend(box, img, src, m, d), "blend");
  return 1;
}

static int f_poisson(lua_State *L) { /* poisson_blend(dst, src, mask [, iters, tol]) */
  rn_tensor *dst = rn_lua_check_tensor(L, 1), *src = rn_lua_check_tensor(L, 2), *m = rn_lua_check_tensor(L, 3);
  lua_Integer it = luaL_optinteger(L, 4, 2000);
  double tol = luaL_optnumber(L, 5, 1e-5);
  if (it < 0 || it > 1000000) luaL_argerror(L, 4, "iterations must be in 0..1000000");
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_poisson_blend(box, dst, src, m, (int)it, tol), "poisson_blend");
  return 1;
}

static int f_augment(lua_State *L) { /* augment(img, k (0..9) [, opts{seed|generator}]) -> img (in place) */
  rn_tensor *img = rn_lua_check_tensor(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  if (k < 0 || k >= RN_SYNTH_AUGMENTERS) luaL_argerror(L, 2, "augmenter index must be in 0..9");
  rn_rng scratch;
  rn_rng *g = rn_lua_opt_rng(L, 3, &scratch);
  rn_lua_check(L, rn_synth_augment_(img, (int)k, g), "augment");
  lua_settop(L, 1);
  return 1;
}

static int f_rotate(lua_State *L) {
  rn_tensor *img = rn_lua_check_tensor(L, 1);
  double deg = rn_lua_check_finite(L, 2);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_synth_rotate(box, img, deg), "rotate");
  return 1;
}

static int f_resize(lua_State *L) {
  rn_tensor *img = rn_lua_check_tensor(L, 1);
  lua_Integer h = luaL_checkinteger(L, 2), w = luaL_checkinteger(L, 3);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_synth_resize(box, img, h, w), "resize");
  return 1;
}

static rn_synth_norm check_norm(lua_State *L, int arg) {
  static const char *const norms[] = {"unit", "imagenet", "raw", NULL};
  return (rn_synth_norm)luaL_checkoption(L, arg, "unit", norms);
}

static int f_to_chw(lua_State *L) { /* to_chw(u8 [N,H,W,C], "unit"|"imagenet"|"raw") -> float32 [N,C,H,W] */
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  rn_synth_norm n = check_norm(L, 2);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_synth_to_chw(box, x, n), "to_chw");
  return 1;
}

static int f_from_chw(lua_State *L) { /* from_chw(float32 [N,3,H,W], "unit"|"imagenet") -> uint8 [N,H,W,3] */
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  rn_synth_norm n = check_norm(L, 2);
  if (n == RN_SYNTH_RAW) luaL_argerror(L, 2, "images come back from unit or imagenet values");
  rn_tensor *c = rn_lua_cpu_view(L, x);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_synth_from_chw(box, c, n), "from_chw");
  return 1;
}

static int f_grid(lua_State *L) { /* grid(A, M, I [, gap]) -> uint8 [G,W',3] */
  rn_tensor *a = rn_lua_check_tensor(L, 1), *m = rn_lua_check_tensor(L, 2), *i = rn_lua_check_tensor(L, 3);
  lua_Integer gap = luaL_optinteger(L, 4, 4);
  if (gap < 0 || gap > 1000) luaL_argerror(L, 4, "gap must be in 0..1000");
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_synth_grid(box, a, m, i, (int)gap), "grid");
  return 1;
}

/* One image of a dataset item as uint8 [H,W,3] into dst (h*w*3 bytes): float32 [3,H,W] / [1,H,W] in the
 * given normalisation, or uint8 [H,W,3] / [H,W,1] / [H,W]. Sets *h, *w; returns an error text or NULL. */
static const char *item_to_u8(lua_State *L, rn_tensor *t, rn_synth_norm norm, int64_t *h, int64_t *w, rn_tensor **out) {
  rn_tensor *x = rn_lua_cpu_view(L, t), *c = NULL;
  *out = NULL;
  if (x->dtype == RN_F32 && x->ndim == 3 && (x->shape[0] == 3 || x->shape[0] == 1)) {
    rn_tensor *e = NULL;
    int64_t shape[3] = {3, x->shape[1], x->shape[2]};
    if (x->shape[0] == 1 && rn_expand(&e, x, 3, shape) != RN_OK) return rn_last_error();
    rn_status st = rn_synth_from_chw(&c, e ? e : x, norm == RN_SYNTH_RAW ? RN_SYNTH_UNIT : norm);
    rn_tensor_release(e);
    if (st != RN_OK) return rn_last_error();
    *h = x->shape[1];
    *w = x->shape[2];
    *out = c; /* [1,H,W,3] */
    return NULL;
  }
  if (x->dtype == RN_U8 && (x->ndim == 2 || (x->ndim == 3 && (x->shape[2] == 1 || x->shape[2] == 3)))) {
    rn_tensor *cc = NULL;
    if (rn_clone(&cc, x) != RN_OK) return rn_last_error();
    int64_t hh = x->shape[0], ww = x->shape[1], ch = x->ndim == 3 ? x->shape[2] : 1, shape[4] = {1, hh, ww, 3};
    if (rn_tensor_empty(&c, 4, shape, RN_U8, rn_cpu()) != RN_OK) { rn_tensor_release(cc); return rn_last_error(); }
    const uint8_t *p = rn_tensor_data(cc);
    uint8_t *q = rn_tensor_data(c);
    for (int64_t k = 0; k < hh * ww; k++)
      for (int j = 0; j < 3; j++) q[k * 3 + j] = p[k * ch + (ch == 3 ? j : 0)];
    rn_tensor_release(cc);
    *h = hh;
    *w = ww;
    *out = c;
    return NULL;
  }
  return "an item image must be float32 [3,H,W] / [1,H,W] or uint8 [H,W,3] / [H,W,1] / [H,W]";
}

/* stack({images...}, norm) -> uint8 [N,H,W,3]; every image must have the first one's size */
static int f_stack(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  rn_synth_norm norm = check_norm(L, 2);
  lua_Integer n = luaL_len(L, 1);
  if (n < 1) luaL_argerror(L, 1, "no images to stack");
  rn_tensor **box = rn_lua_new_box(L);
  int64_t h0 = 0, w0 = 0;
  uint8_t *dst = NULL;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    rn_tensor *t = rn_lua_check_tensor(L, -1);
    int64_t h = 0, w = 0;
    rn_tensor *one = NULL;
    const char *err = item_to_u8(L, t, norm, &h, &w, &one);
    if (err) luaL_error(L, "synth: image %d: %s", (int)i, err);
    if (i == 1) {
      int64_t shape[4] = {n, h, w, 3};
      h0 = h;
      w0 = w;
      rn_status st = rn_tensor_empty(box, 4, shape, RN_U8, rn_cpu());
      if (st != RN_OK) { rn_tensor_release(one); rn_lua_check(L, st, "synth stack"); }
      dst = rn_tensor_data(*box);
    } else if (h != h0 || w != w0) {
      rn_tensor_release(one);
      luaL_error(L, "synth: image %d is %dx%d but image 1 is %dx%d; open the dataset with a fixed size", (int)i, (int)h,
                 (int)w, (int)h0, (int)w0);
    }
    memcpy(dst + (size_t)(i - 1) * (size_t)(h0 * w0 * 3), rn_tensor_data(one), (size_t)(h0 * w0 * 3));
    rn_tensor_release(one);
    lua_settop(L, 3); /* drop the item and any CPU copies */
  }
  return 1;
}

/* mask_u8(M float32 [N,1,H,W] (>= 0.5) or uint8 [N,H,W]) -> uint8 [N,H,W] {0,1} */
static int f_mask_u8(lua_State *L) {
  rn_tensor *m = rn_lua_cpu_view(L, rn_lua_check_tensor(L, 1));
  rn_tensor **box = rn_lua_new_box(L);
  if (m->dtype == RN_U8 && m->ndim == 3) { rn_lua_check(L, rn_clone(box, m), "mask_u8"); return 1; }
  if (m->dtype != RN_F32 || m->ndim != 4 || m->shape[1] != 1)
    luaL_argerror(L, 1, "mask must be float32 [N,1,H,W] or uint8 [N,H,W]");
  rn_tensor *c = NULL;
  rn_lua_check(L, rn_clone(&c, m), "mask_u8");
  int64_t shape[3] = {m->shape[0], m->shape[2], m->shape[3]};
  rn_status st = rn_tensor_empty(box, 3, shape, RN_U8, rn_cpu());
  if (st == RN_OK) {
    const float *p = rn_f32(c);
    uint8_t *q = rn_tensor_data(*box);
    for (int64_t k = 0; k < rn_tensor_numel(c); k++) q[k] = p[k] >= 0.5f;
  }
  rn_tensor_release(c);
  rn_lua_check(L, st, "mask_u8");
  return 1;
}

void rn_lua_open_synth(lua_State *L) {
  static const luaL_Reg methods[] = {{"apply", s_apply}, {"sample", s_sample}, {"free", s_release}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", s_release}, {"__close", s_release}, {"__tostring", s_tostring}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
    {"new", s_new}, {"perlin_mask", f_perlin_mask}, {"perlin_noise", f_perlin_noise},
    {"foreground_mask", f_foreground_mask}, {"threshold", f_threshold}, {"morph", f_morph}, {"blend", f_blend},
    {"poisson_blend", f_poisson}, {"augment", f_augment}, {"rotate", f_rotate}, {"resize", f_resize},
    {"to_chw", f_to_chw}, {"from_chw", f_from_chw}, {"grid", f_grid}, {"stack", f_stack}, {"mask_u8", f_mask_u8},
    {NULL, NULL}};
  rn_lua_new_class(L, RN_SYNTH_MT, meta, methods);
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, -2, "synth_core");
}
