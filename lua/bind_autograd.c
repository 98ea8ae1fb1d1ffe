/* bind_autograd.c - gradients from Lua: x:requires_grad(on), x:grad(), x:backward(g), x:zero_grad(),
 * rn.no_grad(fn, ...), rn.grad_enabled(), rn.set_grad_enabled(on). */
#include "bind_internal.h"

/* requires_grad() -> boolean; requires_grad(on) sets it on a leaf and returns the tensor. */
static int a_requires_grad(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  if (lua_isnone(L, 2)) { lua_pushboolean(L, t->requires_grad); return 1; }
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  rn_lua_check(L, rn_set_requires_grad(t, lua_toboolean(L, 2)), "requires_grad");
  lua_settop(L, 1);
  return 1;
}

static int a_grad(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  rn_lua_push_tensor(L, rn_tensor_retain(t->grad));
  return 1;
}

static int a_grad_fn(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  if (t->grad_fn) lua_pushstring(L, t->grad_fn->name);
  else lua_pushnil(L);
  return 1;
}

static int a_is_leaf(lua_State *L) {
  lua_pushboolean(L, rn_lua_check_tensor(L, 1)->grad_fn == NULL);
  return 1;
}

static int a_backward(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1), *g = rn_lua_opt_tensor(L, 2);
  rn_lua_check(L, rn_backward(t, g), "backward");
  return 0;
}

static int a_zero_grad(lua_State *L) {
  rn_zero_grad(rn_lua_check_tensor(L, 1));
  lua_settop(L, 1);
  return 1;
}

/* no_grad(fn, ...): calls fn with grad recording off and returns its results; the mode is restored on errors. */
static int a_no_grad(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  bool prev = rn_set_grad_enabled(false);
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  rn_set_grad_enabled(prev);
  if (st != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int a_grad_enabled(lua_State *L) {
  lua_pushboolean(L, rn_grad_enabled());
  return 1;
}

static int a_set_grad_enabled(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, rn_set_grad_enabled(lua_toboolean(L, 1)));
  return 1; /* the previous mode */
}

static const luaL_Reg methods[] = {
  {"requires_grad", a_requires_grad}, {"grad", a_grad}, {"grad_fn", a_grad_fn}, {"is_leaf", a_is_leaf},
  {"backward", a_backward}, {"zero_grad", a_zero_grad}, {NULL, NULL}};

static const luaL_Reg module_fns[] = {
  {"no_grad", a_no_grad}, {"grad_enabled", a_grad_enabled}, {"set_grad_enabled", a_set_grad_enabled},
  {NULL, NULL}};

void rn_lua_open_autograd(lua_State *L) {
  rn_lua_register(L, methods, 1);
  rn_lua_register(L, module_fns, 0);
}
