/* dataset.h - anomaly-detection datasets: listing, item loading, threaded batching and layout checks.
 *
 *   rn_dataset_opts o = rn_dataset_opts_default();        // train split, 256x256, ImageNet-normalised
 *   rn_dataset *ds = NULL;
 *   if (rn_dataset_open(&ds, RN_DATA_MVTEC, "/data/mvtec", "bottle", &o) != RN_OK) puts(rn_last_error());
 *   rn_loader_opts lo = rn_loader_opts_default();          // batch 16, sequential, min(4, cores) workers
 *   rn_loader *ld = NULL;
 *   rn_loader_new(&ld, ds, &lo);
 *   rn_batch b;
 *   while (rn_loader_next(ld, &b) == RN_OK && b.images) { ...; rn_batch_clear(&b); }
 *   rn_loader_free(ld); rn_dataset_release(ds);
 *
 * Layouts (root is the dataset root and `category` a sub-directory of it; a NULL category means root is the
 * category directory itself):
 *   MVTec, MPDD: <cat>/train/good, <cat>/test/<defect>, <cat>/ground_truth/<defect>/<id>_mask.png
 *   BTAD:        as MVTec with normal images in ok/ (or good/); masks <id>.png, <id>.bmp or <id>_mask.*
 *   VisA:        <root>/split_csv/1cls.csv (object,split,label,image,mask; paths relative to root); a root
 *                without the csv but with <cat>/train is read as MVTec (the authors' re-formatted copy)
 *   JSONL:       RealNet protocol files: one JSON object per line (filename, label, label_name, clsname,
 *                maskname), paths relative to root (the image dir), opts.protocol names the file
 *   folder:      <root>/<normal_dir>, abnormal dirs (default: every other sub-directory), optional masks in
 *                <mask_dir>/<defect>/ or <mask_dir>/, named <id>_mask.png or <id>.png (.bmp too)
 * Directory listings are sorted by name (byte order); CSV and JSONL keep the file's order. Only files named
 * .png/.jpg/.jpeg/.bmp (any case) are listed; the decoder still goes by the bytes.
 *
 * Items (spec 2.2): the image is decoded to RGB (gray replicated), 16-bit data scaled to 8 bits, resized to
 * height x width with PIL's antialiased bilinear filter, then scaled to [0,1] and optionally ImageNet-normalised:
 * float32 [3,H,W]. The mask is read as gray, resized with PIL's nearest filter and binarised (> 0 -> 1):
 * float32 [1,H,W]; zeros for normal images, ones for anomalous images that have no mask file.
 *
 * Threading: a dataset is immutable after opening and may be read from many threads; retain/release it from
 * one thread. A loader's worker threads decode ahead into a bounded queue; next/free are called from one
 * thread. Errors as status.h: RN_ERR_IO for a missing root or unreadable file, RN_ERR_FORMAT for a malformed
 * layout (empty split, missing mask, bad CSV/JSON line), RN_ERR_ARG for bad options.
 */
#ifndef REALNET_DATASET_H
#define REALNET_DATASET_H

#include <stdint.h>

#include "rng.h"
#include "status.h"
#include "tensor.h"

typedef enum { RN_DATA_MVTEC = 0, RN_DATA_VISA, RN_DATA_MPDD, RN_DATA_BTAD, RN_DATA_JSONL, RN_DATA_FOLDER } rn_data_kind;
typedef enum { RN_SPLIT_TRAIN = 0, RN_SPLIT_TEST, RN_SPLIT_ALL } rn_data_split;

/* "mvtec", "visa", "mpdd", "btad", "jsonl", "folder"; parse errors (RN_ERR_ARG) list the known kinds. */
const char *rn_data_kind_name(rn_data_kind k);
rn_status rn_data_kind_parse(const char *name, rn_data_kind *out);
/* "train", "test", "all". */
const char *rn_data_split_name(rn_data_split s);
rn_status rn_data_split_parse(const char *name, rn_data_split *out);

typedef struct {
  rn_data_split split;
  int64_t height, width;              /* resize target; 0 and 0 keep each image's own size */
  int normalize;                      /* 1: ImageNet mean/std; 0: [0,1] */
  const char *protocol;               /* JSONL: the protocol file (root is the image dir) */
  const char *normal_dir;             /* folder: normal images (default "good") */
  const char *const *abnormal_dirs;   /* folder: NULL -> every other sub-directory of root */
  int n_abnormal;
  const char *mask_dir;               /* folder: NULL -> "ground_truth" or "masks" when present */
  const char *normal_test_dir;        /* folder: normal images of the test split (optional) */
} rn_dataset_opts;

/* train split, 256x256, ImageNet normalisation, no folder/JSONL settings. */
rn_dataset_opts rn_dataset_opts_default(void);

typedef struct rn_dataset rn_dataset;

/* Lists the split; fails on a missing root, an empty split, a missing mask for an anomalous image or a
 * malformed protocol, naming the path. The strings in opts are copied. *out gets one reference. */
rn_status rn_dataset_open(rn_dataset **out, rn_data_kind kind, const char *root, const char *category,
                          const rn_dataset_opts *opts);
rn_dataset *rn_dataset_retain(rn_dataset *ds);
void rn_dataset_release(rn_dataset *ds); /* accepts NULL */

int64_t rn_dataset_size(const rn_dataset *ds);
rn_dataset_opts rn_dataset_get_opts(const rn_dataset *ds); /* strings borrowed from ds */
rn_data_kind rn_dataset_kind(const rn_dataset *ds);
const char *rn_dataset_get_root(const rn_dataset *ds);     /* borrowed */
const char *rn_dataset_get_category(const rn_dataset *ds); /* borrowed; NULL when root is the category */

/* One listed file; strings borrowed from ds (mask_path NULL when there is no mask file). */
typedef struct { const char *path, *mask_path, *defect, *split; int label; } rn_dataset_entry;
rn_status rn_dataset_get_entry(const rn_dataset *ds, int64_t i, rn_dataset_entry *e);

/* Decodes item i (0-based): new references in *image (float32 [3,H,W]) and *mask (float32 [1,H,W]); either
 * pointer may be NULL when not wanted. Thread-safe. */
rn_status rn_dataset_load(const rn_dataset *ds, int64_t i, rn_tensor **image, rn_tensor **mask);
/* The resized image before float conversion: uint8 [H,W,3] (what anomaly synthesis works on, spec 2.2 step 4). */
rn_status rn_dataset_load_u8(const rn_dataset *ds, int64_t i, rn_tensor **image);

/* ---- batching */

typedef struct {
  int64_t batch;   /* images per batch (> 0) */
  int shuffle;     /* 0: dataset order; 1: a permutation drawn from rng */
  rn_rng *rng;     /* used (and advanced) on the calling thread when shuffling; NULL: seed 0, stream 0 */
  int workers;     /* background decoding threads; 0 decodes on the calling thread; < 0: min(4, cores) */
  int drop_last;   /* drop a final partial batch */
  int prefetch;    /* batches decoded ahead (bounded queue); <= 0: 2 per worker */
} rn_loader_opts;

rn_loader_opts rn_loader_opts_default(void);

typedef struct rn_loader rn_loader;

typedef struct {
  rn_tensor *images;   /* float32 [B,3,H,W] */
  rn_tensor *masks;    /* float32 [B,1,H,W] */
  rn_tensor *labels;   /* int64 [B] */
  const int64_t *indices; /* the B dataset indices (0-based), borrowed from the loader until the next call */
  int64_t size;        /* B */
} rn_batch;

/* Starts the workers. The dataset must have a fixed size (height, width > 0). Retains ds. */
rn_status rn_loader_new(rn_loader **out, rn_dataset *ds, const rn_loader_opts *opts);
/* The next batch in order (new references in b); b->images == NULL after the last one. A worker's decode
 * error is returned here, naming the file. */
rn_status rn_loader_next(rn_loader *ld, rn_batch *b);
int64_t rn_loader_num_batches(const rn_loader *ld);
int rn_loader_workers(const rn_loader *ld);
/* Stops and joins the workers (they finish at most the item in hand), frees queued batches. Accepts NULL. */
void rn_loader_free(rn_loader *ld);
void rn_batch_clear(rn_batch *b); /* releases b's tensors */

/* Default worker count: min(4, online CPUs). */
int rn_data_default_workers(void);

/* ---- layout checks (`realnet doctor`) */

typedef enum {
  RN_PROBLEM_MISSING_MASK = 0, /* an anomalous image without its mask file */
  RN_PROBLEM_UNPAIRED_MASK,    /* a mask file without its image */
  RN_PROBLEM_MASK_SIZE,        /* a mask whose size differs from its image */
  RN_PROBLEM_UNREADABLE,       /* an image or mask that does not decode */
  RN_PROBLEM_EMPTY_SPLIT,      /* a split (or a defect directory) without images */
  RN_PROBLEM_LAYOUT,           /* anything else about the layout (an unexpected directory in train/...) */
  RN_PROBLEM_EMPTY_MASK        /* warning only: an anomalous image whose mask has no foreground pixel */
} rn_problem_kind;

const char *rn_problem_kind_name(rn_problem_kind k); /* "missing mask", "unpaired mask", ... */

typedef struct { rn_problem_kind kind; char *path; char *message; } rn_dataset_problem;
typedef struct { char *split; char *defect; int64_t images, masks; } rn_dataset_count;

typedef struct {
  rn_dataset_count *counts;     /* per split and defect, in listing order */
  int64_t n_counts;
  rn_dataset_problem *problems; /* sorted by path */
  int64_t n_problems;
  rn_dataset_problem *warnings; /* findings that do not make the dataset unusable (empty masks), by path */
  int64_t n_warnings;
  int64_t images, masks;        /* files decoded */
} rn_dataset_report;

/* Lists both splits and decodes every image and mask (on `threads` threads, <= 0: default) to find the
 * problems above. Fails only when the layout cannot be read at all (missing root, unknown category, an
 * unreadable protocol file); every other finding is a problem in the report. Free with rn_dataset_report_free. */
rn_status rn_dataset_check(rn_dataset_report **out, rn_data_kind kind, const char *root, const char *category,
                           const rn_dataset_opts *opts, int threads);
void rn_dataset_report_free(rn_dataset_report *r);

/* The categories under root: sub-directories with a train/ or test/ directory (MVTec-like, folder), or the
 * objects of VisA's csv; sorted. *names is one malloc'd block (array and strings), free() it. */
rn_status rn_data_categories(rn_data_kind kind, const char *root, char ***names, int64_t *n);

/* A guess at the layout of dir (a category dir or a dataset root): VisA csv, BTAD ok/ko, MVTec good/. */
rn_status rn_data_detect(const char *dir, rn_data_kind *out);

#endif
