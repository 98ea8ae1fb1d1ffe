/* pc_core.c - the PatchCore model: options, lifetime, collecting training patches and building the bank. */
#include "pc_internal.h"

rn_patchcore_opts rn_patchcore_opts_default(void) {
  rn_patchcore_opts o;
  memset(&o, 0, sizeof o);
  o.n_layers = 2;
  o.layers[0] = 1;
  o.layers[1] = 2;
  o.neighbourhood = 3;
  o.coreset = 0.1;
  o.proj_dim = 128;
  o.sigma = 4.0f;
  o.score = RN_PC_SCORE_PATCH_MAX;
  o.reweight = 9;
  return o;
}

static const char *const score_names[] = {"patch_max", "map_max", "reweight"};

const char *rn_pc_score_name(rn_pc_score s) {
  return (unsigned)s < sizeof score_names / sizeof *score_names ? score_names[s] : "?";
}

rn_status rn_pc_score_parse(const char *name, rn_pc_score *out) {
  for (int i = 0; i < 3; i++)
    if (name && strcmp(name, score_names[i]) == 0) {
      *out = (rn_pc_score)i;
      return RN_OK;
    }
  return rn_error(RN_ERR_ARG, "patchcore: unknown score '%s' (patch_max, map_max, reweight)", name ? name : "(null)");
}

rn_status rn_pc_check_opts(const rn_patchcore_opts *o, const rn_backbone *bb) {
  if (o->n_layers < 1 || o->n_layers > RN_PC_MAX_LAYERS)
    return rn_error(RN_ERR_ARG, "patchcore: %d layers requested, 1..%d supported", o->n_layers, RN_PC_MAX_LAYERS);
  for (int l = 0; l < o->n_layers; l++) {
    if (o->layers[l] < 0) return rn_error(RN_ERR_ARG, "patchcore: layer %d has a negative stage index", l + 1);
    for (int m = 0; m < l; m++)
      if (o->layers[m] == o->layers[l])
        return rn_error(RN_ERR_ARG, "patchcore: stage %d is requested twice", o->layers[l] + 1);
    if (!bb) continue;
    int ns = rn_backbone_stage_count(bb);
    if (o->layers[l] >= ns)
      return rn_error(RN_ERR_ARG, "patchcore: stage %d is out of range 1..%d for %s", o->layers[l] + 1, ns,
                      rn_backbone_arch(bb));
    if (rn_backbone_stage_reduction(bb, o->layers[l]) <= 0)
      return rn_error(RN_ERR_ARG, "patchcore: %s stage %s is not a feature map", rn_backbone_arch(bb),
                      rn_backbone_stage_name(bb, o->layers[l]));
  }
  if (o->neighbourhood < 1 || o->neighbourhood % 2 == 0 || o->neighbourhood > 31)
    return rn_error(RN_ERR_ARG, "patchcore: neighbourhood must be odd in 1..31, got %d", o->neighbourhood);
  if (o->pre_dim < 0 || o->dim < 0)
    return rn_error(RN_ERR_ARG, "patchcore: pre_dim (%d) and dim (%d) must be >= 0", o->pre_dim, o->dim);
  if (!(o->coreset > 0.0 && o->coreset <= 1.0))
    return rn_error(RN_ERR_ARG, "patchcore: coreset fraction must be in (0, 1], got %g", o->coreset);
  if (o->proj_dim < 0) return rn_error(RN_ERR_ARG, "patchcore: proj_dim must be >= 0, got %d", o->proj_dim);
  if (!(o->sigma >= 0.0f) || !isfinite(o->sigma))
    return rn_error(RN_ERR_ARG, "patchcore: sigma must be finite and >= 0, got %g", (double)o->sigma);
  if ((unsigned)o->score > RN_PC_SCORE_REWEIGHT) return rn_error(RN_ERR_ARG, "patchcore: unknown score mode %d", o->score);
  if (o->reweight < 1 && o->score == RN_PC_SCORE_REWEIGHT)
    return rn_error(RN_ERR_ARG, "patchcore: reweight needs at least 1 neighbour, got %d", o->reweight);
  return RN_OK;
}

rn_status rn_patchcore_new(rn_patchcore **out, rn_backbone *bb, const rn_patchcore_opts *opts) {
  if (!out) return rn_error(RN_ERR_ARG, "patchcore: NULL output");
  *out = NULL;
  rn_patchcore_opts o = opts ? *opts : rn_patchcore_opts_default();
  RN_TRY(rn_pc_check_opts(&o, bb));
  rn_patchcore *pc = (rn_patchcore *)calloc(1, sizeof *pc);
  if (!pc) return rn_error(RN_ERR_OOM, "patchcore: model struct");
  pc->o = o;
  pc->bb = bb;
  if (bb) snprintf(pc->arch, sizeof pc->arch, "%s", rn_backbone_arch(bb));
  *out = pc;
  return RN_OK;
}

void rn_patchcore_free(rn_patchcore *pc) {
  if (!pc) return;
  free(pc->train);
  rn_tensor_release(pc->bank);
  free(pc);
}

rn_status rn_patchcore_set_backbone(rn_patchcore *pc, rn_backbone *bb) {
  if (!pc) return rn_error(RN_ERR_ARG, "patchcore: NULL model");
  if (bb) {
    if (pc->arch[0] && strcmp(pc->arch, rn_backbone_arch(bb)) != 0)
      return rn_error(RN_ERR_ARG, "patchcore: the model was made for %s, not %s", pc->arch, rn_backbone_arch(bb));
    RN_TRY(rn_pc_check_opts(&pc->o, bb));
    snprintf(pc->arch, sizeof pc->arch, "%s", rn_backbone_arch(bb));
  }
  pc->bb = bb;
  return RN_OK;
}

rn_patchcore_opts rn_patchcore_get_opts(const rn_patchcore *pc) { return pc->o; }

rn_status rn_patchcore_set_score(rn_patchcore *pc, rn_pc_score score, int reweight) {
  if (!pc) return rn_error(RN_ERR_ARG, "patchcore: NULL model");
  rn_patchcore_opts o = pc->o;
  o.score = score;
  o.reweight = reweight;
  RN_TRY(rn_pc_check_opts(&o, NULL));
  pc->o = o;
  return RN_OK;
}
const char *rn_patchcore_arch(const rn_patchcore *pc) { return pc->arch; }
int64_t rn_patchcore_train_patches(const rn_patchcore *pc) { return pc->n_train; }
int64_t rn_patchcore_bank_size(const rn_patchcore *pc) { return pc->bank ? pc->bank->shape[0] : 0; }
int64_t rn_patchcore_dim(const rn_patchcore *pc) { return pc->dim; }
rn_tensor *rn_patchcore_get_bank(rn_patchcore *pc) { return pc->bank; }

rn_status rn_patchcore_add_features(rn_patchcore *pc, rn_tensor *feats) {
  if (!pc) return rn_error(RN_ERR_ARG, "patchcore add: NULL model");
  char b[64];
  RN_TRY(rn_check_f32(feats, "patchcore add: features"));
  if (rn_tensor_device(feats).type != RN_CPU) return rn_error(RN_ERR_DEVICE, "patchcore add: features must be on the CPU");
  if ((feats->ndim != 2 && feats->ndim != 4) || rn_tensor_numel(feats) == 0)
    return rn_error(RN_ERR_SHAPE, "patchcore add: features must be a non-empty [P, D] or [N, h, w, D], got %s",
                    rn_shape_str(feats, b, 64));
  int64_t d = feats->shape[feats->ndim - 1], rows = rn_tensor_numel(feats) / d;
  if (pc->dim > 0 && d != pc->dim)
    return rn_error(RN_ERR_SHAPE, "patchcore add: features %s have %lld dims but the model has %lld",
                    rn_shape_str(feats, b, 64), (long long)d, (long long)pc->dim);
  if (pc->n_train + rows > pc->cap_train) {
    int64_t cap = pc->cap_train ? pc->cap_train : 4096;
    while (cap < pc->n_train + rows) cap *= 2;
    float *p = (float *)realloc(pc->train, (size_t)cap * (size_t)d * sizeof *p);
    if (!p)
      return rn_error(RN_ERR_OOM, "patchcore add: %lld training patches of %lld dims (%.1f GB)", (long long)cap,
                      (long long)d, (double)cap * (double)d * 4e-9);
    pc->train = p;
    pc->cap_train = cap;
  }
  rn_tensor *c = NULL;
  RN_TRY(rn_contig_nograd(&c, feats));
  memcpy(pc->train + pc->n_train * d, rn_f32(c), (size_t)rows * (size_t)d * sizeof(float));
  rn_tensor_release(c);
  pc->n_train += rows;
  pc->dim = d;
  return RN_OK;
}

/* The stage features of images through the borrowed backbone, embedded (new reference [N, h, w, D]). */
rn_status rn_pc_features(rn_patchcore *pc, rn_tensor *images, rn_tensor **out) {
  char b[64];
  *out = NULL;
  if (!pc->bb) return rn_error(RN_ERR_ARG, "patchcore: no backbone attached (load with a backbone or set one)");
  RN_TRY(rn_check_f32(images, "patchcore: images"));
  if (images->ndim != 4 || images->shape[1] != 3 || rn_tensor_numel(images) == 0)
    return rn_error(RN_ERR_SHAPE, "patchcore: images must be a non-empty [N,3,H,W], got %s",
                    rn_shape_str(images, b, 64));
  rn_tensor *f[RN_PC_MAX_LAYERS] = {NULL}, *x = NULL;
  /* A backbone on a device runs there; the memory bank, k-NN and scoring stay on the host, so the images go to
   * the backbone's device and the stage features come back (a round-trip per batch, small next to the net). */
  rn_status st = rn_to_device(&x, images, rn_backbone_device(pc->bb));
  if (st == RN_OK) st = rn_backbone_forward_stages(pc->bb, x, pc->o.n_layers, pc->o.layers, f);
  for (int l = 0; st == RN_OK && l < pc->o.n_layers; l++) {
    if (rn_tensor_device(f[l]).type == RN_CPU) continue;
    rn_tensor *h = NULL;
    st = rn_to_device(&h, f[l], rn_cpu());
    rn_tensor_release(f[l]);
    f[l] = h;
  }
  if (st == RN_OK) st = rn_patchcore_embed(pc, f, out);
  for (int l = 0; l < pc->o.n_layers; l++) rn_tensor_release(f[l]);
  rn_tensor_release(x);
  return st;
}

rn_status rn_patchcore_add(rn_patchcore *pc, rn_tensor *images) {
  if (!pc) return rn_error(RN_ERR_ARG, "patchcore add: NULL model");
  rn_tensor *e = NULL;
  RN_TRY(rn_pc_features(pc, images, &e));
  rn_status st = rn_patchcore_add_features(pc, e);
  rn_tensor_release(e);
  return st;
}

rn_status rn_patchcore_build(rn_patchcore *pc) {
  if (!pc) return rn_error(RN_ERR_ARG, "patchcore build: NULL model");
  int64_t n = pc->n_train, d = pc->dim;
  if (n <= 0) return rn_error(RN_ERR_ARG, "patchcore build: no training patches (empty training set)");
  int64_t k = (int64_t)floor(pc->o.coreset * (double)n);
  if (k < 1) k = 1;
  if (k > n) k = n;
  int64_t *sel = (int64_t *)malloc((size_t)k * sizeof *sel);
  if (!sel) return rn_error(RN_ERR_OOM, "patchcore build: %lld coreset indices", (long long)k);
  rn_status st = RN_OK;
  if (k == n) {
    for (int64_t i = 0; i < n; i++) sel[i] = i;
  } else {
    rn_rng g;
    rn_rng_init(&g, pc->o.seed, 0x51a47);
    int64_t start = rn_rng_int(&g, 0, n - 1);
    if (pc->o.proj_dim > 0 && pc->o.proj_dim < d) {
      float *p = (float *)malloc((size_t)n * (size_t)pc->o.proj_dim * sizeof *p);
      st = p ? rn_pc_project_raw(pc->train, n, d, pc->o.proj_dim, pc->o.seed, p)
             : rn_error(RN_ERR_OOM, "patchcore build: %lld projected patches", (long long)n);
      if (st == RN_OK) st = rn_pc_kcenter_raw(p, n, pc->o.proj_dim, k, start, sel);
      free(p);
    } else {
      st = rn_pc_kcenter_raw(pc->train, n, d, k, start, sel);
    }
  }
  rn_tensor *bank = NULL;
  if (st == RN_OK) st = rn_pc_matrix(&bank, k, d);
  if (st == RN_OK) {
    float *pb = rn_f32(bank);
    for (int64_t i = 0; i < k; i++) memcpy(pb + i * d, pc->train + sel[i] * d, (size_t)d * sizeof *pb);
    rn_tensor_release(pc->bank);
    pc->bank = bank;
    pc->n_fit = n;
    free(pc->train);
    pc->train = NULL;
    pc->n_train = pc->cap_train = 0;
  }
  free(sel);
  return st;
}

rn_status rn_patchcore_fit_dataset(rn_patchcore *pc, rn_dataset *ds, int64_t batch) {
  if (!pc || !ds) return rn_error(RN_ERR_ARG, "patchcore fit: NULL model or dataset");
  if (rn_dataset_size(ds) <= 0) return rn_error(RN_ERR_ARG, "patchcore fit: the dataset has no images");
  rn_loader_opts lo = rn_loader_opts_default();
  if (batch > 0) lo.batch = batch;
  rn_loader *ld = NULL;
  RN_TRY(rn_loader_new(&ld, ds, &lo));
  rn_batch b;
  memset(&b, 0, sizeof b);
  rn_status st;
  while ((st = rn_loader_next(ld, &b)) == RN_OK && b.images) {
    st = rn_patchcore_add(pc, b.images);
    rn_batch_clear(&b);
    if (st != RN_OK) break;
  }
  rn_loader_free(ld);
  return st == RN_OK ? rn_patchcore_build(pc) : st;
}
