/* backbone.h - frozen ImageNet feature extractors (ResNets, pre-activation ResNet-50 v2, MobileNetV2,
 * EfficientNet-B4) and SqueezeNet 1.1 as a classifier for checks. Inference only: no autograd, eval mode.
 *
 *   rn_backbone *bb = NULL;
 *   rn_backbone_opts o = rn_backbone_opts_default();
 *   o.stages = "layer1,layer2,layer3";
 *   if (rn_backbone_new(&bb, "wide_resnet50_2", &o) != RN_OK ||
 *       rn_backbone_load_file(bb, "wrn50.safetensors", NULL, NULL) != RN_OK) puts(rn_last_error());
 *   rn_tensor *f[3];
 *   rn_backbone_forward(bb, x, f);          // x float32 [N,3,H,W], ImageNet-normalised
 *   ...
 *   rn_backbone_free(bb);
 *
 * Architectures and stages (name: channels at stride):
 *   resnet18, resnet34          layer1 64/4, layer2 128/8, layer3 256/16, layer4 512/32
 *   resnet50, wide_resnet50_2   layer1 256/4, layer2 512/8, layer3 1024/16, layer4 2048/32
 *   resnet50v2                  layer1..layer4 as resnet50; each is the raw residual sum of the stage's last
 *                               unit (Gluon's stage output; pre-activation nets normalise it in the next unit)
 *   mobilenetv2                 layer1 24/4 (features.3), layer2 32/8 (features.6), layer3 96/16 (features.13),
 *                               layer4 320/32 (features.17); the 1280-channel last conv is not a stage
 *   efficientnet_b4             layer1 32/4 (blocks.1), layer2 56/8 (blocks.2), layer3 160/16 (blocks.4),
 *                               layer4 448/32 (blocks.6); as timm's features_only out_indices 1..4
 *   squeezenet1_1               layer1 128/4 (features.4), layer2 256/8 (features.7), layer3 512/16
 *                               (features.12), logits [N,1000] (classifier conv, ReLU, global average)
 *
 * Weights: a new backbone holds random weights drawn from `seed` (see rn_backbone_opts), materialised on
 * first use (forward or rn_backbone_get_param), so a load right after rn_backbone_new costs no random
 * draws. Loading replaces all of them by the source's tensors. Each supported naming is mapped to the engine's names:
 *   resnet*: torchvision (= timm);  resnet50v2: MXNet Gluon / ONNX "resnetv24_*";  mobilenetv2: torchvision,
 *   timm, and the ONNX "conv_<id>_*" layout (convs in network order);  efficientnet_b4: timm (the engine
 *   naming) and torchvision;  squeezenet1_1: torchvision and Gluon / ONNX "squeezenet0_conv<i>_*".
 * Engine names are the canonical (torchvision / timm) conv names with batch norms folded in:
 * "<conv>.weight" and "<conv>.bias"; a batch norm that cannot be folded (the input and pre-activation norms
 * of resnet50v2) is "<bn>.scale" and "<bn>.shift". Sources may give a conv's batch norm ("<bn>.weight",
 * ".bias", ".running_mean", ".running_var"), folded at load time, or an already folded "<conv>.bias".
 * Classifier heads of feature backbones and BN counters are ignored; any other name that no rule maps is
 * an error (unless allow_unmapped), as is any shape that does not fit; one message lists them all.
 * A stage whose weights are absent from the source is refused only when it is requested.
 *
 * Threading: one forward at a time per backbone (the kernels are internally parallel).
 * Devices: rn_backbone_to_device moves the weights (random ones are drawn on the host first); inputs must
 * then live on that device and outputs do too. Off the CPU each node runs through the op layer (ops.h).
 */
#ifndef REALNET_BACKBONE_H
#define REALNET_BACKBONE_H

#include "h5.h"
#include "safetensors.h"
#include "tensor.h"

typedef struct rn_backbone rn_backbone;

typedef struct {
  uint64_t seed;      /* random initial weights: Philox stream = index of the canonical parameter */
  const char *stages; /* comma-separated stage names rn_backbone_forward returns; NULL or "": every stage
                         whose weights are present */
} rn_backbone_opts;

rn_backbone_opts rn_backbone_opts_default(void); /* seed 0, all stages */

/* A new backbone with random weights; RN_ERR_ARG for an unknown arch or stage name. */
rn_status rn_backbone_new(rn_backbone **out, const char *arch, const rn_backbone_opts *opts);
void rn_backbone_free(rn_backbone *bb); /* accepts NULL */

/* The supported architecture names, NULL-terminated (borrowed, static). */
const char *const *rn_backbone_archs(void);
const char *rn_backbone_arch(const rn_backbone *bb);

/* --- stages (0-based) --- */
int rn_backbone_stage_count(const rn_backbone *bb);
const char *rn_backbone_stage_name(const rn_backbone *bb, int i); /* NULL out of range */
int rn_backbone_stage_index(const rn_backbone *bb, const char *name); /* -1 when unknown */
int rn_backbone_stage_channels(const rn_backbone *bb, int i);
int rn_backbone_stage_reduction(const rn_backbone *bb, int i); /* nominal stride (0 for logits) */
bool rn_backbone_stage_ready(const rn_backbone *bb, int i);   /* all weights it needs are present */
/* The stages rn_backbone_forward returns, in order (resolved now when opts.stages was empty). */
int rn_backbone_output_count(const rn_backbone *bb);
int rn_backbone_output_stage(const rn_backbone *bb, int k);

/* Moves the weights to dev; later loads land there. RN_ERR_DEVICE (naming why) when dev is unusable. */
rn_status rn_backbone_to_device(rn_backbone *bb, rn_device dev);
rn_device rn_backbone_device(const rn_backbone *bb); /* cpu unless moved */

/* --- forward (no autograd; outputs are new references, contiguous float32 tensors on the backbone's device) --- */
/* x: float32 [N,3,H,W]. out must have room for rn_backbone_output_count(bb) tensors. */
rn_status rn_backbone_forward(rn_backbone *bb, rn_tensor *x, rn_tensor **out);
/* The n given stages (indices, any order) into out[0..n). Runs the network only as far as needed. */
rn_status rn_backbone_forward_stages(rn_backbone *bb, rn_tensor *x, int n, const int *stages, rn_tensor **out);

/* --- weights --- */
typedef struct {
  bool allow_unmapped; /* list unmappable names in the report instead of failing */
} rn_backbone_load_opts;

typedef struct {
  int loaded;        /* engine tensors set */
  int ignored;       /* source tensors deliberately unused (classifier heads, BN counters) */
  int unmapped;      /* source tensors no rule maps (only non-zero with allow_unmapped) */
  int stages_ready;  /* stages whose weights are complete */
  char *text;        /* malloc'd summary: unmapped names, absent stages; free with rn_backbone_report_free */
} rn_backbone_load_report;

void rn_backbone_report_free(rn_backbone_load_report *r);

/* Loads n named tensors (any dtype convertible to float32, CPU). Tensors taken as they are (contiguous
 * float32 with nothing to fold) are retained, others copied. All or nothing: on error the weights are
 * unchanged. opts and report may be NULL. RN_ERR_FORMAT: unmappable names, nothing mapped, or a requested
 * stage left incomplete; RN_ERR_SHAPE: shapes that do not fit; the message names each tensor. */
rn_status rn_backbone_load(rn_backbone *bb, int n, const char *const *names, rn_tensor *const *tensors,
                           const rn_backbone_load_opts *opts, rn_backbone_load_report *report);
/* Every tensor of a safetensors file or .npy folder. */
rn_status rn_backbone_load_tensorset(rn_backbone *bb, rn_tensorset *s, const rn_backbone_load_opts *opts,
                                     rn_backbone_load_report *report);
/* Every dataset under `prefix` ("/" or NULL: the whole file) of an HDF5 store, names relative to it. */
rn_status rn_backbone_load_h5(rn_backbone *bb, rn_h5file *f, const char *prefix, const rn_backbone_load_opts *opts,
                              rn_backbone_load_report *report);
/* A file by its first bytes (HDF5 signature: HDF5 store; else safetensors) or a folder of .npy files. */
rn_status rn_backbone_load_file(rn_backbone *bb, const char *path, const rn_backbone_load_opts *opts,
                                rn_backbone_load_report *report);

/* The engine's weights (what an import writes to HDF5): names and tensors are borrowed; a tensor is NULL
 * when absent (its stage is not ready). */
int rn_backbone_param_count(const rn_backbone *bb);
const char *rn_backbone_param_name(const rn_backbone *bb, int i);
rn_tensor *rn_backbone_get_param(rn_backbone *bb, int i);

#endif
