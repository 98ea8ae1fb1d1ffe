/* bb_core.c - the backbone object: building the network description, stage queries, parameter access. */
#include <stdarg.h>

#include "bb_internal.h"

static const char *const ARCHS[] = {"resnet18", "resnet34", "resnet50", "wide_resnet50_2", "resnet50v2",
                                    "mobilenetv2", "efficientnet_b4", "squeezenet1_1", NULL};

const char *const *rn_backbone_archs(void) { return ARCHS; }

rn_backbone_opts rn_backbone_opts_default(void) {
  rn_backbone_opts o = {0, NULL};
  return o;
}

const char *bb_fmt(char *buf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, BB_NAME, fmt, ap);
  va_end(ap);
  return buf;
}

/* Grows a dynamic array to hold one more element; false (and bb->oom) when out of memory. */
static bool grow(rn_backbone *bb, void **arr, int *cap, int n, size_t elem) {
  if (n < *cap) return true;
  int nc = *cap ? 2 * *cap : 32;
  void *p = realloc(*arr, (size_t)nc * elem);
  if (!p) { bb->oom = true; return false; }
  *arr = p;
  *cap = nc;
  return true;
}

static int add_src(rn_backbone *bb, const char *name, bb_src_kind kind, int ndim, const int64_t *shape, int fan_in) {
  if (!grow(bb, (void **)&bb->src, &bb->cap_src, bb->n_src, sizeof *bb->src)) return -1;
  bb_src *s = &bb->src[bb->n_src];
  memset(s, 0, sizeof *s);
  snprintf(s->name, BB_NAME, "%s", name);
  s->kind = kind;
  s->ndim = ndim;
  memcpy(s->shape, shape, (size_t)ndim * sizeof *shape);
  s->fan_in = fan_in;
  return bb->n_src++;
}

static int add_param(rn_backbone *bb, const char *name, int ndim, const int64_t *shape) {
  if (!grow(bb, (void **)&bb->param, &bb->cap_param, bb->n_param, sizeof *bb->param)) return -1;
  bb_param *p = &bb->param[bb->n_param];
  memset(p, 0, sizeof *p);
  snprintf(p->name, BB_NAME, "%s", name);
  p->ndim = ndim;
  memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
  p->stage = bb->n_stage;
  return bb->n_param++;
}

static int add_unit(rn_backbone *bb, const bb_unit *u) {
  if (!grow(bb, (void **)&bb->unit, &bb->cap_unit, bb->n_unit, sizeof *bb->unit)) return -1;
  bb->unit[bb->n_unit] = *u;
  return bb->n_unit++;
}

static void add_bn_src(rn_backbone *bb, const char *bn, int c) {
  static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
  char name[BB_NAME];
  int64_t shape[1] = {c};
  for (int i = 0; i < 4; i++)
    add_src(bb, bb_fmt(name, "%s.%s", bn, suffix[i]), (bb_src_kind)(SRC_BN_W + i), 1, shape, 0);
}

int bb_decl_conv(rn_backbone *bb, const char *prefix, int o, int cin_g, int k, const char *bn, bool src_bias) {
  bb_unit u;
  memset(&u, 0, sizeof u);
  u.is_conv = true;
  snprintf(u.prefix, BB_NAME, "%s", prefix);
  snprintf(u.bn, BB_NAME, "%s", bn ? bn : "");
  u.src_bias = src_bias;
  u.o = o, u.cin_g = cin_g, u.kh = u.kw = k;
  char name[BB_NAME];
  int64_t wshape[4] = {o, cin_g, k, k}, bshape[1] = {o};
  add_src(bb, bb_fmt(name, "%s.weight", prefix), SRC_CONV_W, 4, wshape, cin_g * k * k);
  if (src_bias) add_src(bb, bb_fmt(name, "%s.bias", prefix), SRC_CONV_B, 1, bshape, cin_g * k * k);
  if (bn) add_bn_src(bb, bn, o);
  u.w = add_param(bb, bb_fmt(name, "%s.weight", prefix), 4, wshape);
  u.b = (src_bias || bn) ? add_param(bb, bb_fmt(name, "%s.bias", prefix), 1, bshape) : -1;
  return add_unit(bb, &u);
}

int bb_decl_affine(rn_backbone *bb, const char *bn, int c) {
  bb_unit u;
  memset(&u, 0, sizeof u);
  snprintf(u.prefix, BB_NAME, "%s", bn);
  snprintf(u.bn, BB_NAME, "%s", bn);
  u.o = c;
  add_bn_src(bb, bn, c);
  char name[BB_NAME];
  int64_t shape[1] = {c};
  u.w = add_param(bb, bb_fmt(name, "%s.scale", bn), 1, shape);
  u.b = add_param(bb, bb_fmt(name, "%s.shift", bn), 1, shape);
  return add_unit(bb, &u);
}

static int new_slot(rn_backbone *bb, int channels) {
  if (!grow(bb, (void **)&bb->slot_c, &bb->cap_slot, bb->n_slot, sizeof *bb->slot_c)) return -1;
  int *p = realloc(bb->slot_last, (size_t)bb->cap_slot * sizeof *p);
  if (!p) { bb->oom = true; return -1; }
  bb->slot_last = p;
  bb->slot_c[bb->n_slot] = channels;
  bb->slot_last[bb->n_slot] = -1;
  return bb->n_slot++;
}

static void use_slot(rn_backbone *bb, int slot) {
  if (slot >= 0 && slot < bb->n_slot) bb->slot_last[slot] = bb->n_node;
}

/* Appends a node reading in/in2 and producing a new slot of `channels`; returns the slot. */
static int add_node(rn_backbone *bb, bb_node nd, int channels) {
  if (bb->oom || nd.in < 0 || !grow(bb, (void **)&bb->node, &bb->cap_node, bb->n_node, sizeof *bb->node)) {
    bb->oom = true;
    return -1;
  }
  use_slot(bb, nd.in);
  use_slot(bb, nd.in2);
  nd.out = new_slot(bb, channels);
  if (nd.out < 0) return -1;
  bb->node[bb->n_node++] = nd;
  return nd.out;
}

static bb_node node_of(bb_op op, int in) {
  bb_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = op, nd.in = in, nd.in2 = -1, nd.unit = -1, nd.stride = 1, nd.groups = 1;
  return nd;
}

int bb_conv(rn_backbone *bb, int in, int unit, int stride, int pad, int groups, bb_act act, int residual) {
  if (unit < 0) { bb->oom = true; return -1; }
  bb_node nd = node_of(OP_CONV, in);
  nd.unit = unit, nd.stride = stride, nd.pad = pad, nd.groups = groups, nd.act = act, nd.in2 = residual;
  return add_node(bb, nd, bb->unit[unit].o);
}

int bb_affine(rn_backbone *bb, int in, int unit, bb_act act) {
  if (unit < 0) { bb->oom = true; return -1; }
  bb_node nd = node_of(OP_AFFINE, in);
  nd.unit = unit, nd.act = act;
  return add_node(bb, nd, bb->unit[unit].o);
}

int bb_maxpool(rn_backbone *bb, int in, int k, int stride, int pad, bool ceil_mode) {
  bb_node nd = node_of(OP_MAXPOOL, in);
  nd.k = k, nd.stride = stride, nd.pad = pad, nd.ceil_mode = ceil_mode;
  return add_node(bb, nd, in >= 0 ? bb->slot_c[in] : 0);
}

int bb_gap(rn_backbone *bb, int in) { return add_node(bb, node_of(OP_GAP, in), in >= 0 ? bb->slot_c[in] : 0); }

int bb_mul(rn_backbone *bb, int x, int gate) {
  bb_node nd = node_of(OP_MUL, x);
  nd.in2 = gate;
  return add_node(bb, nd, x >= 0 ? bb->slot_c[x] : 0);
}

int bb_concat(rn_backbone *bb, int a, int b) {
  bb_node nd = node_of(OP_CONCAT, a);
  nd.in2 = b;
  return add_node(bb, nd, a >= 0 && b >= 0 ? bb->slot_c[a] + bb->slot_c[b] : 0);
}

int bb_flatten(rn_backbone *bb, int in) {
  return add_node(bb, node_of(OP_FLATTEN, in), in >= 0 ? bb->slot_c[in] : 0);
}

void bb_mark_stage(rn_backbone *bb, const char *name, int slot, int reduction) {
  if (bb->n_stage >= BB_MAX_STAGES || slot < 0) { bb->oom = true; return; }
  bb_stage *s = &bb->stage[bb->n_stage++];
  snprintf(s->name, sizeof s->name, "%s", name);
  s->slot = slot;
  s->node = bb->n_node - 1;
  s->channels = bb->slot_c[slot];
  s->reduction = reduction;
}

/* ------------------------------------------------------------------ object */

void rn_backbone_free(rn_backbone *bb) {
  if (!bb) return;
  bb_packed_free(bb);
  for (int i = 0; i < bb->n_param; i++) rn_tensor_release(bb->param[i].t);
  free(bb->src);
  free(bb->param);
  free(bb->unit);
  free(bb->node);
  free(bb->slot_c);
  free(bb->slot_last);
  free(bb);
}

/* Parses the comma-separated stage list into bb->sel. */
static rn_status select_stages(rn_backbone *bb, const char *list) {
  bb->n_sel = 0;
  if (!list || !*list) return RN_OK;
  const char *p = list;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char name[32];
    if (len == 0 || len >= sizeof name)
      return rn_error(RN_ERR_ARG, "backbone %s: bad stage list \"%s\"", bb->arch, list);
    memcpy(name, p, len);
    name[len] = 0;
    int k = rn_backbone_stage_index(bb, name);
    if (k < 0) {
      char known[128] = "";
      for (int i = 0; i < bb->n_stage; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", bb->stage[i].name);
      return rn_error(RN_ERR_ARG, "backbone %s: unknown stage \"%s\" (stages: %s)", bb->arch, name, known);
    }
    if (bb->n_sel >= BB_MAX_STAGES) return rn_error(RN_ERR_ARG, "backbone %s: too many stages in \"%s\"", bb->arch, list);
    bb->sel[bb->n_sel++] = k;
    p = e ? e + 1 : p + len;
  }
  return RN_OK;
}

rn_status rn_backbone_new(rn_backbone **out, const char *arch, const rn_backbone_opts *opts) {
  if (!out) return rn_error(RN_ERR_ARG, "backbone: out is NULL");
  *out = NULL;
  if (!arch) return rn_error(RN_ERR_ARG, "backbone: arch name is NULL");
  rn_backbone_opts o = opts ? *opts : rn_backbone_opts_default();
  rn_backbone *bb = calloc(1, sizeof *bb);
  if (!bb) return rn_error(RN_ERR_OOM, "backbone %s: out of memory", arch);
  snprintf(bb->arch, sizeof bb->arch, "%s", arch);
  bb->seed = o.seed;
  bb->eps = 1e-5f;
  bb->translate = bb_translate_identity;
  new_slot(bb, 3); /* slot 0: the input */
  if (!strcmp(arch, "resnet18")) bb_build_resnet(bb, 18, 1);
  else if (!strcmp(arch, "resnet34")) bb_build_resnet(bb, 34, 1);
  else if (!strcmp(arch, "resnet50")) bb_build_resnet(bb, 50, 1);
  else if (!strcmp(arch, "wide_resnet50_2")) bb_build_resnet(bb, 50, 2);
  else if (!strcmp(arch, "resnet50v2")) bb_build_resnet_v2(bb);
  else if (!strcmp(arch, "mobilenetv2")) bb_build_mobilenetv2(bb);
  else if (!strcmp(arch, "efficientnet_b4")) bb_build_efficientnet_b4(bb);
  else if (!strcmp(arch, "squeezenet1_1")) bb_build_squeezenet(bb);
  else {
    rn_backbone_free(bb);
    char known[256] = "";
    for (int i = 0; ARCHS[i]; i++) snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", ARCHS[i]);
    return rn_error(RN_ERR_ARG, "backbone: unknown arch \"%s\" (known: %s)", arch, known);
  }
  rn_status st = bb->oom ? rn_error(RN_ERR_OOM, "backbone %s: out of memory while building", arch) : RN_OK;
  if (st == RN_OK) st = select_stages(bb, o.stages);
  bb->pending_init = true;
  if (st != RN_OK) {
    rn_backbone_free(bb);
    return st;
  }
  *out = bb;
  return RN_OK;
}

const char *rn_backbone_arch(const rn_backbone *bb) { return bb ? bb->arch : NULL; }

int rn_backbone_stage_count(const rn_backbone *bb) { return bb ? bb->n_stage : 0; }

const char *rn_backbone_stage_name(const rn_backbone *bb, int i) {
  return bb && i >= 0 && i < bb->n_stage ? bb->stage[i].name : NULL;
}

int rn_backbone_stage_index(const rn_backbone *bb, const char *name) {
  if (!bb || !name) return -1;
  for (int i = 0; i < bb->n_stage; i++)
    if (!strcmp(bb->stage[i].name, name)) return i;
  return -1;
}

int rn_backbone_stage_channels(const rn_backbone *bb, int i) {
  return bb && i >= 0 && i < bb->n_stage ? bb->stage[i].channels : 0;
}

int rn_backbone_stage_reduction(const rn_backbone *bb, int i) {
  return bb && i >= 0 && i < bb->n_stage ? bb->stage[i].reduction : 0;
}

bool bb_stage_ready(const rn_backbone *bb, int stage) {
  if (bb->pending_init) return true;
  for (int i = 0; i < bb->n_param; i++)
    if (bb->param[i].stage <= stage && !bb->param[i].t) return false;
  return true;
}

bool rn_backbone_stage_ready(const rn_backbone *bb, int i) {
  return bb && i >= 0 && i < bb->n_stage && bb_stage_ready(bb, i);
}

int rn_backbone_output_count(const rn_backbone *bb) {
  if (!bb) return 0;
  if (bb->n_sel) return bb->n_sel;
  int n = 0;
  for (int i = 0; i < bb->n_stage; i++) n += bb_stage_ready(bb, i);
  return n;
}

int rn_backbone_output_stage(const rn_backbone *bb, int k) {
  if (!bb || k < 0) return -1;
  if (bb->n_sel) return k < bb->n_sel ? bb->sel[k] : -1;
  for (int i = 0; i < bb->n_stage; i++)
    if (bb_stage_ready(bb, i) && k-- == 0) return i;
  return -1;
}

int rn_backbone_param_count(const rn_backbone *bb) { return bb ? bb->n_param : 0; }

const char *rn_backbone_param_name(const rn_backbone *bb, int i) {
  return bb && i >= 0 && i < bb->n_param ? bb->param[i].name : NULL;
}

rn_tensor *rn_backbone_get_param(rn_backbone *bb, int i) {
  if (!bb || i < 0 || i >= bb->n_param || bb_ensure_init(bb) != RN_OK) return NULL;
  bb_weights_changed(bb); /* the caller may write into it */
  return bb->param[i].t;
}
