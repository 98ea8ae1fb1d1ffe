/* ds_internal.h - shared pieces of the dataset readers (engine/src/data/): growable lists, paths, listing. */
#ifndef REALNET_DS_INTERNAL_H
#define REALNET_DS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "realnet/dataset.h"

/* One listed image. All strings are owned (malloc'd); split is a static string. */
typedef struct { char *path, *mask, *defect; const char *split; int label; } ds_entry;
typedef struct { ds_entry *v; int64_t n, cap; } ds_entries;
typedef struct { rn_dataset_problem *v; int64_t n, cap; } ds_problems;

struct rn_dataset {
  int refcount;
  rn_data_kind kind;
  char *root, *category;
  rn_dataset_opts opts;  /* strings point into `owned` */
  char **owned;          /* copies of the option strings */
  int n_owned;
  ds_entries e;
};

/* Entry and problem lists. ds_add_* copy their strings; they return RN_ERR_OOM on failure. */
rn_status ds_add_entry(ds_entries *l, const char *path, const char *mask, const char *defect, const char *split,
                       int label);
void ds_entries_free(ds_entries *l);
rn_status ds_add_problem(ds_problems *l, rn_problem_kind k, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 4, 5)))
#endif
  ;
void ds_problems_free(ds_problems *l);

/* Path helpers: ds_join returns a malloc'd "a/b" (b absolute: a copy of b), NULL on OOM. */
char *ds_join(const char *a, const char *b);
char *ds_join3(const char *a, const char *b, const char *c);
char *ds_strdup(const char *s);
bool ds_is_dir(const char *p);
bool ds_is_file(const char *p);
/* Whether the name ends in .png/.jpg/.jpeg/.bmp (any case). */
bool ds_is_image_name(const char *name);
/* "000.png" -> "000" (malloc'd). */
char *ds_stem(const char *name);

/* A sorted directory listing: files (image names only when images_only) or sub-directories. *names is a
 * malloc'd array of malloc'd strings; free with ds_names_free. Hidden entries (".x") are skipped. */
rn_status ds_list(const char *dir, bool dirs, bool images_only, char ***names, int64_t *n);
void ds_names_free(char **names, int64_t n);

/* The mask file for image stem `stem` in dir: the first existing of <stem>_mask.png, <stem>.png,
 * <stem>_mask.bmp, <stem>.bmp (malloc'd), or NULL. */
char *ds_find_mask(const char *dir, const char *stem);
/* A mask file name -> the image stem it pairs with ("000_mask.png" -> "000"); malloc'd. */
char *ds_mask_stem(const char *name);

/* The per-layout scanners: entries of `split` (ALL: train then test) appended to out; structural findings
 * (missing/unpaired masks, empty splits) appended to probs. Fatal errors (missing root, malformed protocol)
 * return a status. catdir is root/category (or root). */
rn_status ds_scan_mvtec(rn_data_kind kind, const char *catdir, rn_data_split split, ds_entries *out,
                        ds_problems *probs);
rn_status ds_scan_visa(const char *root, const char *category, rn_data_split split, ds_entries *out,
                       ds_problems *probs);
rn_status ds_scan_jsonl(const char *image_dir, const char *protocol, const char *category, ds_entries *out,
                        ds_problems *probs);
rn_status ds_scan_folder(const char *root, const rn_dataset_opts *o, rn_data_split split, ds_entries *out,
                         ds_problems *probs);
/* Dispatch over the kinds. */
rn_status ds_scan(rn_data_kind kind, const char *root, const char *category, const rn_dataset_opts *o,
                  rn_data_split split, ds_entries *out, ds_problems *probs);

/* Decodes an image as uint8 [H,W,1] (gray) or [H,W,3] (RGB): alpha dropped, 16-bit scaled to 8 bits. Gray
 * stays gray so that resizing works on one plane; replicate it after (the result is the same). */
rn_status ds_read_color(rn_tensor **out, const char *path);
/* Decodes a mask as uint8 [H,W,1] (16-bit scaled to 8 bits). */
rn_status ds_read_gray(rn_tensor **out, const char *path);

#endif
