/* bind_state.c - the interim tensor-file format (until HDF5 lands): named tensors in one file.
 *
 * Layout (little-endian): "RNSTATE1", u32 count, then per tensor: u32 name length, name bytes, u32 dtype,
 * u32 ndim, i64 shape[ndim], u64 data bytes, raw contiguous data. Files are written to a temporary name in the
 * same directory and renamed over the target, so a crash never leaves a half-written file under the real name.
 *
 *   core.save_tensors(path, names, tensors)   -- lists of equal length
 *   core.load_tensors(path) -> {name = tensor, ...}, {names in file order}   | nil, msg when unreadable
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bind_internal.h"

static const char magic[8] = {'R', 'N', 'S', 'T', 'A', 'T', 'E', '1'};

static int put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n; }

static int s_save(lua_State *L) {
  lua_settop(L, 3);
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  if (luaL_len(L, 3) != n) luaL_argerror(L, 3, "names and tensors differ in length");
  if (n > UINT32_MAX) luaL_argerror(L, 2, "too many tensors");
  const char *tmp = lua_pushfstring(L, "%s.tmp%d", path, (int)getpid());
  int tmp_idx = lua_gettop(L);
  FILE *f = fopen(tmp, "wb");
  if (!f) luaL_error(L, "save: cannot write %s: %s", tmp, strerror(errno));
  uint32_t count = (uint32_t)n;
  int ok = put(f, magic, 8) && put(f, &count, 4);
  for (lua_Integer i = 1; ok && i <= n; i++) {
    int top = lua_gettop(L);
    lua_geti(L, 2, i);
    size_t len;
    const char *name = lua_tolstring(L, -1, &len);
    lua_geti(L, 3, i);
    rn_tensor **b = (rn_tensor **)luaL_testudata(L, -1, RN_TENSOR_MT);
    if (!name || !b || !*b) {
      fclose(f);
      remove(lua_tostring(L, tmp_idx));
      luaL_error(L, "save: entry %d must be a name and a live tensor", (int)i);
    }
    rn_tensor *t = *b;
    rn_tensor **cb = rn_lua_new_box(L); /* a contiguous CPU copy */
    rn_status st = rn_to_device(cb, t, rn_cpu());
    if (st == RN_OK && !rn_tensor_is_contiguous(*cb)) {
      rn_tensor *c = NULL;
      st = rn_clone(&c, *cb);
      rn_tensor_release(*cb);
      *cb = c;
    }
    if (st != RN_OK) { fclose(f); remove(lua_tostring(L, tmp_idx)); rn_lua_check(L, st, "save"); }
    uint32_t nl = (uint32_t)len, dt = (uint32_t)t->dtype, nd = (uint32_t)t->ndim;
    uint64_t bytes = (uint64_t)rn_tensor_numel(t) * rn_dtype_size(t->dtype);
    ok = put(f, &nl, 4) && put(f, name, len) && put(f, &dt, 4) && put(f, &nd, 4) &&
         put(f, t->shape, sizeof(int64_t) * nd) && put(f, &bytes, 8) && put(f, rn_tensor_data(*cb), bytes);
    lua_settop(L, top);
  }
  ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (fclose(f) != 0) ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    luaL_error(L, "save: writing %s failed: %s", path, strerror(e));
  }
  return 0;
}

typedef struct { const unsigned char *p, *end; } reader;

static int take(reader *r, void *dst, size_t n) {
  if ((size_t)(r->end - r->p) < n) return 0;
  memcpy(dst, r->p, n);
  r->p += n;
  return 1;
}

static int s_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  FILE *f = fopen(path, "rb");
  if (!f) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot open %s: %s", path, strerror(errno));
    return 2;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = (unsigned char *)lua_newuserdatauv(L, size > 0 ? (size_t)size : 1, 0); /* GC-owned */
  size_t got = size > 0 ? fread(buf, 1, (size_t)size, f) : 0;
  fclose(f);
  if (size < 0 || got != (size_t)size) luaL_error(L, "load: reading %s failed", path);
  reader r = {buf, buf + size};
  char m[8];
  uint32_t count = 0;
  if (!take(&r, m, 8) || memcmp(m, magic, 8) != 0 || !take(&r, &count, 4))
    luaL_error(L, "load: %s is not a realnet state file (bad header)", path);
  lua_createtable(L, 0, (int)(count < 1024 ? count : 1024)); /* by name */
  int by_name = lua_gettop(L);
  lua_createtable(L, (int)(count < 1024 ? count : 1024), 0); /* names in order */
  int order = lua_gettop(L);
  for (uint32_t i = 0; i < count; i++) {
    uint32_t nl = 0, dt = 0, nd = 0;
    int64_t shape[RN_MAX_DIMS] = {0};
    uint64_t bytes = 0;
    if (!take(&r, &nl, 4) || nl > (size_t)(r.end - r.p))
      luaL_error(L, "load: %s is truncated (entry %d)", path, (int)i + 1);
    lua_pushlstring(L, (const char *)r.p, nl);
    r.p += nl;
    const char *name = lua_tostring(L, -1);
    if (!take(&r, &dt, 4) || !take(&r, &nd, 4) || dt >= RN_DTYPE_COUNT || nd > RN_MAX_DIMS ||
        !take(&r, shape, sizeof(int64_t) * nd) || !take(&r, &bytes, 8))
      luaL_error(L, "load: %s: entry '%s' has a malformed header", path, name);
    rn_tensor **box = rn_lua_new_box(L);
    if (rn_tensor_empty(box, (int)nd, shape, (rn_dtype)dt, rn_cpu()) != RN_OK ||
        bytes != (uint64_t)rn_tensor_numel(*box) * rn_dtype_size((rn_dtype)dt) || bytes > (size_t)(r.end - r.p))
      luaL_error(L, "load: %s: entry '%s' has a bad shape or is truncated", path, name);
    memcpy(rn_tensor_data(*box), r.p, bytes);
    r.p += bytes;
    lua_pushvalue(L, -2);
    if (lua_rawget(L, by_name) != LUA_TNIL) luaL_error(L, "load: %s: name '%s' appears twice", path, name);
    lua_pop(L, 1);
    lua_pushvalue(L, -2);
    lua_rawseti(L, order, (lua_Integer)i + 1);
    lua_rawset(L, by_name); /* name -> tensor */
  }
  if (r.p != r.end) luaL_error(L, "load: %s has trailing bytes after %d entries", path, (int)count);
  return 2;
}

static const luaL_Reg fns[] = {{"save_tensors", s_save}, {"load_tensors", s_load}, {NULL, NULL}};

void rn_lua_open_state(lua_State *L) { rn_lua_register(L, fns, 0); }
