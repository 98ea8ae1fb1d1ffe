/* bind_create.c - tensor constructors: rn.tensor (from nested tables), zeros/ones/full/empty(+_like), arange. */
#include <math.h>
#include <string.h>

#include "bind_internal.h"

/* ------------------------------------------------------------------ rn.tensor(nested table, opts) */

/* The shape of a nested table, read down its first elements. */
static int infer_shape(lua_State *L, int arg, int64_t *shape) {
  int n = 0;
  lua_pushvalue(L, arg);
  while (lua_istable(L, -1)) {
    if (n == RN_MAX_DIMS) luaL_argerror(L, arg, lua_pushfstring(L, "nested deeper than %d dims", RN_MAX_DIMS));
    shape[n++] = (int64_t)luaL_len(L, -1);
    if (shape[n - 1] == 0) break;
    lua_geti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return n;
}

typedef struct { void *data; rn_dtype dt; int64_t k; const int64_t *shape; int ndim; int arg; } fill_ctx;

static void store(fill_ctx *c, double v) {
  switch (c->dt) {
    case RN_F32: ((float *)c->data)[c->k] = (float)v; break;
    case RN_U8: ((uint8_t *)c->data)[c->k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); break;
    case RN_I32: ((int32_t *)c->data)[c->k] = (int32_t)v; break;
    case RN_I64: ((int64_t *)c->data)[c->k] = (int64_t)v; break;
    default: break;
  }
  c->k++;
}

/* Walks the table on the stack top at depth d, checking that every row has the shape of the first. */
static void fill_rec(lua_State *L, fill_ctx *c, int d) {
  if (d == c->ndim) {
    if (lua_type(L, -1) != LUA_TNUMBER && !lua_isboolean(L, -1))
      luaL_argerror(L, c->arg, lua_pushfstring(L, "expected numbers in the nested table, found a %s",
                                               luaL_typename(L, -1)));
    double v = lua_isboolean(L, -1) ? lua_toboolean(L, -1) : lua_tonumber(L, -1);
    rn_lua_check_storable(L, c->arg, v, c->dt);
    store(c, v);
    return;
  }
  if (!lua_istable(L, -1) || luaL_len(L, -1) != c->shape[d])
    luaL_argerror(L, c->arg, lua_pushfstring(L, "ragged nested table: a row at depth %d does not have %I entries",
                                             d + 1, (lua_Integer)c->shape[d]));
  luaL_checkstack(L, 2, "tensor");
  for (int64_t i = 0; i < c->shape[d]; i++) {
    lua_geti(L, -1, i + 1);
    fill_rec(L, c, d + 1);
    lua_pop(L, 1);
  }
}

static void finish(lua_State *L, int opts, rn_tensor **box) {
  rn_device dev = rn_lua_opt_device(L, opts);
  if (dev.type != RN_CPU) {
    rn_tensor **b2 = rn_lua_new_box(L);
    rn_lua_check(L, rn_to_device(b2, *box, dev), "tensor");
    box = b2;
  }
  if (rn_lua_opt_bool(L, opts, "requires_grad", 0)) rn_lua_check(L, rn_set_requires_grad(*box, true), "tensor");
}

static int c_tensor(lua_State *L) {
  lua_settop(L, 2); /* fixed slots: boxes pushed below must not land on an absent opts */
  int64_t shape[RN_MAX_DIMS];
  int ndim = 0;
  if (lua_type(L, 1) != LUA_TNUMBER) {
    luaL_checktype(L, 1, LUA_TTABLE);
    ndim = infer_shape(L, 1, shape);
  }
  rn_dtype dt = rn_lua_opt_dtype(L, 2, RN_F32);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_tensor_empty(box, ndim, shape, dt, rn_cpu()), "tensor");
  fill_ctx c = {rn_tensor_data(*box), dt, 0, shape, ndim, 1};
  lua_pushvalue(L, 1);
  fill_rec(L, &c, 0);
  lua_pop(L, 1);
  finish(L, 2, box);
  return 1;
}

/* ------------------------------------------------------------------ filled tensors */

static int filled(lua_State *L, int has_value, double v, const char *name) {
  int64_t shape[RN_MAX_DIMS];
  int ndim = rn_lua_check_shape(L, 1, shape);
  int next = rn_lua_after_shape(L, 1, ndim);
  if (has_value > 0) v = luaL_checknumber(L, next++);
  lua_settop(L, next);
  rn_dtype dt = rn_lua_opt_dtype(L, next, RN_F32);
  if (has_value > 0) rn_lua_check_storable(L, next - 1, v, dt);
  rn_device dev = rn_lua_opt_device(L, next);
  rn_tensor **box = rn_lua_new_box(L);
  if (has_value >= 0) rn_lua_check(L, rn_tensor_full(box, ndim, shape, dt, dev, v), name);
  else rn_lua_check(L, rn_tensor_empty(box, ndim, shape, dt, dev), name);
  if (rn_lua_opt_bool(L, next, "requires_grad", 0)) rn_lua_check(L, rn_set_requires_grad(*box, true), name);
  return 1;
}

static int c_zeros(lua_State *L) { return filled(L, 0, 0.0, "zeros"); }
static int c_ones(lua_State *L) { return filled(L, 0, 1.0, "ones"); }
static int c_full(lua_State *L) { return filled(L, 1, 0.0, "full"); }
static int c_empty(lua_State *L) { return filled(L, -1, 0.0, "empty"); }

static int like(lua_State *L, int has_value, double v, const char *name) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  int next = 2;
  if (has_value) v = luaL_checknumber(L, next++);
  lua_settop(L, next);
  rn_dtype dt = rn_lua_opt_dtype(L, next, t->dtype);
  if (has_value) rn_lua_check_storable(L, next - 1, v, dt);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_tensor_full(box, t->ndim, t->shape, dt, rn_tensor_device(t), v), name);
  return 1;
}

static int c_zeros_like(lua_State *L) { return like(L, 0, 0.0, "zeros_like"); }
static int c_ones_like(lua_State *L) { return like(L, 0, 1.0, "ones_like"); }
static int c_full_like(lua_State *L) { return like(L, 1, 0.0, "full_like"); }

/* arange(stop) / arange(start, stop[, step]) [, opts]: stop excluded, as in PyTorch; all-integer arguments give
 * int64 unless opts.dtype says otherwise. */
static int c_arange(lua_State *L) {
  int nnum = 0;
  while (nnum < 3 && lua_type(L, nnum + 1) == LUA_TNUMBER) nnum++;
  if (nnum == 0) luaL_typeerror(L, 1, "number");
  double start = 0, stop, step = 1;
  int all_int = 1;
  for (int i = 1; i <= nnum; i++) {
    rn_lua_check_finite(L, i);
    if (!lua_isinteger(L, i)) all_int = 0;
  }
  if (nnum == 1) stop = lua_tonumber(L, 1);
  else { start = lua_tonumber(L, 1); stop = lua_tonumber(L, 2); }
  if (nnum == 3) step = lua_tonumber(L, 3);
  if (step == 0) luaL_argerror(L, 3, "step must not be zero");
  rn_dtype dt = rn_lua_opt_dtype(L, nnum + 1, all_int ? RN_I64 : RN_F32);
  rn_device dev = rn_lua_opt_device(L, nnum + 1);
  lua_settop(L, nnum + 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_arange(box, start, stop, step, dt, dev), "arange");
  return 1;
}

static const luaL_Reg fns[] = {
  {"tensor", c_tensor}, {"zeros", c_zeros}, {"ones", c_ones}, {"full", c_full}, {"empty", c_empty},
  {"zeros_like", c_zeros_like}, {"ones_like", c_ones_like}, {"full_like", c_full_like}, {"arange", c_arange},
  {NULL, NULL}};

void rn_lua_open_create(lua_State *L) { rn_lua_register(L, fns, 0); }
