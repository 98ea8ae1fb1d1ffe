/* bind_internal.h - helpers private to the binding's C files (not part of the lua/binding.h contract). */
#ifndef REALNET_LUA_BIND_INTERNAL_H
#define REALNET_LUA_BIND_INTERNAL_H

#include "binding.h"

#define RN_RNG_MT "realnet.Generator"
#define RN_OPTIM_MT "realnet.Optimizer"

/* Per-lua_State data kept in the registry: the default generator, the GC nudge mark and what the nudges cost. */
typedef struct {
  rn_rng rng;
  size_t gc_mark, gc_live; /* tensor bytes allocated at the last full collection (or lower since), and live then */
  long gc_full;            /* full collections the nudge asked for */
  double gc_seconds;      /* time spent in them */
} rn_lua_state;
rn_lua_state *rn_lua_state_of(lua_State *L);

/* The tensor at arg, or a 0-dim tensor of like's dtype/device holding the number there (boxed on the stack). */
rn_tensor *rn_lua_tensor_or_number(lua_State *L, int arg, const rn_tensor *like);
/* rn_lua_check_shape, optionally accepting -1 entries. */
int rn_lua_shape_ex(lua_State *L, int arg, int64_t *shape, int allow_neg1);
/* The argument just after a shape that started at arg (a table or ndim integers). */
int rn_lua_after_shape(lua_State *L, int arg, int ndim);
/* t itself when on the CPU, else a CPU copy boxed on the stack. */
rn_tensor *rn_lua_cpu_view(lua_State *L, rn_tensor *t);
/* Element reading over a CPU tensor of any strides, in row-major order. */
double rn_lua_read(const void *base, rn_dtype dt, int64_t off);
void rn_lua_each(const rn_tensor *t, void (*f)(double v, void *ud), void *ud);
rn_dtype rn_lua_opt_dtype(lua_State *L, int arg, rn_dtype def);
/* Raises naming arg when v cannot be stored in dtype dt (NaN, inf or out of range for an integer dtype). */
void rn_lua_check_storable(lua_State *L, int arg, double v, rn_dtype dt);
rn_device rn_lua_opt_device(lua_State *L, int arg);

/* Parts of rn_lua_open_tensor. */
void rn_lua_open_views(lua_State *L);
void rn_lua_open_create(lua_State *L);

#endif
