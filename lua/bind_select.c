/* bind_select.c - channel selections validated once: core.channel_index(ids, C) checks 1-based channel ids
 * against C on the host and keeps them (0-based) on their device; core.select_channels(x, index) then picks
 * those channels of x along dim 2 without checking the ids again. index_select checks its indices on every
 * call, which for a device index is a copy to the host and a wait: a fixed selection (RealNet's AFS) needs
 * neither, and a CUDA graph cannot record them. */
#include "bind_internal.h"

#define RN_CHANNEL_INDEX_MT "realnet.ChannelIndex"

typedef struct {
  rn_tensor *idx; /* int64 [K], 0-based, in range 0..channels-1 */
  int64_t channels;
} channel_index;

/* channel_index(ids, C) -> an index of channels ids (1-based, a 1-d tensor on any device) of C-channel inputs */
static int s_channel_index(lua_State *L) {
  rn_tensor *ids = rn_lua_check_tensor(L, 1);
  lua_Integer C = luaL_checkinteger(L, 2);
  luaL_argcheck(L, C >= 1, 2, "the channel count must be positive");
  luaL_argcheck(L, ids->ndim == 1, 1, "channel ids must be a 1-d tensor");
  rn_tensor *idx0 = rn_lua_index_tensor_in(L, 1, (int64_t)C); /* raises on ids outside 1..C; 0-based, ids' device */
  channel_index *ci = (channel_index *)lua_newuserdatauv(L, sizeof *ci, 0);
  ci->idx = rn_tensor_retain(idx0);
  ci->channels = (int64_t)C;
  luaL_setmetatable(L, RN_CHANNEL_INDEX_MT);
  return 1;
}

static channel_index *check_index(lua_State *L, int arg) {
  channel_index *ci = (channel_index *)luaL_checkudata(L, arg, RN_CHANNEL_INDEX_MT);
  if (!ci->idx) luaL_argerror(L, arg, "the channel index was freed");
  return ci;
}

/* select_channels(x [B,C,...], index) -> x's channels of the index, along dim 2 */
static int s_select_channels(lua_State *L) {
  rn_tensor *x = rn_lua_check_tensor(L, 1);
  channel_index *ci = check_index(L, 2);
  if (x->ndim < 2 || x->shape[1] != ci->channels) {
    char b[64];
    return luaL_error(L, "select_channels: input %s does not have the %d channels the index was made for",
                      rn_shape_str(x, b, 64), (int)ci->channels);
  }
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_index_select_trusted(box, x, 1, ci->idx), "select_channels");
  return 1;
}

static int ci_gc(lua_State *L) {
  channel_index *ci = (channel_index *)luaL_checkudata(L, 1, RN_CHANNEL_INDEX_MT);
  rn_tensor_release(ci->idx);
  ci->idx = NULL;
  return 0;
}

static int ci_tostring(lua_State *L) {
  channel_index *ci = check_index(L, 1);
  char d[32];
  lua_pushfstring(L, "ChannelIndex(%d of %d, %s)", (int)ci->idx->shape[0], (int)ci->channels,
                  rn_device_name(rn_tensor_device(ci->idx), d, sizeof d));
  return 1;
}

static const luaL_Reg fns[] = {{"channel_index", s_channel_index}, {"select_channels", s_select_channels},
                               {NULL, NULL}};

void rn_lua_open_select(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", ci_gc}, {"__tostring", ci_tostring}, {NULL, NULL}};
  rn_lua_new_class(L, RN_CHANNEL_INDEX_MT, meta, NULL);
  rn_lua_register(L, fns, 0);
}
