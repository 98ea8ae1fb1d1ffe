/* test_dataset_util.h - helpers of the dataset tests: temp dirs, synthetic PNG/BMP images and masks, text
 * files, recursive removal. Header-only (each test is one executable). */
#ifndef REALNET_TEST_DATASET_UTIL_H
#define REALNET_TEST_DATASET_UTIL_H


#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "realnet/dataset.h"
#include "realnet/image.h"
#include "testutil.h"

/* "<base>/<fmt...>" into a static rotating buffer (8 slots). */
static inline const char *tpath(const char *base, const char *fmt, ...) {
  static char bufs[8][1024];
  static int k;
  char *b = bufs[k++ & 7];
  int n = snprintf(b, 1024, "%s/", base);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b + n, 1024 - (size_t)n, fmt, ap);
  va_end(ap);
  return b;
}

/* mkdir -p of the directory part of a file path (or of a dir path when is_dir). */
static inline void tmkdirs(const char *path, int is_dir) {
  char b[1024];
  snprintf(b, sizeof b, "%s", path);
  if (!is_dir) {
    char *s = strrchr(b, '/');
    if (!s) return;
    *s = '\0';
  }
  for (char *p = b + 1; *p; p++)
    if (*p == '/') { *p = '\0'; mkdir(b, 0755); *p = '/'; }
  mkdir(b, 0755);
}

/* An h x w image with c channels (1 or 3) whose pixel (y, x, ch) = (seed * 37 + y * 11 + x * 7 + ch * 50) % 256. */
static inline rn_tensor *tpattern(int64_t h, int64_t w, int c, int seed) {
  int64_t shape[3] = {h, w, c};
  rn_tensor *t = NULL;
  if (rn_tensor_empty(&t, 3, shape, RN_U8, rn_cpu()) != RN_OK) return NULL;
  uint8_t *d = rn_tensor_data(t);
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++)
      for (int ch = 0; ch < c; ch++) d[(y * w + x) * c + ch] = (uint8_t)((seed * 37 + y * 11 + x * 7 + ch * 50) % 256);
  return t;
}

static inline int twrite_image(const char *path, int64_t h, int64_t w, int c, int seed) {
  tmkdirs(path, 0);
  rn_tensor *t = tpattern(h, w, c, seed);
  int ok = t && CHECK_OK(rn_image_write_png(path, t));
  rn_tensor_release(t);
  return ok;
}

/* A gray mask: 255 inside the rectangle [y0,y1) x [x0,x1), 0 elsewhere. */
static inline rn_tensor *tmask(int64_t h, int64_t w, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  int64_t shape[2] = {h, w};
  rn_tensor *t = NULL;
  if (rn_tensor_zeros(&t, 2, shape, RN_U8, rn_cpu()) != RN_OK) return NULL;
  uint8_t *d = rn_tensor_data(t);
  for (int64_t y = y0; y < y1; y++)
    for (int64_t x = x0; x < x1; x++) d[y * w + x] = 255;
  return t;
}

static inline int twrite_mask(const char *path, int64_t h, int64_t w, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  tmkdirs(path, 0);
  rn_tensor *t = tmask(h, w, y0, y1, x0, x1);
  int ok = t && CHECK_OK(rn_image_write_png(path, t));
  rn_tensor_release(t);
  return ok;
}

static inline void tput32(FILE *f, uint32_t v) { for (int i = 0; i < 4; i++) fputc((int)((v >> (8 * i)) & 255), f); }
static inline void tput16(FILE *f, uint16_t v) { fputc(v & 255, f); fputc(v >> 8, f); }

/* A 24-bit bottom-up BMP mask (BTAD ships such masks): 255 inside the rectangle. */
static inline int twrite_bmp_mask(const char *path, int64_t h, int64_t w, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  tmkdirs(path, 0);
  FILE *f = fopen(path, "wb");
  if (!CHECK(f != NULL)) return 0;
  uint32_t row = (uint32_t)((w * 3 + 3) & ~3), size = 54 + row * (uint32_t)h;
  fputc('B', f); fputc('M', f); tput32(f, size); tput32(f, 0); tput32(f, 54);
  tput32(f, 40); tput32(f, (uint32_t)w); tput32(f, (uint32_t)h); tput16(f, 1); tput16(f, 24); tput32(f, 0);
  tput32(f, row * (uint32_t)h); tput32(f, 2835); tput32(f, 2835); tput32(f, 0); tput32(f, 0);
  for (int64_t y = h - 1; y >= 0; y--) {
    for (int64_t x = 0; x < w; x++) {
      int v = y >= y0 && y < y1 && x >= x0 && x < x1 ? 255 : 0;
      fputc(v, f); fputc(v, f); fputc(v, f);
    }
    for (uint32_t p = (uint32_t)w * 3; p < row; p++) fputc(0, f);
  }
  fclose(f);
  return 1;
}

static inline void twrite_text(const char *path, const char *text) {
  tmkdirs(path, 0);
  FILE *f = fopen(path, "wb");
  if (!CHECK(f != NULL)) return;
  fputs(text, f);
  fclose(f);
}

static inline int trm_one(const char *p, const struct stat *s, int flag, struct FTW *ftw) { return remove(p); }
static inline void trm_rf(const char *dir) { nftw(dir, trm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* A small MVTec-layout category under root/cat: train/good (ntrain RGB images of varying size), test/good (2),
 * test/crack (2, with masks), test/scratch (1, with a mask). */
static inline void tmake_mvtec(const char *root_in, const char *cat, int ntrain) {
  char root[512]; /* root_in may be a tpath buffer, which the calls below reuse */
  snprintf(root, sizeof root, "%s", root_in);
  for (int i = 0; i < ntrain; i++) twrite_image(tpath(root, "%s/train/good/%03d.png", cat, i), 20 + i, 24, 3, i);
  twrite_image(tpath(root, "%s/test/good/000.png", cat), 16, 16, 3, 100);
  twrite_image(tpath(root, "%s/test/good/001.png", cat), 16, 16, 1, 101);
  twrite_image(tpath(root, "%s/test/crack/000.png", cat), 16, 16, 3, 102);
  twrite_image(tpath(root, "%s/test/crack/001.png", cat), 32, 16, 3, 103);
  twrite_image(tpath(root, "%s/test/scratch/000.png", cat), 16, 16, 3, 104);
  twrite_mask(tpath(root, "%s/ground_truth/crack/000_mask.png", cat), 16, 16, 0, 8, 0, 8);
  twrite_mask(tpath(root, "%s/ground_truth/crack/001_mask.png", cat), 32, 16, 16, 32, 0, 16);
  twrite_mask(tpath(root, "%s/ground_truth/scratch/000_mask.png", cat), 16, 16, 4, 6, 0, 16);
}

/* A fresh temp dir (mkdtemp) named after the test. */
static inline char *tmake_tmp(const char *name) {
  static char b[256];
  snprintf(b, sizeof b, "/tmp/rn_%s_XXXXXX", name);
  return mkdtemp(b);
}

#endif
