/* bind_cuda.c - rn.device(name) and the rn.cuda table: device queries, TF32, bfloat16 autocast, synchronisation,
 * the allocator's cache. Works in every build: without the CUDA backend or a GPU, rn.cuda.available() is false and
 * rn.cuda.device_count() 0, and asking for a CUDA device raises an error saying why. */
#include "../engine/src/cuda/cuda_api.h"
#include "bind_internal.h"

/* rn.device(t) -> t's device name (as before); rn.device("cuda:1") -> "cuda:1" after checking the device exists,
 * so `local dev = rn.device(opts.device)` fails early with a clear message instead of at the first tensor. */
static int c_device(lua_State *L) {
  char buf[32];
  if (lua_isuserdata(L, 1)) {
    lua_pushstring(L, rn_device_name(rn_tensor_device(rn_lua_check_tensor(L, 1)), buf, sizeof buf));
    return 1;
  }
  const char *s = luaL_checkstring(L, 1);
  rn_device d;
  if (rn_device_parse(s, &d) != RN_OK) luaL_argerror(L, 1, rn_last_error());
  if (d.type == RN_CUDA && !rn_backend_for(d)) luaL_error(L, "device: %s", rn_last_error());
  lua_pushstring(L, rn_device_name(d, buf, sizeof buf));
  return 1;
}

static int c_available(lua_State *L) {
  lua_pushboolean(L, rn_cuda_available());
  return 1;
}

static int c_device_count(lua_State *L) {
  lua_pushinteger(L, rn_cuda_device_count());
  return 1;
}

static int c_built(lua_State *L) {
  lua_pushboolean(L, rn_cuda_built());
  return 1;
}

/* why no device is usable ("" when one is) */
static int c_reason(lua_State *L) {
  lua_pushstring(L, rn_cuda_unavailable_reason());
  return 1;
}

/* device index from an optional argument: nil/none -> 0, an integer, or "cuda:N" */
static int opt_index(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return 0;
  if (lua_type(L, arg) == LUA_TSTRING) {
    rn_device d;
    if (rn_device_parse(lua_tostring(L, arg), &d) != RN_OK || d.type != RN_CUDA)
      luaL_argerror(L, arg, "expected a CUDA device index or name (cuda, cuda:N)");
    return d.index;
  }
  lua_Integer i = luaL_checkinteger(L, arg);
  if (i < 0 || i > 1024) luaL_argerror(L, arg, "device index out of range");
  return (int)i;
}

static int c_device_name(lua_State *L) {
  char buf[256];
  rn_lua_check(L, rn_cuda_device_name(opt_index(L, 1), buf, sizeof buf), "cuda.device_name");
  lua_pushstring(L, buf);
  return 1;
}

static int c_set_tf32(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  rn_cuda_set_tf32(lua_toboolean(L, 1));
  return 0;
}

static int c_tf32(lua_State *L) {
  lua_pushboolean(L, rn_cuda_get_tf32());
  return 1;
}

static int c_set_bf16(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  rn_cuda_set_bf16(lua_toboolean(L, 1));
  return 0;
}

static int c_bf16(lua_State *L) {
  lua_pushboolean(L, rn_cuda_get_bf16());
  return 1;
}

/* bf16_fallbacks() -> convolutions run in float32 under the autocast (no bfloat16 algorithm), so far */
static int c_bf16_fallbacks(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)rn_cuda_bf16_fallbacks());
  return 1;
}

static int c_synchronize(lua_State *L) {
  rn_lua_check(L, rn_cuda_synchronize(opt_index(L, 1)), "cuda.synchronize");
  return 0;
}

static int c_capturing(lua_State *L) {
  lua_pushboolean(L, rn_cuda_capturing());
  return 1;
}

static int c_empty_cache(lua_State *L) {
  rn_cuda_empty_cache();
  return 0;
}

static int c_cached_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)rn_cuda_cached_bytes());
  return 1;
}

/* ------------------------------------------------------------------ lanes (see rn_cuda_fork in cuda_api.h) */

/* fork(device, n): n lanes (2 .. 8) start after the work queued so far; work goes to lane 1 */
static int c_fork(lua_State *L) {
  int dev = opt_index(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n < 2 || n > 8) luaL_argerror(L, 2, "a fork has 2 .. 8 lanes");
  rn_lua_check(L, rn_cuda_fork(dev, (int)n), "cuda.fork");
  return 0;
}

/* lane(device, i): the following work goes to lane i (1 .. n, Lua's counting; lane 1 is the device stream) */
static int c_lane(lua_State *L) {
  int dev = opt_index(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  if (i < 1 || i > 8) luaL_argerror(L, 2, "lanes are numbered 1 .. n");
  rn_lua_check(L, rn_cuda_lane(dev, (int)i - 1), "cuda.lane");
  return 0;
}

/* join(device): later work waits for every lane */
static int c_join(lua_State *L) {
  rn_lua_check(L, rn_cuda_join(opt_index(L, 1)), "cuda.join");
  return 0;
}

/* set_lanes(n) / lanes(): how many lanes realnet.device.parallel may use (1: none) */
static int c_set_lanes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 1 || n > 8) luaL_argerror(L, 1, "lanes must be 1 .. 8 (1: no parallel lanes)");
  rn_cuda_set_lanes((int)n);
  return 0;
}

static int c_lanes(lua_State *L) {
  lua_pushinteger(L, rn_cuda_get_lanes());
  return 1;
}

/* ------------------------------------------------------------------ CUDA graphs */

#define RN_CUDA_GRAPH_MT "realnet.CudaGraph"

/* graph_begin([device]): from here until graph_end, device work is recorded instead of run */
static int c_graph_begin(lua_State *L) {
  rn_lua_check(L, rn_cuda_graph_begin(opt_index(L, 1)), "cuda.graph_begin");
  return 0;
}

/* graph_end([device]) -> graph: the recorded work, replayed by graph:replay() */
static int c_graph_end(lua_State *L) {
  rn_cuda_graph **box = (rn_cuda_graph **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, RN_CUDA_GRAPH_MT);
  rn_lua_check(L, rn_cuda_graph_end(opt_index(L, 1), box), "cuda.graph_end");
  return 1;
}

static rn_cuda_graph **check_graph(lua_State *L) {
  return (rn_cuda_graph **)luaL_checkudata(L, 1, RN_CUDA_GRAPH_MT);
}

/* graph:replay(): queues the recorded work again (returns at once; reading a result waits for it) */
static int g_replay(lua_State *L) {
  rn_cuda_graph **g = check_graph(L);
  if (!*g) return luaL_error(L, "cuda graph: replay of a freed graph");
  rn_lua_check(L, rn_cuda_graph_replay(*g), "graph:replay");
  return 0;
}

/* graph:free() (and __gc): waits for its replays, then gives its memory back */
static int g_free(lua_State *L) {
  rn_cuda_graph **g = check_graph(L);
  rn_cuda_graph_free(*g);
  *g = NULL;
  return 0;
}

static const luaL_Reg graph_methods[] = {{"replay", g_replay}, {"free", g_free}, {NULL, NULL}};

static const luaL_Reg cuda_fns[] = {
  {"graph_begin", c_graph_begin}, {"graph_end", c_graph_end}, {"capturing", c_capturing},
  {"available", c_available}, {"device_count", c_device_count}, {"built", c_built},
  {"unavailable_reason", c_reason}, {"device_name", c_device_name}, {"set_tf32", c_set_tf32}, {"tf32", c_tf32},
  {"set_bf16", c_set_bf16}, {"bf16", c_bf16}, {"bf16_fallbacks", c_bf16_fallbacks},
  {"synchronize", c_synchronize}, {"empty_cache", c_empty_cache}, {"cached_bytes", c_cached_bytes},
  {"fork", c_fork}, {"lane", c_lane}, {"join", c_join}, {"set_lanes", c_set_lanes}, {"lanes", c_lanes},
  {NULL, NULL}};

void rn_lua_open_cuda(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", g_free}, {NULL, NULL}};
  rn_lua_new_class(L, RN_CUDA_GRAPH_MT, meta, graph_methods);
  lua_pushcfunction(L, c_device); /* replaces the module-level alias of t:device(), keeping its behaviour */
  lua_setfield(L, -2, "device");
  lua_newtable(L);
  luaL_setfuncs(L, cuda_fns, 0);
  lua_setfield(L, -2, "cuda");
}
