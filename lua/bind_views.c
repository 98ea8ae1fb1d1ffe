/* bind_views.c - views and copies of a tensor: narrow, select, transpose, permute, reshape, view, flatten,
 * squeeze, unsqueeze, expand, contiguous, clone, detach. Dims and indices are 1-based here. */
#include <string.h>

#include "bind_internal.h"

static int v_narrow(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  int d = rn_lua_dim(L, 2, t->ndim);
  int64_t size = t->ndim ? t->shape[d] : 1;
  int64_t start = rn_lua_index(L, 3, size);
  lua_Integer len = luaL_checkinteger(L, 4);
  if (len < 0 || start + len > size)
    luaL_argerror(L, 4, lua_pushfstring(L, "length %I from index %I runs past the end of dim %d (size %I)", len,
                                        (lua_Integer)start + 1, d + 1, (lua_Integer)size));
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_narrow(box, t, d, start, len), "narrow");
  return 1;
}

static int v_select(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  if (t->ndim == 0) luaL_argerror(L, 1, "select needs a tensor with at least 1 dim");
  int d = rn_lua_dim(L, 2, t->ndim);
  int64_t i = rn_lua_index(L, 3, t->shape[d]);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_select(box, t, d, i), "select");
  return 1;
}

static int v_transpose(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  int d0 = rn_lua_dim(L, 2, t->ndim), d1 = rn_lua_dim(L, 3, t->ndim);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_transpose(box, t, d0, d1), "transpose");
  return 1;
}

/* Dims from a table at arg or from integer args arg.., converted to 0-based. Returns the count. */
static int dims_arg(lua_State *L, int arg, int ndim, int *dims) {
  int n = 0;
  if (lua_istable(L, arg)) {
    lua_Integer len = luaL_len(L, arg);
    if (len > RN_MAX_DIMS) luaL_argerror(L, arg, "too many dims");
    int base = lua_gettop(L);
    for (n = 0; n < len; n++) lua_geti(L, arg, n + 1);
    for (int i = 0; i < n; i++) dims[i] = rn_lua_dim(L, base + 1 + i, ndim);
    lua_settop(L, base);
    return n;
  }
  while (!lua_isnoneornil(L, arg + n)) {
    if (n == RN_MAX_DIMS) luaL_argerror(L, arg + n, "too many dims");
    dims[n] = rn_lua_dim(L, arg + n, ndim);
    n++;
  }
  return n;
}

static int v_permute(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  int perm[RN_MAX_DIMS];
  int n = dims_arg(L, 2, t->ndim, perm);
  int seen[RN_MAX_DIMS] = {0};
  for (int i = 0; i < n; i++) seen[perm[i]]++;
  for (int i = 0; i < t->ndim; i++)
    if (n != t->ndim || seen[i] != 1)
      luaL_argerror(L, 2, lua_pushfstring(L, "permute needs each of the %d dims exactly once", t->ndim));
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_permute(box, t, perm), "permute");
  return 1;
}

static int v_reshape(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  int64_t shape[RN_MAX_DIMS];
  int n = rn_lua_shape_ex(L, 2, shape, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_reshape(box, t, n, shape), "reshape");
  return 1;
}

static int v_view(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  if (!rn_tensor_is_contiguous(t)) luaL_error(L, "view: the tensor is not contiguous; use :reshape() or :contiguous()");
  return v_reshape(L);
}

/* flatten(start=1, end=-1): dims start..end merged into one. */
static int v_flatten(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  if (t->ndim == 0) { lua_settop(L, 1); return v_reshape(L); }
  int s = lua_isnoneornil(L, 2) ? 0 : rn_lua_dim(L, 2, t->ndim);
  int e = lua_isnoneornil(L, 3) ? t->ndim - 1 : rn_lua_dim(L, 3, t->ndim);
  if (e < s) luaL_argerror(L, 3, "end dim comes before start dim");
  int64_t shape[RN_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < s; i++) shape[n++] = t->shape[i];
  int64_t m = 1;
  for (int i = s; i <= e; i++) m *= t->shape[i];
  shape[n++] = m;
  for (int i = e + 1; i < t->ndim; i++) shape[n++] = t->shape[i];
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_reshape(box, t, n, shape), "flatten");
  return 1;
}

static int v_squeeze(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  rn_tensor **box;
  if (!lua_isnoneornil(L, 2)) {
    int d = rn_lua_dim(L, 2, t->ndim);
    box = rn_lua_new_box(L);
    rn_lua_check(L, rn_squeeze(box, t, d), "squeeze");
    return 1;
  }
  int64_t shape[RN_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < t->ndim; i++) if (t->shape[i] != 1) shape[n++] = t->shape[i];
  box = rn_lua_new_box(L);
  rn_lua_check(L, rn_reshape(box, t, n, shape), "squeeze");
  return 1;
}

static int v_unsqueeze(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  int d = rn_lua_dim(L, 2, t->ndim + 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_unsqueeze(box, t, d), "unsqueeze");
  return 1;
}

/* expand(shape): -1 keeps the size of the matching dim (aligned from the right). */
static int v_expand(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  int64_t shape[RN_MAX_DIMS];
  int n = rn_lua_shape_ex(L, 2, shape, 1);
  for (int i = 0; i < n; i++) {
    int j = t->ndim - n + i;
    if (shape[i] == -1) {
      if (j < 0) luaL_argerror(L, 2, "-1 is only allowed for existing dims");
      shape[i] = t->shape[j];
    }
  }
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_expand(box, t, n, shape), "expand");
  return 1;
}

static int v_contiguous(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_contiguous(box, t), "contiguous");
  return 1;
}

static int v_clone(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_clone(box, t), "clone");
  return 1;
}

static int v_detach(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_detach(box, t), "detach");
  return 1;
}

static const luaL_Reg views[] = {
  {"narrow", v_narrow}, {"select", v_select}, {"transpose", v_transpose}, {"permute", v_permute},
  {"reshape", v_reshape}, {"view", v_view}, {"flatten", v_flatten}, {"squeeze", v_squeeze},
  {"unsqueeze", v_unsqueeze}, {"expand", v_expand}, {"contiguous", v_contiguous}, {"clone", v_clone},
  {"detach", v_detach}, {NULL, NULL}};

void rn_lua_open_views(lua_State *L) { rn_lua_register(L, views, 1); }
