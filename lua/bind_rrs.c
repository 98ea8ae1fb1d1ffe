/* bind_rrs.c - rn.rrs: RealNet's Reconstruction Residual Selection as userdata (engine/include/realnet/rrs.h).
 *
 *   local sel <close> = rn.rrs.new{mode = "maxavg", ratio = 1/3, channels = 1536}
 *   local S, idx = sel:forward(R, {training = true})   -- S [B,K,H,W]; idx int64 [B,K] of 1-based channels
 *   local S = sel:forward(R, {training = false, indices = false})  -- S only
 *   local km, ka = sel:counts()
 *
 * new{mode = "maxavg" | "max" | "avg", ratio = 1/3 | counts = {max = k1, avg = k2} (or {k1, k2}),
 *     channels = C (default: from the first forward), enabled = true, momentum = 0.9, eps = 1e-5, device}.
 * The running statistics (:running_mean(), :running_var()) are live tensors: copying into them changes the
 * selector's state, which is how a model's load_state restores them.
 */
#include <string.h>

#include "bind_internal.h"
#include "realnet/rrs.h"

#define RN_RRS_MT "realnet.RRS"

typedef struct { rn_rrs *r; } rrs_box;

static rn_rrs *check_rrs(lua_State *L, int arg) {
  rrs_box *b = (rrs_box *)luaL_checkudata(L, arg, RN_RRS_MT);
  if (!b->r) luaL_argerror(L, arg, "rrs selector was already freed");
  return b->r;
}

static int r_release(lua_State *L) {
  rrs_box *b = (rrs_box *)luaL_checkudata(L, 1, RN_RRS_MT);
  rn_rrs_free(b->r);
  b->r = NULL;
  return 0;
}

static int64_t nonneg_int(lua_State *L, int arg, const char *what) {
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok || v < 0) luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a non-negative integer", what));
  return (int64_t)v;
}

/* opts.counts = {max = k1, avg = k2} or {k1, k2} */
static void read_counts(lua_State *L, int arg, rn_rrs_config *c) {
  if (lua_getfield(L, arg, "counts") == LUA_TNIL) { lua_pop(L, 1); return; }
  if (!lua_istable(L, -1)) luaL_argerror(L, arg, "opts.counts must be {max = k1, avg = k2} or {k1, k2}");
  int t = lua_gettop(L);
  const char *keys[2] = {"max", "avg"};
  int64_t *dst[2] = {&c->k_max, &c->k_avg};
  for (int i = 0; i < 2; i++) {
    if (lua_getfield(L, t, keys[i]) == LUA_TNIL) { lua_pop(L, 1); lua_geti(L, t, i + 1); }
    if (!lua_isnil(L, -1)) *dst[i] = nonneg_int(L, arg, i ? "opts.counts.avg" : "opts.counts.max");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (c->k_max == 0 && c->k_avg == 0) luaL_argerror(L, arg, "opts.counts must give at least one positive count");
}

/* rrs.new(opts) */
static int r_new(lua_State *L) {
  lua_settop(L, 1);
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  rn_rrs_config c = rn_rrs_config_default();
  const char *mode = rn_lua_opt_str(L, 1, "mode", "maxavg");
  rn_lua_check(L, rn_rrs_mode_parse(mode, &c.mode), "rrs.new");
  c.ratio = rn_lua_opt_num(L, 1, "ratio", c.ratio);
  lua_Integer ch = rn_lua_opt_int(L, 1, "channels", 0);
  if (ch < 0) luaL_argerror(L, 1, "opts.channels must be >= 0");
  c.channels = (int64_t)ch;
  if (!lua_isnil(L, 1)) read_counts(L, 1, &c);
  c.enabled = rn_lua_opt_bool(L, 1, "enabled", 1);
  c.momentum = (float)rn_lua_opt_num(L, 1, "momentum", c.momentum);
  c.eps = (float)rn_lua_opt_num(L, 1, "eps", c.eps);
  rn_device dev = rn_lua_opt_device(L, 1);
  rrs_box *b = (rrs_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->r = NULL;
  luaL_setmetatable(L, RN_RRS_MT);
  rn_lua_check(L, rn_rrs_new(&b->r, &c, dev), "rrs.new");
  return 1;
}

/* sel:forward(R [, opts{training = true, indices = true} | training]) -> S, indices (1-based; nil when disabled
 * or with indices = false, which spares converting them on the host: a forward then never waits for the device) */
static int r_forward(lua_State *L) {
  rn_rrs *r = check_rrs(L, 1);
  rn_tensor *x = rn_lua_check_tensor(L, 2);
  int training = 1, want_indices = 1;
  if (lua_isboolean(L, 3)) training = lua_toboolean(L, 3);
  else if (!lua_isnoneornil(L, 3)) {
    training = rn_lua_opt_bool(L, 3, "training", 1);
    want_indices = rn_lua_opt_bool(L, 3, "indices", 1);
  }
  rn_tensor **box = rn_lua_new_box(L);
  rn_tensor *idx = NULL;
  rn_lua_check(L, rn_rrs_forward(box, want_indices ? &idx : NULL, r, x, training), "rrs forward");
  if (!idx) {
    lua_pushnil(L);
    return 2;
  }
  rn_lua_push_index_tensor(L, idx);
  return 2;
}

/* sel:counts([C]) -> k_max, k_avg */
static int r_counts(lua_State *L) {
  rn_rrs *r = check_rrs(L, 1);
  int64_t km, ka;
  rn_lua_check(L, rn_rrs_counts(r, (int64_t)luaL_optinteger(L, 2, 0), &km, &ka), "rrs counts");
  lua_pushinteger(L, km);
  lua_pushinteger(L, ka);
  return 2;
}

/* sel:out_channels([C]) -> K */
static int r_out_channels(lua_State *L) {
  rn_rrs *r = check_rrs(L, 1);
  int64_t k;
  rn_lua_check(L, rn_rrs_out_channels(r, (int64_t)luaL_optinteger(L, 2, 0), &k), "rrs out_channels");
  lua_pushinteger(L, k);
  return 1;
}

/* sel:config() -> {mode, channels, ratio, k_max, k_avg, enabled, momentum, eps} */
static int r_config(lua_State *L) {
  const rn_rrs_config *c = rn_rrs_get_config(check_rrs(L, 1));
  lua_createtable(L, 0, 8);
  lua_pushstring(L, rn_rrs_mode_name(c->mode));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, c->channels);
  lua_setfield(L, -2, "channels");
  lua_pushnumber(L, c->ratio);
  lua_setfield(L, -2, "ratio");
  lua_pushinteger(L, c->k_max);
  lua_setfield(L, -2, "k_max");
  lua_pushinteger(L, c->k_avg);
  lua_setfield(L, -2, "k_avg");
  lua_pushboolean(L, c->enabled);
  lua_setfield(L, -2, "enabled");
  lua_pushnumber(L, c->momentum);
  lua_setfield(L, -2, "momentum");
  lua_pushnumber(L, c->eps);
  lua_setfield(L, -2, "eps");
  return 1;
}

static int push_stat(lua_State *L, rn_tensor *t) {
  rn_lua_push_tensor(L, rn_tensor_retain(t)); /* NULL (unknown channel count) pushes nil */
  return 1;
}

static int r_running_mean(lua_State *L) { return push_stat(L, rn_rrs_get_running_mean(check_rrs(L, 1))); }
static int r_running_var(lua_State *L) { return push_stat(L, rn_rrs_get_running_var(check_rrs(L, 1))); }

/* sel:set_running_stats(mean, var) */
static int r_set_running_stats(lua_State *L) {
  rn_rrs *r = check_rrs(L, 1);
  rn_tensor *m = rn_lua_check_tensor(L, 2), *v = rn_lua_check_tensor(L, 3);
  rn_lua_check(L, rn_rrs_set_running_stats(r, m, v), "rrs set_running_stats");
  lua_settop(L, 1);
  return 1;
}

/* sel:to(device) */
static int r_to(lua_State *L) {
  rn_rrs *r = check_rrs(L, 1);
  rn_device dev;
  rn_lua_check(L, rn_device_parse(luaL_checkstring(L, 2), &dev), "rrs to");
  rn_lua_check(L, rn_rrs_to_device(r, dev), "rrs to");
  lua_settop(L, 1);
  return 1;
}

static int r_tostring(lua_State *L) {
  rrs_box *b = (rrs_box *)luaL_checkudata(L, 1, RN_RRS_MT);
  if (!b->r) {
    lua_pushliteral(L, "rrs (freed)");
    return 1;
  }
  const rn_rrs_config *c = rn_rrs_get_config(b->r);
  int64_t km = 0, ka = 0;
  if (!c->enabled) lua_pushfstring(L, "rrs(off, channels %I)", (lua_Integer)c->channels);
  else if (c->channels > 0 && rn_rrs_counts(b->r, 0, &km, &ka) == RN_OK)
    lua_pushfstring(L, "rrs(%s, %I of %I channels: max %I, avg %I)", rn_rrs_mode_name(c->mode),
                    (lua_Integer)(km + ka), (lua_Integer)c->channels, (lua_Integer)km, (lua_Integer)ka);
  else lua_pushfstring(L, "rrs(%s, channels from the first forward)", rn_rrs_mode_name(c->mode));
  return 1;
}

static const luaL_Reg methods[] = {
  {"forward", r_forward}, {"counts", r_counts}, {"out_channels", r_out_channels}, {"config", r_config},
  {"running_mean", r_running_mean}, {"running_var", r_running_var}, {"set_running_stats", r_set_running_stats},
  {"to", r_to}, {"free", r_release}, {NULL, NULL}};

void rn_lua_open_rrs(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", r_release}, {"__close", r_release}, {"__tostring", r_tostring},
                                  {NULL, NULL}};
  rn_lua_new_class(L, RN_RRS_MT, meta, methods);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, r_new);
  lua_setfield(L, -2, "new");
  lua_setfield(L, -2, "rrs");
}
