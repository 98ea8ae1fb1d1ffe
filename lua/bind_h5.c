/* bind_h5.c - rn.h5 (the HDF5 tensor store, engine/include/realnet/h5.h) and rn.tensorset (safetensors files
 * and .npy folders, safetensors.h) as userdata.
 *
 *   local f <close> = rn.h5.open("model.h5", "w")   -- "r" (default), "w" (new file, atomic), "a" (edit in place)
 *   f:write("/model/conv/weight", w, {compress = 4})
 *   f:set_attr("provenance", "train.lua seed 1")
 *   -- leaving the scope commits a "w" file (temporary file renamed over the target); an error discards it
 *
 *   local s <close> = rn.tensorset("resnet18.safetensors")
 *   for _, name in ipairs(s:names()) do print(name, s:load(name)) end
 *
 * "w" files: :commit() or :close() (and __close on a normal scope exit) make the file visible; :discard(),
 * __close on an error exit and __gc of a handle never closed drop it, so a half-written file never replaces
 * an old one. Opening a file that cannot be read (RN_ERR_IO) gives nil, msg; everything else raises.
 */
#include <stdlib.h>
#include <string.h>

#include "bind_internal.h"
#include "realnet/h5.h"
#include "realnet/safetensors.h"

#define RN_H5_MT "realnet.H5File"
#define RN_TSET_MT "realnet.TensorSet"

enum { MODE_R, MODE_W, MODE_A };
typedef struct { rn_h5file *f; int mode; } h5_box;

static h5_box *check_h5(lua_State *L, int arg) {
  h5_box *b = (h5_box *)luaL_checkudata(L, arg, RN_H5_MT);
  if (!b->f) luaL_argerror(L, arg, "HDF5 file is closed");
  return b;
}

/* open(path [, mode]) -> file | nil, msg */
static int h_open(lua_State *L) {
  static const char *const modes[] = {"r", "w", "a", NULL};
  const char *path = luaL_checkstring(L, 1);
  int mode = luaL_checkoption(L, 2, "r", modes);
  h5_box *b = (h5_box *)lua_newuserdatauv(L, sizeof *b, 0); /* the box first: nothing leaks if open fails */
  b->f = NULL;
  b->mode = mode;
  luaL_setmetatable(L, RN_H5_MT);
  rn_status st = mode == MODE_R ? rn_h5_open(&b->f, path) : mode == MODE_W ? rn_h5_create(&b->f, path)
                                                                           : rn_h5_open_rw(&b->f, path);
  if (st == RN_ERR_IO && mode != MODE_W) {
    lua_pushnil(L);
    lua_pushstring(L, rn_last_error());
    return 2;
  }
  rn_lua_check(L, st, "h5.open");
  return 1;
}

/* Releases the handle: commit = 1 commits a "w" file (raising on failure), 0 discards it. */
static int release(lua_State *L, h5_box *b, int commit) {
  rn_h5file *f = b->f;
  b->f = NULL;
  if (!f) return 0;
  rn_status st = commit && b->mode == MODE_W ? rn_h5_commit(f) : RN_OK;
  rn_h5_close(f);
  rn_lua_check(L, st, "h5 commit");
  return 0;
}

static int h_close(lua_State *L) { return release(L, (h5_box *)luaL_checkudata(L, 1, RN_H5_MT), 1); }
static int h_discard(lua_State *L) { return release(L, (h5_box *)luaL_checkudata(L, 1, RN_H5_MT), 0); }
static int h_gc(lua_State *L) { return release(L, (h5_box *)luaL_checkudata(L, 1, RN_H5_MT), 0); }
/* __close(self, err): commit on a normal exit, discard when the scope ends with an error */
static int h_toclose(lua_State *L) {
  return release(L, (h5_box *)luaL_checkudata(L, 1, RN_H5_MT), lua_isnoneornil(L, 2));
}

static int h_commit(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  if (b->mode != MODE_W) luaL_argerror(L, 1, "only a file opened with mode \"w\" can be committed");
  return release(L, b, 1);
}

static int h_tostring(lua_State *L) {
  h5_box *b = (h5_box *)luaL_checkudata(L, 1, RN_H5_MT);
  static const char *const names[] = {"r", "w", "a"};
  if (!b->f) lua_pushliteral(L, "h5file (closed)");
  else lua_pushfstring(L, "h5file(%s, \"%s\")", rn_h5_path(b->f), names[b->mode]);
  return 1;
}

static int h_path(lua_State *L) {
  lua_pushstring(L, rn_h5_path(check_h5(L, 1)->f));
  return 1;
}

/* read(name [, {shape = {...}}]) -> tensor; shape entries of -1 match any size */
static int h_read(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  const char *name = luaL_checkstring(L, 2);
  int64_t shape[RN_MAX_DIMS];
  int nd = -1;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "shape") != LUA_TNIL) {
      nd = rn_lua_shape_ex(L, lua_gettop(L), shape, 1);
    }
    lua_pop(L, 1);
  }
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_h5_read_tensor(box, b->f, name, nd, nd >= 0 ? shape : NULL), "h5 read");
  return 1;
}

/* read_rows(name, first (1-based), count) -> tensor */
static int h_read_rows(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  const char *name = luaL_checkstring(L, 2);
  lua_Integer first = luaL_checkinteger(L, 3), count = luaL_checkinteger(L, 4);
  if (first < 1) luaL_argerror(L, 3, "first row must be >= 1 (rows are 1-based)");
  if (count < 0) luaL_argerror(L, 4, "count must be >= 0");
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_h5_read_rows(box, b->f, name, (int64_t)first - 1, (int64_t)count), "h5 read_rows");
  return 1;
}

/* opts{compress = true | 0..9, chunk = rows, appendable = bool} */
static rn_h5_write_opts write_opts(lua_State *L, int arg, int deflate_def) {
  rn_h5_write_opts o = {deflate_def, 0, false};
  if (lua_isnoneornil(L, arg)) return o;
  luaL_checktype(L, arg, LUA_TTABLE);
  int t = lua_getfield(L, arg, "compress");
  if (t == LUA_TBOOLEAN) o.deflate = lua_toboolean(L, -1) ? 4 : 0;
  else if (t != LUA_TNIL) {
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0 || v > 9) luaL_argerror(L, arg, "opts.compress must be a boolean or a level 0..9");
    o.deflate = (int)v;
  }
  lua_pop(L, 1);
  lua_Integer rows = rn_lua_opt_int(L, arg, "chunk", 0);
  if (rows < 0) luaL_argerror(L, arg, "opts.chunk (rows per chunk) must be >= 0");
  o.chunk_rows = (int64_t)rows;
  o.appendable = rn_lua_opt_bool(L, arg, "appendable", 0);
  return o;
}

/* write(name, t [, opts]) */
static int h_write(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  const char *name = luaL_checkstring(L, 2);
  rn_tensor *t = rn_lua_check_tensor(L, 3);
  rn_h5_write_opts o = write_opts(L, 4, 0);
  rn_lua_check(L, rn_h5_write_tensor(b->f, name, t, &o), "h5 write");
  return 0;
}

/* append(name, t [, opts]): grows an appendable dataset along dim 1 (created when absent, deflate 4) */
static int h_append(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  const char *name = luaL_checkstring(L, 2);
  rn_tensor *t = rn_lua_check_tensor(L, 3);
  rn_h5_write_opts o = write_opts(L, 4, 4);
  o.appendable = true;
  rn_lua_check(L, rn_h5_append(b->f, name, t, &o), "h5 append");
  return 0;
}

static int h_has(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  lua_pushboolean(L, rn_h5_has(b->f, luaL_checkstring(L, 2)));
  return 1;
}

static void push_shape(lua_State *L, int nd, const int64_t *shape) {
  lua_createtable(L, nd, 0);
  for (int d = 0; d < nd; d++) {
    lua_pushinteger(L, (lua_Integer)shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

/* info(name) -> dtype, shape */
static int h_info(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  rn_dtype dt;
  int nd;
  int64_t shape[RN_MAX_DIMS];
  rn_lua_check(L, rn_h5_info(b->f, luaL_checkstring(L, 2), &dt, &nd, shape), "h5 info");
  lua_pushstring(L, rn_dtype_name(dt));
  push_shape(L, nd, shape);
  return 2;
}

/* Pushes a malloc'd name list as a Lua list and frees it (the strings are copied before any raise). */
static void push_names(lua_State *L, char **names, int n) {
  if (!lua_checkstack(L, 4)) { rn_h5_names_free(names, n); luaL_error(L, "stack overflow"); }
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  rn_h5_names_free(names, n);
}

/* list() -> sorted dataset names ("/a/b/c") */
static int h_list(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  char **names = NULL;
  int n = 0;
  rn_lua_check(L, rn_h5_list(b->f, &names, &n), "h5 list");
  push_names(L, names, n);
  return 1;
}

/* attrs([obj = "/"]) -> {key = number | string} (attributes of other kinds are left out) */
static int h_attrs(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  const char *obj = luaL_optstring(L, 2, "/");
  char **keys = NULL;
  int n = 0;
  rn_lua_check(L, rn_h5_list_attrs(b->f, obj, &keys, &n), "h5 attrs");
  push_names(L, keys, n);
  int list = lua_gettop(L);
  lua_createtable(L, 0, n);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    const char *key = lua_tostring(L, -1);
    rn_h5_attr_kind kind = RN_H5_ATTR_NONE;
    rn_lua_check(L, rn_h5_attr_type(b->f, obj, key, &kind), "h5 attrs");
    if (kind == RN_H5_ATTR_NUMBER) {
      double v = 0;
      rn_lua_check(L, rn_h5_get_attr_num(b->f, obj, key, &v), "h5 attrs");
      lua_Integer iv;
      if (lua_numbertointeger(v, &iv) && (double)iv == v) lua_pushinteger(L, iv);
      else lua_pushnumber(L, v);
    } else if (kind == RN_H5_ATTR_STRING) {
      char *s = NULL;
      rn_lua_check(L, rn_h5_get_attr_str(b->f, obj, key, &s), "h5 attrs");
      lua_pushstring(L, s); /* cannot raise short of memory; s would leak only then */
      free(s);
    } else {
      lua_pop(L, 1);
      continue;
    }
    lua_rawset(L, -3);
  }
  return 1;
}

/* set_attr(key, value) on the root, or set_attr(obj, key, value); value a number or a string */
static int h_set_attr(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  int has_obj = lua_gettop(L) >= 4;
  const char *obj = has_obj ? luaL_checkstring(L, 2) : "/";
  int k = has_obj ? 3 : 2;
  const char *key = luaL_checkstring(L, k);
  rn_status st;
  if (lua_type(L, k + 1) == LUA_TNUMBER) st = rn_h5_set_attr_num(b->f, obj, key, lua_tonumber(L, k + 1));
  else if (lua_type(L, k + 1) == LUA_TSTRING) st = rn_h5_set_attr_str(b->f, obj, key, lua_tostring(L, k + 1));
  else if (lua_type(L, k + 1) == LUA_TBOOLEAN) st = rn_h5_set_attr_num(b->f, obj, key, lua_toboolean(L, k + 1));
  else return luaL_typeerror(L, k + 1, "number, string or boolean");
  rn_lua_check(L, st, "h5 set_attr");
  return 0;
}

/* Expectations from {name = shape, ...}: a shape table whose optional field dtype names the dtype (float32
 * when absent) and whose entries of -1 match any size. The names stay referenced by the table at arg. */
static rn_h5_expect *expectations(lua_State *L, int arg, int *count) {
  luaL_checktype(L, arg, LUA_TTABLE);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, arg)) { n++; lua_pop(L, 1); }
  rn_h5_expect *w = (rn_h5_expect *)lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *w, 0); /* GC-owned */
  memset(w, 0, (size_t)(n ? n : 1) * sizeof *w);
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_argerror(L, arg, "expected names must be strings");
    w[i].name = lua_tostring(L, -2);
    if (!lua_istable(L, -1))
      luaL_argerror(L, arg, lua_pushfstring(L, "the shape expected for '%s' must be a table", w[i].name));
    w[i].ndim = rn_lua_shape_ex(L, lua_gettop(L), w[i].shape, 1);
    w[i].dtype = RN_F32;
    if (lua_getfield(L, -1, "dtype") != LUA_TNIL) {
      const char *d = lua_tostring(L, -1);
      if (!d || rn_dtype_from_name(d, &w[i].dtype) != RN_OK)
        luaL_argerror(L, arg, lua_pushfstring(L, "bad dtype expected for '%s'", w[i].name));
    }
    lua_pop(L, 2);
    i++;
  }
  *count = n;
  return w;
}

/* load_set(expect [, opts{prefix = "/", allow_extra = false}]) -> {name = tensor}; one error lists every
 * missing, extra and mis-shaped name. */
static int h_load_set(lua_State *L) {
  h5_box *b = check_h5(L, 1);
  lua_settop(L, 3);
  int n;
  rn_h5_expect *w = expectations(L, 2, &n);
  const char *prefix = rn_lua_opt_str(L, 3, "prefix", "/");
  int allow_extra = rn_lua_opt_bool(L, 3, "allow_extra", 0);
  rn_tensor **out = (rn_tensor **)lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *out, 0);
  lua_createtable(L, 0, n); /* before the load, so only boxing can fail once tensors exist */
  rn_lua_check(L, rn_h5_load_set(b->f, prefix, n, w, allow_extra, out), "h5 load");
  for (int i = 0; i < n; i++) {
    rn_lua_push_tensor(L, out[i]);
    out[i] = NULL;
    lua_setfield(L, -2, w[i].name);
  }
  return 1;
}

static const luaL_Reg h5_methods[] = {
  {"read", h_read}, {"read_rows", h_read_rows}, {"write", h_write}, {"append", h_append}, {"has", h_has},
  {"info", h_info}, {"list", h_list}, {"attrs", h_attrs}, {"set_attr", h_set_attr}, {"load_set", h_load_set},
  {"commit", h_commit}, {"close", h_close}, {"discard", h_discard}, {"path", h_path}, {NULL, NULL}};

/* ------------------------------------------------------------------ tensor sets */

typedef struct { rn_tensorset *s; } tset_box;

static rn_tensorset *check_tset(lua_State *L, int arg) {
  tset_box *b = (tset_box *)luaL_checkudata(L, arg, RN_TSET_MT);
  if (!b->s) luaL_argerror(L, arg, "tensor set is closed");
  return b->s;
}

/* tensorset(path) -> set | nil, msg: a directory is an .npy folder, anything else a safetensors file */
static int s_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  tset_box *b = (tset_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->s = NULL;
  luaL_setmetatable(L, RN_TSET_MT);
  rn_status st = rn_tensorset_open(&b->s, path);
  if (st == RN_ERR_IO) {
    lua_pushnil(L);
    lua_pushstring(L, rn_last_error());
    return 2;
  }
  rn_lua_check(L, st, "tensorset");
  return 1;
}

static int s_close(lua_State *L) {
  tset_box *b = (tset_box *)luaL_checkudata(L, 1, RN_TSET_MT);
  rn_tensorset_close(b->s);
  b->s = NULL;
  return 0;
}

static int s_len(lua_State *L) {
  lua_pushinteger(L, rn_tensorset_count(check_tset(L, 1)));
  return 1;
}

static int s_tostring(lua_State *L) {
  tset_box *b = (tset_box *)luaL_checkudata(L, 1, RN_TSET_MT);
  if (!b->s) lua_pushliteral(L, "tensorset (closed)");
  else lua_pushfstring(L, "tensorset(%s, %d tensors)", rn_tensorset_path(b->s), rn_tensorset_count(b->s));
  return 1;
}

static int s_names(lua_State *L) {
  rn_tensorset *s = check_tset(L, 1);
  int n = rn_tensorset_count(s);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, rn_tensorset_name(s, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int s_has(lua_State *L) {
  lua_pushboolean(L, rn_tensorset_find(check_tset(L, 1), luaL_checkstring(L, 2)) >= 0);
  return 1;
}

/* info(name) -> dtype, shape, stored dtype ("F16", "npy", ...) */
static int s_info(lua_State *L) {
  rn_tensorset *s = check_tset(L, 1);
  const char *name = luaL_checkstring(L, 2);
  rn_dtype dt;
  int nd;
  int64_t shape[RN_MAX_DIMS];
  rn_lua_check(L, rn_tensorset_info(s, name, &dt, &nd, shape), "tensorset info");
  lua_pushstring(L, rn_dtype_name(dt));
  push_shape(L, nd, shape);
  lua_pushstring(L, rn_tensorset_source_dtype(s, name));
  return 3;
}

static int s_load(lua_State *L) {
  rn_tensorset *s = check_tset(L, 1);
  const char *name = luaL_checkstring(L, 2);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_tensorset_load(box, s, name), "tensorset load");
  return 1;
}

/* load_all() -> {name = tensor} */
static int s_load_all(lua_State *L) {
  rn_tensorset *s = check_tset(L, 1);
  int n = rn_tensorset_count(s);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    const char *name = rn_tensorset_name(s, i);
    rn_tensor **box = rn_lua_new_box(L);
    rn_lua_check(L, rn_tensorset_load(box, s, name), "tensorset load");
    lua_setfield(L, -2, name);
  }
  return 1;
}

static int s_metadata(lua_State *L) {
  rn_tensorset *s = check_tset(L, 1);
  int n = rn_tensorset_metadata_count(s);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, rn_tensorset_metadata_value(s, i));
    lua_setfield(L, -2, rn_tensorset_metadata_key(s, i));
  }
  return 1;
}

static int s_path(lua_State *L) {
  lua_pushstring(L, rn_tensorset_path(check_tset(L, 1)));
  return 1;
}

static const luaL_Reg tset_methods[] = {
  {"names", s_names}, {"has", s_has}, {"info", s_info}, {"load", s_load}, {"load_all", s_load_all},
  {"metadata", s_metadata}, {"path", s_path}, {"close", s_close}, {NULL, NULL}};

/* core.h5 = {open = ...}, core.tensorset(path); realnet/h5.lua adds save and load on top. */
void rn_lua_open_h5(lua_State *L) {
  static const luaL_Reg h5_meta[] = {{"__gc", h_gc}, {"__close", h_toclose}, {"__tostring", h_tostring}, {NULL, NULL}};
  static const luaL_Reg tset_meta[] = {{"__gc", s_close}, {"__close", s_close}, {"__tostring", s_tostring},
                                       {NULL, NULL}};
  rn_lua_new_class(L, RN_H5_MT, h5_meta, h5_methods);
  rn_lua_new_class(L, RN_TSET_MT, tset_meta, tset_methods);
  luaL_getmetatable(L, RN_TSET_MT);
  lua_pushcfunction(L, s_len);
  lua_setfield(L, -2, "__len");
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, h_open);
  lua_setfield(L, -2, "open");
  lua_pushinteger(L, RN_H5_FORMAT_VERSION);
  lua_setfield(L, -2, "format_version");
  lua_setfield(L, -2, "h5");
  lua_pushcfunction(L, s_open);
  lua_setfield(L, -2, "tensorset");
}
