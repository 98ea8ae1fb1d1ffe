/* binding.h - shared helpers of the Lua 5.4 binding (lua/bind_*.c).
 *
 * Each lua/bind_<part>.c exports `void rn_lua_open_<part>(lua_State *L)` that adds its functions to the
 * module table on top of the stack (the table `require "realnet.core"` returns); lua/module_entry.c calls
 * them all. Indices are 1-based in Lua and 0-based in C: convert only through rn_lua_dim / rn_lua_index.
 */
#ifndef REALNET_LUA_BINDING_H
#define REALNET_LUA_BINDING_H

#include <lauxlib.h>
#include <lua.h>

#include "realnet/realnet.h"

#define RN_TENSOR_MT "realnet.Tensor"

/* Raises a Lua error "what: <rn_last_error()>" when s != RN_OK; returns otherwise. */
void rn_lua_check(lua_State *L, rn_status s, const char *what);
/* Pushes a tensor userdata that takes over the reference `t` (NULL pushes nil). */
void rn_lua_push_tensor(lua_State *L, rn_tensor *t);
/* The tensor at arg (raises naming the argument when it is not a live tensor). */
rn_tensor *rn_lua_check_tensor(lua_State *L, int arg);
rn_tensor *rn_lua_opt_tensor(lua_State *L, int arg);   /* nil/none -> NULL */
/* Lua dim (1-based, negative from the end) -> C dim (0-based), range-checked against ndim. */
int rn_lua_dim(lua_State *L, int arg, int ndim);
/* A shape from a table {2,3,4} or from integer arguments starting at arg; returns ndim. */
int rn_lua_check_shape(lua_State *L, int arg, int64_t *shape);

void rn_lua_open_tensor(lua_State *L);
void rn_lua_open_ops(lua_State *L);
void rn_lua_open_nn(lua_State *L);
void rn_lua_open_autograd(lua_State *L);
void rn_lua_open_optim(lua_State *L);
void rn_lua_open_bench(lua_State *L);

/* luaopen for the C module; the realnet binary preloads it as "realnet.core". */
int luaopen_realnet_core(lua_State *L);

#endif
