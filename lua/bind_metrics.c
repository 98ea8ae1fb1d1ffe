/* bind_metrics.c - core.metrics_core: AUROC, F1-max, AU-PRO (MVTec and RealNet's variant) and the one-pass
 * pixel metrics (engine/include/realnet/metrics.h). lua/realnet/metrics.lua builds rn.metrics on top of it.
 *
 *   local mc = require("realnet.core").metrics_core
 *   local auc = mc.auroc(scores, labels)            -- tensors in, numbers out
 *   local pm = mc.pixel(maps, masks, 0.3)           -- {auroc=, aupro=, f1_max=, f1_threshold=, n_regions=, ...}
 */
#include "binding.h"
#include "realnet/metrics.h"

/* auroc(scores, labels) -> number */
static int m_auroc(lua_State *L) {
  double v;
  rn_lua_check(L, rn_metric_auroc(&v, rn_lua_check_tensor(L, 1), rn_lua_check_tensor(L, 2)), NULL);
  lua_pushnumber(L, v);
  return 1;
}

/* f1_max(scores, labels) -> f1, threshold */
static int m_f1_max(lua_State *L) {
  double f1, thr;
  rn_lua_check(L, rn_metric_f1_max(&f1, &thr, rn_lua_check_tensor(L, 1), rn_lua_check_tensor(L, 2)), NULL);
  lua_pushnumber(L, f1);
  lua_pushnumber(L, thr);
  return 2;
}

/* aupro(maps, masks [, limit = 0.3]) -> number */
static int m_aupro(lua_State *L) {
  double v, limit = luaL_optnumber(L, 3, 0.3);
  rn_lua_check(L, rn_metric_aupro(&v, rn_lua_check_tensor(L, 1), rn_lua_check_tensor(L, 2), limit), NULL);
  lua_pushnumber(L, v);
  return 1;
}

/* pro_realnet(maps, masks [, steps = 1000 [, limit = 0.3]]) -> number (NaN for a degenerate FPR range) */
static int m_pro_realnet(lua_State *L) {
  lua_Integer steps = luaL_optinteger(L, 3, 1000);
  double v, limit = luaL_optnumber(L, 4, 0.3);
  if (steps < 2 || steps > 1000000) luaL_argerror(L, 3, "steps must be in [2, 1000000]");
  rn_lua_check(L, rn_metric_pro_realnet(&v, rn_lua_check_tensor(L, 1), rn_lua_check_tensor(L, 2), (int)steps, limit),
               NULL);
  lua_pushnumber(L, v);
  return 1;
}

/* pixel(maps, masks [, limit = 0.3]) -> {auroc, aupro, f1_max, f1_threshold, n_pixels, n_defect_pixels,
 * n_regions, n_defect_images} */
static int m_pixel(lua_State *L) {
  rn_pixel_metrics pm;
  double limit = luaL_optnumber(L, 3, 0.3);
  rn_lua_check(L, rn_metric_pixel(&pm, rn_lua_check_tensor(L, 1), rn_lua_check_tensor(L, 2), limit), NULL);
  lua_createtable(L, 0, 8);
  lua_pushnumber(L, pm.auroc);            lua_setfield(L, -2, "auroc");
  lua_pushnumber(L, pm.aupro);            lua_setfield(L, -2, "aupro");
  lua_pushnumber(L, pm.f1_max);           lua_setfield(L, -2, "f1_max");
  lua_pushnumber(L, pm.f1_threshold);     lua_setfield(L, -2, "f1_threshold");
  lua_pushinteger(L, pm.n_pixels);        lua_setfield(L, -2, "n_pixels");
  lua_pushinteger(L, pm.n_defect_pixels); lua_setfield(L, -2, "n_defect_pixels");
  lua_pushinteger(L, pm.n_regions);       lua_setfield(L, -2, "n_regions");
  lua_pushinteger(L, pm.n_defect_images); lua_setfield(L, -2, "n_defect_images");
  return 1;
}

/* image_labels(masks) -> uint8 [N] tensor: 1 where the image's mask has a pixel > 0 */
static int m_image_labels(lua_State *L) {
  rn_tensor *masks = rn_lua_check_tensor(L, 1);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_metric_image_labels(box, masks), NULL);
  return 1;
}

void rn_lua_open_metrics(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"auroc", m_auroc}, {"f1_max", m_f1_max}, {"aupro", m_aupro}, {"pro_realnet", m_pro_realnet},
    {"pixel", m_pixel}, {"image_labels", m_image_labels}, {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "metrics_core");
}
