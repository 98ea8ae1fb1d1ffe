/* bind_sys.c - engine facts and small host utilities the Lua library needs: version, threads, memory,
 * directory listing (Lua itself cannot list a directory), sleep and the process id. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bind_internal.h"

static int y_set_num_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 0 || n > 4096) luaL_argerror(L, 1, "thread count must be in 0..4096 (0 restores the default)");
  rn_set_num_threads((int)n);
  return 0;
}

static int y_get_num_threads(lua_State *L) {
  lua_pushinteger(L, rn_get_num_threads());
  return 1;
}

/* allocated_bytes([device type "cpu"|"cuda"]) */
static int y_allocated_bytes(lua_State *L) {
  static const char *const types[] = {"cpu", "cuda", NULL};
  int t = luaL_checkoption(L, 1, "cpu", types);
  lua_pushinteger(L, (lua_Integer)rn_allocated_bytes(t == 0 ? RN_CPU : RN_CUDA));
  return 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* listdir(path) -> sorted names (without . and ..), or nil, msg */
static int y_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot list %s: %s", path, strerror(errno));
    return 2;
  }
  lua_newtable(L);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  /* sort through Lua's table.sort-free path: copy out, qsort, copy back */
  const char **names = (const char **)lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0);
  for (int i = 0; i < n; i++) { lua_rawgeti(L, -2, i + 1); names[i] = lua_tostring(L, -1); lua_pop(L, 1); }
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) { lua_pushstring(L, names[i]); lua_rawseti(L, -2, i + 1); }
  return 1;
}

/* file_type(path) -> "file" | "directory" | "other" | nil */
static int y_file_type(lua_State *L) {
  struct stat st;
  if (stat(luaL_checkstring(L, 1), &st) != 0) { lua_pushnil(L); return 1; }
  lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
  return 1;
}

/* now() -> seconds on a monotonic clock (for timing and progress lines) */
static int y_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
  return 1;
}

/* sleep(seconds): waits (rounded to microseconds); polling loops between processes (realnet.dist) use it */
static int y_sleep(lua_State *L) {
  lua_Number sec = luaL_checknumber(L, 1);
  if (!(sec >= 0 && sec <= 3600)) luaL_argerror(L, 1, "seconds must be in [0, 3600]");
  struct timespec ts = {(time_t)sec, (long)((sec - (lua_Number)(time_t)sec) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return 0;
}

/* getpid() -> this process's id (names of per-process temporary files) */
static int y_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

/* gc_stats() -> {full, seconds}: the collections that tensor allocations triggered (rn_lua_gc_nudge: Lua
 * does not see tensor bytes, so the binding steps the collector itself) and the time they took */
static int y_gc_stats(lua_State *L) {
  rn_lua_state *s = rn_lua_state_of(L);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, s->gc_full);
  lua_setfield(L, -2, "full");
  lua_pushnumber(L, s->gc_seconds);
  lua_setfield(L, -2, "seconds");
  return 1;
}

/* kernel_calls() -> the op layer's kernel calls so far (rn_kernel_calls): a difference counts a forward's kernels */
static int y_kernel_calls(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)rn_kernel_calls());
  return 1;
}

static const luaL_Reg fns[] = {{"now", y_now}, {"gc_stats", y_gc_stats}, {"kernel_calls", y_kernel_calls},
  {"set_num_threads", y_set_num_threads}, {"get_num_threads", y_get_num_threads},
  {"allocated_bytes", y_allocated_bytes}, {"listdir", y_listdir}, {"file_type", y_file_type},
  {"sleep", y_sleep}, {"getpid", y_getpid}, {NULL, NULL}};

void rn_lua_open_sys(lua_State *L) {
  rn_lua_register(L, fns, 0);
  lua_pushstring(L, REALNET_VERSION);
  lua_setfield(L, -2, "version");
}
