/* patchcore.h - the PatchCore peer baseline (Roth et al., "Towards Total Recall in Industrial Anomaly
 * Detection", CVPR 2022): a memory bank of locally aware patch features of a frozen backbone, thinned by
 * greedy coreset subsampling, scored by nearest-neighbour distance.
 *
 *   rn_patchcore_opts o = rn_patchcore_opts_default();   // layer2+layer3, 3x3 averaging, coreset 0.1
 *   rn_patchcore *pc = NULL;
 *   if (rn_patchcore_new(&pc, bb, &o) != RN_OK ||          // bb: an rn_backbone, borrowed
 *       rn_patchcore_fit_dataset(pc, train_ds, 16) != RN_OK) puts(rn_last_error());
 *   rn_tensor *maps, *scores;
 *   rn_patchcore_predict(pc, images, &maps, &scores);      // [B,1,H,W] and [B]
 *   rn_patchcore_save(pc, "patchcore.h5");
 *   rn_patchcore_free(pc);
 *
 * Features (rn_patchcore_embed): each requested stage is averaged over a k x k neighbourhood (avg-pool,
 * stride 1, padding k/2, zero padding counted, as torch.nn.AvgPool2d(3,1,1) in anomalib and the zero-padded
 * unfold of the paper's code); stages coarser than the finest one are upsampled to its grid (bilinear,
 * align_corners false) and the stages are concatenated along channels. Optional reduction, as the paper's
 * code: when pre_dim > 0 each stage's channels are adaptively averaged to pre_dim (adaptive_avg_pool1d over
 * the channel vector), and when dim > 0 the concatenation is adaptively averaged to dim. For two stages and
 * pre_dim = dim = 1024 this gives each stage 512 dims of equal weight, as PatchCore's "preprocessing to 1024
 * then aggregation to 1024". (The paper pools the flattened C x 3 x 3 unfolded vector; we pool channels of
 * the already averaged map, which keeps the neighbourhood average exact.) Both default to 0: the plain
 * concatenation (512 + 1024 = 1536 dims for ResNet-50 layer2+layer3), as anomalib.
 *
 * Memory bank (rn_patchcore_build): all training patch features; when coreset < 1, greedy k-center
 * subsampling to floor(coreset * N) (at least 1) patches, with distances measured after a seeded
 * Johnson-Lindenstrauss projection to proj_dim dims (Gaussian, std 1/sqrt(proj_dim); 0: exact distances).
 * The first centre is a seeded random patch. Cost: the selection makes K passes over the N projected
 * patches (O(N K proj_dim), memory-bound), so it grows with the square of the training set: measured on 2
 * shared cores, 131k patches -> 13k centres took about 3 minutes. On CPU, a full-size category (780k patches
 * for 762 images at 256x256) is practical with coreset 0.01, the paper's 1% setting.
 *
 * Scoring (rn_patchcore_predict): Euclidean distance of each test patch to its nearest bank feature gives
 * the map at feature resolution; it is upsampled (bilinear, align_corners false) to the image size and
 * smoothed by a Gaussian of std sigma (radius round(4 sigma), reflect borders, as scipy.ndimage's
 * gaussian_filter the paper uses). Image score (opts.score): RN_PC_SCORE_PATCH_MAX (default) the largest
 * patch distance before upsampling, as the authors' code and anomalib; RN_PC_SCORE_MAP_MAX the maximum of the
 * smoothed map; RN_PC_SCORE_REWEIGHT the paper's eq. 7: s* times 1 - softmax of the distances from the
 * worst test patch to its nearest bank feature m* and m*'s `reweight` nearest bank features (anomalib's form).
 *
 * Errors: RN_ERR_ARG for bad options, an empty training set, predicting before a bank exists, k larger
 * than the bank; RN_ERR_SHAPE for features whose dims do not match the bank or each other; RN_ERR_FORMAT
 * for a model file that is not a PatchCore model or does not fit the backbone.
 * Threading: one call at a time per model (the kernels are internally parallel, OpenMP). CPU only.
 */
#ifndef REALNET_PATCHCORE_H
#define REALNET_PATCHCORE_H

#include "backbone.h"
#include "dataset.h"
#include "tensor.h"

#define RN_PC_MAX_LAYERS 4

typedef enum { RN_PC_SCORE_PATCH_MAX = 0, RN_PC_SCORE_MAP_MAX, RN_PC_SCORE_REWEIGHT } rn_pc_score;

typedef struct {
  int n_layers;                 /* 1..RN_PC_MAX_LAYERS stages (default 2) */
  int layers[RN_PC_MAX_LAYERS]; /* 0-based backbone stage indices (default {1, 2}: layer2, layer3) */
  int neighbourhood;            /* local averaging window, odd >= 1 (default 3) */
  int pre_dim;                  /* per-stage channel pooling target; 0: off (default) */
  int dim;                      /* final channel pooling target; 0: off (default) */
  double coreset;               /* fraction of training patches kept, (0, 1] (default 0.1) */
  int proj_dim;                 /* JL projection dims for the coreset distances; 0: exact (default 128) */
  uint64_t seed;                /* projection and first centre (default 0) */
  float sigma;                  /* Gaussian smoothing of the map in pixels; 0: none (default 4) */
  rn_pc_score score;            /* image score (default RN_PC_SCORE_PATCH_MAX) */
  int reweight;                 /* neighbours b of RN_PC_SCORE_REWEIGHT (default 9) */
} rn_patchcore_opts;

rn_patchcore_opts rn_patchcore_opts_default(void);
/* "patch_max", "map_max", "reweight"; parse errors list the names. */
const char *rn_pc_score_name(rn_pc_score s);
rn_status rn_pc_score_parse(const char *name, rn_pc_score *out);

typedef struct rn_patchcore rn_patchcore;

/* A model without a bank. bb is borrowed (kept, not owned): it must outlive the model or be replaced with
 * rn_patchcore_set_backbone; NULL is allowed for feature-level use (rn_patchcore_add_features). The
 * requested stages must exist (and, for images, be ready). opts NULL: the defaults. */
rn_status rn_patchcore_new(rn_patchcore **out, rn_backbone *bb, const rn_patchcore_opts *opts);
void rn_patchcore_free(rn_patchcore *pc); /* accepts NULL */
/* Replaces the borrowed backbone; its architecture must match the model's (when the model has one). */
rn_status rn_patchcore_set_backbone(rn_patchcore *pc, rn_backbone *bb);
rn_patchcore_opts rn_patchcore_get_opts(const rn_patchcore *pc);
/* Changes how image scores are formed (the bank is unaffected); reweight: neighbours for RN_PC_SCORE_REWEIGHT. */
rn_status rn_patchcore_set_score(rn_patchcore *pc, rn_pc_score score, int reweight);
const char *rn_patchcore_arch(const rn_patchcore *pc); /* backbone arch the model was made for ("" if none) */

/* Stage features (n_layers tensors, float32 [N,C_l,h_l,w_l], the model's stages in order) -> patch features
 * float32 [N, h, w, D] (new reference), (h, w) the finest stage grid. */
rn_status rn_patchcore_embed(rn_patchcore *pc, rn_tensor *const *feats, rn_tensor **out);

/* --- fitting: add training patches, then build the bank --- */
/* Images float32 [N,3,H,W] (ImageNet-normalised) through the backbone and embed into the training set. */
rn_status rn_patchcore_add(rn_patchcore *pc, rn_tensor *images);
/* Patch features [P, D] or [N, h, w, D]; D must match earlier additions. */
rn_status rn_patchcore_add_features(rn_patchcore *pc, rn_tensor *feats);
int64_t rn_patchcore_train_patches(const rn_patchcore *pc); /* patches added since the last build */
/* Coreset subsampling of the added patches into the bank (replacing any earlier bank); frees them. */
rn_status rn_patchcore_build(rn_patchcore *pc);
/* Every image of ds (batches of `batch`, background decoding), then build. */
rn_status rn_patchcore_fit_dataset(rn_patchcore *pc, rn_dataset *ds, int64_t batch);

/* --- the bank --- */
int64_t rn_patchcore_bank_size(const rn_patchcore *pc); /* 0 before a build or load */
int64_t rn_patchcore_dim(const rn_patchcore *pc);       /* feature dims D (0 while unknown) */
rn_tensor *rn_patchcore_get_bank(rn_patchcore *pc);     /* borrowed [K, D], NULL before a build */

/* --- scoring --- */
/* maps float32 [B,1,H,W] and image scores [B] for images [B,3,H,W] (new references). */
rn_status rn_patchcore_predict(rn_patchcore *pc, rn_tensor *images, rn_tensor **maps, rn_tensor **scores);
/* The same from patch features [B, h, w, D] for an image size H x W. */
rn_status rn_patchcore_score_features(rn_patchcore *pc, rn_tensor *feats, int64_t height, int64_t width,
                                      rn_tensor **maps, rn_tensor **scores);

/* --- files: HDF5 "/patchcore/bank" plus the configuration as attributes of "/patchcore"; atomic --- */
rn_status rn_patchcore_save(const rn_patchcore *pc, const char *path);
/* A saved model; bb (borrowed, may be NULL) must have the saved architecture and stage channels. */
rn_status rn_patchcore_load(rn_patchcore **out, const char *path, rn_backbone *bb);

/* --- building blocks (exposed for tests and other methods) --- */
/* Greedy k-center (farthest point) selection over the rows of x [N, D] float32, starting at row `start`:
 * int64 [k] row indices in selection order; ties go to the lowest row. k must be 1..N. */
rn_status rn_pc_kcenter_greedy(rn_tensor **index, const rn_tensor *x, int64_t k, int64_t start);
/* x [N, D] times a seeded Gaussian matrix [D, dims] of std 1/sqrt(dims): float32 [N, dims]. */
rn_status rn_pc_project(rn_tensor **out, const rn_tensor *x, int dims, uint64_t seed);
/* The k nearest rows of bank [K, D] for each row of q [M, D]: Euclidean distances float32 [M, k] (ascending)
 * and int64 row indices [M, k]. Blocked gemm for the search, exact distances for the ones found. k <= K. */
rn_status rn_pc_knn(rn_tensor **dist, rn_tensor **index, const rn_tensor *q, const rn_tensor *bank, int k);
/* Separable Gaussian filter of x [N,C,H,W] (std sigma > 0, radius round(4 sigma), reflect borders). */
rn_status rn_pc_gaussian_blur(rn_tensor **out, const rn_tensor *x, float sigma);

#endif
