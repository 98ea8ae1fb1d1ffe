/* bind_sdas.c - the SDAS diffusion process and sampler as userdata (engine/include/realnet/diffusion.h).
 *
 *   local d = core.sdas_diffusion{steps = 1000, schedule = "linear", learn_sigma = true, respace = "ddim20"}
 *   local xt = d:q_sample(x0, t, noise)              -- t: int64 [B] of steps 0..K-1 (values, not indices)
 *   local loss, mse, vb = d:hybrid_loss(model_out, x0, xt, t, noise)
 *   local s = core.sdas_sampler(model, d, {strength = {0.1, 0.2}, method = "ancestral", seed = 1})
 *   local x, strengths = s:sample(4, {3, 64, 64}, {y = labels})
 *
 * Timesteps: a step t of the process is a value 0..K-1 (t = 0 is the last denoising step), passed as an int64
 * tensor [B] or one integer for the whole batch. The model is called as model(x, tau[, y]) with tau a float32
 * [B] tensor of the original timesteps and must return [B, 2C, H, W] (eps, v) or [B, C, H, W].
 */
#include <string.h>

#include "bind_internal.h"
#include "realnet/diffusion.h"

#define RN_DIFF_MT "realnet.Diffusion"
#define RN_SAMPLER_MT "realnet.Sampler"

typedef struct { rn_diffusion *d; } diff_box;

typedef struct {
  rn_sampler_opts o;
  rn_rng noise, strength;
  bool has_y;
} sampler_box;   /* uservalue 1: the model, 2: the diffusion userdata */

static rn_diffusion *check_diff(lua_State *L, int arg) {
  diff_box *b = (diff_box *)luaL_checkudata(L, arg, RN_DIFF_MT);
  if (!b->d) luaL_argerror(L, arg, "diffusion was already freed");
  return b->d;
}

static int d_release(lua_State *L) {
  diff_box *b = (diff_box *)luaL_checkudata(L, 1, RN_DIFF_MT);
  rn_diffusion_release(b->d);
  b->d = NULL;
  return 0;
}

/* sdas_diffusion{steps, schedule, learn_sigma, respace = "ddimN" | "a,b,c" | {a, b, c}} */
static int d_new(lua_State *L) {
  lua_settop(L, 1);
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  rn_diffusion_config c = {0};
  c.steps = (int)rn_lua_opt_int(L, 1, "steps", 1000);
  c.schedule = rn_lua_opt_str(L, 1, "schedule", "linear");
  c.learn_sigma = rn_lua_opt_bool(L, 1, "learn_sigma", 1);
  luaL_Buffer buf;
  if (!lua_isnil(L, 1) && lua_getfield(L, 1, "respace") == LUA_TTABLE) {
    int t = lua_gettop(L);
    luaL_buffinit(L, &buf);
    for (lua_Integer i = 1, n = luaL_len(L, t); i <= n; i++) {
      lua_geti(L, t, i);
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
        luaL_argerror(L, 1, "opts.respace must be \"ddimN\", \"a,b,c\" or a list of non-negative section counts");
      lua_Integer v = lua_tointeger(L, -1);
      lua_pop(L, 1);
      if (i > 1) luaL_addchar(&buf, ',');
      lua_pushfstring(L, "%I", v);
      luaL_addvalue(&buf);
    }
    luaL_pushresult(&buf);
    c.respace = lua_tostring(L, -1);
  } else if (!lua_isnil(L, 1)) {
    if (!lua_isnil(L, -1) && !lua_isstring(L, -1))
      luaL_argerror(L, 1, "opts.respace must be \"ddimN\", \"a,b,c\" or a list of section counts");
    c.respace = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
  }
  diff_box *b = (diff_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->d = NULL;
  luaL_setmetatable(L, RN_DIFF_MT);
  rn_lua_check(L, rn_diffusion_new(&b->d, &c), "sdas.diffusion");
  return 1;
}

/* t at arg: an int64 tensor, or one integer broadcast to B (boxed on the stack; returns the tensor). */
static rn_tensor *check_steps(lua_State *L, int arg, int64_t B) {
  if (lua_isinteger(L, arg)) {
    rn_tensor **box = rn_lua_new_box(L);
    rn_lua_check(L, rn_tensor_full(box, 1, &B, RN_I64, rn_cpu(), (double)lua_tointeger(L, arg)), "sdas: t");
    return *box;
  }
  return rn_lua_check_tensor(L, arg);
}

static int d_steps(lua_State *L) { lua_pushinteger(L, rn_diffusion_steps(check_diff(L, 1))); return 1; }
static int d_base_steps(lua_State *L) { lua_pushinteger(L, rn_diffusion_base_steps(check_diff(L, 1))); return 1; }
static int d_learn_sigma(lua_State *L) { lua_pushboolean(L, rn_diffusion_learn_sigma(check_diff(L, 1))); return 1; }

/* :timesteps() -> {tau_0, ..., tau_{K-1}} original timesteps of the process steps (0-based values) */
static int d_timesteps(lua_State *L) {
  rn_diffusion *d = check_diff(L, 1);
  const int64_t *m = rn_diffusion_timestep_map(d);
  lua_createtable(L, rn_diffusion_steps(d), 0);
  for (int k = 0; k < rn_diffusion_steps(d); k++) { lua_pushinteger(L, m[k]); lua_rawseti(L, -2, k + 1); }
  return 1;
}

/* :table(name) -> a Lua list of K doubles ("betas", "alphas_cumprod", ...) */
static int d_table(lua_State *L) {
  rn_diffusion *d = check_diff(L, 1);
  rn_diffusion_field f;
  rn_lua_check(L, rn_diffusion_field_from_name(luaL_checkstring(L, 2), &f), "diffusion:table");
  const double *v = rn_diffusion_table(d, f);
  lua_createtable(L, rn_diffusion_steps(d), 0);
  for (int k = 0; k < rn_diffusion_steps(d); k++) { lua_pushnumber(L, v[k]); lua_rawseti(L, -2, k + 1); }
  return 1;
}

static int d_q_sample(lua_State *L) {
  lua_settop(L, 4);
  rn_diffusion *d = check_diff(L, 1);
  rn_tensor *x0 = rn_lua_check_tensor(L, 2), *noise = rn_lua_check_tensor(L, 4);
  rn_tensor *t = check_steps(L, 3, x0->ndim ? x0->shape[0] : 0);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_diffusion_q_sample(box, d, x0, t, noise), "diffusion:q_sample");
  return 1;
}

/* :p_mean_variance(model_out, xt, t, {clip = true}) -> mean, logvar, pred_x0 */
static int d_pmv(lua_State *L) {
  lua_settop(L, 5);
  rn_diffusion *d = check_diff(L, 1);
  rn_tensor *mo = rn_lua_check_tensor(L, 2), *xt = rn_lua_check_tensor(L, 3);
  rn_tensor *t = check_steps(L, 4, xt->ndim ? xt->shape[0] : 0);
  bool clip = rn_lua_opt_bool(L, 5, "clip", 1);
  rn_tensor **b1 = rn_lua_new_box(L), **b2 = rn_lua_new_box(L), **b3 = rn_lua_new_box(L);
  rn_lua_check(L, rn_diffusion_p_mean_variance(d, mo, xt, t, clip, b1, b2, b3), "diffusion:p_mean_variance");
  return 3;
}

static int d_vb(lua_State *L) {
  lua_settop(L, 5);
  rn_diffusion *d = check_diff(L, 1);
  rn_tensor *mo = rn_lua_check_tensor(L, 2), *x0 = rn_lua_check_tensor(L, 3), *xt = rn_lua_check_tensor(L, 4);
  rn_tensor *t = check_steps(L, 5, xt->ndim ? xt->shape[0] : 0);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_diffusion_vb(box, d, mo, x0, xt, t), "diffusion:vb");
  return 1;
}

/* :hybrid_loss(model_out, x0, xt, t, noise) -> loss (scalar), mse [B], vb [B] */
static int d_hybrid(lua_State *L) {
  lua_settop(L, 6);
  rn_diffusion *d = check_diff(L, 1);
  rn_tensor *mo = rn_lua_check_tensor(L, 2), *x0 = rn_lua_check_tensor(L, 3), *xt = rn_lua_check_tensor(L, 4);
  rn_tensor *noise = rn_lua_check_tensor(L, 6);
  rn_tensor *t = check_steps(L, 5, xt->ndim ? xt->shape[0] : 0);
  rn_tensor **b1 = rn_lua_new_box(L), **b2 = rn_lua_new_box(L), **b3 = rn_lua_new_box(L);
  rn_lua_check(L, rn_diffusion_hybrid_loss(b1, b2, b3, d, mo, x0, xt, t, noise), "diffusion:hybrid_loss");
  rn_lua_gc_nudge(L);
  return 3;
}

/* B strengths from arg: nil (zeros), a number or a list; pushed as a userdata buffer. */
static double *check_strengths(lua_State *L, int arg, int64_t B) {
  double *s = (double *)lua_newuserdatauv(L, sizeof(double) * (size_t)(B > 0 ? B : 1), 0);
  for (int64_t b = 0; b < B; b++) {
    if (lua_isnoneornil(L, arg)) s[b] = 0;
    else if (lua_type(L, arg) == LUA_TNUMBER) s[b] = lua_tonumber(L, arg);
    else {
      luaL_checktype(L, arg, LUA_TTABLE);
      lua_geti(L, arg, b + 1);
      if (!lua_isnumber(L, -1)) luaL_argerror(L, arg, "strengths must be a number or a list of B numbers");
      s[b] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  }
  return s;
}

static rn_sigma_kind check_sigma(lua_State *L, int arg, const char *name) {
  if (strcmp(name, "beta") == 0) return RN_SIGMA_BETA;
  if (strcmp(name, "beta_tilde") == 0) return RN_SIGMA_BETA_TILDE;
  if (strcmp(name, "learned") == 0) return RN_SIGMA_LEARNED;
  luaL_argerror(L, arg, lua_pushfstring(L, "unknown sigma '%s' (beta, beta_tilde or learned)", name));
  return RN_SIGMA_BETA;
}

/* :ancestral_step(model_out, xt, t, z, s, {clip}) and :ddim_step(model_out, xt, t, z, s, {eta, sigma, clip}) */
static int step(lua_State *L, bool ddim) {
  lua_settop(L, 7);
  rn_diffusion *d = check_diff(L, 1);
  rn_tensor *mo = rn_lua_check_tensor(L, 2), *xt = rn_lua_check_tensor(L, 3), *z = rn_lua_check_tensor(L, 5);
  lua_Integer t = luaL_checkinteger(L, 4);
  if (t < 0 || t >= rn_diffusion_steps(d))
    luaL_argerror(L, 4, lua_pushfstring(L, "step %I is outside 0..%d", t, rn_diffusion_steps(d) - 1));
  double *s = check_strengths(L, 6, xt->ndim ? xt->shape[0] : 0);
  bool clip = rn_lua_opt_bool(L, 7, "clip", 1);
  rn_tensor **box = rn_lua_new_box(L);
  if (ddim)
    rn_lua_check(L, rn_diffusion_ddim_step(box, d, mo, xt, (int)t, z, s, rn_lua_opt_num(L, 7, "eta", 0),
                                           check_sigma(L, 7, rn_lua_opt_str(L, 7, "sigma", "beta")), clip),
                 "diffusion:ddim_step");
  else
    rn_lua_check(L, rn_diffusion_ancestral_step(box, d, mo, xt, (int)t, z, s, clip), "diffusion:ancestral_step");
  return 1;
}
static int d_ancestral(lua_State *L) { return step(L, false); }
static int d_ddim(lua_State *L) { return step(L, true); }

static int d_tostring(lua_State *L) {
  diff_box *b = (diff_box *)luaL_checkudata(L, 1, RN_DIFF_MT);
  if (!b->d) lua_pushliteral(L, "Diffusion (freed)");
  else
    lua_pushfstring(L, "Diffusion(%d of %d steps, %s)", rn_diffusion_steps(b->d), rn_diffusion_base_steps(b->d),
                    rn_diffusion_learn_sigma(b->d) ? "learned variance" : "fixed variance");
  return 1;
}

/* ------------------------------------------------------------------ elementwise helpers */

static int l_normal_kl(lua_State *L) {
  rn_tensor *a = rn_lua_check_tensor(L, 1), *b = rn_lua_check_tensor(L, 2), *c = rn_lua_check_tensor(L, 3),
            *e = rn_lua_check_tensor(L, 4);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_normal_kl(box, a, b, c, e), "normal_kl");
  return 1;
}

static int l_disc_ll(lua_State *L) {
  rn_tensor *a = rn_lua_check_tensor(L, 1), *b = rn_lua_check_tensor(L, 2), *c = rn_lua_check_tensor(L, 3);
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_discretized_gaussian_log_likelihood(box, a, b, c), "discretized_gaussian_log_likelihood");
  return 1;
}

/* ------------------------------------------------------------------ sampler */

typedef struct { lua_State *L; int sampler; int y; } model_call;

/* Calls the Lua model under pcall so a Lua error never unwinds through the engine's frames. */
static rn_status call_model(void *ud, rn_tensor *x, rn_tensor *tau, rn_tensor **out) {
  model_call *mc = ud;
  lua_State *L = mc->L;
  *out = NULL;
  if (!lua_checkstack(L, 6)) return rn_error(RN_ERR_OOM, "sample: Lua stack overflow");
  lua_getiuservalue(L, mc->sampler, 1);
  rn_lua_push_tensor(L, rn_tensor_retain(x));
  rn_lua_push_tensor(L, rn_tensor_retain(tau));
  int nargs = 2;
  if (mc->y) { lua_pushvalue(L, mc->y); nargs++; }
  if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {
    rn_status st = rn_error(RN_ERR_ARG, "the model raised: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
    lua_pop(L, 1);
    return st;
  }
  rn_tensor **box = (rn_tensor **)luaL_testudata(L, -1, RN_TENSOR_MT);
  rn_status st = RN_OK;
  if (!box || !*box) st = rn_error(RN_ERR_ARG, "the model returned a %s, not a tensor", luaL_typename(L, -1));
  else *out = rn_tensor_retain(*box);
  lua_pop(L, 1);
  rn_lua_gc_nudge(L);
  return st;
}

static sampler_box *check_sampler(lua_State *L, int arg) {
  return (sampler_box *)luaL_checkudata(L, arg, RN_SAMPLER_MT);
}

/* sdas_sampler(model, diffusion, {strength = s | {a, b}, per_image = false, method = "ancestral" | "ddim",
 *   sigma = "beta" | "beta_tilde" | "learned", eta = 0, clip = true, seed = 0, stream = 0, device}) */
static int s_new(lua_State *L) {
  lua_settop(L, 3);
  if (lua_isnil(L, 1)) luaL_argerror(L, 1, "a model (callable) is required");
  check_diff(L, 2);
  if (!lua_isnil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  rn_sampler_opts o = {0};
  const char *method = rn_lua_opt_str(L, 3, "method", "ancestral");
  if (strcmp(method, "ancestral") == 0) o.method = RN_SAMPLE_ANCESTRAL;
  else if (strcmp(method, "ddim") == 0) o.method = RN_SAMPLE_DDIM;
  else luaL_argerror(L, 3, lua_pushfstring(L, "opts.method '%s' must be \"ancestral\" or \"ddim\"", method));
  o.sigma = check_sigma(L, 3, rn_lua_opt_str(L, 3, "sigma", "beta"));
  o.eta = rn_lua_opt_num(L, 3, "eta", 0);
  if (o.eta < 0) luaL_argerror(L, 3, "opts.eta must be >= 0");
  o.clip = rn_lua_opt_bool(L, 3, "clip", 1);
  o.s_per_image = rn_lua_opt_bool(L, 3, "per_image", 0);
  o.device = rn_lua_opt_device(L, 3);
  if (!lua_isnil(L, 3) && lua_getfield(L, 3, "strength") != LUA_TNIL) {
    if (lua_type(L, -1) == LUA_TNUMBER) {
      o.s_lo = o.s_hi = lua_tonumber(L, -1);
    } else if (lua_istable(L, -1) && luaL_len(L, -1) == 2) {
      lua_geti(L, -1, 1); lua_geti(L, -2, 2);
      if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1)) luaL_argerror(L, 3, "opts.strength must be s or {a, b}");
      o.s_lo = lua_tonumber(L, -2); o.s_hi = lua_tonumber(L, -1);
      lua_pop(L, 2);
    } else {
      luaL_argerror(L, 3, "opts.strength must be a number s or a range {a, b}");
    }
  }
  if (!(o.s_lo >= 0) || !(o.s_hi >= 0))
    luaL_argerror(L, 3, lua_pushfstring(L, "opts.strength must be >= 0 (got %f): a negative strength would shrink "
                                          "the injected noise", o.s_lo < o.s_hi ? o.s_lo : o.s_hi));
  if (!(o.s_hi >= o.s_lo)) luaL_argerror(L, 3, "opts.strength range {a, b} needs a <= b");
  lua_Integer seed = rn_lua_opt_int(L, 3, "seed", 0), stream = rn_lua_opt_int(L, 3, "stream", 0);
  if (seed < 0 || stream < 0) luaL_argerror(L, 3, "opts.seed and opts.stream must be >= 0");
  sampler_box *b = (sampler_box *)lua_newuserdatauv(L, sizeof *b, 2);
  memset(b, 0, sizeof *b);
  b->o = o;
  rn_rng_init(&b->noise, (uint64_t)seed, 2 * (uint64_t)stream);
  rn_rng_init(&b->strength, (uint64_t)seed, 2 * (uint64_t)stream + 1);
  lua_pushvalue(L, 1); lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2); lua_setiuservalue(L, -2, 2);
  luaL_setmetatable(L, RN_SAMPLER_MT);
  return 1;
}

/* :sample(n, shape {C, H, W}, {y = labels}) -> x [n, C, H, W], strengths {s_1, ..., s_n} */
static int s_sample(lua_State *L) {
  sampler_box *b = check_sampler(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n < 1) luaL_argerror(L, 2, "the number of samples must be positive");
  int64_t inner[RN_MAX_DIMS], shape[RN_MAX_DIMS];
  int nd = rn_lua_check_shape(L, 3, inner);
  if (nd + 1 > RN_MAX_DIMS) luaL_argerror(L, 3, "shape has too many dims");
  shape[0] = n;
  memcpy(shape + 1, inner, sizeof(int64_t) * (size_t)nd);
  int y = 0;
  if (lua_type(L, 4) == LUA_TTABLE && lua_getfield(L, 4, "y") != LUA_TNIL) y = lua_gettop(L);
  lua_getiuservalue(L, 1, 2);
  rn_diffusion *d = check_diff(L, -1);
  double *s = (double *)lua_newuserdatauv(L, sizeof(double) * (size_t)n, 0);
  model_call mc = {L, 1, y};
  rn_tensor **box = rn_lua_new_box(L);
  rn_lua_check(L, rn_diffusion_sample(box, s, d, call_model, &mc, nd + 1, shape, &b->o, &b->noise, &b->strength),
               "sampler:sample");
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 0; i < n; i++) { lua_pushnumber(L, s[i]); lua_rawseti(L, -2, i + 1); }
  return 2;
}

/* :diffusion() -> the diffusion it samples with */
static int s_diffusion(lua_State *L) { check_sampler(L, 1); lua_getiuservalue(L, 1, 2); return 1; }
static int s_model(lua_State *L) { check_sampler(L, 1); lua_getiuservalue(L, 1, 1); return 1; }

static int s_tostring(lua_State *L) {
  sampler_box *b = check_sampler(L, 1);
  lua_pushfstring(L, "Sampler(%s, s in [%f, %f]%s)", b->o.method == RN_SAMPLE_DDIM ? "ddim" : "ancestral", b->o.s_lo,
                  b->o.s_hi, b->o.s_per_image ? " per image" : "");
  return 1;
}

void rn_lua_open_sdas(lua_State *L) {
  static const luaL_Reg dmeth[] = {
    {"steps", d_steps}, {"base_steps", d_base_steps}, {"learn_sigma", d_learn_sigma}, {"timesteps", d_timesteps},
    {"table", d_table}, {"q_sample", d_q_sample}, {"p_mean_variance", d_pmv}, {"vb", d_vb},
    {"hybrid_loss", d_hybrid}, {"ancestral_step", d_ancestral}, {"ddim_step", d_ddim}, {"free", d_release},
    {NULL, NULL}};
  static const luaL_Reg dmeta[] = {{"__gc", d_release}, {"__close", d_release}, {"__tostring", d_tostring},
                                   {NULL, NULL}};
  static const luaL_Reg smeth[] = {{"sample", s_sample}, {"diffusion", s_diffusion}, {"model", s_model},
                                   {NULL, NULL}};
  static const luaL_Reg smeta[] = {{"__tostring", s_tostring}, {NULL, NULL}};
  rn_lua_new_class(L, RN_DIFF_MT, dmeta, dmeth);
  rn_lua_new_class(L, RN_SAMPLER_MT, smeta, smeth);
  static const luaL_Reg fns[] = {
    {"sdas_diffusion", d_new}, {"sdas_sampler", s_new}, {"sdas_normal_kl", l_normal_kl},
    {"sdas_discretized_gaussian_log_likelihood", l_disc_ll}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
