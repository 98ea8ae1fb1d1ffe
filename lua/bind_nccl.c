/* bind_nccl.c - core.nccl: the NCCL communicator of data-parallel training (realnet.dist) from Lua.
 *
 *   core.nccl.built()                       -> whether this build can use NCCL (CUDA build with nccl.h)
 *   core.nccl.unique_id()                   -> a 128-byte string, made by rank 0 and shared with the others
 *   core.nccl.join(id, nranks, rank, dev)   -> communicator; blocks until every rank has joined
 *   comm:all_reduce_mean({t1, t2, ...})     averages float32 CUDA tensors in place over all ranks
 *   comm:close()                            frees it (also done by the garbage collector)
 * Works in every build: without NCCL, built() is false and the rest raise an error saying why. */
#include <string.h>

#include "../engine/src/cuda/nccl_api.h"
#include "bind_internal.h"

#define RN_NCCL_MT "realnet.NcclComm"

static int n_built(lua_State *L) {
  lua_pushboolean(L, rn_nccl_built());
  return 1;
}

static int n_unique_id(lua_State *L) {
  unsigned char id[RN_NCCL_ID_BYTES];
  rn_lua_check(L, rn_nccl_unique_id(id), "nccl.unique_id");
  lua_pushlstring(L, (const char *)id, RN_NCCL_ID_BYTES);
  return 1;
}

static int n_join(lua_State *L) {
  size_t len;
  const char *id = luaL_checklstring(L, 1, &len);
  if (len != RN_NCCL_ID_BYTES)
    luaL_argerror(L, 1, lua_pushfstring(L, "an NCCL id is %d bytes, got %d", RN_NCCL_ID_BYTES, (int)len));
  lua_Integer nranks = luaL_checkinteger(L, 2), rank = luaL_checkinteger(L, 3), dev = luaL_checkinteger(L, 4);
  if (nranks < 1 || rank < 0 || rank >= nranks)
    luaL_argerror(L, 3, lua_pushfstring(L, "rank %I of %I ranks", rank, nranks));
  if (dev < 0) luaL_argerror(L, 4, "the CUDA device index must be >= 0");
  rn_nccl **box = (rn_nccl **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, RN_NCCL_MT);
  rn_lua_check(L, rn_nccl_new_rank(box, (const unsigned char *)id, (int)nranks, (int)rank, (int)dev), "nccl.join");
  return 1;
}

static rn_nccl **check_comm(lua_State *L) { return (rn_nccl **)luaL_checkudata(L, 1, RN_NCCL_MT); }

static int c_all_reduce_mean(lua_State *L) {
  rn_nccl **box = check_comm(L);
  if (!*box) luaL_error(L, "nccl: the communicator is closed");
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_len(L, 2);
  rn_tensor **ts = (rn_tensor **)lua_newuserdatauv(L, sizeof *ts * (size_t)(n > 0 ? n : 1), 0); /* freed by the GC */
  for (int i = 0; i < n; i++) {
    lua_geti(L, 2, i + 1);
    ts[i] = rn_lua_check_tensor(L, -1); /* kept alive by the table at arg 2 */
    lua_pop(L, 1);
  }
  rn_lua_check(L, rn_nccl_all_reduce_mean(*box, n, ts), "nccl all_reduce_mean");
  return 0;
}

static int c_close(lua_State *L) {
  rn_nccl **box = check_comm(L);
  rn_nccl_free(*box);
  *box = NULL;
  return 0;
}

static const luaL_Reg comm_methods[] = {{"all_reduce_mean", c_all_reduce_mean}, {"close", c_close}, {NULL, NULL}};
static const luaL_Reg nccl_fns[] = {{"built", n_built}, {"unique_id", n_unique_id}, {"join", n_join}, {NULL, NULL}};

void rn_lua_open_nccl(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", c_close}, {NULL, NULL}};
  rn_lua_new_class(L, RN_NCCL_MT, meta, comm_methods);
  lua_newtable(L);
  luaL_setfuncs(L, nccl_fns, 0);
  lua_setfield(L, -2, "nccl");
}
