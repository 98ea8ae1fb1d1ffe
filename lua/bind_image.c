/* bind_image.c - rn.image: decoding, writing, resizing and colouring images (engine/include/realnet/image.h).
 *
 *   local img = rn.image.read("cat.png", {channels = 3})     -- uint8 [H,W,3]; nil, msg when unreadable
 *   local small = rn.image.resize(img, 224, 224)               -- PIL's bilinear (antialiased)
 *   local x = rn.image.normalize(small)                        -- float32 [3,224,224], ImageNet statistics
 *   rn.image.write("map.tiff", heat)                           -- .png or .tif/.tiff by extension, atomic
 *
 * A file that cannot be opened or read (RN_ERR_IO) gives nil, msg, as io.open does; malformed content and
 * misuse raise a Lua error naming the file or argument.
 */
#include <math.h>
#include <string.h>

#include "bind_internal.h"
#include "realnet/image.h"

/* opts.channels / opts.max_pixels / opts.format of the table at arg. */
static rn_image_opts image_opts(lua_State *L, int arg) {
  static const char *const formats[] = {"auto", "png", "jpeg", "bmp", NULL};
  static const rn_image_format fv[] = {RN_IMAGE_UNKNOWN, RN_IMAGE_PNG, RN_IMAGE_JPEG, RN_IMAGE_BMP};
  rn_image_opts o = rn_image_opts_default();
  lua_Integer c = rn_lua_opt_int(L, arg, "channels", 0);
  if (c != 0 && c != 1 && c != 3) luaL_argerror(L, arg, "opts.channels must be 1 (gray), 3 (RGB) or absent");
  o.channels = (int)c;
  lua_Integer mp = rn_lua_opt_int(L, arg, "max_pixels", 0);
  if (mp < 0) luaL_argerror(L, arg, "opts.max_pixels must be >= 0");
  o.max_pixels = (int64_t)mp;
  const char *f = rn_lua_opt_str(L, arg, "format", "auto");
  int k = 0;
  while (formats[k] && strcmp(formats[k], f) != 0) k++;
  if (!formats[k]) luaL_argerror(L, arg, lua_pushfstring(L, "opts.format must be auto, png, jpeg or bmp, not '%s'", f));
  o.format = fv[k];
  return o;
}

/* Pushes the tensor in *box's slot, or nil + message for an I/O failure; raises for the rest. */
static int finish_read(lua_State *L, rn_status st, const char *what) {
  if (st == RN_ERR_IO) {
    lua_pushnil(L);
    lua_pushstring(L, rn_last_error());
    return 2;
  }
  rn_lua_check(L, st, what);
  return 1; /* the box is on the stack top */
}

/* read(path [, opts]) -> uint8/int32 [H,W,C] | nil, msg */
static int i_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  rn_image_opts o = image_opts(L, 2);
  rn_tensor **box = rn_lua_new_box(L);
  return finish_read(L, rn_image_read(box, path, &o), "image.read");
}

/* decode(bytes [, opts{what = name, ...}]) -> tensor; the data comes from a Lua string */
static int i_decode(lua_State *L) {
  size_t n;
  const char *bytes = luaL_checklstring(L, 1, &n);
  rn_image_opts o = image_opts(L, 2);
  const char *what = rn_lua_opt_str(L, 2, "what", "<string>");
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_image_decode(box, bytes, n, &o, what), "image.decode");
  return 1;
}

/* sniff(bytes) -> "png" | "jpeg" | "bmp" | "tiff" | "unknown" */
static int i_sniff(lua_State *L) {
  size_t n;
  const char *bytes = luaL_checklstring(L, 1, &n);
  lua_pushstring(L, rn_image_format_name(rn_image_sniff(bytes, n)));
  return 1;
}

/* read_tiff(path) -> float32 [H,W] | nil, msg */
static int i_read_tiff(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  return finish_read(L, rn_image_read_tiff(box, path), "image.read_tiff");
}

/* write(path, t): .png or .tif/.tiff by the extension; write_png / write_tiff force the format. */
static int i_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  rn_tensor *t = rn_lua_cpu_view(L, rn_lua_check_tensor(L, 2));
  rn_lua_check(L, rn_image_write(path, t), "image.write");
  return 0;
}

static int i_write_png(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  rn_tensor *t = rn_lua_cpu_view(L, rn_lua_check_tensor(L, 2));
  rn_lua_check(L, rn_image_write_png(path, t), "image.write_png");
  return 0;
}

static int i_write_tiff(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  rn_tensor *t = rn_lua_cpu_view(L, rn_lua_check_tensor(L, 2));
  rn_lua_check(L, rn_image_write_tiff(path, t), "image.write_tiff");
  return 0;
}

static rn_resize_filter resize_mode(lua_State *L, int arg) {
  const char *m = rn_lua_opt_str(L, arg, "mode", "bilinear");
  if (strcmp(m, "bilinear") == 0) return RN_RESIZE_BILINEAR;
  if (strcmp(m, "nearest") == 0) return RN_RESIZE_NEAREST;
  luaL_argerror(L, arg, lua_pushfstring(L, "opts.mode must be 'bilinear' or 'nearest', not '%s'", m));
  return RN_RESIZE_BILINEAR;
}

static int64_t check_size(lua_State *L, int arg) {
  lua_Integer v = luaL_checkinteger(L, arg);
  if (v < 1 || v > (1 << 20)) luaL_argerror(L, arg, lua_pushfstring(L, "size must be in 1..%d, got %I", 1 << 20, v));
  return (int64_t)v;
}

/* resize(img, h, w [, opts{mode}]): img uint8/float32 [H,W] or [H,W,C], as PIL's Image.resize. */
static int i_resize(lua_State *L) {
  rn_tensor *t = rn_lua_cpu_view(L, rn_lua_check_tensor(L, 1));
  int64_t h = check_size(L, 2), w = check_size(L, 3);
  rn_resize_filter f = resize_mode(L, 4);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_image_resize(box, t, h, w, f), "image.resize");
  return 1;
}

/* resize_planes(x, h, w [, opts{mode}]): float32 [..., H, W], every plane as PIL's "F" mode. */
static int i_resize_planes(lua_State *L) {
  rn_tensor *t = rn_lua_cpu_view(L, rn_lua_check_tensor(L, 1));
  int64_t h = check_size(L, 2), w = check_size(L, 3);
  rn_resize_filter f = resize_mode(L, 4);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_image_resize_planes(box, t, h, w, f), "image.resize_planes");
  return 1;
}

typedef rn_status (*unary_fn)(rn_tensor **, const rn_tensor *);

static int unary(lua_State *L, unary_fn fn, const char *what) {
  rn_tensor *t = rn_lua_cpu_view(L, rn_lua_check_tensor(L, 1));
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, fn(box, t), what);
  return 1;
}

static int i_to_float(lua_State *L) { return unary(L, rn_image_to_float, "image.to_float"); }
static int i_normalize(lua_State *L) { return unary(L, rn_image_normalize_imagenet, "image.normalize"); }
static int i_to_gray(lua_State *L) { return unary(L, rn_image_to_gray, "image.to_gray"); }
static int i_to_rgb(lua_State *L) { return unary(L, rn_image_to_rgb, "image.to_rgb"); }

/* colormap(map [, opts{lo, hi}]) -> uint8 [H,W,3] (viridis; no range: the map's min and max) */
static int i_colormap(lua_State *L) {
  rn_tensor *t = rn_lua_cpu_view(L, rn_lua_check_tensor(L, 1));
  double lo = rn_lua_opt_num(L, 2, "lo", 0), hi = rn_lua_opt_num(L, 2, "hi", 0);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_image_colormap(box, t, lo, hi), "image.colormap");
  return 1;
}

/* A tensor field of the table at arg (CPU view boxed on the stack when needed); NULL when absent. */
static rn_tensor *field_tensor(lua_State *L, int arg, const char *key, int required) {
  lua_getfield(L, arg, key);
  if (lua_isnil(L, -1)) {
    if (required) luaL_argerror(L, arg, lua_pushfstring(L, "overlay: field '%s' (a tensor) is required", key));
    lua_pop(L, 1);
    return NULL;
  }
  rn_tensor **b = (rn_tensor **)luaL_testudata(L, -1, RN_TENSOR_MT);
  if (!b || !*b) luaL_argerror(L, arg, lua_pushfstring(L, "overlay: field '%s' must be a live tensor", key));
  return rn_lua_cpu_view(L, *b); /* the field value stays on the stack, keeping the tensor alive */
}

/* overlay{image =, heat =, gt =, lo =, hi =, threshold =, heat_alpha =, gap =, path =}
 * -> uint8 [H, 4W + 3 gap, 3]; with path, writes the PNG instead and returns nothing. */
static int i_overlay(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  rn_tensor *img = field_tensor(L, 1, "image", 1);
  rn_tensor *heat = field_tensor(L, 1, "heat", 1);
  rn_tensor *gt = field_tensor(L, 1, "gt", 0);
  rn_overlay_opts o = rn_overlay_opts_default();
  o.lo = rn_lua_opt_num(L, 1, "lo", o.lo);
  o.hi = rn_lua_opt_num(L, 1, "hi", o.hi);
  o.threshold = rn_lua_opt_num(L, 1, "threshold", NAN);
  o.heat_alpha = rn_lua_opt_num(L, 1, "heat_alpha", o.heat_alpha);
  if (o.heat_alpha < 0 || o.heat_alpha > 1) luaL_argerror(L, 1, "overlay: heat_alpha must be in [0, 1]");
  lua_Integer gap = rn_lua_opt_int(L, 1, "gap", o.gap);
  if (gap < 0 || gap > 1024) luaL_argerror(L, 1, "overlay: gap must be in 0..1024");
  o.gap = (int)gap;
  const char *path = rn_lua_opt_str(L, 1, "path", NULL);
  if (path) {
    rn_lua_check(L, rn_image_write_overlay(path, img, gt, heat, &o), "image.overlay");
    return 0;
  }
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_image_overlay(box, img, gt, heat, &o), "image.overlay");
  return 1;
}

static const luaL_Reg fns[] = {
  {"read", i_read}, {"decode", i_decode}, {"sniff", i_sniff}, {"read_tiff", i_read_tiff}, {"write", i_write},
  {"write_png", i_write_png}, {"write_tiff", i_write_tiff}, {"resize", i_resize},
  {"resize_planes", i_resize_planes}, {"to_float", i_to_float}, {"normalize", i_normalize},
  {"to_gray", i_to_gray}, {"to_rgb", i_to_rgb}, {"colormap", i_colormap}, {"overlay", i_overlay},
  {NULL, NULL}};

/* core.image = {...}: a sub-table, so rn.image.read reads like the product brief. */
void rn_lua_open_image(lua_State *L) {
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "image");
}
