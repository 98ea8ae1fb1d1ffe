/* demo_data.h - the embedded demo dataset: procedural industrial surfaces with realistic defects, written in
 * the MVTec AD layout, with no downloads.
 *
 *   rn_demo_opts o = rn_demo_opts_default();          // seed 0, 256x256, 80 train, 20 good + 8 per defect
 *   rn_demo_counts c;
 *   if (rn_demo_make("data/demo", &o, &c) != RN_OK) fprintf(stderr, "%s\n", rn_last_error());
 *   // data/demo/demo_surface/{train/good, test/good, test/<defect>, ground_truth/<defect>/<id>_mask.png}
 *
 * Every image is a pure function of (seed, texture, size, split, kind, index): pixel noise and every defect
 * parameter come from Philox streams keyed by those, so the same options give byte-identical files on any
 * thread count. Defect kinds: scratch (thin curved line, darker or brighter), spot (soft blob), crack (thin
 * branching dark random walk), missing_material (a hole showing a darker under-layer, with a raised rim) and
 * contamination (an irregular semi-transparent coloured smudge). A mask is exactly the set of pixels whose
 * bytes differ from the defect-free render of the same image (0/255), is never empty, and stays at least
 * rn_demo_margin(size) pixels away from the border. Good images also carry benign variation (lighting
 * gradients, small shifts and rotations, grain, sensor noise) so that detectors score high but not perfectly.
 *
 * Errors as status.h: RN_ERR_ARG for bad options (negative counts, size below RN_DEMO_MIN_SIZE, unknown
 * texture), RN_ERR_IO when a directory or file cannot be created (the message names the path). Reentrant;
 * rn_demo_make renders on opts.threads OpenMP threads.
 */
#ifndef REALNET_DEMO_DATA_H
#define REALNET_DEMO_DATA_H

#include <stdint.h>

#include "status.h"
#include "tensor.h"

#define RN_DEMO_MIN_SIZE 32
#define RN_DEMO_MAX_SIZE 4096

typedef enum { RN_DEMO_METAL = 0, RN_DEMO_FABRIC, RN_DEMO_TILE, RN_DEMO_NUM_TEXTURES } rn_demo_texture;

/* RN_DEMO_GOOD is a defect-free image; the others are the defect kinds in directory order of the output. */
typedef enum {
  RN_DEMO_GOOD = 0,
  RN_DEMO_SCRATCH,
  RN_DEMO_SPOT,
  RN_DEMO_CRACK,
  RN_DEMO_MISSING,
  RN_DEMO_CONTAMINATION,
  RN_DEMO_NUM_KINDS
} rn_demo_kind;

/* "good", "scratch", "spot", "crack", "missing_material", "contamination" (NULL out of range). */
const char *rn_demo_kind_name(rn_demo_kind k);
/* "metal" (brushed, directional grain), "fabric" (plain weave), "tile" (ceramic tiles with grout). */
const char *rn_demo_texture_name(rn_demo_texture t);
rn_status rn_demo_texture_parse(const char *name, rn_demo_texture *out); /* RN_ERR_ARG lists the names */

typedef struct {
  uint64_t seed;
  int64_t size;              /* image side in pixels, RN_DEMO_MIN_SIZE..RN_DEMO_MAX_SIZE */
  int64_t train;             /* train/good images */
  int64_t test_good;         /* test/good images */
  int64_t test_defect;       /* images per defect kind in test/<defect> */
  rn_demo_texture texture;
  const char *category;      /* category directory name; NULL: "demo_surface" */
  int overwrite;             /* 1: write into an existing non-empty category dir (stale NNN.png files removed) */
  int threads;               /* <= 0: OpenMP's default */
} rn_demo_opts;

/* seed 0, size 256, 80 train, 20 test good, 8 per defect kind, metal, "demo_surface", no overwrite. */
rn_demo_opts rn_demo_opts_default(void);

typedef struct {
  int64_t train, test_good, test_defect, masks; /* files written: test_defect sums every kind */
  int64_t defect_kinds;                         /* RN_DEMO_NUM_KINDS - 1 */
} rn_demo_counts;

/* The border distance every defect keeps, in pixels. */
int64_t rn_demo_margin(int64_t size);

/* Renders one item in memory. test: 0 for the train split, 1 for test; kind RN_DEMO_GOOD or a defect (test
 * only); index 0-based. New references: *image uint8 [S,S,3]; *clean (may be NULL) the same image without its
 * defect; *mask (may be NULL) uint8 [S,S] of 0/255, all zero for good images. */
rn_status rn_demo_render(rn_tensor **image, rn_tensor **clean, rn_tensor **mask, const rn_demo_opts *opts,
                         int test, rn_demo_kind kind, int64_t index);

/* Writes the category under out_dir (created with its parents): train/good/NNN.png, test/good/NNN.png,
 * test/<defect>/NNN.png and ground_truth/<defect>/NNN_mask.png, all through the atomic PNG writer.
 * Refuses an existing non-empty category directory unless opts->overwrite. counts may be NULL.
 * *category_dir (may be NULL) receives a malloc'd "<out_dir>/<category>" to free(). */
rn_status rn_demo_make(const char *out_dir, const rn_demo_opts *opts, rn_demo_counts *counts, char **category_dir);

#endif
