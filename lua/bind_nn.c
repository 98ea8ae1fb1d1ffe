/* bind_nn.c - the network ops: convolutions, normalisation, softmax, pooling and resampling, as rn.<op>(x, ...)
 * and x:<op>(...). Hyper-parameters come in an opts table; sizes are an integer or a pair {h, w}. */
#include <string.h>

#include "bind_internal.h"

/* An integer or a pair {h, w} at arg (not in an opts table). */
static void pair_arg(lua_State *L, int arg, int v[2], const char *what) {
  if (lua_istable(L, arg)) {
    if (luaL_len(L, arg) != 2) luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer or {h, w}", what));
    for (int i = 0; i < 2; i++) {
      lua_geti(L, arg, i + 1);
      int ok;
      lua_Integer x = lua_tointegerx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok || x < INT32_MIN || x > INT32_MAX)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer or {h, w}", what));
      v[i] = (int)x;
    }
    return;
  }
  lua_Integer x = luaL_checkinteger(L, arg);
  if (x < INT32_MIN || x > INT32_MAX) luaL_argerror(L, arg, lua_pushfstring(L, "%s is out of range", what));
  v[0] = v[1] = (int)x;
}

static void check_positive(lua_State *L, int arg, const char *key, const int v[2], int min) {
  if (v[0] < min || v[1] < min)
    luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s must be >= %d, got {%d, %d}", key, min, v[0], v[1]));
}

/* ------------------------------------------------------------------ convolution */

static rn_conv_params conv_opts(lua_State *L, int arg) {
  rn_conv_params p = rn_conv_params_default();
  if (rn_lua_opt_pair(L, arg, "stride", p.stride)) check_positive(L, arg, "stride", p.stride, 1);
  if (rn_lua_opt_pair(L, arg, "padding", p.pad)) check_positive(L, arg, "padding", p.pad, 0);
  if (rn_lua_opt_pair(L, arg, "dilation", p.dilation)) check_positive(L, arg, "dilation", p.dilation, 1);
  if (rn_lua_opt_pair(L, arg, "output_padding", p.out_pad)) check_positive(L, arg, "output_padding", p.out_pad, 0);
  lua_Integer g = rn_lua_opt_int(L, arg, "groups", 1);
  if (g < 1 || g > INT32_MAX) luaL_argerror(L, arg, lua_pushfstring(L, "opts.groups must be >= 1, got %I", g));
  p.groups = (int)g;
  return p;
}

/* opts.act of conv2d: nil or "none" -> RN_ACT_NONE */
static rn_unary_op conv_act(lua_State *L, int arg) {
  static const char *names[] = {"none", "relu", "relu6", "silu", "sigmoid"};
  static const rn_unary_op ops[] = {RN_ACT_NONE, RN_UN_RELU, RN_UN_RELU6, RN_UN_SILU, RN_UN_SIGMOID};
  const char *s = rn_lua_opt_str(L, arg, "act", "none");
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(s, names[i]) == 0) return ops[i];
  luaL_argerror(L, arg, lua_pushfstring(L, "opts.act must be none, relu, relu6, silu or sigmoid, got '%s'", s));
  return RN_ACT_NONE;
}

/* conv2d(x, w, bias|nil, opts{stride, padding, dilation, groups, residual, act}): with opts.residual (a tensor of
 * the output's shape) and / or opts.act, act(conv2d + residual) through rn_conv2d_fused */
static int n_conv2d(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1), *w = rn_lua_check_tensor(L, 2), *b = rn_lua_opt_tensor(L, 3);
  rn_conv_params p = conv_opts(L, 4);
  rn_tensor *residual = NULL;
  rn_unary_op act = RN_ACT_NONE;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "residual");
    if (!lua_isnil(L, -1)) {
      rn_tensor **rb = (rn_tensor **)luaL_testudata(L, -1, RN_TENSOR_MT);
      if (!rb || !*rb) luaL_argerror(L, 4, "opts.residual must be a tensor");
      residual = *rb;
    }
    lua_pop(L, 1); /* the opts table keeps it alive */
    act = conv_act(L, 4);
  }
  rn_tensor **box = rn_lua_new_box(L);
  if (residual || act != RN_ACT_NONE) rn_lua_check(L, rn_conv2d_fused(box, x, w, b, residual, act, &p), "conv2d");
  else rn_lua_check(L, rn_conv2d(box, x, w, b, &p), "conv2d");
  return 1;
}

/* conv_transpose2d(x, w, bias|nil, opts{stride, padding, output_padding, dilation, groups}) */
static int n_conv_transpose2d(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1), *w = rn_lua_check_tensor(L, 2), *b = rn_lua_opt_tensor(L, 3);
  rn_conv_params p = conv_opts(L, 4);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_conv_transpose2d(box, x, w, b, &p), "conv_transpose2d");
  return 1;
}

/* ------------------------------------------------------------------ normalisation */

/* batch_norm(x, weight|nil, bias|nil, running_mean|nil, running_var|nil, opts{training, momentum, eps}) */
static int n_batch_norm(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  rn_tensor *w = rn_lua_opt_tensor(L, 2), *b = rn_lua_opt_tensor(L, 3);
  rn_tensor *rm = rn_lua_opt_tensor(L, 4), *rv = rn_lua_opt_tensor(L, 5);
  int training = rn_lua_opt_bool(L, 6, "training", 1);
  double momentum = rn_lua_opt_num(L, 6, "momentum", 0.1), eps = rn_lua_opt_num(L, 6, "eps", 1e-5);
  if (momentum < 0 || momentum > 1) luaL_argerror(L, 6, "opts.momentum must be in [0, 1]");
  if (eps <= 0) luaL_argerror(L, 6, "opts.eps must be > 0");
  if (!training && (!rm || !rv)) luaL_argerror(L, 4, "eval-mode batch_norm needs running_mean and running_var");
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_batch_norm(box, x, w, b, rm, rv, training, (float)momentum, (float)eps), "batch_norm");
  return 1;
}

/* group_norm(x, groups, weight|nil, bias|nil, opts{eps}); group_norm_silu(...) = silu(group_norm(...)), one kernel
 * without grad */
static int group_norm_common(lua_State *L, bool silu) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  lua_Integer g = luaL_checkinteger(L, 2);
  if (g < 1 || g > INT32_MAX) luaL_argerror(L, 2, lua_pushfstring(L, "groups must be >= 1, got %I", g));
  rn_tensor *w = rn_lua_opt_tensor(L, 3), *b = rn_lua_opt_tensor(L, 4);
  double eps = rn_lua_opt_num(L, 5, "eps", 1e-5);
  if (eps <= 0) luaL_argerror(L, 5, "opts.eps must be > 0");
  rn_tensor **box = rn_lua_new_box(L);
  if (silu) rn_lua_check(L, rn_group_norm_silu(box, x, (int)g, w, b, (float)eps), "group_norm_silu");
  else rn_lua_check(L, rn_group_norm(box, x, (int)g, w, b, (float)eps), "group_norm");
  return 1;
}

static int n_group_norm(lua_State *L) { return group_norm_common(L, false); }
static int n_group_norm_silu(lua_State *L) { return group_norm_common(L, true); }

static int softmax(lua_State *L, bool log) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  int d = lua_isnoneornil(L, 2) ? (x->ndim ? x->ndim - 1 : 0) : rn_lua_dim(L, 2, x->ndim);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, log ? rn_log_softmax(box, x, d) : rn_softmax(box, x, d), log ? "log_softmax" : "softmax");
  return 1;
}

static int n_softmax(lua_State *L) { return softmax(L, false); }
static int n_log_softmax(lua_State *L) { return softmax(L, true); }

/* ------------------------------------------------------------------ pooling */

/* pool(x, kernel, opts{stride = kernel, padding = 0, ceil_mode = false, count_include_pad = true}) */
static rn_pool_params pool_opts(lua_State *L) {
  rn_pool_params p;
  memset(&p, 0, sizeof p);
  pair_arg(L, 2, p.kernel, "kernel");
  if (p.kernel[0] < 1 || p.kernel[1] < 1) luaL_argerror(L, 2, "kernel must be >= 1");
  p.stride[0] = p.kernel[0];
  p.stride[1] = p.kernel[1];
  if (rn_lua_opt_pair(L, 3, "stride", p.stride)) check_positive(L, 3, "stride", p.stride, 1);
  if (rn_lua_opt_pair(L, 3, "padding", p.pad)) check_positive(L, 3, "padding", p.pad, 0);
  p.ceil_mode = rn_lua_opt_bool(L, 3, "ceil_mode", 0);
  p.count_include_pad = rn_lua_opt_bool(L, 3, "count_include_pad", 1);
  return p;
}

static int n_max_pool2d(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  rn_pool_params p = pool_opts(L);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_max_pool2d(box, x, &p), "max_pool2d");
  return 1;
}

static int n_avg_pool2d(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  rn_pool_params p = pool_opts(L);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_avg_pool2d(box, x, &p), "avg_pool2d");
  return 1;
}

/* adaptive_avg_pool2d(x, size) with size an integer or {h, w} */
static int n_adaptive_avg_pool2d(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  int s[2];
  pair_arg(L, 2, s, "size");
  if (s[0] < 1 || s[1] < 1) luaL_argerror(L, 2, "size must be >= 1");
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_adaptive_avg_pool2d(box, x, s[0], s[1]), "adaptive_avg_pool2d");
  return 1;
}

static int n_global_avg_pool(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_global_avg_pool(box, x), "global_avg_pool");
  return 1;
}

static int n_global_max_pool(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_global_max_pool(box, x), "global_max_pool");
  return 1;
}

/* upsample(x, opts{size = n|{h,w} | scale_factor = s, mode = "nearest"|"bilinear", align_corners = false}) */
static int n_upsample(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (x->ndim != 4) {
    char shp[96];
    luaL_argerror(L, 1, lua_pushfstring(L, "upsample expects [N,C,H,W], got %s", rn_shape_str(x, shp, 96)));
  }
  int size[2];
  if (!rn_lua_opt_pair(L, 2, "size", size)) {
    double s = rn_lua_opt_num(L, 2, "scale_factor", 0);
    if (s <= 0) luaL_argerror(L, 2, "upsample needs opts.size or a positive opts.scale_factor");
    size[0] = (int)((double)x->shape[2] * s);
    size[1] = (int)((double)x->shape[3] * s);
  }
  if (size[0] < 1 || size[1] < 1) luaL_argerror(L, 2, "the output size must be >= 1");
  const char *mode = rn_lua_opt_str(L, 2, "mode", "nearest");
  rn_upsample_mode m = RN_UPSAMPLE_NEAREST;
  if (strcmp(mode, "nearest") == 0) m = RN_UPSAMPLE_NEAREST;
  else if (strcmp(mode, "bilinear") == 0) m = RN_UPSAMPLE_BILINEAR;
  else luaL_argerror(L, 2, lua_pushfstring(L, "opts.mode must be 'nearest' or 'bilinear', got '%s'", mode));
  int align = rn_lua_opt_bool(L, 2, "align_corners", 0);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_upsample(box, x, size[0], size[1], m, align), "upsample");
  return 1;
}

static const luaL_Reg fns[] = {
  {"conv2d", n_conv2d}, {"conv_transpose2d", n_conv_transpose2d}, {"batch_norm", n_batch_norm},
  {"group_norm", n_group_norm}, {"group_norm_silu", n_group_norm_silu}, {"softmax", n_softmax},
  {"log_softmax", n_log_softmax}, {"max_pool2d", n_max_pool2d}, {"avg_pool2d", n_avg_pool2d},
  {"adaptive_avg_pool2d", n_adaptive_avg_pool2d},
  {"global_avg_pool", n_global_avg_pool}, {"global_max_pool", n_global_max_pool}, {"upsample", n_upsample},
  {NULL, NULL}};

void rn_lua_open_nn(lua_State *L) { rn_lua_register(L, fns, 1); }
