/* bind_backbone.c - rn.backbone: frozen ImageNet feature extractors (engine/include/realnet/backbone.h).
 *
 *   local bb <close> = rn.backbone("wide_resnet50_2", {weights = "wrn50.h5", layers = {1, 2, 3}})
 *   local feats = bb:forward(x)          -- x float32 [N,3,H,W]; a list of float32 [N,C,h,w] tensors
 *   for _, s in ipairs(bb:stages()) do print(s.name, s.channels, s.reduction, s.ready) end
 *
 * opts: weights (a safetensors file, an .npy folder or an HDF5 store; prefix = group for HDF5), layers (1-based
 * stage indices or stage names; default every stage whose weights are present), seed (random init when no
 * weights are given), allow_unmapped (list unmappable source names in the report instead of failing), device
 * ("cpu", "cuda", "cuda:N"; checked before any weights are read, which then load straight onto it).
 * bb:to(device) moves the weights (returns bb); bb:device() names where they live; inputs must be there too.
 * rn.backbone returns the backbone and, when weights were loaded, the load report
 * {loaded, ignored, unmapped, stages_ready, text}.
 */
#include <string.h>

#include "../engine/src/backbone/bb_internal.h" /* ops_path, for the tests of the device forward */
#include "bind_internal.h"
#include "realnet/backbone.h"

#define RN_BACKBONE_MT "realnet.Backbone"

typedef struct { rn_backbone *bb; } bb_box;

static rn_backbone *check_bb(lua_State *L, int arg) {
  bb_box *b = (bb_box *)luaL_checkudata(L, arg, RN_BACKBONE_MT);
  if (!b->bb) luaL_argerror(L, arg, "backbone was already freed");
  return b->bb;
}

static int b_release(lua_State *L) {
  bb_box *b = (bb_box *)luaL_checkudata(L, 1, RN_BACKBONE_MT);
  rn_backbone_free(b->bb);
  b->bb = NULL;
  return 0;
}

/* Pushes the report as a table and frees it. */
static void push_report(lua_State *L, rn_backbone_load_report *r) {
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, r->loaded);
  lua_setfield(L, -2, "loaded");
  lua_pushinteger(L, r->ignored);
  lua_setfield(L, -2, "ignored");
  lua_pushinteger(L, r->unmapped);
  lua_setfield(L, -2, "unmapped");
  lua_pushinteger(L, r->stages_ready);
  lua_setfield(L, -2, "stages_ready");
  lua_pushstring(L, r->text ? r->text : "");
  lua_setfield(L, -2, "text");
  rn_backbone_report_free(r);
}

/* Loads `path` into bb with the options at opts (allow_unmapped, prefix); pushes the report table. */
static void load_path(lua_State *L, rn_backbone *bb, const char *path, int opts) {
  rn_backbone_load_opts lo = {rn_lua_opt_bool(L, opts, "allow_unmapped", 0)};
  const char *prefix = rn_lua_opt_str(L, opts, "prefix", NULL);
  rn_backbone_load_report r;
  memset(&r, 0, sizeof r);
  rn_status st;
  if (prefix) { /* only HDF5 stores have groups */
    rn_h5file *f = NULL;
    st = rn_h5_open(&f, path);
    if (st == RN_OK) st = rn_backbone_load_h5(bb, f, prefix, &lo, &r);
    rn_h5_close(f);
  } else {
    st = rn_backbone_load_file(bb, path, &lo, &r);
  }
  if (st != RN_OK) {
    rn_backbone_report_free(&r);
    rn_lua_check(L, st, "backbone load");
  }
  push_report(L, &r);
}

/* The stage list of opts.layers (indices or names) as "layer1,layer3" for arch, built on a probe backbone so
 * that index -> name follows the engine's stage table. Pushes the string (or nil when layers is absent). */
static void stage_list(lua_State *L, int opts, const char *arch) {
  if (lua_isnoneornil(L, opts) || lua_getfield(L, opts, "layers") == LUA_TNIL) {
    if (!lua_isnoneornil(L, opts)) lua_pop(L, 1);
    lua_pushnil(L);
    return;
  }
  int layers = lua_gettop(L);
  if (!lua_istable(L, layers)) luaL_argerror(L, opts, "opts.layers must be a list of stage indices or names");
  bb_box *probe = (bb_box *)lua_newuserdatauv(L, sizeof *probe, 0); /* freed by __gc if we raise */
  probe->bb = NULL;
  luaL_setmetatable(L, RN_BACKBONE_MT);
  rn_lua_check(L, rn_backbone_new(&probe->bb, arch, NULL), "backbone");
  int ns = rn_backbone_stage_count(probe->bb);
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  lua_Integer n = luaL_len(L, layers);
  if (n == 0) luaL_argerror(L, opts, "opts.layers is empty");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, layers, i);
    const char *name = NULL;
    if (lua_type(L, -1) == LUA_TNUMBER) {
      int ok;
      lua_Integer k = lua_tointegerx(L, -1, &ok);
      if (!ok || k < 1 || k > ns)
        luaL_argerror(L, opts, lua_pushfstring(L, "opts.layers[%I]: stage %s out of range 1..%d for %s", i,
                                               lua_tostring(L, -1), ns, arch));
      name = rn_backbone_stage_name(probe->bb, (int)k - 1);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      name = lua_tostring(L, -1);
      if (rn_backbone_stage_index(probe->bb, name) < 0)
        luaL_argerror(L, opts, lua_pushfstring(L, "opts.layers[%I]: %s has no stage '%s'", i, arch, name));
    } else {
      luaL_argerror(L, opts, lua_pushfstring(L, "opts.layers[%I] must be a stage index or name", i));
    }
    lua_pop(L, 1); /* name stays valid: a stage-table string or held by the layers table */
    if (i > 1) luaL_addchar(&buf, ',');
    luaL_addstring(&buf, name);
  }
  luaL_pushresult(&buf);
  lua_replace(L, layers);
  lua_settop(L, layers); /* drops the probe; the collector frees it */
}

/* backbone(arch [, opts]) -> bb [, report] */
static int b_new(lua_State *L) {
  const char *arch = luaL_checkstring(L, 1);
  lua_settop(L, 2);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  rn_backbone_opts o = rn_backbone_opts_default();
  lua_Integer seed = rn_lua_opt_int(L, 2, "seed", 0);
  if (seed < 0) luaL_argerror(L, 2, "opts.seed must be >= 0");
  o.seed = (uint64_t)seed;
  const char *weights = rn_lua_opt_str(L, 2, "weights", NULL);
  const char *devname = rn_lua_opt_str(L, 2, "device", NULL);
  rn_device dev = rn_cpu();
  if (devname && rn_device_parse(devname, &dev) != RN_OK) luaL_argerror(L, 2, rn_last_error());
  if (!rn_backend_for(dev)) luaL_error(L, "backbone %s: device %s: %s", arch, devname, rn_last_error());
  stage_list(L, 2, arch); /* index 3: the stage string or nil */
  o.stages = lua_tostring(L, 3);
  bb_box *b = (bb_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->bb = NULL;
  luaL_setmetatable(L, RN_BACKBONE_MT);
  rn_lua_check(L, rn_backbone_new(&b->bb, arch, &o), "backbone");
  if (dev.type != RN_CPU) rn_lua_check(L, rn_backbone_to_device(b->bb, dev), "backbone");
  if (!weights) return 1;
  load_path(L, b->bb, weights, 2);
  return 2;
}

/* archs() -> the supported architecture names */
static int b_archs(lua_State *L) {
  const char *const *a = rn_backbone_archs();
  lua_newtable(L);
  for (int i = 0; a && a[i]; i++) {
    lua_pushstring(L, a[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* bb:forward(x) -> {feature tensors in the order of the requested stages} */
static int b_forward(lua_State *L) {
  rn_backbone *bb = check_bb(L, 1);
  rn_tensor *x = rn_lua_check_tensor(L, 2);
  int n = rn_backbone_output_count(bb);
  if (n <= 0) luaL_error(L, "backbone %s: no stage is ready (load weights or request stages)", rn_backbone_arch(bb));
  rn_tensor **out = (rn_tensor **)lua_newuserdatauv(L, (size_t)n * sizeof *out, 0);
  memset(out, 0, (size_t)n * sizeof *out);
  lua_createtable(L, n, 0); /* before the forward: only boxing may fail after it */
  rn_lua_check(L, rn_backbone_forward(bb, x, out), "backbone forward");
  for (int i = 0; i < n; i++) {
    rn_lua_push_tensor(L, out[i]);
    out[i] = NULL;
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* bb:stages() -> {{name, channels, reduction, ready, output}, ...}; output: the position in forward's list */
static int b_stages(lua_State *L) {
  rn_backbone *bb = check_bb(L, 1);
  int n = rn_backbone_stage_count(bb), no = rn_backbone_output_count(bb);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 5);
    lua_pushstring(L, rn_backbone_stage_name(bb, i));
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, rn_backbone_stage_channels(bb, i));
    lua_setfield(L, -2, "channels");
    lua_pushinteger(L, rn_backbone_stage_reduction(bb, i));
    lua_setfield(L, -2, "reduction");
    lua_pushboolean(L, rn_backbone_stage_ready(bb, i));
    lua_setfield(L, -2, "ready");
    for (int k = 0; k < no; k++)
      if (rn_backbone_output_stage(bb, k) == i) {
        lua_pushinteger(L, k + 1);
        lua_setfield(L, -2, "output");
      }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int b_arch(lua_State *L) {
  lua_pushstring(L, rn_backbone_arch(check_bb(L, 1)));
  return 1;
}

/* bb:load(path [, opts{allow_unmapped, prefix}]) -> report */
static int b_load(lua_State *L) {
  rn_backbone *bb = check_bb(L, 1);
  const char *path = luaL_checkstring(L, 2);
  lua_settop(L, 3);
  load_path(L, bb, path, 3);
  return 1;
}

/* bb:load_tensors({name = tensor, ...} [, opts{allow_unmapped}]) -> report */
static int b_load_tensors(lua_State *L) {
  rn_backbone *bb = check_bb(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 3);
  rn_backbone_load_opts lo = {rn_lua_opt_bool(L, 3, "allow_unmapped", 0)};
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) { n++; lua_pop(L, 1); }
  const char **names = (const char **)lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0);
  rn_tensor **ts = (rn_tensor **)lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *ts, 0);
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_argerror(L, 2, "tensor names must be strings");
    names[i] = lua_tostring(L, -2);
    rn_tensor **tb = (rn_tensor **)luaL_testudata(L, -1, RN_TENSOR_MT);
    if (!tb || !*tb) luaL_argerror(L, 2, lua_pushfstring(L, "'%s' is not a live tensor", names[i]));
    if (rn_tensor_device(*tb).type != RN_CPU)
      luaL_argerror(L, 2, lua_pushfstring(L, "'%s' must be a CPU tensor", names[i]));
    ts[i++] = *tb; /* the table keeps it alive */
    lua_pop(L, 1);
  }
  rn_backbone_load_report r;
  memset(&r, 0, sizeof r);
  rn_status st = rn_backbone_load(bb, n, names, ts, &lo, &r);
  if (st != RN_OK) {
    rn_backbone_report_free(&r);
    rn_lua_check(L, st, "backbone load");
  }
  push_report(L, &r);
  return 1;
}

/* bb:params() -> engine parameter names in order (what an import writes) */
static int b_params(lua_State *L) {
  rn_backbone *bb = check_bb(L, 1);
  int n = rn_backbone_param_count(bb);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, rn_backbone_param_name(bb, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* bb:state_dict() -> {engine name = tensor} for every present parameter, and the names in order */
static int b_state_dict(lua_State *L) {
  rn_backbone *bb = check_bb(L, 1);
  int n = rn_backbone_param_count(bb);
  lua_createtable(L, 0, n);
  lua_createtable(L, n, 0);
  int k = 0;
  for (int i = 0; i < n; i++) {
    rn_tensor *t = rn_backbone_get_param(bb, i);
    if (!t) continue;
    const char *name = rn_backbone_param_name(bb, i);
    rn_tensor **box = rn_lua_new_box(L);
    *box = rn_tensor_retain(t);
    lua_setfield(L, -3, name);
    lua_pushstring(L, name);
    lua_rawseti(L, -2, ++k);
  }
  return 2;
}

/* bb:to(device) -> bb, the weights moved (a no-op when already there) */
static int b_to(lua_State *L) {
  rn_backbone *bb = check_bb(L, 1);
  rn_device dev;
  if (rn_device_parse(luaL_checkstring(L, 2), &dev) != RN_OK) luaL_argerror(L, 2, rn_last_error());
  rn_lua_check(L, rn_backbone_to_device(bb, dev), "backbone:to");
  lua_settop(L, 1);
  return 1;
}

/* bb:device() -> "cpu" / "cuda:N" */
static int b_device(lua_State *L) {
  char buf[32];
  lua_pushstring(L, rn_device_name(rn_backbone_device(check_bb(L, 1)), buf, sizeof buf));
  return 1;
}

/* bb:use_op_path(on): run the device forward (every node through the op layer) even on the CPU, so tests can
 * hold it to the CPU forward without a GPU. */
static int b_use_op_path(lua_State *L) {
  rn_backbone *bb = check_bb(L, 1);
  bb->ops_path = lua_toboolean(L, 2);
  lua_settop(L, 1);
  return 1;
}

static int b_tostring(lua_State *L) {
  bb_box *b = (bb_box *)luaL_checkudata(L, 1, RN_BACKBONE_MT);
  if (!b->bb) {
    lua_pushliteral(L, "backbone (freed)");
    return 1;
  }
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  lua_pushfstring(L, "backbone(%s, outputs ", rn_backbone_arch(b->bb));
  luaL_addvalue(&buf);
  int no = rn_backbone_output_count(b->bb);
  for (int k = 0; k < no; k++) {
    if (k) luaL_addchar(&buf, ',');
    luaL_addstring(&buf, rn_backbone_stage_name(b->bb, rn_backbone_output_stage(b->bb, k)));
  }
  if (no == 0) luaL_addstring(&buf, "none");
  luaL_addchar(&buf, ')');
  luaL_pushresult(&buf);
  return 1;
}

static int b_len(lua_State *L) {
  lua_pushinteger(L, rn_backbone_output_count(check_bb(L, 1)));
  return 1;
}

static const luaL_Reg methods[] = {
  {"forward", b_forward}, {"stages", b_stages}, {"arch", b_arch}, {"load", b_load},
  {"load_tensors", b_load_tensors}, {"params", b_params}, {"state_dict", b_state_dict}, {"free", b_release},
  {"to", b_to}, {"device", b_device}, {"use_op_path", b_use_op_path}, {NULL, NULL}};

void rn_lua_open_backbone(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", b_release}, {"__close", b_release}, {"__tostring", b_tostring},
                                  {"__len", b_len}, {NULL, NULL}};
  rn_lua_new_class(L, RN_BACKBONE_MT, meta, methods);
  lua_pushcfunction(L, b_new);
  lua_setfield(L, -2, "backbone");
  lua_pushcfunction(L, b_archs);
  lua_setfield(L, -2, "backbone_archs");
}
