/* bind_util.c - helpers shared by the binding: errors, tensor boxes, 1-based conversion, option tables,
 * the per-state default generator and GC pressure. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "binding.h"
#include "bind_internal.h"

/* ------------------------------------------------------------------ errors */

void rn_lua_check(lua_State *L, rn_status s, const char *what) {
  if (s == RN_OK) return;
  const char *msg = rn_last_error();
  if (!msg || !*msg) msg = rn_status_name(s);
  size_t n = what ? strlen(what) : 0;
  /* core messages usually start with the op name already; do not say it twice */
  if (!what || strncmp(msg, what, n) == 0) luaL_error(L, "%s", msg);
  luaL_error(L, "%s: %s", what, msg);
}

double rn_lua_check_finite(lua_State *L, int arg) {
  double v = luaL_checknumber(L, arg);
  if (!isfinite(v)) luaL_argerror(L, arg, "number must be finite (got NaN or inf)");
  return v;
}

/* ------------------------------------------------------------------ per-state data */

static const char state_key = 'S'; /* registry key: its address */

rn_lua_state *rn_lua_state_of(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key);
  rn_lua_state *s = (rn_lua_state *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (s) return s;
  s = (rn_lua_state *)lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  rn_rng_init(&s->rng, 0, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
  return s;
}

/* Lua does not see the bytes tensors hold, so tensor-heavy loops would let garbage pile up: collect fully once
 * the tensor bytes allocated since the last full collection exceed what was live after it, clamped to
 * [256 MiB, 2 GiB] - Lua's own pacing (a pause of 200%), applied to tensor memory. The clamp keeps small
 * workloads tight and big ones (a batch of 32 on a GPU churns gigabytes per forward) from holding more than
 * 2 GiB of garbage. One full collection costs about as much as an incremental step sized to the growth, so
 * there are no intermediate steps: at batch 32 on an H200 they took over a third of RealNet's inference time. */
static double mono_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void rn_lua_gc_nudge(lua_State *L) {
  rn_lua_state *s = rn_lua_state_of(L);
  size_t now = rn_allocated_bytes(RN_CPU) + rn_allocated_bytes(RN_CUDA);
  if (now < s->gc_mark) { s->gc_mark = now; return; } /* freed by the program itself: a lower base */
  size_t allowance = s->gc_live, lo = (size_t)256 << 20, hi = (size_t)2 << 30;
  allowance = allowance < lo ? lo : allowance > hi ? hi : allowance;
  if (now - s->gc_mark <= allowance) return;
  double t0 = mono_seconds();
  lua_gc(L, LUA_GCCOLLECT);
  s->gc_seconds += mono_seconds() - t0;
  s->gc_full++;
  s->gc_mark = s->gc_live = rn_allocated_bytes(RN_CPU) + rn_allocated_bytes(RN_CUDA);
}

/* ------------------------------------------------------------------ tensor boxes */

rn_tensor **rn_lua_new_box(lua_State *L) {
  rn_tensor **box = (rn_tensor **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, RN_TENSOR_MT);
  rn_lua_gc_nudge(L); /* before the tensor exists: the new box is empty, so a collection here is safe */
  return box;
}

void rn_lua_push_tensor(lua_State *L, rn_tensor *t) {
  if (!t) { lua_pushnil(L); return; }
  rn_tensor **box = rn_lua_new_box(L);
  *box = t;
}

rn_tensor *rn_lua_check_tensor(lua_State *L, int arg) {
  rn_tensor **box = (rn_tensor **)luaL_testudata(L, arg, RN_TENSOR_MT);
  if (!box) luaL_typeerror(L, arg, "tensor");
  if (!*box) luaL_argerror(L, arg, "tensor was already freed");
  return *box;
}

rn_tensor *rn_lua_opt_tensor(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return NULL;
  return rn_lua_check_tensor(L, arg);
}

rn_tensor *rn_lua_tensor_or_number(lua_State *L, int arg, const rn_tensor *like) {
  if (lua_type(L, arg) != LUA_TNUMBER) return rn_lua_check_tensor(L, arg);
  double v = lua_tonumber(L, arg);
  rn_tensor **box = rn_lua_new_box(L); /* stays on the stack until the caller returns */
  rn_lua_check(L, rn_tensor_scalar(box, v, like->dtype, rn_tensor_device(like)), "scalar");
  return *box;
}

/* ------------------------------------------------------------------ 1-based conversion */

int rn_lua_dim(lua_State *L, int arg, int ndim) {
  lua_Integer d = luaL_checkinteger(L, arg);
  lua_Integer c = d > 0 ? d - 1 : ndim + d;
  if (d == 0 || c < 0 || c >= (ndim > 0 ? ndim : 1))
    luaL_argerror(L, arg, lua_pushfstring(L, "dim %I out of range for a tensor with %d dims (dims are 1..%d, or "
                                            "negative from the end)", d, ndim, ndim));
  return (int)c;
}

int64_t rn_lua_index(lua_State *L, int arg, int64_t size) {
  lua_Integer i = luaL_checkinteger(L, arg);
  lua_Integer c = i > 0 ? i - 1 : size + i;
  if (i == 0 || c < 0 || c >= size)
    luaL_argerror(L, arg, lua_pushfstring(L, "index %I out of range 1..%I", i, (lua_Integer)size));
  return (int64_t)c;
}

/* Shape entries are integers >= 0; with allow_neg1, -1 is accepted too (reshape's "infer", expand's "keep"). */
static lua_Integer shape_entry(lua_State *L, int arg, lua_Integer v, int dim, int allow_neg1) {
  if (v < 0 && !(allow_neg1 && v == -1))
    luaL_argerror(L, arg, lua_pushfstring(L, "negative size %I in dim %d", v, dim));
  return v;
}

int rn_lua_shape_ex(lua_State *L, int arg, int64_t *shape, int allow_neg1) {
  int n = 0;
  if (lua_istable(L, arg)) {
    lua_Integer len = luaL_len(L, arg);
    if (len > RN_MAX_DIMS)
      luaL_argerror(L, arg, lua_pushfstring(L, "a shape has at most %d dims, got %I", RN_MAX_DIMS, len));
    for (n = 0; n < len; n++) {
      lua_geti(L, arg, n + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok) luaL_argerror(L, arg, lua_pushfstring(L, "shape entry %d is not an integer", n + 1));
      shape[n] = shape_entry(L, arg, v, n + 1, allow_neg1);
    }
    return n;
  }
  if (lua_type(L, arg) != LUA_TNUMBER) luaL_typeerror(L, arg, "shape (a table or integers)");
  while (lua_type(L, arg + n) == LUA_TNUMBER) {
    if (n == RN_MAX_DIMS) luaL_argerror(L, arg + n, lua_pushfstring(L, "a shape has at most %d dims", RN_MAX_DIMS));
    shape[n] = shape_entry(L, arg + n, luaL_checkinteger(L, arg + n), n + 1, allow_neg1);
    n++;
  }
  return n;
}

int rn_lua_check_shape(lua_State *L, int arg, int64_t *shape) { return rn_lua_shape_ex(L, arg, shape, 0); }

int rn_lua_after_shape(lua_State *L, int arg, int ndim) { return lua_istable(L, arg) ? arg + 1 : arg + ndim; }

/* ------------------------------------------------------------------ element access (CPU, any strides) */

double rn_lua_read(const void *base, rn_dtype dt, int64_t off) {
  switch (dt) {
    case RN_F32: return ((const float *)base)[off];
    case RN_U8: return ((const uint8_t *)base)[off];
    case RN_I32: return ((const int32_t *)base)[off];
    case RN_I64: return (double)((const int64_t *)base)[off];
    default: return 0;
  }
}

void rn_lua_each(const rn_tensor *t, void (*f)(double v, void *ud), void *ud) {
  int64_t n = rn_tensor_numel(t);
  if (n == 0) return;
  const void *base = rn_tensor_data(t);
  int64_t idx[RN_MAX_DIMS] = {0}, off = 0;
  for (int64_t k = 0; k < n; k++) {
    f(rn_lua_read(base, t->dtype, off), ud);
    for (int d = t->ndim - 1; d >= 0; d--) { /* odometer over the view */
      if (++idx[d] < t->shape[d]) { off += t->stride[d]; break; }
      off -= (t->shape[d] - 1) * t->stride[d];
      idx[d] = 0;
    }
  }
}

rn_tensor *rn_lua_cpu_view(lua_State *L, rn_tensor *t) {
  if (rn_tensor_device(t).type == RN_CPU) return t;
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_to_device(box, t, rn_cpu()), "to cpu");
  return *box;
}

/* ------------------------------------------------------------------ index tensors */

typedef struct { int64_t *dst, k, size; int bad; double badv; } index_conv; /* bad: 1 not integer, 2 range */

static void conv_in(double v, void *ud) {
  index_conv *c = (index_conv *)ud;
  if (!(v >= -9.0e18 && v <= 9.0e18)) { /* NaN or huge: casting would be undefined */
    if (!c->bad) { c->bad = 1; c->badv = v; }
    c->dst[c->k++] = 0;
    return;
  }
  int64_t i = (int64_t)v;
  int bad = (double)i != v ? 1 : (i < 1 || (c->size >= 0 && i > c->size)) ? 2 : 0;
  if (bad && !c->bad) { c->bad = bad; c->badv = v; }
  c->dst[c->k++] = i - 1;
}

rn_tensor *rn_lua_index_tensor_in(lua_State *L, int arg, int64_t size) {
  rn_tensor *t = rn_lua_cpu_view(L, rn_lua_check_tensor(L, arg));
  rn_tensor *src = rn_lua_check_tensor(L, arg);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_tensor_empty(box, t->ndim, t->shape, RN_I64, rn_cpu()), "index");
  index_conv c = {(int64_t *)rn_tensor_data(*box), 0, size, 0, 0};
  rn_lua_each(t, conv_in, &c);
  if (c.bad == 1) luaL_argerror(L, arg, lua_pushfstring(L, "index %f is not an integer (indices are 1-based)", c.badv));
  if (c.bad && size >= 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "index %I out of range 1..%I (indices are 1-based)", (lua_Integer)c.badv,
                                          (lua_Integer)size));
  if (c.bad)
    luaL_argerror(L, arg, lua_pushfstring(L, "index %I is below 1 (indices are 1-based)", (lua_Integer)c.badv));
  if (rn_tensor_device(src).type != RN_CPU) {
    rn_tensor **dbox = rn_lua_new_box(L);
    rn_lua_check(L, rn_to_device(dbox, *box, rn_tensor_device(src)), "index");
    return *dbox;
  }
  return *box;
}

static void conv_out(double v, void *ud) {
  index_conv *c = (index_conv *)ud;
  c->dst[c->k++] = (int64_t)v + 1;
}

void rn_lua_push_index_tensor(lua_State *L, rn_tensor *idx0) {
  int base = lua_gettop(L);
  rn_lua_push_tensor(L, idx0); /* owns idx0 from here on */
  rn_tensor *t = rn_lua_cpu_view(L, idx0);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_tensor_empty(box, t->ndim, t->shape, RN_I64, rn_cpu()), "index");
  index_conv c = {(int64_t *)rn_tensor_data(*box), 0, -1, 0, 0};
  rn_lua_each(t, conv_out, &c);
  if (rn_tensor_device(idx0).type != RN_CPU) {
    rn_tensor **dbox = rn_lua_new_box(L);
    rn_lua_check(L, rn_to_device(dbox, *box, rn_tensor_device(idx0)), "index");
  }
  lua_replace(L, base + 1); /* the converted tensor takes idx0's slot */
  lua_settop(L, base + 1);
}

/* ------------------------------------------------------------------ registration */

void rn_lua_register(lua_State *L, const luaL_Reg *fns, int methods) {
  luaL_setfuncs(L, fns, 0);
  if (!methods) return;
  luaL_getmetatable(L, RN_TENSOR_MT);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 2);
}

void rn_lua_new_class(lua_State *L, const char *mt, const luaL_Reg *meta, const luaL_Reg *methods) {
  if (luaL_newmetatable(L, mt)) { /* sets __name */
    luaL_setfuncs(L, meta, 0);
    if (methods) {
      lua_newtable(L); /* not luaL_newlib: its size hint needs an array, not a pointer */
      luaL_setfuncs(L, methods, 0);
      lua_setfield(L, -2, "__index");
    }
  }
  lua_pop(L, 1);
}

/* ------------------------------------------------------------------ option tables */

static int opt_field(lua_State *L, int arg, const char *key) {
  if (lua_isnoneornil(L, arg)) return 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  if (lua_getfield(L, arg, key) == LUA_TNIL) { lua_pop(L, 1); return 0; }
  return 1; /* value on the stack top */
}

static void opt_error(lua_State *L, int arg, const char *key, const char *want) {
  luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s must be %s, got %s", key, want, luaL_typename(L, -1)));
}

lua_Integer rn_lua_opt_int(lua_State *L, int arg, const char *key, lua_Integer def) {
  if (!opt_field(L, arg, key)) return def;
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok) opt_error(L, arg, key, "an integer");
  lua_pop(L, 1);
  return v;
}

double rn_lua_opt_num(lua_State *L, int arg, const char *key, double def) {
  if (!opt_field(L, arg, key)) return def;
  if (lua_type(L, -1) != LUA_TNUMBER) opt_error(L, arg, key, "a number");
  double v = lua_tonumber(L, -1);
  if (!isfinite(v)) luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s must be finite, got %f", key, v));
  lua_pop(L, 1);
  return v;
}

int rn_lua_opt_bool(lua_State *L, int arg, const char *key, int def) {
  if (!opt_field(L, arg, key)) return def;
  if (!lua_isboolean(L, -1)) opt_error(L, arg, key, "a boolean");
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *rn_lua_opt_str(lua_State *L, int arg, const char *key, const char *def) {
  if (!opt_field(L, arg, key)) return def;
  if (lua_type(L, -1) != LUA_TSTRING) opt_error(L, arg, key, "a string");
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1); /* still referenced by the opts table */
  return s;
}

int rn_lua_opt_pair(lua_State *L, int arg, const char *key, int v[2]) {
  if (!opt_field(L, arg, key)) return 0;
  int ok = 1;
  lua_Integer a = 0, b = 0;
  if (lua_type(L, -1) == LUA_TTABLE) {
    if (luaL_len(L, -1) != 2) opt_error(L, arg, key, "an integer or a pair {h, w}");
    lua_geti(L, -1, 1); a = lua_tointegerx(L, -1, &ok); lua_pop(L, 1);
    if (ok) { lua_geti(L, -1, 2); b = lua_tointegerx(L, -1, &ok); lua_pop(L, 1); }
  } else {
    a = b = lua_tointegerx(L, -1, &ok);
  }
  if (!ok) opt_error(L, arg, key, "an integer or a pair {h, w}");
  if (a < INT32_MIN || a > INT32_MAX || b < INT32_MIN || b > INT32_MAX)
    luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s is out of range", key));
  lua_pop(L, 1);
  v[0] = (int)a;
  v[1] = (int)b;
  return 1;
}

/* ------------------------------------------------------------------ dtype / device options */

void rn_lua_check_storable(lua_State *L, int arg, double v, rn_dtype dt) {
  double lo, hi;
  switch (dt) {
    case RN_U8: lo = 0; hi = 255; break; /* values outside are clamped by the core; only NaN/inf are refused */
    case RN_I32: lo = -2147483648.0; hi = 2147483647.0; break;
    case RN_I64: lo = -9.2e18; hi = 9.2e18; break;
    default: return; /* float32 holds NaN and inf */
  }
  if (v != v || v == HUGE_VAL || v == -HUGE_VAL)
    luaL_argerror(L, arg, lua_pushfstring(L, "value %f cannot be stored in a %s tensor", v, rn_dtype_name(dt)));
  if (dt != RN_U8 && (v < lo || v > hi))
    luaL_argerror(L, arg, lua_pushfstring(L, "value %f is out of range for a %s tensor", v, rn_dtype_name(dt)));
}

rn_dtype rn_lua_opt_dtype(lua_State *L, int arg, rn_dtype def) {
  const char *s = rn_lua_opt_str(L, arg, "dtype", NULL);
  if (!s) return def;
  rn_dtype dt;
  if (rn_dtype_from_name(s, &dt) != RN_OK) luaL_argerror(L, arg, rn_last_error());
  return dt;
}

rn_device rn_lua_opt_device(lua_State *L, int arg) {
  const char *s = rn_lua_opt_str(L, arg, "device", NULL);
  rn_device d = rn_cpu();
  if (s && rn_device_parse(s, &d) != RN_OK) luaL_argerror(L, arg, rn_last_error());
  return d;
}
