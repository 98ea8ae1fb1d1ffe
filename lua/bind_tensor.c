/* bind_tensor.c - the tensor userdata: metatable, release, facts, element access, conversions and the
 * arithmetic metamethods. Views are in bind_views.c, constructors in bind_create.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bind_internal.h"

/* __gc, __close and :free() share this; a second call finds the box empty. */
static int t_release(lua_State *L) {
  rn_tensor **box = (rn_tensor **)luaL_checkudata(L, 1, RN_TENSOR_MT);
  rn_tensor_release(*box);
  *box = NULL;
  return 0;
}

/* ------------------------------------------------------------------ __tostring */

typedef struct { double mn, mx, sum; int64_t n, nan; } stats;

static void stat_add(double v, void *ud) {
  stats *s = (stats *)ud;
  if (isnan(v)) { s->nan++; return; }
  if (s->n == 0 || v < s->mn) s->mn = v;
  if (s->n == 0 || v > s->mx) s->mx = v;
  s->sum += v;
  s->n++;
}

static int t_tostring(lua_State *L) {
  rn_tensor **box = (rn_tensor **)luaL_checkudata(L, 1, RN_TENSOR_MT);
  if (!*box) { lua_pushliteral(L, "tensor (freed)"); return 1; }
  rn_tensor *t = *box;
  char shp[96], dev[16];
  rn_shape_str(t, shp, sizeof shp);
  rn_device_name(rn_tensor_device(t), dev, sizeof dev);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "tensor%s %s %s", shp, rn_dtype_name(t->dtype), dev);
  luaL_addvalue(&b);
  rn_tensor *c = rn_lua_cpu_view(L, t);
  stats s = {0, 0, 0, 0, 0};
  rn_lua_each(c, stat_add, &s);
  char line[160];
  if (rn_tensor_numel(t) == 0) snprintf(line, sizeof line, " (empty)");
  else if (rn_tensor_numel(t) == 1) snprintf(line, sizeof line, " value %.6g", s.n ? s.mn : NAN);
  else if (s.n == 0) snprintf(line, sizeof line, " all NaN");
  else snprintf(line, sizeof line, " min %.6g max %.6g mean %.6g", s.mn, s.mx, s.sum / (double)s.n);
  luaL_addstring(&b, line);
  if (s.nan && rn_tensor_numel(t) > 1) {
    snprintf(line, sizeof line, " (%lld NaN)", (long long)s.nan);
    luaL_addstring(&b, line);
  }
  if (t->requires_grad) luaL_addstring(&b, t->grad_fn ? " grad_fn" : " requires_grad");
  luaL_pushresult(&b);
  return 1;
}

/* ------------------------------------------------------------------ facts */

static int t_len(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  if (t->ndim == 0) luaL_argerror(L, 1, "a 0-dim tensor has no length");
  lua_pushinteger(L, t->shape[0]);
  return 1;
}

static int t_shape(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) { lua_pushinteger(L, t->shape[i]); lua_rawseti(L, -2, i + 1); }
  return 1;
}

static int t_size(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  if (lua_isnoneornil(L, 2)) return t_shape(L);
  lua_pushinteger(L, t->shape[rn_lua_dim(L, 2, t->ndim)]);
  return 1;
}

static int t_dim(lua_State *L) { lua_pushinteger(L, rn_lua_check_tensor(L, 1)->ndim); return 1; }
static int t_numel(lua_State *L) { lua_pushinteger(L, rn_tensor_numel(rn_lua_check_tensor(L, 1))); return 1; }
static int t_dtype(lua_State *L) { lua_pushstring(L, rn_dtype_name(rn_lua_check_tensor(L, 1)->dtype)); return 1; }

static int t_device(lua_State *L) {
  char dev[16];
  lua_pushstring(L, rn_device_name(rn_tensor_device(rn_lua_check_tensor(L, 1)), dev, sizeof dev));
  return 1;
}

static int t_is_contiguous(lua_State *L) {
  lua_pushboolean(L, rn_tensor_is_contiguous(rn_lua_check_tensor(L, 1)));
  return 1;
}

static int is_tensor(lua_State *L) {
  rn_tensor **box = (rn_tensor **)luaL_testudata(L, 1, RN_TENSOR_MT);
  lua_pushboolean(L, box && *box);
  return 1;
}

/* ------------------------------------------------------------------ element access */

static void push_number(lua_State *L, rn_dtype dt, double v) {
  if (dt == RN_F32) lua_pushnumber(L, v);
  else lua_pushinteger(L, (lua_Integer)v);
}

/* Indices from args start..start+ndim-1, each 1-based. */
static void check_indices(lua_State *L, rn_tensor *t, int start, int nargs, int64_t *idx) {
  if (nargs != t->ndim) {
    char shp[96];
    luaL_error(L, "expected %d indices for a tensor of shape %s, got %d", t->ndim, rn_shape_str(t, shp, 96), nargs);
  }
  for (int i = 0; i < t->ndim; i++) idx[i] = rn_lua_index(L, start + i, t->shape[i]);
}

static int t_get(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  int64_t idx[RN_MAX_DIMS];
  check_indices(L, t, 2, lua_gettop(L) - 1, idx);
  double v;
  rn_lua_check(L, rn_tensor_get(rn_lua_cpu_view(L, t), idx, &v), "get");
  push_number(L, t->dtype, v);
  return 1;
}

static int t_set(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  int top = lua_gettop(L);
  double v = luaL_checknumber(L, top);
  int64_t idx[RN_MAX_DIMS];
  check_indices(L, t, 2, top - 2, idx);
  rn_lua_check_storable(L, top, v, t->dtype);
  if (rn_tensor_device(t).type != RN_CPU) luaL_error(L, "set: element writes need a CPU tensor");
  rn_lua_check(L, rn_tensor_set(t, idx, v), "set");
  lua_settop(L, 1);
  return 1;
}

static int t_item(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  if (rn_tensor_numel(t) != 1) {
    char shp[96];
    luaL_error(L, "item: expected a one-element tensor, got shape %s", rn_shape_str(t, shp, 96));
  }
  rn_tensor *c = rn_lua_cpu_view(L, t);
  int64_t off = 0;
  push_number(L, t->dtype, rn_lua_read(rn_tensor_data(c), c->dtype, off));
  return 1;
}

static void totable_rec(lua_State *L, const rn_tensor *t, int d, int64_t off) {
  const void *base = rn_tensor_data(t);
  if (d < 0 || d >= RN_MAX_DIMS) return;
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    int64_t o = off + i * t->stride[d];
    if (d == t->ndim - 1) push_number(L, t->dtype, rn_lua_read(base, t->dtype, o));
    else totable_rec(L, t, d + 1, o);
    lua_rawseti(L, -2, i + 1);
  }
}

static int t_totable(lua_State *L) {
  rn_tensor *c = rn_lua_cpu_view(L, rn_lua_check_tensor(L, 1));
  luaL_checkstack(L, c->ndim + 4, "totable");
  if (c->ndim == 0) push_number(L, c->dtype, rn_lua_read(rn_tensor_data(c), c->dtype, 0));
  else totable_rec(L, c, 0, 0);
  return 1;
}

/* ------------------------------------------------------------------ conversions and copies */

/* :to("cpu"|"cuda:0"|dtype name) or :to{device=, dtype=} */
static int t_to(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  rn_device dev = rn_tensor_device(t);
  rn_dtype dt = t->dtype;
  if (lua_istable(L, 2)) {
    dt = rn_lua_opt_dtype(L, 2, dt);
    if (rn_lua_opt_str(L, 2, "device", NULL)) dev = rn_lua_opt_device(L, 2);
  } else {
    const char *s = luaL_checkstring(L, 2);
    if (rn_dtype_from_name(s, &dt) != RN_OK && rn_device_parse(s, &dev) != RN_OK)
      luaL_argerror(L, 2, lua_pushfstring(L, "'%s' is neither a dtype (float32, uint8, int32, int64) nor a device "
                                             "(cpu, cuda, cuda:N)", s));
  }
  rn_tensor **b1 = rn_lua_new_box(L);
  rn_lua_check(L, rn_to_device(b1, t, dev), "to");
  rn_tensor **b2 = rn_lua_new_box(L);
  rn_lua_check(L, rn_to_dtype(b2, *b1, dt), "to");
  return 1;
}

static int to_dtype(lua_State *L, rn_dtype dt) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_to_dtype(box, t, dt), "to");
  return 1;
}
static int t_float(lua_State *L) { return to_dtype(L, RN_F32); }
static int t_long(lua_State *L) { return to_dtype(L, RN_I64); }
static int t_int(lua_State *L) { return to_dtype(L, RN_I32); }
static int t_byte(lua_State *L) { return to_dtype(L, RN_U8); }

static int t_copy_(lua_State *L) {
  rn_tensor *dst = rn_lua_check_tensor(L, 1), *src = rn_lua_check_tensor(L, 2);
  rn_lua_check(L, rn_copy_(dst, src), "copy_");
  lua_settop(L, 1);
  return 1;
}

static int t_fill_(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  double v = luaL_checknumber(L, 2);
  rn_lua_check_storable(L, 2, v, t->dtype);
  rn_lua_check(L, rn_fill_(t, v), "fill_");
  lua_settop(L, 1);
  return 1;
}

static int t_zero_(lua_State *L) {
  rn_lua_check(L, rn_fill_(rn_lua_check_tensor(L, 1), 0.0), "zero_");
  lua_settop(L, 1);
  return 1;
}

/* ------------------------------------------------------------------ arithmetic metamethods */

static int arith(lua_State *L, rn_binary_op op, const char *name) {
  int first_is_tensor = luaL_testudata(L, 1, RN_TENSOR_MT) != NULL;
  rn_tensor *a, *b;
  if (first_is_tensor) {
    a = rn_lua_check_tensor(L, 1);
    if (lua_type(L, 2) != LUA_TNUMBER) rn_lua_check_tensor(L, 2);
    b = rn_lua_tensor_or_number(L, 2, a);
  } else {
    if (lua_type(L, 1) != LUA_TNUMBER) luaL_typeerror(L, 1, "tensor or number");
    b = rn_lua_check_tensor(L, 2);
    a = rn_lua_tensor_or_number(L, 1, b);
  }
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_binary(box, op, a, b), name);
  return 1;
}

/* Number operands on float tensors go through a*x+b, which is cheaper than a broadcast binary op. */
static int scaled(lua_State *L, rn_binary_op op, const char *name) {
  int n1 = lua_type(L, 1) == LUA_TNUMBER, n2 = lua_type(L, 2) == LUA_TNUMBER;
  rn_tensor **tb = (rn_tensor **)luaL_testudata(L, n1 ? 2 : 1, RN_TENSOR_MT);
  if (!(n1 ^ n2) || !tb || !*tb || (*tb)->dtype != RN_F32) return arith(L, op, name);
  rn_tensor *x = *tb;
  double s = lua_tonumber(L, n1 ? 1 : 2), a = 1, c = 0;
  switch (op) {
    case RN_BIN_ADD: c = s; break;
    case RN_BIN_SUB: if (n1) { a = -1; c = s; } else c = -s; break;
    case RN_BIN_MUL: a = s; break;
    case RN_BIN_DIV: if (n1) return arith(L, op, name); a = 1.0 / s; break;
    default: return arith(L, op, name);
  }
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_scale(box, x, (float)a, (float)c), name);
  return 1;
}

static int t_add(lua_State *L) { return scaled(L, RN_BIN_ADD, "add"); }
static int t_sub(lua_State *L) { return scaled(L, RN_BIN_SUB, "sub"); }
static int t_mul(lua_State *L) { return scaled(L, RN_BIN_MUL, "mul"); }
static int t_div(lua_State *L) { return scaled(L, RN_BIN_DIV, "div"); }

static int t_pow(lua_State *L) {
  rn_tensor **tb = (rn_tensor **)luaL_testudata(L, 1, RN_TENSOR_MT);
  if (tb && *tb && lua_type(L, 2) == LUA_TNUMBER && (*tb)->dtype == RN_F32) {
    rn_tensor **box = rn_lua_new_box(L);
    rn_lua_check(L, rn_unary(box, RN_UN_POWS, *tb, (float)lua_tonumber(L, 2), 0), "pow");
    return 1;
  }
  return arith(L, RN_BIN_POW, "pow");
}

static int t_unm(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_unary(box, RN_UN_NEG, x, 0, 0), "neg");
  return 1;
}

/* ------------------------------------------------------------------ registration */

static const luaL_Reg meta[] = {
  {"__gc", t_release}, {"__close", t_release}, {"__tostring", t_tostring}, {"__len", t_len},
  {"__add", t_add}, {"__sub", t_sub}, {"__mul", t_mul}, {"__div", t_div}, {"__pow", t_pow}, {"__unm", t_unm},
  {NULL, NULL}};

static const luaL_Reg methods[] = {
  {"free", t_release}, {"shape", t_shape}, {"size", t_size}, {"dim", t_dim}, {"numel", t_numel},
  {"dtype", t_dtype}, {"device", t_device}, {"is_contiguous", t_is_contiguous}, {"get", t_get}, {"set", t_set},
  {"item", t_item}, {"totable", t_totable}, {"to", t_to}, {"float", t_float}, {"long", t_long}, {"int", t_int},
  {"byte", t_byte}, {"copy_", t_copy_}, {"fill_", t_fill_}, {"zero_", t_zero_}, {NULL, NULL}};

void rn_lua_open_tensor(lua_State *L) {
  if (luaL_newmetatable(L, RN_TENSOR_MT)) { /* sets __name */
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  rn_lua_register(L, methods, 1);
  lua_pushcfunction(L, is_tensor);
  lua_setfield(L, -2, "is_tensor");
  rn_lua_open_views(L);
  rn_lua_open_create(L);
}
