/* bind_data.c - dataset and loader userdata over dataset.h (rn.data.* in lua/realnet/data.lua).
 *
 *   local ds = core.dataset("mvtec", root, "bottle", {split = "test", size = 256})
 *   print(#ds, ds:get(1).defect)
 *   for b in ds:batches{batch = 16, shuffle = true, seed = 1} do ... b.images, b.masks, b.labels ... end
 *
 * Indices are 1-based. A loader holds a reference to its dataset, so freeing the dataset's userdata while
 * iterating is safe. Items and batches carry paths and defect types as Lua strings.
 */
#include <stdlib.h>
#include <string.h>

#include "bind_internal.h"
#include "realnet/dataset.h"

#define RN_DATASET_MT "realnet.Dataset"
#define RN_LOADER_MT "realnet.Loader"

typedef struct { rn_dataset *ds; } dataset_box;
typedef struct { rn_loader *ld; rn_dataset *ds; } loader_box; /* ds borrowed: the loader retains it */

static rn_dataset *check_dataset(lua_State *L, int arg) {
  dataset_box *b = (dataset_box *)luaL_checkudata(L, arg, RN_DATASET_MT);
  if (!b->ds) luaL_argerror(L, arg, "dataset was already freed");
  return b->ds;
}

static int d_release(lua_State *L) {
  dataset_box *b = (dataset_box *)luaL_checkudata(L, 1, RN_DATASET_MT);
  rn_dataset_release(b->ds);
  b->ds = NULL;
  return 0;
}

static rn_data_kind check_kind(lua_State *L, int arg) {
  rn_data_kind k;
  if (rn_data_kind_parse(luaL_checkstring(L, arg), &k) != RN_OK) luaL_argerror(L, arg, rn_last_error());
  return k;
}

/* opts.abnormal: a string or a list of strings, into a GC-owned array left on the stack. */
static const char **abnormal_list(lua_State *L, int arg, int *n) {
  *n = 0;
  if (lua_isnoneornil(L, arg) || lua_getfield(L, arg, "abnormal") == LUA_TNIL) {
    if (!lua_isnoneornil(L, arg)) lua_pop(L, 1);
    return NULL;
  }
  int list = lua_gettop(L);
  if (lua_type(L, list) == LUA_TSTRING) {
    const char **v = (const char **)lua_newuserdatauv(L, sizeof *v, 0);
    v[0] = lua_tostring(L, list);
    *n = 1;
    return v;
  }
  if (!lua_istable(L, list)) luaL_argerror(L, arg, "opts.abnormal must be a directory name or a list of them");
  lua_Integer len = luaL_len(L, list);
  if (len < 1 || len > 4096) luaL_argerror(L, arg, "opts.abnormal must list 1 to 4096 directories");
  const char **v = (const char **)lua_newuserdatauv(L, (size_t)len * sizeof *v, 0);
  for (lua_Integer i = 0; i < len; i++) {
    if (lua_geti(L, list, i + 1) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "opts.abnormal[%I] must be a string", i + 1));
    v[i] = lua_tostring(L, -1); /* the list (kept on the stack) holds it */
    lua_pop(L, 1);
  }
  *n = (int)len;
  return v;
}

/* dataset(kind, root, category|nil, opts{split, size, normalize, protocol, normal, abnormal, masks, normal_test}) */
static int d_new(lua_State *L) {
  lua_settop(L, 4);
  rn_data_kind kind = check_kind(L, 1);
  const char *root = luaL_checkstring(L, 2);
  const char *cat = luaL_optstring(L, 3, NULL);
  if (!lua_isnil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  rn_dataset_opts o = rn_dataset_opts_default();
  const char *split = rn_lua_opt_str(L, 4, "split", "train");
  if (rn_data_split_parse(split, &o.split) != RN_OK) luaL_argerror(L, 4, rn_last_error());
  int size[2] = {256, 256};
  if (rn_lua_opt_pair(L, 4, "size", size) && (size[0] < 0 || size[1] < 0 || (size[0] == 0) != (size[1] == 0)))
    luaL_argerror(L, 4, "opts.size must be positive (or 0 to keep each image's size)");
  o.height = size[0];
  o.width = size[1];
  o.normalize = rn_lua_opt_bool(L, 4, "normalize", 1);
  o.protocol = rn_lua_opt_str(L, 4, "protocol", NULL);
  o.normal_dir = rn_lua_opt_str(L, 4, "normal", NULL);
  o.mask_dir = rn_lua_opt_str(L, 4, "masks", NULL);
  o.normal_test_dir = rn_lua_opt_str(L, 4, "normal_test", NULL);
  o.abnormal_dirs = abnormal_list(L, 4, &o.n_abnormal);
  dataset_box *b = (dataset_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->ds = NULL;
  luaL_setmetatable(L, RN_DATASET_MT);
  rn_lua_check(L, rn_dataset_open(&b->ds, kind, root, cat, &o), rn_data_kind_name(kind));
  return 1;
}

static int d_len(lua_State *L) {
  lua_pushinteger(L, rn_dataset_size(check_dataset(L, 1)));
  return 1;
}

/* Sets the entry's string fields (path, mask_path, defect, split, label) on the table at the top. */
static void push_entry_fields(lua_State *L, const rn_dataset_entry *e) {
  lua_pushstring(L, e->path);
  lua_setfield(L, -2, "path");
  if (e->mask_path) {
    lua_pushstring(L, e->mask_path);
    lua_setfield(L, -2, "mask_path");
  }
  lua_pushstring(L, e->defect);
  lua_setfield(L, -2, "defect");
  lua_pushstring(L, e->split);
  lua_setfield(L, -2, "split");
  lua_pushinteger(L, e->label);
  lua_setfield(L, -2, "label");
}

/* entry(i) -> {path, mask_path, defect, split, label} without decoding */
static int d_entry(lua_State *L) {
  rn_dataset *ds = check_dataset(L, 1);
  int64_t i = rn_lua_index(L, 2, rn_dataset_size(ds));
  rn_dataset_entry e;
  rn_lua_check(L, rn_dataset_get_entry(ds, i, &e), "dataset entry");
  lua_createtable(L, 0, 5);
  push_entry_fields(L, &e);
  return 1;
}

/* get(i) -> {image [3,H,W], mask [1,H,W], label, defect, path, mask_path, split, index} */
static int d_get(lua_State *L) {
  rn_dataset *ds = check_dataset(L, 1);
  int64_t i = rn_lua_index(L, 2, rn_dataset_size(ds));
  rn_dataset_entry e;
  rn_lua_check(L, rn_dataset_get_entry(ds, i, &e), "dataset get");
  lua_createtable(L, 0, 8);
  rn_tensor **img = rn_lua_new_box(L);
  rn_tensor **mask = rn_lua_new_box(L);
  rn_lua_check(L, rn_dataset_load(ds, i, img, mask), "dataset get");
  lua_setfield(L, -3, "mask");
  lua_setfield(L, -2, "image");
  push_entry_fields(L, &e);
  lua_pushinteger(L, i + 1);
  lua_setfield(L, -2, "index");
  rn_lua_gc_nudge(L);
  return 1;
}

/* image_u8(i) -> the resized image as uint8 [H,W,3], before float conversion (for anomaly synthesis) */
static int d_image_u8(lua_State *L) {
  rn_dataset *ds = check_dataset(L, 1);
  int64_t i = rn_lua_index(L, 2, rn_dataset_size(ds));
  rn_tensor **img = rn_lua_new_box(L);
  rn_lua_check(L, rn_dataset_load_u8(ds, i, img), "dataset image_u8");
  rn_lua_gc_nudge(L);
  return 1;
}

/* info() -> {kind, root, category, split, size = {h, w} | nil, normalize} */
static int d_info(lua_State *L) {
  rn_dataset *ds = check_dataset(L, 1);
  rn_dataset_opts o = rn_dataset_get_opts(ds);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, rn_data_kind_name(rn_dataset_kind(ds)));
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, rn_dataset_get_root(ds));
  lua_setfield(L, -2, "root");
  if (rn_dataset_get_category(ds)) {
    lua_pushstring(L, rn_dataset_get_category(ds));
    lua_setfield(L, -2, "category");
  }
  lua_pushstring(L, rn_data_split_name(o.split));
  lua_setfield(L, -2, "split");
  if (o.height > 0) {
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, o.height);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, o.width);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -2, "size");
  }
  lua_pushboolean(L, o.normalize);
  lua_setfield(L, -2, "normalize");
  return 1;
}

static int d_tostring(lua_State *L) {
  dataset_box *b = (dataset_box *)luaL_checkudata(L, 1, RN_DATASET_MT);
  if (!b->ds) { lua_pushliteral(L, "dataset (freed)"); return 1; }
  rn_dataset_opts o = rn_dataset_get_opts(b->ds);
  const char *cat = rn_dataset_get_category(b->ds);
  if (o.height > 0)
    lua_pushfstring(L, "dataset(%s %s %s, %I images, %Ix%I)", rn_data_kind_name(rn_dataset_kind(b->ds)),
                    cat ? cat : rn_dataset_get_root(b->ds), rn_data_split_name(o.split),
                    (lua_Integer)rn_dataset_size(b->ds), (lua_Integer)o.height, (lua_Integer)o.width);
  else
    lua_pushfstring(L, "dataset(%s %s %s, %I images, original sizes)", rn_data_kind_name(rn_dataset_kind(b->ds)),
                    cat ? cat : rn_dataset_get_root(b->ds), rn_data_split_name(o.split),
                    (lua_Integer)rn_dataset_size(b->ds));
  return 1;
}

/* ------------------------------------------------------------------ loader */

static loader_box *check_loader(lua_State *L, int arg) {
  return (loader_box *)luaL_checkudata(L, arg, RN_LOADER_MT);
}

static int l_release(lua_State *L) {
  loader_box *b = check_loader(L, 1);
  rn_loader_free(b->ld); /* joins the workers */
  b->ld = NULL;
  b->ds = NULL;
  return 0;
}

/* next() -> batch table, or nil after the last batch (the workers are then stopped) */
static int l_next(lua_State *L) {
  loader_box *b = check_loader(L, 1);
  if (!b->ld) { lua_pushnil(L); return 1; }
  rn_batch bt;
  rn_status st = rn_loader_next(b->ld, &bt);
  if (st == RN_OK && !bt.images) { /* exhausted: stop the threads now */
    rn_loader_free(b->ld);
    b->ld = NULL;
    lua_pushnil(L);
    return 1;
  }
  if (st != RN_OK) {
    lua_pushstring(L, rn_last_error()); /* before the free, which stops the other workers */
    rn_loader_free(b->ld);
    b->ld = NULL;
    return lua_error(L);
  }
  lua_createtable(L, 0, 7);
  rn_lua_push_tensor(L, bt.images);
  lua_setfield(L, -2, "images");
  rn_lua_push_tensor(L, bt.masks);
  lua_setfield(L, -2, "masks");
  rn_lua_push_tensor(L, bt.labels);
  lua_setfield(L, -2, "labels");
  lua_pushinteger(L, bt.size);
  lua_setfield(L, -2, "size");
  const char *keys[3] = {"paths", "defects", "indices"};
  for (int f = 0; f < 3; f++) {
    lua_createtable(L, (int)bt.size, 0);
    for (int64_t i = 0; i < bt.size; i++) {
      rn_dataset_entry e;
      rn_dataset_get_entry(b->ds, bt.indices[i], &e);
      if (f == 0) lua_pushstring(L, e.path);
      else if (f == 1) lua_pushstring(L, e.defect);
      else lua_pushinteger(L, bt.indices[i] + 1);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, keys[f]);
  }
  rn_lua_gc_nudge(L);
  return 1;
}

static int l_len(lua_State *L) {
  loader_box *b = check_loader(L, 1);
  lua_pushinteger(L, b->ld ? rn_loader_num_batches(b->ld) : 0);
  return 1;
}

static int l_workers(lua_State *L) {
  loader_box *b = check_loader(L, 1);
  lua_pushinteger(L, b->ld ? rn_loader_workers(b->ld) : 0);
  return 1;
}

static int l_tostring(lua_State *L) {
  loader_box *b = check_loader(L, 1);
  if (!b->ld) lua_pushliteral(L, "loader (finished)");
  else
    lua_pushfstring(L, "loader(%I batches, %d workers)", (lua_Integer)rn_loader_num_batches(b->ld),
                    rn_loader_workers(b->ld));
  return 1;
}

/* ds:batches{batch, shuffle, seed, epoch, generator, workers, drop_last, prefetch} -> iterator, loader, nil,
 * loader: the loader is the generic for's closing value, so `break` stops the workers at once. */
static int d_batches(lua_State *L) {
  lua_settop(L, 2);
  rn_dataset *ds = check_dataset(L, 1);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  rn_loader_opts o = rn_loader_opts_default();
  lua_Integer batch = rn_lua_opt_int(L, 2, "batch", 16);
  if (batch < 1) luaL_argerror(L, 2, "opts.batch must be >= 1");
  o.batch = batch;
  o.shuffle = rn_lua_opt_bool(L, 2, "shuffle", 0);
  o.drop_last = rn_lua_opt_bool(L, 2, "drop_last", 0);
  lua_Integer workers = rn_lua_opt_int(L, 2, "workers", -1);
  if (workers < -1 || workers > 256) luaL_argerror(L, 2, "opts.workers must be in 0..256 (-1: default)");
  o.workers = (int)workers;
  lua_Integer prefetch = rn_lua_opt_int(L, 2, "prefetch", 0);
  if (prefetch < 0 || prefetch > 1024) luaL_argerror(L, 2, "opts.prefetch must be in 0..1024");
  o.prefetch = (int)prefetch;
  lua_Integer epoch = rn_lua_opt_int(L, 2, "epoch", 0);
  if (epoch < 0) luaL_argerror(L, 2, "opts.epoch must be >= 0");
  rn_rng scratch;
  o.rng = rn_lua_opt_rng(L, 2, &scratch);
  if (o.rng == &scratch) scratch.stream += (uint64_t)epoch; /* seed + epoch: a new order per epoch */
  lua_pushcfunction(L, l_next);
  loader_box *b = (loader_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->ld = NULL;
  b->ds = ds;
  luaL_setmetatable(L, RN_LOADER_MT);
  rn_lua_check(L, rn_loader_new(&b->ld, ds, &o), "batches");
  lua_pushnil(L);
  lua_pushvalue(L, -2);
  return 4;
}

/* ------------------------------------------------------------------ doctor helpers */

static void push_problems(lua_State *L, const rn_dataset_problem *v, int64_t n) {
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, rn_problem_kind_name(v[i].kind));
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, v[i].path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, v[i].message);
    lua_setfield(L, -2, "message");
    lua_rawseti(L, -2, i + 1);
  }
}

/* dataset_check(kind, root, category|nil, opts, threads) -> {counts, problems, warnings, images, masks} */
static int d_check(lua_State *L) {
  lua_settop(L, 5);
  rn_data_kind kind = check_kind(L, 1);
  const char *root = luaL_checkstring(L, 2);
  const char *cat = luaL_optstring(L, 3, NULL);
  if (!lua_isnil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  int threads = (int)luaL_optinteger(L, 5, 0);
  rn_dataset_opts o = rn_dataset_opts_default();
  o.protocol = rn_lua_opt_str(L, 4, "protocol", NULL);
  o.normal_dir = rn_lua_opt_str(L, 4, "normal", NULL);
  o.mask_dir = rn_lua_opt_str(L, 4, "masks", NULL);
  o.normal_test_dir = rn_lua_opt_str(L, 4, "normal_test", NULL);
  o.abnormal_dirs = abnormal_list(L, 4, &o.n_abnormal);
  rn_dataset_report *r = NULL;
  rn_lua_check(L, rn_dataset_check(&r, kind, root, cat, &o, threads), "doctor");
  lua_createtable(L, 0, 5);
  lua_createtable(L, (int)r->n_counts, 0);
  for (int64_t i = 0; i < r->n_counts; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, r->counts[i].split);
    lua_setfield(L, -2, "split");
    lua_pushstring(L, r->counts[i].defect);
    lua_setfield(L, -2, "defect");
    lua_pushinteger(L, r->counts[i].images);
    lua_setfield(L, -2, "images");
    lua_pushinteger(L, r->counts[i].masks);
    lua_setfield(L, -2, "masks");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "counts");
  push_problems(L, r->problems, r->n_problems);
  lua_setfield(L, -2, "problems");
  push_problems(L, r->warnings, r->n_warnings);
  lua_setfield(L, -2, "warnings");
  lua_pushinteger(L, r->images);
  lua_setfield(L, -2, "images");
  lua_pushinteger(L, r->masks);
  lua_setfield(L, -2, "masks");
  rn_dataset_report_free(r);
  return 1;
}

/* dataset_categories(kind, root) -> sorted list */
static int d_categories(lua_State *L) {
  rn_data_kind kind = check_kind(L, 1);
  const char *root = luaL_checkstring(L, 2);
  char **names = NULL;
  int64_t n = 0;
  rn_lua_check(L, rn_data_categories(kind, root, &names, &n), "categories");
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  free(names);
  return 1;
}

/* dataset_detect(dir) -> kind, or nil, msg */
static int d_detect(lua_State *L) {
  rn_data_kind k;
  if (rn_data_detect(luaL_checkstring(L, 1), &k) != RN_OK) {
    lua_pushnil(L);
    lua_pushstring(L, rn_last_error());
    return 2;
  }
  lua_pushstring(L, rn_data_kind_name(k));
  return 1;
}

static int d_default_workers(lua_State *L) {
  lua_pushinteger(L, rn_data_default_workers());
  return 1;
}

void rn_lua_open_data(lua_State *L) {
  static const luaL_Reg ds_methods[] = {
    {"get", d_get}, {"entry", d_entry}, {"image_u8", d_image_u8}, {"info", d_info}, {"batches", d_batches}, {"free", d_release}, {NULL, NULL}};
  static const luaL_Reg ds_meta[] = {
    {"__gc", d_release}, {"__close", d_release}, {"__len", d_len}, {"__tostring", d_tostring}, {NULL, NULL}};
  static const luaL_Reg ld_methods[] = {
    {"next", l_next}, {"workers", l_workers}, {"free", l_release}, {NULL, NULL}};
  static const luaL_Reg ld_meta[] = {
    {"__gc", l_release}, {"__close", l_release}, {"__len", l_len}, {"__tostring", l_tostring}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
    {"dataset", d_new}, {"dataset_check", d_check}, {"dataset_categories", d_categories},
    {"dataset_detect", d_detect}, {"data_default_workers", d_default_workers}, {NULL, NULL}};
  rn_lua_new_class(L, RN_DATASET_MT, ds_meta, ds_methods);
  rn_lua_new_class(L, RN_LOADER_MT, ld_meta, ld_methods);
  rn_lua_register(L, fns, 0);
}
