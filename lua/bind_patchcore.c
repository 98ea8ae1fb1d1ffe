/* bind_patchcore.c - rn.patchcore: the PatchCore baseline (engine/include/realnet/patchcore.h).
 *
 *   local pc = rn.patchcore.new{backbone = bb, layers = {2, 3}, coreset = 0.1, seed = 1}
 *   pc:fit(ds)                                -- lua/realnet/patchcore.lua: batches -> pc:add, then pc:build()
 *   local maps, scores = pc:predict(x)        -- [B,1,H,W], [B]
 *   pc:save("patchcore.h5"); local pc2 = rn.patchcore.load("patchcore.h5", bb)
 *
 * The model userdata keeps its backbone userdata alive (user value 1) and re-attaches it before each call
 * that runs it, so a backbone freed by the user is reported instead of used. Layers are 1-based stage
 * indices or stage names. Building blocks: core.patchcore_kcenter (1-based indices), core.patchcore_knn,
 * core.patchcore_project, core.patchcore_blur.
 */
#include <string.h>

#include "bind_internal.h"
#include "realnet/patchcore.h"

#define RN_PATCHCORE_MT "realnet.PatchCore"
#define RN_BACKBONE_MT "realnet.Backbone" /* bind_backbone.c: a box whose first field is the rn_backbone * */

typedef struct { rn_patchcore *pc; } pc_box;

static rn_patchcore *check_pc(lua_State *L, int arg) {
  pc_box *b = (pc_box *)luaL_checkudata(L, arg, RN_PATCHCORE_MT);
  if (!b->pc) luaL_argerror(L, arg, "patchcore model was already freed");
  return b->pc;
}

/* The live backbone in the box at arg (raises when freed). */
static rn_backbone *check_backbone(lua_State *L, int arg) {
  rn_backbone **bb = (rn_backbone **)luaL_checkudata(L, arg, RN_BACKBONE_MT);
  if (!*bb) luaL_argerror(L, arg, "backbone was already freed");
  return *bb;
}

/* Re-attaches the model's backbone (user value 1) before a call that runs it. */
static rn_patchcore *attach(lua_State *L, int arg) {
  rn_patchcore *pc = check_pc(L, arg);
  if (lua_getiuservalue(L, arg, 1) == LUA_TNIL) luaL_error(L, "patchcore: the model has no backbone");
  rn_backbone **bb = (rn_backbone **)luaL_testudata(L, -1, RN_BACKBONE_MT);
  if (!bb || !*bb) luaL_error(L, "patchcore: its backbone was freed");
  rn_lua_check(L, rn_patchcore_set_backbone(pc, *bb), "patchcore");
  lua_pop(L, 1);
  return pc;
}

static int p_release(lua_State *L) {
  pc_box *b = (pc_box *)luaL_checkudata(L, 1, RN_PATCHCORE_MT);
  rn_patchcore_free(b->pc);
  b->pc = NULL;
  return 0;
}

static pc_box *new_box(lua_State *L) {
  pc_box *b = (pc_box *)lua_newuserdatauv(L, sizeof *b, 1);
  b->pc = NULL;
  luaL_setmetatable(L, RN_PATCHCORE_MT);
  return b;
}

/* opts.layers (1-based indices or names) into o; default {2, 3}. */
static void read_layers(lua_State *L, int opts, rn_backbone *bb, rn_patchcore_opts *o) {
  if (lua_getfield(L, opts, "layers") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1)) luaL_argerror(L, opts, "opts.layers must be a list of stage indices or names");
  lua_Integer n = luaL_len(L, -1);
  if (n < 1 || n > RN_PC_MAX_LAYERS)
    luaL_argerror(L, opts, lua_pushfstring(L, "opts.layers must list 1..%d stages", RN_PC_MAX_LAYERS));
  o->n_layers = (int)n;
  for (lua_Integer i = 1; i <= n; i++) {
    int t = lua_geti(L, -1, i);
    if (t == LUA_TSTRING) {
      int s = bb ? rn_backbone_stage_index(bb, lua_tostring(L, -1)) : -1;
      if (s < 0)
        luaL_argerror(L, opts, lua_pushfstring(L, "opts.layers[%I]: %s has no stage '%s'", i,
                                               bb ? rn_backbone_arch(bb) : "(no backbone)", lua_tostring(L, -1)));
      o->layers[i - 1] = s;
    } else {
      int ok;
      lua_Integer k = lua_tointegerx(L, -1, &ok);
      if (!ok || k < 1 || k > 64)
        luaL_argerror(L, opts, lua_pushfstring(L, "opts.layers[%I] must be a stage index >= 1 or a name", i));
      o->layers[i - 1] = (int)k - 1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void read_score(lua_State *L, int opts, rn_patchcore_opts *o) {
  const char *score = rn_lua_opt_str(L, opts, "score", NULL);
  if (score) rn_lua_check(L, rn_pc_score_parse(score, &o->score), "patchcore opts.score");
  lua_Integer rw = rn_lua_opt_int(L, opts, "reweight", o->reweight);
  if (rw < 0 || rw > 1 << 20) luaL_argerror(L, opts, "opts.reweight must be in 0..2^20");
  o->reweight = (int)rw;
}

/* patchcore_new{backbone, layers, neighbourhood, pre_dim, dim, coreset, proj_dim, seed, sigma, score, reweight} */
static int p_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "backbone"); /* 2 */
  rn_backbone *bb = lua_isnil(L, 2) ? NULL : check_backbone(L, 2);
  rn_patchcore_opts o = rn_patchcore_opts_default();
  read_layers(L, 1, bb, &o);
  lua_Integer nb = rn_lua_opt_int(L, 1, "neighbourhood", o.neighbourhood);
  lua_Integer pre = rn_lua_opt_int(L, 1, "pre_dim", 0), dim = rn_lua_opt_int(L, 1, "dim", 0);
  lua_Integer proj = rn_lua_opt_int(L, 1, "proj_dim", o.proj_dim), seed = rn_lua_opt_int(L, 1, "seed", 0);
  if (nb < 0 || nb > 1 << 20 || pre < 0 || pre > 1 << 20 || dim < 0 || dim > 1 << 20 || proj < 0 || proj > 1 << 20)
    luaL_argerror(L, 1, "neighbourhood, pre_dim, dim and proj_dim must be in 0..2^20");
  if (seed < 0) luaL_argerror(L, 1, "opts.seed must be >= 0");
  o.neighbourhood = (int)nb;
  o.pre_dim = (int)pre;
  o.dim = (int)dim;
  o.proj_dim = (int)proj;
  o.seed = (uint64_t)seed;
  o.coreset = rn_lua_opt_num(L, 1, "coreset", o.coreset);
  o.sigma = (float)rn_lua_opt_num(L, 1, "sigma", o.sigma);
  read_score(L, 1, &o);
  pc_box *b = new_box(L);
  rn_lua_check(L, rn_patchcore_new(&b->pc, bb, &o), "patchcore");
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* patchcore_load(path [, backbone]) */
static int p_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_settop(L, 2);
  rn_backbone *bb = lua_isnil(L, 2) ? NULL : check_backbone(L, 2);
  pc_box *b = new_box(L);
  rn_lua_check(L, rn_patchcore_load(&b->pc, path, bb), "patchcore load");
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* pc:set_backbone(bb): a backbone of the model's architecture (e.g. after loading without one) */
static int p_set_backbone(lua_State *L) {
  rn_patchcore *pc = check_pc(L, 1);
  rn_lua_check(L, rn_patchcore_set_backbone(pc, check_backbone(L, 2)), "patchcore");
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 1);
  return 0;
}

/* pc:add(images [N,3,H,W]) -> the number of training patches so far */
static int p_add(lua_State *L) {
  rn_patchcore *pc = attach(L, 1);
  rn_lua_check(L, rn_patchcore_add(pc, rn_lua_check_tensor(L, 2)), "patchcore add");
  lua_pushinteger(L, rn_patchcore_train_patches(pc));
  return 1;
}

/* pc:add_features(t [P, D] or [N, h, w, D]) */
static int p_add_features(lua_State *L) {
  rn_patchcore *pc = check_pc(L, 1);
  rn_lua_check(L, rn_patchcore_add_features(pc, rn_lua_check_tensor(L, 2)), "patchcore add_features");
  lua_pushinteger(L, rn_patchcore_train_patches(pc));
  return 1;
}

/* pc:build() -> bank size */
static int p_build(lua_State *L) {
  rn_patchcore *pc = check_pc(L, 1);
  rn_lua_check(L, rn_patchcore_build(pc), "patchcore build");
  lua_pushinteger(L, rn_patchcore_bank_size(pc));
  return 1;
}

/* pc:predict(images) -> maps [B,1,H,W], scores [B] */
static int p_predict(lua_State *L) {
  rn_patchcore *pc = attach(L, 1);
  rn_tensor *x = rn_lua_check_tensor(L, 2);
  rn_tensor **m = rn_lua_new_box(L), **s = rn_lua_new_box(L);
  rn_lua_check(L, rn_patchcore_predict(pc, x, m, s), "patchcore predict");
  rn_lua_gc_nudge(L);
  return 2;
}

/* pc:embed({stage features}) -> [N, h, w, D] */
static int p_embed(lua_State *L) {
  rn_patchcore *pc = check_pc(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  rn_patchcore_opts o = rn_patchcore_get_opts(pc);
  if (luaL_len(L, 2) != o.n_layers)
    luaL_argerror(L, 2, lua_pushfstring(L, "expected %d stage features", o.n_layers));
  rn_tensor *f[RN_PC_MAX_LAYERS];
  for (int l = 0; l < o.n_layers; l++) {
    lua_geti(L, 2, l + 1);
    f[l] = rn_lua_check_tensor(L, -1); /* the table keeps it alive */
    lua_pop(L, 1);
  }
  rn_tensor **e = rn_lua_new_box(L);
  rn_lua_check(L, rn_patchcore_embed(pc, f, e), "patchcore embed");
  return 1;
}

static int p_save(lua_State *L) {
  rn_lua_check(L, rn_patchcore_save(check_pc(L, 1), luaL_checkstring(L, 2)), "patchcore save");
  return 0;
}

/* pc:bank() -> [K, D] (a copy) or nil before a build */
static int p_bank(lua_State *L) {
  rn_tensor *bank = rn_patchcore_get_bank(check_pc(L, 1));
  if (!bank) { lua_pushnil(L); return 1; }
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_clone(box, bank), "patchcore bank");
  return 1;
}

/* pc:set_score(name [, reweight]) */
static int p_set_score(lua_State *L) {
  rn_patchcore *pc = check_pc(L, 1);
  rn_patchcore_opts o = rn_patchcore_get_opts(pc);
  rn_lua_check(L, rn_pc_score_parse(luaL_checkstring(L, 2), &o.score), "patchcore set_score");
  lua_Integer rw = luaL_optinteger(L, 3, o.reweight);
  if (rw < 0 || rw > 1 << 20) luaL_argerror(L, 3, "reweight must be in 0..2^20");
  rn_lua_check(L, rn_patchcore_set_score(pc, o.score, (int)rw), "patchcore set_score");
  return 0;
}

/* pc:config() -> {layers (1-based), neighbourhood, pre_dim, dim, coreset, proj_dim, seed, sigma, score, reweight,
 * arch, feature_dim, bank_size, train_patches} */
static int p_config(lua_State *L) {
  rn_patchcore *pc = check_pc(L, 1);
  rn_patchcore_opts o = rn_patchcore_get_opts(pc);
  lua_createtable(L, 0, 14);
  lua_createtable(L, o.n_layers, 0);
  for (int l = 0; l < o.n_layers; l++) {
    lua_pushinteger(L, o.layers[l] + 1);
    lua_rawseti(L, -2, l + 1);
  }
  lua_setfield(L, -2, "layers");
  const struct { const char *k; lua_Integer v; } ints[] = {
    {"neighbourhood", o.neighbourhood}, {"pre_dim", o.pre_dim}, {"dim", o.dim}, {"proj_dim", o.proj_dim},
    {"seed", (lua_Integer)o.seed}, {"reweight", o.reweight}, {"feature_dim", rn_patchcore_dim(pc)},
    {"bank_size", rn_patchcore_bank_size(pc)}, {"train_patches", rn_patchcore_train_patches(pc)}};
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
    lua_pushinteger(L, ints[i].v);
    lua_setfield(L, -2, ints[i].k);
  }
  lua_pushnumber(L, o.coreset);
  lua_setfield(L, -2, "coreset");
  lua_pushnumber(L, o.sigma);
  lua_setfield(L, -2, "sigma");
  lua_pushstring(L, rn_pc_score_name(o.score));
  lua_setfield(L, -2, "score");
  lua_pushstring(L, rn_patchcore_arch(pc));
  lua_setfield(L, -2, "arch");
  return 1;
}

static int p_len(lua_State *L) {
  lua_pushinteger(L, rn_patchcore_bank_size(check_pc(L, 1)));
  return 1;
}

static int p_tostring(lua_State *L) {
  pc_box *b = (pc_box *)luaL_checkudata(L, 1, RN_PATCHCORE_MT);
  if (!b->pc) lua_pushliteral(L, "patchcore (freed)");
  else
    lua_pushfstring(L, "patchcore(%s, bank %I x %I, %I training patches pending)", rn_patchcore_arch(b->pc),
                    (lua_Integer)rn_patchcore_bank_size(b->pc), (lua_Integer)rn_patchcore_dim(b->pc),
                    (lua_Integer)rn_patchcore_train_patches(b->pc));
  return 1;
}

/* ---- building blocks */

/* patchcore_kcenter(x [N,D], k [, start = 1]) -> int64 [k] 1-based rows */
static int f_kcenter(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2), start = luaL_optinteger(L, 3, 1);
  rn_tensor *idx = NULL;
  rn_lua_check(L, rn_pc_kcenter_greedy(&idx, x, (int64_t)k, (int64_t)start - 1), "patchcore kcenter");
  rn_lua_push_index_tensor(L, idx);
  return 1;
}

/* patchcore_knn(q [M,D], bank [K,D] [, k = 1]) -> distances [M,k], int64 1-based rows [M,k] */
static int f_knn(lua_State *L) {
  rn_tensor *q = rn_lua_check_tensor(L, 1), *bank = rn_lua_check_tensor(L, 2);
  lua_Integer k = luaL_optinteger(L, 3, 1);
  if (k < 1 || k > 1 << 30) luaL_argerror(L, 3, "k must be >= 1");
  rn_tensor **d = rn_lua_new_box(L), *idx = NULL;
  rn_lua_check(L, rn_pc_knn(d, &idx, q, bank, (int)k), "patchcore knn");
  rn_lua_push_index_tensor(L, idx);
  return 2;
}

/* patchcore_project(x [N,D], dims [, seed = 0]) -> [N, dims] */
static int f_project(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  lua_Integer dims = luaL_checkinteger(L, 2), seed = luaL_optinteger(L, 3, 0);
  if (dims < 1 || dims > 1 << 20) luaL_argerror(L, 2, "dims must be in 1..2^20");
  if (seed < 0) luaL_argerror(L, 3, "seed must be >= 0");
  rn_tensor **y = rn_lua_new_box(L);
  rn_lua_check(L, rn_pc_project(y, x, (int)dims, (uint64_t)seed), "patchcore project");
  return 1;
}

/* patchcore_blur(x [N,C,H,W], sigma) */
static int f_blur(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  double sigma = rn_lua_check_finite(L, 2);
  rn_tensor **y = rn_lua_new_box(L);
  rn_lua_check(L, rn_pc_gaussian_blur(y, x, (float)sigma), "patchcore blur");
  return 1;
}

static const luaL_Reg methods[] = {
  {"add", p_add}, {"add_features", p_add_features}, {"build", p_build}, {"predict", p_predict},
  {"embed", p_embed}, {"save", p_save}, {"bank", p_bank}, {"config", p_config}, {"set_score", p_set_score},
  {"set_backbone", p_set_backbone}, {"free", p_release}, {NULL, NULL}};

static const luaL_Reg funcs[] = {
  {"patchcore_new", p_new}, {"patchcore_load", p_load}, {"patchcore_kcenter", f_kcenter},
  {"patchcore_knn", f_knn}, {"patchcore_project", f_project}, {"patchcore_blur", f_blur}, {NULL, NULL}};

void rn_lua_open_patchcore(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", p_release}, {"__close", p_release}, {"__tostring", p_tostring},
                                  {"__len", p_len}, {NULL, NULL}};
  rn_lua_new_class(L, RN_PATCHCORE_MT, meta, methods);
  luaL_getmetatable(L, RN_PATCHCORE_MT);
  lua_getfield(L, -1, "__index"); /* the methods table, so lua/realnet/patchcore.lua can add fit */
  lua_setfield(L, -3, "patchcore_methods");
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
}
