/* pc_io.c - PatchCore model files: the bank as /patchcore/bank [K, D] and every option as an attribute of
 * /patchcore, written atomically (rn_h5_create + commit). Loading checks that the file is a PatchCore model
 * and that the backbone given (if any) is the one it was built on. */
#include <errno.h>
#include <inttypes.h>

#include "pc_internal.h"

#define GRP "/patchcore"

static rn_status write_attrs(rn_h5file *f, const rn_patchcore *pc) {
  const rn_patchcore_opts *o = &pc->o;
  char layers[64] = "", names[256] = "", seed[32];
  for (int l = 0; l < o->n_layers; l++) {
    size_t n = strlen(layers);
    snprintf(layers + n, sizeof layers - n, "%s%d", l ? "," : "", o->layers[l]);
    if (pc->bb) {
      n = strlen(names);
      snprintf(names + n, sizeof names - n, "%s%s", l ? "," : "", rn_backbone_stage_name(pc->bb, o->layers[l]));
    }
  }
  snprintf(seed, sizeof seed, "%" PRIu64, o->seed);
  RN_TRY(rn_h5_set_attr_str(f, GRP, "method", "patchcore"));
  RN_TRY(rn_h5_set_attr_str(f, GRP, "arch", pc->arch));
  RN_TRY(rn_h5_set_attr_str(f, GRP, "layers", layers));
  RN_TRY(rn_h5_set_attr_str(f, GRP, "layer_names", names));
  RN_TRY(rn_h5_set_attr_str(f, GRP, "seed", seed));
  RN_TRY(rn_h5_set_attr_str(f, GRP, "score", rn_pc_score_name(o->score)));
  RN_TRY(rn_h5_set_attr_num(f, GRP, "neighbourhood", o->neighbourhood));
  RN_TRY(rn_h5_set_attr_num(f, GRP, "pre_dim", o->pre_dim));
  RN_TRY(rn_h5_set_attr_num(f, GRP, "dim", o->dim));
  RN_TRY(rn_h5_set_attr_num(f, GRP, "coreset", o->coreset));
  RN_TRY(rn_h5_set_attr_num(f, GRP, "proj_dim", o->proj_dim));
  RN_TRY(rn_h5_set_attr_num(f, GRP, "sigma", o->sigma));
  RN_TRY(rn_h5_set_attr_num(f, GRP, "reweight", o->reweight));
  RN_TRY(rn_h5_set_attr_num(f, GRP, "train_patches", (double)pc->n_fit));
  return RN_OK;
}

rn_status rn_patchcore_save(const rn_patchcore *pc, const char *path) {
  if (!pc || !path) return rn_error(RN_ERR_ARG, "patchcore save: NULL model or path");
  if (!pc->bank) return rn_error(RN_ERR_ARG, "patchcore save: the model has no memory bank (fit first)");
  rn_h5file *f = NULL;
  RN_TRY(rn_h5_create(&f, path));
  rn_status st = rn_h5_write_tensor(f, GRP "/bank", pc->bank, NULL);
  if (st == RN_OK) st = write_attrs(f, pc);
  if (st == RN_OK) st = rn_h5_commit(f);
  rn_h5_close(f);
  return st;
}

static rn_status get_int(rn_h5file *f, const char *key, int lo, int hi, int *out) {
  double v;
  RN_TRY(rn_h5_get_attr_num(f, GRP, key, &v));
  if (!(v >= lo && v <= hi) || v != floor(v))
    return rn_error(RN_ERR_FORMAT, "patchcore load: %s: attribute %s = %g is out of range", rn_h5_path(f), key, v);
  *out = (int)v;
  return RN_OK;
}

/* Reads the options back (and the arch) from the attributes. */
static rn_status read_attrs(rn_h5file *f, rn_patchcore_opts *o, char *arch, size_t n_arch, double *n_fit) {
  char *s = NULL;
  rn_h5_attr_kind kind = RN_H5_ATTR_NONE;
  if (!rn_h5_has(f, GRP "/bank") || rn_h5_attr_type(f, GRP, "method", &kind) != RN_OK || kind != RN_H5_ATTR_STRING)
    return rn_error(RN_ERR_FORMAT, "patchcore load: %s is not a PatchCore model (no %s/bank with a 'method' attribute)",
                    rn_h5_path(f), GRP);
  RN_TRY(rn_h5_get_attr_str(f, GRP, "method", &s));
  bool ok = strcmp(s, "patchcore") == 0;
  free(s);
  if (!ok) return rn_error(RN_ERR_FORMAT, "patchcore load: %s holds another method's model", rn_h5_path(f));
  *o = rn_patchcore_opts_default();
  RN_TRY(rn_h5_get_attr_str(f, GRP, "arch", &s));
  snprintf(arch, n_arch, "%s", s);
  free(s);
  RN_TRY(rn_h5_get_attr_str(f, GRP, "layers", &s));
  o->n_layers = 0;
  char *p = s;
  rn_status st = RN_OK;
  while (*p && st == RN_OK) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 0 || v > 64 || o->n_layers == RN_PC_MAX_LAYERS || (*end && *end != ','))
      st = rn_error(RN_ERR_FORMAT, "patchcore load: %s: bad layers attribute '%s'", rn_h5_path(f), s);
    else
      o->layers[o->n_layers++] = (int)v;
    p = *end ? end + 1 : end;
  }
  free(s);
  RN_TRY(st);
  RN_TRY(rn_h5_get_attr_str(f, GRP, "seed", &s));
  errno = 0;
  o->seed = strtoull(s, NULL, 10);
  free(s);
  RN_TRY(rn_h5_get_attr_str(f, GRP, "score", &s));
  st = rn_pc_score_parse(s, &o->score);
  free(s);
  if (st != RN_OK) return rn_error(RN_ERR_FORMAT, "patchcore load: %s: %s", rn_h5_path(f), rn_last_error());
  double v;
  RN_TRY(get_int(f, "neighbourhood", 1, 31, &o->neighbourhood));
  RN_TRY(get_int(f, "pre_dim", 0, 1 << 20, &o->pre_dim));
  RN_TRY(get_int(f, "dim", 0, 1 << 20, &o->dim));
  RN_TRY(get_int(f, "proj_dim", 0, 1 << 20, &o->proj_dim));
  RN_TRY(get_int(f, "reweight", 0, 1 << 20, &o->reweight));
  RN_TRY(rn_h5_get_attr_num(f, GRP, "coreset", &o->coreset));
  RN_TRY(rn_h5_get_attr_num(f, GRP, "sigma", &v));
  o->sigma = (float)v;
  RN_TRY(rn_h5_get_attr_num(f, GRP, "train_patches", n_fit));
  if (rn_pc_check_opts(o, NULL) != RN_OK)
    return rn_error(RN_ERR_FORMAT, "patchcore load: %s: %s", rn_h5_path(f), rn_last_error());
  return RN_OK;
}

/* The embedding dims the backbone's stages give under o. */
static int64_t expected_dim(const rn_patchcore_opts *o, const rn_backbone *bb) {
  int64_t total = 0;
  for (int l = 0; l < o->n_layers; l++) total += o->pre_dim > 0 ? o->pre_dim : rn_backbone_stage_channels(bb, o->layers[l]);
  return o->dim > 0 ? o->dim : total;
}

rn_status rn_patchcore_load(rn_patchcore **out, const char *path, rn_backbone *bb) {
  if (!out || !path) return rn_error(RN_ERR_ARG, "patchcore load: NULL output or path");
  *out = NULL;
  rn_h5file *f = NULL;
  RN_TRY(rn_h5_open(&f, path));
  rn_patchcore_opts o;
  char arch[64];
  double n_fit = 0;
  rn_tensor *bank = NULL;
  int64_t shape[2] = {-1, -1};
  rn_status st = read_attrs(f, &o, arch, sizeof arch, &n_fit);
  if (st == RN_OK) st = rn_h5_read_tensor(&bank, f, GRP "/bank", 2, shape);
  rn_h5_close(f);
  if (st == RN_OK && (bank->dtype != RN_F32 || bank->shape[0] <= 0 || bank->shape[1] <= 0))
    st = rn_error(RN_ERR_FORMAT, "patchcore load: %s: the bank is empty or not float32", path);
  if (st == RN_OK && bb) {
    if (strcmp(arch, rn_backbone_arch(bb)) != 0)
      st = rn_error(RN_ERR_FORMAT, "patchcore load: %s was built on %s, not %s", path, arch, rn_backbone_arch(bb));
    else if ((st = rn_pc_check_opts(&o, bb)) == RN_OK && expected_dim(&o, bb) != bank->shape[1])
      st = rn_error(RN_ERR_FORMAT, "patchcore load: %s: the bank has %lld dims but %s's stages give %lld", path,
                    (long long)bank->shape[1], arch, (long long)expected_dim(&o, bb));
  }
  rn_patchcore *pc = NULL;
  if (st == RN_OK) st = rn_patchcore_new(&pc, NULL, &o);
  if (st != RN_OK) {
    rn_tensor_release(bank);
    return st;
  }
  pc->bb = bb;
  snprintf(pc->arch, sizeof pc->arch, "%s", arch);
  pc->bank = bank;
  pc->dim = bank->shape[1];
  pc->n_fit = (int64_t)n_fit;
  *out = pc;
  return RN_OK;
}
