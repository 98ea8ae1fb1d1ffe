/* bind_bench.c - rn.bench_conv{batch=8, res=256, quick=false}: the WideResNet-50-2 convolution benchmark
 * (engine/src/bench_conv.c) for scripts/bench.lua. */
#include <stdlib.h>

#include "binding.h"
#include "realnet/bench.h"

/* An optional integer field of the options table at index 1. */
static int opt_int_field(lua_State *L, const char *key, int def, int lo, int hi) {
  int t = lua_getfield(L, 1, key);
  int v = def;
  if (t != LUA_TNIL) {
    int ok = 0;
    lua_Integer n = lua_tointegerx(L, -1, &ok);
    if (!ok || n < lo || n > hi) luaL_error(L, "bench_conv: option '%s' must be an integer in %d..%d", key, lo, hi);
    v = (int)n;
  }
  lua_pop(L, 1);
  return v;
}

static void set_num(lua_State *L, const char *key, double v) { lua_pushnumber(L, v); lua_setfield(L, -2, key); }
static void set_int(lua_State *L, const char *key, int v) { lua_pushinteger(L, v); lua_setfield(L, -2, key); }

/* bench_conv([opts]) -> rows, sgemm_gflops, summary
 * rows[i] = {in_ch, out_ch, kernel, stride, pad, in_h, in_w, out_h, out_w, count, gflop, seconds, gflops};
 * summary = {sgemm_gflops, openblas_gflops, onednn_sgemm_gflops, conv_gflops, total_seconds, conv_impl, threads} */
static int b_bench_conv(lua_State *L) {
  if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
  luaL_checktype(L, 1, LUA_TTABLE);
  int batch = opt_int_field(L, "batch", 8, 1, 1024), res = opt_int_field(L, "res", 256, 32, 4096);
  lua_getfield(L, 1, "quick");
  bool quick = lua_toboolean(L, -1);
  lua_pop(L, 1);
  rn_bench_row *rows = NULL;
  int n = 0;
  rn_bench_summary s;
  rn_lua_check(L, rn_bench_conv(batch, res, quick, &rows, &n, &s), "bench_conv");
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    const rn_bench_row *r = &rows[i];
    lua_createtable(L, 0, 13);
    set_int(L, "in_ch", r->in_ch); set_int(L, "out_ch", r->out_ch); set_int(L, "kernel", r->kernel);
    set_int(L, "stride", r->stride); set_int(L, "pad", r->pad); set_int(L, "in_h", r->in_h);
    set_int(L, "in_w", r->in_w); set_int(L, "out_h", r->out_h); set_int(L, "out_w", r->out_w);
    set_int(L, "count", r->count); set_num(L, "gflop", r->gflop); set_num(L, "seconds", r->seconds);
    set_num(L, "gflops", r->gflops);
    lua_rawseti(L, -2, i + 1);
  }
  free(rows);
  lua_pushnumber(L, s.sgemm_gflops);
  lua_createtable(L, 0, 7);
  set_num(L, "sgemm_gflops", s.sgemm_gflops);
  set_num(L, "openblas_gflops", s.openblas_gflops);
  set_num(L, "onednn_sgemm_gflops", s.onednn_sgemm_gflops);
  set_num(L, "conv_gflops", s.conv_gflops);
  set_num(L, "total_seconds", s.total_seconds);
  lua_pushstring(L, s.conv_impl);
  lua_setfield(L, -2, "conv_impl");
  set_int(L, "threads", s.threads);
  return 3;
}

void rn_lua_open_bench(lua_State *L) {
  lua_pushcfunction(L, b_bench_conv);
  lua_setfield(L, -2, "bench_conv");
}
