/* bind_ops.c - elementwise math, reductions, indexing, linear algebra and losses, each as rn.<op>(x, ...)
 * and as x:<op>(...). Dims, index tensors and the class targets of the losses are 1-based. */
#include <math.h>
#include <string.h>

#include "bind_internal.h"

/* ------------------------------------------------------------------ elementwise */

static int binary(lua_State *L, rn_binary_op op, const char *name) {
  rn_tensor *a, *b;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    b = rn_lua_check_tensor(L, 2);
    a = rn_lua_tensor_or_number(L, 1, b);
  } else {
    a = rn_lua_check_tensor(L, 1);
    if (lua_type(L, 2) != LUA_TNUMBER) rn_lua_check_tensor(L, 2);
    b = rn_lua_tensor_or_number(L, 2, a);
  }
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_binary(box, op, a, b), name);
  return 1;
}

#define BINARY(fn, op) static int o_##fn(lua_State *L) { return binary(L, op, #fn); }
BINARY(add, RN_BIN_ADD)
BINARY(sub, RN_BIN_SUB)
BINARY(mul, RN_BIN_MUL)
BINARY(div, RN_BIN_DIV)
BINARY(maximum, RN_BIN_MAX)
BINARY(minimum, RN_BIN_MIN)
BINARY(eq, RN_BIN_EQ)
BINARY(lt, RN_BIN_LT)
BINARY(le, RN_BIN_LE)
BINARY(gt, RN_BIN_GT)
BINARY(ge, RN_BIN_GE)

static int unary(lua_State *L, rn_unary_op op, float a, float b, const char *name) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_unary(box, op, x, a, b), name);
  return 1;
}

#define UNARY(fn, op) static int o_##fn(lua_State *L) { return unary(L, op, 0, 0, #fn); }
UNARY(neg, RN_UN_NEG)
UNARY(exp, RN_UN_EXP)
UNARY(log, RN_UN_LOG)
UNARY(sqrt, RN_UN_SQRT)
UNARY(rsqrt, RN_UN_RSQRT)
UNARY(abs, RN_UN_ABS)
UNARY(square, RN_UN_SQUARE)
UNARY(sin, RN_UN_SIN)
UNARY(cos, RN_UN_COS)
UNARY(relu, RN_UN_RELU)
UNARY(relu6, RN_UN_RELU6)
UNARY(silu, RN_UN_SILU)
UNARY(sigmoid, RN_UN_SIGMOID)
UNARY(tanh, RN_UN_TANH)
UNARY(gelu, RN_UN_GELU)

static int o_pow(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER && lua_type(L, 1) != LUA_TNUMBER)
    return unary(L, RN_UN_POWS, (float)rn_lua_check_finite(L, 2), 0, "pow");
  return binary(L, RN_BIN_POW, "pow");
}

static int o_leaky_relu(lua_State *L) {
  double slope = lua_isnoneornil(L, 2) ? 0.01 : rn_lua_check_finite(L, 2);
  return unary(L, RN_UN_LEAKY_RELU, (float)slope, 0, "leaky_relu");
}

/* scale(x, a, b) = a*x + b */
static int o_scale(lua_State *L) {
  double a = rn_lua_check_finite(L, 2), b = lua_isnoneornil(L, 3) ? 0 : rn_lua_check_finite(L, 3);
  return unary(L, RN_UN_SCALE, (float)a, (float)b, "scale");
}

/* clamp(x, lo, hi); nil leaves that side open. NaN bounds are rejected (they would silently mean "none"). */
static int o_clamp(lua_State *L) {
  double lo = lua_isnoneornil(L, 2) ? NAN : rn_lua_check_finite(L, 2);
  double hi = lua_isnoneornil(L, 3) ? NAN : rn_lua_check_finite(L, 3);
  if (lo > hi) luaL_argerror(L, 3, "hi must be >= lo");
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_clamp(box, x, (float)lo, (float)hi), "clamp");
  return 1;
}

/* where(cond, a, b): a and b may be numbers. */
static int o_where(lua_State *L) {
  lua_settop(L, 3);
  rn_tensor *cond = rn_lua_check_tensor(L, 1);
  rn_tensor *ref = lua_type(L, 2) == LUA_TNUMBER ? NULL : rn_lua_check_tensor(L, 2);
  if (!ref) ref = lua_type(L, 3) == LUA_TNUMBER ? NULL : rn_lua_check_tensor(L, 3);
  if (!ref) luaL_argerror(L, 2, "where needs a tensor in a or b (or use rn.full)");
  rn_tensor *a = rn_lua_tensor_or_number(L, 2, ref), *b = rn_lua_tensor_or_number(L, 3, ref);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_where(box, cond, a, b), "where");
  return 1;
}

/* ------------------------------------------------------------------ reductions */

/* dims: nil (all), an integer, or a table of integers; converted to 0-based. */
static int reduce_dims(lua_State *L, int arg, int ndim, int *dims) {
  if (lua_isnoneornil(L, arg)) return 0;
  if (!lua_istable(L, arg)) { dims[0] = rn_lua_dim(L, arg, ndim); return 1; }
  lua_Integer len = luaL_len(L, arg);
  if (len > RN_MAX_DIMS) luaL_argerror(L, arg, "too many dims");
  int base = lua_gettop(L);
  for (int i = 0; i < len; i++) lua_geti(L, arg, i + 1);
  for (int i = 0; i < len; i++) dims[i] = rn_lua_dim(L, base + 1 + i, ndim);
  lua_settop(L, base);
  if (len == 0) luaL_argerror(L, arg, "an empty dims table (pass nil to reduce over all dims)");
  return (int)len;
}

static int reduce(lua_State *L, rn_reduce_op op, const char *name) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  int dims[RN_MAX_DIMS];
  int n = reduce_dims(L, 2, x->ndim, dims);
  bool keep = lua_toboolean(L, 3);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_reduce(box, op, x, n, dims, keep), name);
  return 1;
}

static int o_sum(lua_State *L) { return reduce(L, RN_RED_SUM, "sum"); }
static int o_mean(lua_State *L) { return reduce(L, RN_RED_MEAN, "mean"); }

/* max(x) -> 0-dim tensor; max(x, dim[, keepdim]) -> values, indices (1-based). min likewise. */
static int extreme(lua_State *L, bool is_max) {
  if (lua_isnoneornil(L, 2) || lua_istable(L, 2))
    return reduce(L, is_max ? RN_RED_MAX : RN_RED_MIN, is_max ? "max" : "min");
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  int d = rn_lua_dim(L, 2, x->ndim);
  bool keep = lua_toboolean(L, 3);
  const char *name = is_max ? "max" : "min";
  if (!is_max) { /* min = -max(-x) */
    rn_tensor **nb = rn_lua_new_box(L);
    rn_lua_check(L, rn_unary(nb, RN_UN_NEG, x, 0, 0), name);
    x = *nb;
  }
  rn_tensor **vb = rn_lua_new_box(L);
  rn_tensor *idx = NULL;
  rn_lua_check(L, rn_max_dim(vb, &idx, x, d, keep), name);
  if (!is_max) {
    rn_tensor **nb = rn_lua_new_box(L);
    rn_status st = rn_unary(nb, RN_UN_NEG, *vb, 0, 0);
    if (st != RN_OK) rn_tensor_release(idx);
    rn_lua_check(L, st, name);
  }
  rn_lua_push_index_tensor(L, idx);
  return 2;
}

static int o_max(lua_State *L) { return extreme(L, true); }
static int o_min(lua_State *L) { return extreme(L, false); }

static int arg_extreme(lua_State *L, bool is_max) {
  int n = extreme(L, is_max);
  (void)n;
  return 1; /* the indices, on top */
}

static int o_argmax(lua_State *L) { luaL_checkany(L, 2); return arg_extreme(L, true); }
static int o_argmin(lua_State *L) { luaL_checkany(L, 2); return arg_extreme(L, false); }

static int o_sum_to(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  int64_t shape[RN_MAX_DIMS];
  int n = rn_lua_check_shape(L, 2, shape);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_sum_to(box, x, n, shape), "sum_to");
  return 1;
}

/* ------------------------------------------------------------------ indexing */

/* cat({a, b, ...}, dim=1) */
static int o_cat(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n < 1) luaL_argerror(L, 1, "cat needs at least one tensor");
  rn_tensor **xs = (rn_tensor **)lua_newuserdatauv(L, (size_t)n * sizeof *xs, 0); /* freed by the GC */
  for (lua_Integer i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    rn_tensor **b = (rn_tensor **)luaL_testudata(L, -1, RN_TENSOR_MT);
    if (!b || !*b) luaL_argerror(L, 1, lua_pushfstring(L, "entry %I is not a live tensor", i + 1));
    xs[i] = *b;
    lua_pop(L, 1); /* still referenced by the table */
  }
  int d = lua_isnoneornil(L, 2) ? 0 : rn_lua_dim(L, 2, xs[0]->ndim);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_concat(box, (int)n, xs, d), "cat");
  return 1;
}

static int o_index_select(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  int d = rn_lua_dim(L, 2, x->ndim);
  rn_tensor *idx = rn_lua_index_tensor_in(L, 3, x->ndim ? x->shape[d] : 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_index_select(box, x, d, idx), "index_select");
  return 1;
}

static int o_gather(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  int d = rn_lua_dim(L, 2, x->ndim);
  rn_tensor *idx = rn_lua_index_tensor_in(L, 3, x->ndim ? x->shape[d] : 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_gather(box, x, d, idx), "gather");
  return 1;
}

/* topk(x, k, dim=-1, largest=true) -> values, indices (1-based) */
static int o_topk(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  int d = lua_isnoneornil(L, 3) ? (x->ndim ? x->ndim - 1 : 0) : rn_lua_dim(L, 3, x->ndim);
  int64_t size = x->ndim ? x->shape[d] : 1;
  if (k < 1 || k > size) luaL_argerror(L, 2, lua_pushfstring(L, "k must be in 1..%I, got %I", (lua_Integer)size, k));
  bool largest = lua_isnoneornil(L, 4) ? true : lua_toboolean(L, 4);
  rn_tensor **vb = rn_lua_new_box(L);
  rn_tensor *idx = NULL;
  rn_lua_check(L, rn_topk(vb, &idx, x, (int)k, d, largest), "topk");
  rn_lua_push_index_tensor(L, idx);
  return 2;
}

/* ------------------------------------------------------------------ linear algebra */

static int o_matmul(lua_State *L) {
  rn_tensor *a = rn_lua_check_tensor(L, 1), *b = rn_lua_check_tensor(L, 2);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_matmul(box, a, b), "matmul");
  return 1;
}

static int o_linear(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1), *w = rn_lua_check_tensor(L, 2), *b = rn_lua_opt_tensor(L, 3);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_linear(box, x, w, b), "linear");
  return 1;
}

/* ------------------------------------------------------------------ losses */

/* Class targets are 1-based class numbers 1..K (K = logits dim 2), like every index in the Lua API; they are
 * converted to the core's 0-based ids here. Any integer dtype is accepted. */
static rn_tensor *class_target(lua_State *L, int arg, const rn_tensor *logits) {
  rn_tensor *t = rn_lua_check_tensor(L, arg);
  if (t->dtype == RN_F32) luaL_argerror(L, arg, "class targets must be an integer tensor of classes 1..K");
  return rn_lua_index_tensor_in(L, arg, logits->ndim >= 2 ? logits->shape[1] : -1);
}

static int o_mse_loss(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1), *t = rn_lua_check_tensor(L, 2);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_mse_loss(box, x, t), "mse_loss");
  return 1;
}

static int o_cross_entropy(lua_State *L) {
  lua_settop(L, 2);
  rn_tensor *x = rn_lua_check_tensor(L, 1), *t = class_target(L, 2, x);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_cross_entropy(box, x, t), "cross_entropy");
  return 1;
}

/* focal_loss(logits, target, {gamma = 2, alpha = tensor[K]}) */
static int o_focal_loss(lua_State *L) {
  lua_settop(L, 3);
  rn_tensor *x = rn_lua_check_tensor(L, 1), *t = class_target(L, 2, x);
  double gamma = rn_lua_opt_num(L, 3, "gamma", 2.0);
  if (gamma < 0) luaL_argerror(L, 3, "opts.gamma must be >= 0");
  rn_tensor *alpha = NULL;
  if (!lua_isnoneornil(L, 3) && lua_getfield(L, 3, "alpha") != LUA_TNIL) alpha = rn_lua_check_tensor(L, lua_gettop(L));
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_focal_loss(box, x, t, (float)gamma, alpha), "focal_loss");
  return 1;
}

/* ------------------------------------------------------------------ attention */

static int o_sdpa(lua_State *L) {
  rn_tensor *q = rn_lua_check_tensor(L, 1), *k = rn_lua_check_tensor(L, 2), *v = rn_lua_check_tensor(L, 3);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_sdpa(box, q, k, v), "sdpa");
  return 1;
}

static int o_spatial_attention(lua_State *L) {
  rn_tensor *q = rn_lua_check_tensor(L, 1), *k = rn_lua_check_tensor(L, 2), *v = rn_lua_check_tensor(L, 3);
  lua_Integer heads = luaL_optinteger(L, 4, 1);
  if (heads < 1 || heads > INT32_MAX) luaL_argerror(L, 4, "heads must be >= 1");
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_spatial_attention(box, q, k, v, (int)heads), "spatial_attention");
  return 1;
}

/* qkv_attention(qkv [N,3C,H,W], heads) -> [N,C,H,W] (legacy per-head q, k, v layout) */
static int o_qkv_attention(lua_State *L) {
  rn_tensor *qkv = rn_lua_check_tensor(L, 1);
  lua_Integer heads = luaL_optinteger(L, 2, 1);
  if (heads < 1 || heads > INT32_MAX) luaL_argerror(L, 2, "heads must be >= 1");
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_qkv_attention(box, qkv, (int)heads), "qkv_attention");
  return 1;
}

static const luaL_Reg ops[] = {
  {"add", o_add}, {"sub", o_sub}, {"mul", o_mul}, {"div", o_div}, {"pow", o_pow}, {"maximum", o_maximum},
  {"minimum", o_minimum}, {"eq", o_eq}, {"lt", o_lt}, {"le", o_le}, {"gt", o_gt}, {"ge", o_ge},
  {"neg", o_neg}, {"exp", o_exp}, {"log", o_log}, {"sqrt", o_sqrt}, {"rsqrt", o_rsqrt}, {"abs", o_abs},
  {"square", o_square}, {"sin", o_sin}, {"cos", o_cos}, {"relu", o_relu}, {"relu6", o_relu6}, {"silu", o_silu},
  {"sigmoid", o_sigmoid}, {"tanh", o_tanh}, {"gelu", o_gelu}, {"leaky_relu", o_leaky_relu}, {"scale", o_scale},
  {"clamp", o_clamp}, {"where", o_where},
  {"sum", o_sum}, {"mean", o_mean}, {"max", o_max}, {"min", o_min}, {"argmax", o_argmax}, {"argmin", o_argmin},
  {"sum_to", o_sum_to},
  {"index_select", o_index_select}, {"gather", o_gather}, {"topk", o_topk},
  {"matmul", o_matmul}, {"linear", o_linear},
  {"mse_loss", o_mse_loss}, {"cross_entropy", o_cross_entropy}, {"focal_loss", o_focal_loss},
  {"sdpa", o_sdpa}, {"spatial_attention", o_spatial_attention}, {"qkv_attention", o_qkv_attention},
  {NULL, NULL}};

static const luaL_Reg module_only[] = {{"cat", o_cat}, {"concat", o_cat}, {NULL, NULL}};

void rn_lua_open_ops(lua_State *L) {
  rn_lua_register(L, ops, 1);
  rn_lua_register(L, module_only, 0);
}
