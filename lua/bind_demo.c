/* bind_demo.c - core.demo_data (rn.demo_data): the embedded demo dataset (engine/include/realnet/demo_data.h).
 *
 *   local rn = require "realnet"
 *   local dir, counts = rn.demo_data.make("data/demo", {seed = 1, size = 256})
 *   -- dir = "data/demo/demo_surface"; counts = {train = 80, test_good = 20, test_defect = 40, masks = 40,
 *   --                                           defects = {"scratch", "spot", ...}, category = "demo_surface"}
 *   local img, clean, mask = rn.demo_data.render({size = 64}, "test", "crack", 1)   -- the file 000.png
 *
 * Options: seed (0), size (256), train (80), test_good (20), test_defect (8 per kind), texture ("metal",
 * "fabric" or "tile"), category ("demo_surface"), overwrite (false), threads (OpenMP default). Indices are
 * 1-based here: item i is the file numbered i - 1.
 */
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "realnet/demo_data.h"

static rn_demo_opts check_opts(lua_State *L, int arg) {
  if (!lua_isnoneornil(L, arg)) luaL_checktype(L, arg, LUA_TTABLE);
  rn_demo_opts o = rn_demo_opts_default();
  lua_Integer seed = rn_lua_opt_int(L, arg, "seed", 0);
  if (seed < 0) luaL_argerror(L, arg, "opts.seed must be a non-negative integer");
  o.seed = (uint64_t)seed;
  o.size = rn_lua_opt_int(L, arg, "size", o.size);
  o.train = rn_lua_opt_int(L, arg, "train", o.train);
  o.test_good = rn_lua_opt_int(L, arg, "test_good", o.test_good);
  o.test_defect = rn_lua_opt_int(L, arg, "test_defect", o.test_defect);
  o.threads = (int)rn_lua_opt_int(L, arg, "threads", 0);
  o.overwrite = rn_lua_opt_bool(L, arg, "overwrite", 0);
  o.category = rn_lua_opt_str(L, arg, "category", NULL); /* kept alive by the opts table */
  const char *tex = rn_lua_opt_str(L, arg, "texture", "metal");
  rn_lua_check(L, rn_demo_texture_parse(tex, &o.texture), "rn.demo_data");
  return o;
}

static void push_kinds(lua_State *L) {
  lua_createtable(L, RN_DEMO_NUM_KINDS - 1, 0);
  for (int k = 1; k < RN_DEMO_NUM_KINDS; k++) {
    lua_pushstring(L, rn_demo_kind_name((rn_demo_kind)k));
    lua_rawseti(L, -2, k);
  }
}

/* make(out, opts) -> category_dir, counts */
static int d_make(lua_State *L) {
  const char *out = luaL_checkstring(L, 1);
  rn_demo_opts o = check_opts(L, 2);
  rn_demo_counts c;
  char *dir = NULL;
  rn_lua_check(L, rn_demo_make(out, &o, &c, &dir), "rn.demo_data.make");
  lua_pushstring(L, dir);
  free(dir);
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, c.train); lua_setfield(L, -2, "train");
  lua_pushinteger(L, c.test_good); lua_setfield(L, -2, "test_good");
  lua_pushinteger(L, c.test_defect); lua_setfield(L, -2, "test_defect");
  lua_pushinteger(L, c.masks); lua_setfield(L, -2, "masks");
  lua_pushinteger(L, o.test_defect); lua_setfield(L, -2, "per_defect");
  lua_pushstring(L, o.category ? o.category : "demo_surface"); lua_setfield(L, -2, "category");
  push_kinds(L); lua_setfield(L, -2, "defects");
  return 2;
}

/* render(opts, split, kind, index) -> image uint8 [S,S,3], clean (defect-free) uint8 [S,S,3], mask uint8 [S,S] */
static int d_render(lua_State *L) {
  rn_demo_opts o = check_opts(L, 1);
  static const char *const splits[] = {"train", "test", NULL};
  int test = luaL_checkoption(L, 2, "test", splits);
  const char *kname = luaL_optstring(L, 3, "good");
  int kind = -1;
  for (int k = 0; k < RN_DEMO_NUM_KINDS; k++)
    if (strcmp(kname, rn_demo_kind_name((rn_demo_kind)k)) == 0) kind = k;
  if (kind < 0)
    luaL_argerror(L, 3, lua_pushfstring(L, "unknown kind '%s' (good, scratch, spot, crack, missing_material or "
                                           "contamination)", kname));
  lua_Integer idx = luaL_optinteger(L, 4, 1);
  if (idx < 1) luaL_argerror(L, 4, "index must be >= 1");
  rn_tensor **bi = rn_lua_new_box(L), **bc = rn_lua_new_box(L), **bm = rn_lua_new_box(L);
  rn_lua_check(L, rn_demo_render(bi, bc, bm, &o, test, (rn_demo_kind)kind, idx - 1), "rn.demo_data.render");
  return 3;
}

void rn_lua_open_demo(lua_State *L) {
  static const luaL_Reg fns[] = {{"make", d_make}, {"render", d_render}, {NULL, NULL}};
  lua_createtable(L, 0, 4);
  luaL_setfuncs(L, fns, 0);
  push_kinds(L);
  lua_setfield(L, -2, "defects");
  lua_createtable(L, RN_DEMO_NUM_TEXTURES, 0);
  for (int t = 0; t < RN_DEMO_NUM_TEXTURES; t++) {
    lua_pushstring(L, rn_demo_texture_name((rn_demo_texture)t));
    lua_rawseti(L, -2, t + 1);
  }
  lua_setfield(L, -2, "textures");
  lua_setfield(L, -2, "demo_data");
}
