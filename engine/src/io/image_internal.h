/* image_internal.h - the tensor-free decoding layer shared by the image_*.c files.
 *
 * The decoders (image_png.c, image_jpeg.c, image_bmp.c) and image_decode.c (sniffing, limits, channel
 * conversion) use only libc, the codec libraries and status.c, so the fuzz targets compile them alone
 * with clang's sanitizers; image_read.c wraps the result into a tensor.
 */
#ifndef REALNET_IMAGE_INTERNAL_H
#define REALNET_IMAGE_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "realnet/image.h"

/* A decoded image: h*w*c samples, uint8 (depth 8) or native-endian uint16 (depth 16), interleaved. */
typedef struct {
  int64_t h, w;
  int c;
  int depth;
  void *data; /* malloc'ed, owned */
} rn_image_raw;

void rn_image_raw_free(rn_image_raw *r);

/* Sniff (or honour opts->format), decode, then convert channels as opts->channels asks. */
rn_status rn_image_decode_raw(rn_image_raw *out, const void *bytes, size_t n, const rn_image_opts *opts,
                              const char *what);

/* Each decoder fills *out (c as stored) or returns an error naming `what`; nothing leaks on error. */
rn_status rn_png_decode(rn_image_raw *out, const unsigned char *bytes, size_t n, int64_t max_pixels, const char *what);
rn_status rn_jpeg_decode(rn_image_raw *out, const unsigned char *bytes, size_t n, int64_t max_pixels, const char *what);
rn_status rn_bmp_decode(rn_image_raw *out, const unsigned char *bytes, size_t n, int64_t max_pixels, const char *what);

/* The pixel limit check shared by the decoders (w, h already known to be > 0). */
rn_status rn_image_check_size(int64_t w, int64_t h, int64_t max_pixels, const char *kind, const char *what);

/* Converts npix interleaved pixels from cin to cout channels (1..4; cout 1 = PIL "L", 3 = RGB), depth 8/16. */
void rn_pixels_convert(const void *src, void *dst, int64_t npix, int cin, int cout, int depth);

/* Tensor layer (image_read.c): checks a CPU image [H,W] or [H,W,C] (C 1..4, any dtype) and reports its
 * geometry; errors name `what`. */
rn_status rn_image_geometry(const rn_tensor *img, const char *what, int64_t *h, int64_t *w, int *c);

/* Colour helpers (image_color.c): the 256-entry viridis table, a float array's finite range, and the table
 * index of a value in [lo,hi] (hi > lo; clamped, NaN -> 0). */
void rn_viridis_table(uint8_t lut[256][3]);
void rn_float_range(const float *v, int64_t n, double *lo, double *hi);
int rn_colormap_index(float v, double lo, double hi);

/* Atomic file writing: rn_atomic_begin creates "<path>.tmp.XXXXXX" next to path and opens it; commit
 * flushes, syncs and renames it over path; abort closes and removes it. */
typedef struct {
  char tmp[4096];
  const char *path;
  FILE *f;
} rn_atomic_file;
rn_status rn_atomic_begin(rn_atomic_file *a, const char *path);
rn_status rn_atomic_commit(rn_atomic_file *a);
void rn_atomic_abort(rn_atomic_file *a);

#endif
