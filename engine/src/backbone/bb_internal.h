/* bb_internal.h - what the backbone files share: the network as a list of canonical parameters (the
 * unfolded source tensors, in torchvision state_dict order), folded engine parameters, units tying the two
 * together, and a straight-line program of nodes over value slots that the forward interprets. */
#ifndef REALNET_BB_INTERNAL_H
#define REALNET_BB_INTERNAL_H

#include "../internal.h"
#include "realnet/backbone.h"

#define BB_NAME 72
#define BB_MAX_STAGES 8

typedef enum { SRC_CONV_W, SRC_CONV_B, SRC_BN_W, SRC_BN_B, SRC_BN_MEAN, SRC_BN_VAR } bb_src_kind;
typedef enum { ACT_NONE, ACT_RELU, ACT_RELU6, ACT_SILU, ACT_SIGMOID } bb_act;
typedef enum { OP_CONV, OP_AFFINE, OP_MAXPOOL, OP_GAP, OP_MUL, OP_CONCAT, OP_FLATTEN } bb_op;

/* A canonical (unfolded, source-side) parameter; its index is its random-init stream. */
typedef struct {
  char name[BB_NAME];
  bb_src_kind kind;
  int ndim;
  int64_t shape[4];
  int fan_in; /* conv: in/groups * kh * kw */
} bb_src;

/* An engine parameter (folded). */
typedef struct {
  char name[BB_NAME];
  int ndim;
  int64_t shape[4];
  int stage;    /* first stage that needs it */
  rn_tensor *t; /* NULL when absent */
} bb_param;

/* A conv (weight, optional bias, optional batch norm to fold) or an unfoldable batch norm (scale, shift). */
typedef struct {
  bool is_conv;
  char prefix[BB_NAME]; /* conv name ("layer1.0.conv1") or batch norm name for an affine unit */
  char bn[BB_NAME];     /* batch norm folded into the conv, "" when none */
  bool src_bias;        /* the conv itself has a bias in the canonical layout */
  int o, cin_g, kh, kw;
  int w, b;             /* engine params: weight/bias (b -1 when none), or scale/shift */
} bb_unit;

typedef struct {
  bb_op op;
  int in, in2, out; /* slots; in2: residual (conv), gate (mul), second input (concat); -1 none */
  int unit;         /* conv / affine */
  int stride, pad, groups, k;
  bool ceil_mode;
  bb_act act;
} bb_node;

typedef struct {
  char name[16];
  int slot, node; /* the slot holding the stage's output and the node that makes it */
  int channels, reduction;
} bb_stage;

/* Maps source names to canonical names: canon[i] is a malloc'd name, or NULL when no rule applies. */
typedef rn_status (*bb_translate_fn)(const rn_backbone *bb, int n, const char *const *names, char **canon);

struct rn_backbone {
  char arch[32];
  uint64_t seed;
  float eps; /* batch norm epsilon of the canonical layout */
  bb_src *src;
  int n_src, cap_src;
  bb_param *param;
  int n_param, cap_param;
  bb_unit *unit;
  int n_unit, cap_unit;
  bb_node *node;
  int n_node, cap_node;
  int *slot_c;    /* channels per slot */
  int *slot_last; /* last node reading the slot */
  int n_slot, cap_slot;
  bb_stage stage[BB_MAX_STAGES];
  int n_stage;
  int sel[BB_MAX_STAGES], n_sel; /* requested outputs; n_sel 0: every ready stage */
  bool oom;                      /* an allocation failed while building */
  bool pending_init;             /* random weights not drawn yet (drawn on first use unless a load comes first) */
  rn_device device;              /* where the weights live (calloc: cpu); loads and random init land there */
  bool ops_path;                 /* run nodes through the op layer (always off the CPU; tests set it on the CPU) */
  struct bb_packed *packed;      /* the CPU forward's blocked weight copies (bb_forward.c); NULL until then */
  bb_translate_fn translate;
  const char *const *ignore; /* canonical name prefixes that are deliberately unused, NULL-terminated */
  int aux[8];                /* per-arch numbers the translators need (e.g. units per stage) */
};

/* --- building (bb_core.c); failures set bb->oom --- */
/* Declares a conv unit with its canonical params (weight, bias if src_bias, then the batch norm's four). */
int bb_decl_conv(rn_backbone *bb, const char *prefix, int o, int cin_g, int k, const char *bn, bool src_bias);
/* Declares an unfoldable batch norm of c channels (canonical params weight, bias, running_mean, running_var). */
int bb_decl_affine(rn_backbone *bb, const char *bn, int c);
int bb_conv(rn_backbone *bb, int in, int unit, int stride, int pad, int groups, bb_act act, int residual);
int bb_affine(rn_backbone *bb, int in, int unit, bb_act act);
int bb_maxpool(rn_backbone *bb, int in, int k, int stride, int pad, bool ceil_mode);
int bb_gap(rn_backbone *bb, int in);
int bb_mul(rn_backbone *bb, int x, int gate);
int bb_concat(rn_backbone *bb, int a, int b);
int bb_flatten(rn_backbone *bb, int in);
void bb_mark_stage(rn_backbone *bb, const char *name, int slot, int reduction);
/* A printf-formatted name into a BB_NAME buffer. */
const char *bb_fmt(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- architectures (bb_resnet.c, bb_mobile.c, bb_squeeze.c) --- */
void bb_build_resnet(rn_backbone *bb, int depth, int width_mult);
void bb_build_resnet_v2(rn_backbone *bb);
void bb_build_mobilenetv2(rn_backbone *bb);
void bb_build_efficientnet_b4(rn_backbone *bb);
void bb_build_squeezenet(rn_backbone *bb);

/* --- weights (bb_load.c) --- */
rn_status bb_random_init(rn_backbone *bb);
/* Draws the random weights when still pending (new backbones defer it: a load usually follows). */
rn_status bb_ensure_init(rn_backbone *bb);

/* --- bb_forward.c: the CPU forward keeps each convolution's weights in oneDNN's blocked layout between calls
 * (rn_cpu_conv2d_packed). Anything that hands the weights out (so they may be changed in place) calls
 * bb_weights_changed; what replaces them calls bb_packed_free, which releases the copies. --- */
void bb_weights_changed(rn_backbone *bb);
void bb_packed_free(rn_backbone *bb);
/* How many units hold a blocked copy now (for tests). */
int bb_packed_filled(const rn_backbone *bb);
/* A name -> canonical translator that only renames nothing (torchvision / timm / engine names). */
rn_status bb_translate_identity(const rn_backbone *bb, int n, const char *const *names, char **canon);
bool bb_stage_ready(const rn_backbone *bb, int stage);
/* Copies the n tensors of np (NULLs skipped) to bb->device in place of themselves; all or nothing. */
rn_status bb_params_to_device(rn_backbone *bb, rn_tensor **np, int n);

/* --- device forward (bb_device.c): one node through the device-independent op layer --- */
rn_status bb_run_node_ops(const rn_backbone *bb, const bb_node *nd, rn_tensor *a, rn_tensor *b, rn_tensor **y);

#endif
