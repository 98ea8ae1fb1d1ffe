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
/* Lua index (1-based, negative from the end) -> C index (0-based), range-checked against size. */
int64_t rn_lua_index(lua_State *L, int arg, int64_t size);

/* A fresh empty tensor box on the stack top; fill *box after (a failure in between leaks nothing). */
rn_tensor **rn_lua_new_box(lua_State *L);
/* Index tensors: Lua 1-based int64 -> a new 0-based int64 tensor (range-checked against size), and back. */
rn_tensor *rn_lua_index_tensor_in(lua_State *L, int arg, int64_t size);
void rn_lua_push_index_tensor(lua_State *L, rn_tensor *idx0);   /* takes over idx0; pushes idx0 + 1 */
/* Registers fns in the module table on the stack top and, when methods is true, as tensor methods. */
void rn_lua_register(lua_State *L, const luaL_Reg *fns, int methods);
/* Creates userdata metatable mt once per state: the metamethods of meta ("__gc", "__close", "__tostring", ...)
 * and, unless methods is NULL, an __index table of methods. Leaves the stack as it was. */
void rn_lua_new_class(lua_State *L, const char *mt, const luaL_Reg *meta, const luaL_Reg *methods);
/* Option-table fields (opts at index `arg`, may be nil/none): defaults when absent; errors name opts.<key>. */
lua_Integer rn_lua_opt_int(lua_State *L, int arg, const char *key, lua_Integer def);
double rn_lua_opt_num(lua_State *L, int arg, const char *key, double def);    /* finite numbers only */
int rn_lua_opt_bool(lua_State *L, int arg, const char *key, int def);
const char *rn_lua_opt_str(lua_State *L, int arg, const char *key, const char *def);
/* An integer or a pair {a, b} into v[2]; returns 0 when absent (v untouched). */
int rn_lua_opt_pair(lua_State *L, int arg, const char *key, int v[2]);
/* A finite number argument (NaN and inf raise naming the argument). */
double rn_lua_check_finite(lua_State *L, int arg);
/* The RNG opts resolve to: opts.generator, a fresh generator from opts.seed/opts.stream, or the state's default. */
rn_rng *rn_lua_opt_rng(lua_State *L, int arg, rn_rng *scratch);
/* Nudges the Lua GC when tensor memory grew a lot since the last nudge. */
void rn_lua_gc_nudge(lua_State *L);

void rn_lua_open_tensor(lua_State *L);
void rn_lua_open_ops(lua_State *L);
void rn_lua_open_nn(lua_State *L);
void rn_lua_open_autograd(lua_State *L);
void rn_lua_open_optim(lua_State *L);
void rn_lua_open_bench(lua_State *L);
void rn_lua_open_rng(lua_State *L);
void rn_lua_open_sys(lua_State *L);
void rn_lua_open_state(lua_State *L);
void rn_lua_open_image(lua_State *L);    /* core.image = {read, write, resize, ...} */
void rn_lua_open_h5(lua_State *L);       /* core.h5 = {open}, core.tensorset */
void rn_lua_open_backbone(lua_State *L); /* core.backbone, core.backbone_archs */
void rn_lua_open_data(lua_State *L);     /* core.dataset, core.dataset_check, ... (rn.data) */
void rn_lua_open_synth(lua_State *L);    /* core.synth_core (rn.synth) */
void rn_lua_open_metrics(lua_State *L);  /* core.metrics_core (rn.metrics) */
void rn_lua_open_tty(lua_State *L);      /* core.isatty, core.term_width, core.mkdir (CLI toolkit) */
void rn_lua_open_rrs(lua_State *L);      /* core.rrs = {new} (Reconstruction Residual Selection) */
void rn_lua_open_demo(lua_State *L);     /* core.demo_data = {make, render, defects, textures} */
void rn_lua_open_patchcore(lua_State *L); /* core.patchcore_new, patchcore_load, ... (rn.patchcore) */
void rn_lua_open_sdas(lua_State *L);      /* core.sdas_diffusion, sdas_sampler, ... (rn.sdas) */
void rn_lua_open_cuda(lua_State *L);      /* core.cuda = {available, device_count, ...}, core.device(name) */
void rn_lua_open_select(lua_State *L);    /* core.channel_index, core.select_channels (fixed selections) */
void rn_lua_open_nccl(lua_State *L);      /* core.nccl = {built, unique_id, join}: data-parallel gradient averaging */

/* luaopen for the C module; the realnet binary preloads it as "realnet.core". */
int luaopen_realnet_core(lua_State *L);

#endif
