/* bind_rng.c - random tensors and generator userdata.
 *
 * Every draw takes its generator from opts: opts.generator (a rn.generator), or a fresh one from opts.seed
 * (and opts.stream), or else the Lua state's default generator (seeded 0 at load, reseeded by rn.manual_seed),
 * which each draw advances. Counter-based Philox: the same seed gives the same numbers on any thread count. */
#include <string.h>

#include "bind_internal.h"

static rn_rng *check_gen(lua_State *L, int arg) { return (rn_rng *)luaL_checkudata(L, arg, RN_RNG_MT); }

static uint64_t check_seed(lua_State *L, int arg, lua_Integer v, const char *what) {
  if (v < 0) luaL_argerror(L, arg, lua_pushfstring(L, "%s must be >= 0, got %I", what, v));
  return (uint64_t)v;
}

rn_rng *rn_lua_opt_rng(lua_State *L, int arg, rn_rng *scratch) {
  if (!lua_isnoneornil(L, arg)) {
    luaL_checktype(L, arg, LUA_TTABLE);
    if (lua_getfield(L, arg, "generator") != LUA_TNIL) {
      rn_rng *g = (rn_rng *)luaL_testudata(L, -1, RN_RNG_MT);
      if (!g) luaL_argerror(L, arg, "opts.generator must be a rn.generator");
      lua_pop(L, 1);
      return g;
    }
    lua_pop(L, 1);
    lua_getfield(L, arg, "seed");
    int has_seed = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (has_seed) {
      uint64_t seed = check_seed(L, arg, rn_lua_opt_int(L, arg, "seed", 0), "opts.seed");
      uint64_t stream = check_seed(L, arg, rn_lua_opt_int(L, arg, "stream", 0), "opts.stream");
      rn_rng_init(scratch, seed, stream);
      return scratch;
    }
  }
  return &rn_lua_state_of(L)->rng;
}

/* ------------------------------------------------------------------ draws */

typedef enum { DRAW_NORMAL, DRAW_UNIFORM } draw_kind;

/* shape at arg, opts after it; g NULL means "from opts" */
static int draw(lua_State *L, draw_kind kind, rn_rng *g, int arg) {
  int64_t shape[RN_MAX_DIMS];
  int ndim = rn_lua_check_shape(L, arg, shape);
  int opts = rn_lua_after_shape(L, arg, ndim);
  lua_settop(L, opts); /* boxes go above the opts slot */
  rn_rng scratch;
  if (!g) g = rn_lua_opt_rng(L, opts, &scratch);
  rn_dtype dt = rn_lua_opt_dtype(L, opts, RN_F32);
  if (dt != RN_F32) luaL_argerror(L, opts, "random floats are float32 only");
  rn_device dev = rn_lua_opt_device(L, opts);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_tensor_empty(box, ndim, shape, dt, dev), kind == DRAW_NORMAL ? "randn" : "rand");
  if (kind == DRAW_NORMAL) {
    double mean = rn_lua_opt_num(L, opts, "mean", 0), std = rn_lua_opt_num(L, opts, "std", 1);
    rn_lua_check(L, rn_rng_normal_(g, *box, (float)mean, (float)std), "randn");
  } else {
    double lo = rn_lua_opt_num(L, opts, "lo", 0), hi = rn_lua_opt_num(L, opts, "hi", 1);
    rn_lua_check(L, rn_rng_uniform_(g, *box, (float)lo, (float)hi), "rand");
  }
  if (rn_lua_opt_bool(L, opts, "requires_grad", 0)) rn_lua_check(L, rn_set_requires_grad(*box, true), "randn");
  return 1;
}

/* randint(lo, hi, shape, opts): integers in [lo, hi], both ends included (like math.random). */
static int randint(lua_State *L, rn_rng *g, int arg) {
  lua_Integer lo = luaL_checkinteger(L, arg), hi = luaL_checkinteger(L, arg + 1);
  if (hi < lo) luaL_argerror(L, arg + 1, lua_pushfstring(L, "hi (%I) is below lo (%I)", hi, lo));
  int64_t shape[RN_MAX_DIMS];
  int ndim = rn_lua_check_shape(L, arg + 2, shape);
  int opts = rn_lua_after_shape(L, arg + 2, ndim);
  lua_settop(L, opts);
  rn_rng scratch;
  if (!g) g = rn_lua_opt_rng(L, opts, &scratch);
  rn_dtype dt = rn_lua_opt_dtype(L, opts, RN_I64);
  rn_device dev = rn_lua_opt_device(L, opts);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_tensor_empty(box, ndim, shape, RN_I64, rn_cpu()), "randint");
  int64_t *p = (int64_t *)rn_tensor_data(*box), n = rn_tensor_numel(*box);
  for (int64_t i = 0; i < n; i++) p[i] = rn_rng_int(g, lo, hi);
  if (dt != RN_I64 || dev.type != RN_CPU) {
    rn_tensor **b2 = rn_lua_new_box(L);
    rn_lua_check(L, rn_to_dtype(b2, *box, dt), "randint");
    rn_tensor **b3 = rn_lua_new_box(L);
    rn_lua_check(L, rn_to_device(b3, *b2, dev), "randint");
  }
  return 1;
}

/* randperm(n, opts): a permutation of 1..n (1-based, like every index in the Lua API). */
static int randperm(lua_State *L, rn_rng *g, int arg) {
  lua_Integer n = luaL_checkinteger(L, arg);
  if (n < 0) luaL_argerror(L, arg, lua_pushfstring(L, "n must be >= 0, got %I", n));
  lua_settop(L, arg + 1);
  rn_rng scratch;
  if (!g) g = rn_lua_opt_rng(L, arg + 1, &scratch);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_rng_permutation(g, box, n), "randperm");
  rn_tensor *p0 = *box;
  *box = NULL; /* ownership moves to the index conversion */
  rn_lua_push_index_tensor(L, p0);
  return 1;
}

static int m_randn(lua_State *L) { return draw(L, DRAW_NORMAL, NULL, 1); }
static int m_rand(lua_State *L) { return draw(L, DRAW_UNIFORM, NULL, 1); }
static int m_randint(lua_State *L) { return randint(L, NULL, 1); }
static int m_randperm(lua_State *L) { return randperm(L, NULL, 1); }

/* In-place fills: x:normal_(mean, std, opts), x:uniform_(lo, hi, opts). */
static int t_normal_(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  double mean = lua_isnoneornil(L, 2) ? 0 : rn_lua_check_finite(L, 2);
  double std = lua_isnoneornil(L, 3) ? 1 : rn_lua_check_finite(L, 3);
  if (std < 0) luaL_argerror(L, 3, "std must be >= 0");
  rn_rng scratch;
  rn_lua_check(L, rn_rng_normal_(rn_lua_opt_rng(L, 4, &scratch), t, (float)mean, (float)std), "normal_");
  lua_settop(L, 1);
  return 1;
}

static int t_uniform_(lua_State *L) {
  rn_tensor *t = rn_lua_check_tensor(L, 1);
  double lo = lua_isnoneornil(L, 2) ? 0 : rn_lua_check_finite(L, 2);
  double hi = lua_isnoneornil(L, 3) ? 1 : rn_lua_check_finite(L, 3);
  if (hi < lo) luaL_argerror(L, 3, "hi must be >= lo");
  rn_rng scratch;
  rn_lua_check(L, rn_rng_uniform_(rn_lua_opt_rng(L, 4, &scratch), t, (float)lo, (float)hi), "uniform_");
  lua_settop(L, 1);
  return 1;
}

/* rn.manual_seed(seed[, stream]): reseeds the default generator. */
static int m_manual_seed(lua_State *L) {
  uint64_t seed = check_seed(L, 1, luaL_checkinteger(L, 1), "seed");
  uint64_t stream = check_seed(L, 2, luaL_optinteger(L, 2, 0), "stream");
  rn_rng_init(&rn_lua_state_of(L)->rng, seed, stream);
  return 0;
}

/* ------------------------------------------------------------------ generator userdata */

static int m_generator(lua_State *L) {
  uint64_t seed = check_seed(L, 1, luaL_optinteger(L, 1, 0), "seed");
  uint64_t stream = check_seed(L, 2, luaL_optinteger(L, 2, 0), "stream");
  rn_rng *g = (rn_rng *)lua_newuserdatauv(L, sizeof *g, 0);
  rn_rng_init(g, seed, stream);
  luaL_setmetatable(L, RN_RNG_MT);
  return 1;
}

static int g_randn(lua_State *L) { return draw(L, DRAW_NORMAL, check_gen(L, 1), 2); }
static int g_rand(lua_State *L) { return draw(L, DRAW_UNIFORM, check_gen(L, 1), 2); }
static int g_randint(lua_State *L) { return randint(L, check_gen(L, 1), 2); }
static int g_randperm(lua_State *L) { return randperm(L, check_gen(L, 1), 2); }

static int g_random(lua_State *L) { /* one double in [0,1) */
  lua_pushnumber(L, rn_rng_double(check_gen(L, 1)));
  return 1;
}

static int g_int(lua_State *L) { /* one integer in [lo, hi] */
  rn_rng *g = check_gen(L, 1);
  lua_Integer lo = luaL_checkinteger(L, 2), hi = luaL_checkinteger(L, 3);
  if (hi < lo) luaL_argerror(L, 3, "hi must be >= lo");
  lua_pushinteger(L, rn_rng_int(g, lo, hi));
  return 1;
}

static int g_state(lua_State *L) {
  rn_rng *g = check_gen(L, 1);
  lua_pushinteger(L, (lua_Integer)g->seed);
  lua_pushinteger(L, (lua_Integer)g->stream);
  lua_pushinteger(L, (lua_Integer)g->offset);
  return 3;
}

static int g_clone(lua_State *L) {
  rn_rng *g = check_gen(L, 1);
  rn_rng *c = (rn_rng *)lua_newuserdatauv(L, sizeof *c, 0);
  *c = *g;
  luaL_setmetatable(L, RN_RNG_MT);
  return 1;
}

static int g_tostring(lua_State *L) {
  rn_rng *g = check_gen(L, 1);
  lua_pushfstring(L, "generator(seed %I, stream %I, offset %I)", (lua_Integer)g->seed, (lua_Integer)g->stream,
                  (lua_Integer)g->offset);
  return 1;
}

static const luaL_Reg gen_methods[] = {
  {"randn", g_randn}, {"rand", g_rand}, {"randint", g_randint}, {"randperm", g_randperm}, {"random", g_random},
  {"int", g_int}, {"state", g_state}, {"clone", g_clone}, {NULL, NULL}};

static const luaL_Reg module_fns[] = {
  {"randn", m_randn}, {"rand", m_rand}, {"randint", m_randint}, {"randperm", m_randperm},
  {"generator", m_generator}, {"manual_seed", m_manual_seed}, {NULL, NULL}};

static const luaL_Reg tensor_methods[] = {{"normal_", t_normal_}, {"uniform_", t_uniform_}, {NULL, NULL}};

void rn_lua_open_rng(lua_State *L) {
  static const luaL_Reg meta[] = {{"__tostring", g_tostring}, {NULL, NULL}};
  rn_lua_new_class(L, RN_RNG_MT, meta, gen_methods);
  rn_lua_state_of(L); /* create the default generator now */
  rn_lua_register(L, module_fns, 0);
  rn_lua_register(L, tensor_methods, 1);
}
