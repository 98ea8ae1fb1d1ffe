/* realnet_model.c - the deployment C API (lua/include/realnet_model.h) over an embedded Lua state.
 *
 * Each rn_model owns one lua_State with the standard libraries, "realnet.core" preloaded (the C binding)
 * and package.path pointing at the realnet Lua library; the predictor object of lua/realnet/predictor.lua
 * lives in the registry. Every call into Lua is protected (lua_pcall), so a Lua error becomes -1 and a message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lualib.h>

#include "binding.h"
#include "realnet_model.h"

#ifndef REALNET_SOURCE_DIR
#define REALNET_SOURCE_DIR "."
#endif
#ifndef REALNET_INSTALL_DIR
#define REALNET_INSTALL_DIR "/usr/local/share/realnet"
#endif

struct rn_model {
  lua_State *L;
  int pred_ref;     /* the predictor table */
  int helpers_ref;  /* the table of helper functions below */
  float threshold;
  int input_size;
  char method[16];
  char err[1024];
};

/* Lua side of the API: thin wrappers over the predictor, returning plain values and tensors. */
static const char HELPERS[] =
  "local predictor = require 'realnet.predictor'\n"
  "local core = require 'realnet.core'\n"
  "local H = {}\n"
  "function H.open(path)\n"
  "  local p = predictor.open(path)\n"
  "  return p, p.threshold or (0/0), p.image_size, p.method\n"
  "end\n"
  "local function out_map(r, want, h, w)\n"
  "  if not want then return r.score end\n"
  "  return r.score, predictor.resize_map(r.small_map, h, w):contiguous()\n"
  "end\n"
  "function H.predict_file(p, path, want, h, w)\n"
  "  local r = p:predict_file(path, {map = false})\n"
  "  return out_map(r, want, h > 0 and h or r.height, w > 0 and w or r.width)\n"
  "end\n"
  "function H.predict_pixels(p, img, want)\n"
  "  local r = p:predict_image(img, {map = false})\n"
  "  return out_map(r, want, r.height, r.width)\n"
  "end\n"
  "function H.dims(path)\n"
  "  local img, msg = core.image.read(path)\n"
  "  if not img then error(msg, 0) end\n"
  "  return img:size(1), img:size(2)\n"
  "end\n"
  "return H\n";

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *find_home(void) {
  const char *env = getenv("REALNET_HOME");
  if (env && *env) return env;
  if (is_dir(REALNET_SOURCE_DIR "/lua/realnet")) return REALNET_SOURCE_DIR;
  return REALNET_INSTALL_DIR;
}

static void set_err(char *dst, size_t n, const char *msg) {
  if (dst && n > 0) snprintf(dst, n, "%s", msg ? msg : "unknown error");
}

/* Pops the error object of a failed pcall into m->err. */
static int fail_lua(rn_model *m) {
  const char *msg = lua_tostring(m->L, -1);
  set_err(m->err, sizeof m->err, msg ? msg : "(error object is not a string)");
  lua_pop(m->L, 1);
  return -1;
}

static int fail(rn_model *m, const char *msg) {
  set_err(m->err, sizeof m->err, msg);
  return -1;
}

void rn_model_free(rn_model *m) {
  if (!m) return;
  if (m->L) lua_close(m->L);
  free(m);
}

rn_model *rn_model_load(const char *path, char *err, size_t errlen) {
  set_err(err, errlen, "");
  if (!path) { set_err(err, errlen, "rn_model_load: path is NULL"); return NULL; }
  rn_model *m = calloc(1, sizeof *m);
  if (!m) { set_err(err, errlen, "rn_model_load: out of memory"); return NULL; }
  m->L = luaL_newstate();
  if (!m->L) { set_err(err, errlen, "rn_model_load: cannot create a Lua state"); free(m); return NULL; }
  lua_State *L = m->L;
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_realnet_core);
  lua_setfield(L, -2, "realnet.core");
  lua_pop(L, 1);
  const char *home = find_home();
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", home, home);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, HELPERS, sizeof HELPERS - 1, "=realnet_model") != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    char msg[1200];
    snprintf(msg, sizeof msg, "rn_model_load: cannot load the realnet Lua library from %s: %s", home,
             lua_tostring(L, -1));
    set_err(err, errlen, msg);
    rn_model_free(m);
    return NULL;
  }
  m->helpers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->helpers_ref);
  lua_getfield(L, -1, "open");
  lua_pushstring(L, path);
  if (lua_pcall(L, 1, 4, 0) != LUA_OK) {
    set_err(err, errlen, lua_tostring(L, -1));
    rn_model_free(m);
    return NULL;
  }
  m->threshold = (float)lua_tonumber(L, -3);
  m->input_size = (int)lua_tointeger(L, -2);
  snprintf(m->method, sizeof m->method, "%s", lua_tostring(L, -1));
  lua_pop(L, 3);
  m->pred_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1); /* helpers */
  return m;
}

/* Copies the float32 map tensor at the stack top into out (n floats); -1 when it is not one. */
static int copy_map(rn_model *m, float *out, int64_t n) {
  rn_tensor **box = (rn_tensor **)luaL_testudata(m->L, -1, RN_TENSOR_MT);
  if (!box || !*box || (*box)->dtype != RN_F32 || rn_tensor_numel(*box) != n || !rn_tensor_is_contiguous(*box))
    return fail(m, "rn_model_predict: internal error: the map has an unexpected form");
  const float *src = rn_f32(*box);
  if (!src) return fail(m, "rn_model_predict: the map is not in host memory");
  memcpy(out, src, (size_t)n * sizeof *out);
  return 0;
}

/* Pushes helper `name` and the predictor. */
static void push_call(rn_model *m, const char *name) {
  lua_rawgeti(m->L, LUA_REGISTRYINDEX, m->helpers_ref);
  lua_getfield(m->L, -1, name);
  lua_remove(m->L, -2);
  lua_rawgeti(m->L, LUA_REGISTRYINDEX, m->pred_ref);
}

int rn_model_predict(rn_model *m, const char *image_path, float *score, float *map_out, int map_h, int map_w) {
  if (!m) return -1;
  m->err[0] = '\0';
  if (!image_path || !score) return fail(m, "rn_model_predict: image_path and score must not be NULL");
  if (map_h < 0 || map_w < 0 || (map_h == 0) != (map_w == 0))
    return fail(m, "rn_model_predict: map_h and map_w must both be positive, or both 0 for the image's size");
  lua_State *L = m->L;
  int top = lua_gettop(L);
  push_call(m, "predict_file");
  lua_pushstring(L, image_path);
  lua_pushboolean(L, map_out != NULL);
  lua_pushinteger(L, map_h);
  lua_pushinteger(L, map_w);
  if (lua_pcall(L, 5, 2, 0) != LUA_OK) return fail_lua(m);
  *score = (float)lua_tonumber(L, -2);
  int rc = 0;
  if (map_out) {
    int64_t n;
    if (map_h > 0) {
      n = (int64_t)map_h * map_w;
    } else {
      rn_tensor **box = (rn_tensor **)luaL_testudata(L, -1, RN_TENSOR_MT);
      n = box && *box ? rn_tensor_numel(*box) : -1;
    }
    rc = copy_map(m, map_out, n);
  }
  lua_settop(L, top);
  return rc;
}

int rn_model_predict_rgb(rn_model *m, const uint8_t *pixels, int h, int w, int channels, float *score,
                         float *map_out) {
  if (!m) return -1;
  m->err[0] = '\0';
  if (!pixels || !score) return fail(m, "rn_model_predict_rgb: pixels and score must not be NULL");
  if (h < 1 || w < 1) {
    char msg[128];
    snprintf(msg, sizeof msg, "rn_model_predict_rgb: image size %dx%d must be positive", h, w);
    return fail(m, msg);
  }
  if (channels < 1 || channels > 4) {
    char msg[160];
    snprintf(msg, sizeof msg, "rn_model_predict_rgb: %d channels; expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 "
             "(RGBA)", channels);
    return fail(m, msg);
  }
  lua_State *L = m->L;
  int top = lua_gettop(L);
  push_call(m, "predict_pixels");
  int64_t shape[3] = {h, w, channels};
  rn_tensor *img = NULL;
  if (rn_tensor_from_data(&img, 3, shape, RN_U8, pixels) != RN_OK) {
    lua_settop(L, top);
    return fail(m, rn_last_error());
  }
  rn_lua_push_tensor(L, img); /* the userdata owns img now */
  lua_pushboolean(L, map_out != NULL);
  if (lua_pcall(L, 3, 2, 0) != LUA_OK) return fail_lua(m);
  *score = (float)lua_tonumber(L, -2);
  int rc = map_out ? copy_map(m, map_out, (int64_t)h * w) : 0;
  lua_settop(L, top);
  return rc;
}

int rn_model_image_dims(rn_model *m, const char *image_path, int *h, int *w) {
  if (!m) return -1;
  m->err[0] = '\0';
  if (!image_path || !h || !w) return fail(m, "rn_model_image_dims: arguments must not be NULL");
  lua_State *L = m->L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->helpers_ref);
  lua_getfield(L, -1, "dims");
  lua_pushstring(L, image_path);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) { int rc = fail_lua(m); lua_settop(L, top); return rc; }
  *h = (int)lua_tointeger(L, -2);
  *w = (int)lua_tointeger(L, -1);
  lua_settop(L, top);
  return 0;
}

float rn_model_threshold(const rn_model *m) { return m ? m->threshold : NAN; }
int rn_model_input_size(const rn_model *m) { return m ? m->input_size : 0; }
const char *rn_model_method(const rn_model *m) { return m ? m->method : ""; }
const char *rn_model_error(const rn_model *m) { return m ? m->err : "rn_model: NULL model"; }
