/* bind_optim.c - optimiser userdata over optim.h, gradient clipping and EMA updates.
 *
 *   local opt = core.optimizer("adam", params, {lr = 1e-3})   -- rn.optim.adam(params, opts) in Lua
 *   loss:backward(); opt:step(); opt:zero_grad()
 */
#include <math.h>
#include <string.h>

#include "bind_internal.h"

typedef struct { rn_optim *o; float lr; int n; } optim_box;

/* The tensors of a Lua list at arg, in a GC-owned array left on the stack. */
static rn_tensor **tensor_list(lua_State *L, int arg, int *n) {
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_Integer len = luaL_len(L, arg);
  if (len > INT32_MAX) luaL_argerror(L, arg, "too many tensors");
  rn_tensor **v = (rn_tensor **)lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *v, 0);
  for (lua_Integer i = 0; i < len; i++) {
    lua_geti(L, arg, i + 1);
    rn_tensor **b = (rn_tensor **)luaL_testudata(L, -1, RN_TENSOR_MT);
    if (!b || !*b) luaL_argerror(L, arg, lua_pushfstring(L, "entry %I is not a live tensor", i + 1));
    v[i] = *b;
    lua_pop(L, 1); /* the table keeps it alive */
  }
  *n = (int)len;
  return v;
}

static optim_box *check_optim(lua_State *L, int arg) {
  optim_box *b = (optim_box *)luaL_checkudata(L, arg, RN_OPTIM_MT);
  if (!b->o) luaL_argerror(L, arg, "optimizer was already freed");
  return b;
}

static int p_release(lua_State *L) {
  optim_box *b = (optim_box *)luaL_checkudata(L, 1, RN_OPTIM_MT);
  rn_optim_free(b->o);
  b->o = NULL;
  return 0;
}

static float nonneg(lua_State *L, int arg, const char *key, float def) {
  double v = rn_lua_opt_num(L, arg, key, def);
  if (v < 0) luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s must be >= 0, got %f", key, v));
  return (float)v;
}

/* optimizer(kind, params, opts{lr, betas = {b1, b2} | beta1/beta2, eps, momentum, nesterov, weight_decay}) */
static int p_new(lua_State *L) {
  static const char *const kinds[] = {"sgd", "adam", "adamw", NULL};
  static const rn_optim_kind kv[] = {RN_OPT_SGD, RN_OPT_ADAM, RN_OPT_ADAMW};
  lua_settop(L, 3);
  rn_optim_kind kind = kv[luaL_checkoption(L, 1, NULL, kinds)];
  int n;
  rn_tensor **params = tensor_list(L, 2, &n);
  if (n == 0) luaL_argerror(L, 2, "no parameters to optimise");
  for (int i = 0; i < n; i++)
    if (!params[i]->requires_grad || params[i]->grad_fn)
      luaL_argerror(L, 2, lua_pushfstring(L, "parameter %d is not a leaf tensor with requires_grad", i + 1));
  rn_optim_config c = rn_optim_defaults(kind);
  c.lr = nonneg(L, 3, "lr", c.lr);
  c.eps = nonneg(L, 3, "eps", c.eps);
  c.weight_decay = nonneg(L, 3, "weight_decay", c.weight_decay);
  c.momentum = nonneg(L, 3, "momentum", c.momentum);
  c.nesterov = rn_lua_opt_bool(L, 3, "nesterov", c.nesterov);
  c.beta1 = nonneg(L, 3, "beta1", c.beta1);
  c.beta2 = nonneg(L, 3, "beta2", c.beta2);
  if (!lua_isnoneornil(L, 3) && lua_getfield(L, 3, "betas") != LUA_TNIL) {
    int ok1 = 0, ok2 = 0;
    if (lua_istable(L, -1)) {
      lua_geti(L, -1, 1); c.beta1 = (float)lua_tonumberx(L, -1, &ok1); lua_pop(L, 1);
      lua_geti(L, -1, 2); c.beta2 = (float)lua_tonumberx(L, -1, &ok2); lua_pop(L, 1);
    }
    if (!ok1 || !ok2) luaL_argerror(L, 3, "opts.betas must be a pair {beta1, beta2}");
    lua_pop(L, 1);
  }
  if (!(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1))
    luaL_argerror(L, 3, "betas must be in [0, 1)");
  if (c.momentum >= 1 && kind == RN_OPT_SGD) luaL_argerror(L, 3, "opts.momentum must be < 1");
  optim_box *b = (optim_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->o = NULL;
  b->lr = c.lr;
  b->n = n;
  luaL_setmetatable(L, RN_OPTIM_MT);
  rn_lua_check(L, rn_optim_new(&b->o, &c, n, params), "optimizer");
  return 1;
}

static int p_step(lua_State *L) {
  rn_lua_check(L, rn_optim_step(check_optim(L, 1)->o), "optimizer step");
  return 0;
}

static int p_zero_grad(lua_State *L) {
  rn_optim_zero_grad(check_optim(L, 1)->o);
  return 0;
}

/* lr() -> current; lr(v) sets it */
static int p_lr(lua_State *L) {
  optim_box *b = check_optim(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    double lr = rn_lua_check_finite(L, 2);
    if (lr < 0) luaL_argerror(L, 2, "lr must be >= 0");
    b->lr = (float)lr;
    rn_optim_set_lr(b->o, b->lr);
  }
  lua_pushnumber(L, b->lr);
  return 1;
}

/* steps() -> count; steps(n) sets it (restoring a saved optimiser) */
static int p_steps(lua_State *L) {
  optim_box *b = check_optim(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    lua_Integer n = luaL_checkinteger(L, 2);
    if (n < 0) luaL_argerror(L, 2, "steps must be >= 0");
    rn_optim_set_steps(b->o, (int64_t)n);
  }
  lua_pushinteger(L, rn_optim_steps(b->o));
  return 1;
}

/* set_state(i, slot, t): parameter i's (1-based) state slot 1 or 2 becomes a copy of t (restoring). */
static int p_set_state(lua_State *L) {
  optim_box *b = check_optim(L, 1);
  int i = (int)rn_lua_index(L, 2, b->n);
  int slot = (int)rn_lua_index(L, 3, 2);
  rn_lua_check(L, rn_optim_set_state(b->o, i, slot, rn_lua_check_tensor(L, 4)), "optimizer set_state");
  return 0;
}

/* state(i, slot): the optimiser's state tensor for parameter i (1-based), slot 1 or 2; nil if none yet. */
static int p_state(lua_State *L) {
  optim_box *b = check_optim(L, 1);
  int i = (int)rn_lua_index(L, 2, b->n);
  int slot = (int)rn_lua_index(L, 3, 2);
  rn_lua_push_tensor(L, rn_tensor_retain(rn_optim_get_state(b->o, i, slot)));
  return 1;
}

static int p_tostring(lua_State *L) {
  optim_box *b = (optim_box *)luaL_checkudata(L, 1, RN_OPTIM_MT);
  if (!b->o) lua_pushliteral(L, "optimizer (freed)");
  else
    lua_pushfstring(L, "optimizer(%d params, lr %f, %I steps)", b->n, (double)b->lr,
                    (lua_Integer)rn_optim_steps(b->o));
  return 1;
}

/* clip_grad_norm(params, max_norm) -> the total norm before clipping */
static int p_clip_grad_norm(lua_State *L) {
  lua_settop(L, 2);
  int n;
  rn_tensor **params = tensor_list(L, 1, &n);
  double max_norm = rn_lua_check_finite(L, 2);
  if (max_norm <= 0) luaL_argerror(L, 2, "max_norm must be > 0");
  float total = 0;
  rn_lua_check(L, rn_clip_grad_norm(n, params, (float)max_norm, &total), "clip_grad_norm");
  lua_pushnumber(L, total);
  return 1;
}

/* ema_update(ema_params, params, decay) */
static int p_ema_update(lua_State *L) {
  lua_settop(L, 3);
  int n, m;
  rn_tensor **ema = tensor_list(L, 1, &n);
  rn_tensor **params = tensor_list(L, 2, &m);
  if (n != m) luaL_argerror(L, 2, lua_pushfstring(L, "%d EMA tensors but %d parameters", n, m));
  double decay = rn_lua_check_finite(L, 3);
  if (decay < 0 || decay > 1) luaL_argerror(L, 3, "decay must be in [0, 1]");
  rn_lua_check(L, rn_ema_update(n, ema, params, (float)decay), "ema_update");
  return 0;
}

static const luaL_Reg methods[] = {
  {"step", p_step}, {"zero_grad", p_zero_grad}, {"lr", p_lr}, {"steps", p_steps}, {"state", p_state},
  {"set_state", p_set_state}, {"free", p_release}, {NULL, NULL}};

static const luaL_Reg module_fns[] = {
  {"optimizer", p_new}, {"clip_grad_norm", p_clip_grad_norm}, {"ema_update", p_ema_update}, {NULL, NULL}};

void rn_lua_open_optim(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", p_release}, {"__close", p_release}, {"__tostring", p_tostring},
                                  {NULL, NULL}};
  rn_lua_new_class(L, RN_OPTIM_MT, meta, methods);
  rn_lua_register(L, module_fns, 0);
}
