/* image_read.c - the tensor layer over the decoders: files into memory, raw images into tensors, and
 * the conversions to float ([0,1] and ImageNet-normalised). */
#include <errno.h>
#include <sys/stat.h>

#include "image_internal.h"
#include "internal.h"

#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 31) /* 2 GiB: no image we accept is larger */

/* Moves a raw image into a new [H,W,C] tensor (uint8, or int32 for 16-bit samples). Frees raw. */
static rn_status raw_to_tensor(rn_tensor **out, rn_image_raw *raw) {
  int64_t shape[3] = {raw->h, raw->w, raw->c};
  rn_status st = rn_tensor_empty(out, 3, shape, raw->depth == 16 ? RN_I32 : RN_U8, rn_cpu());
  if (st != RN_OK) { rn_image_raw_free(raw); return st; }
  int64_t n = raw->h * raw->w * raw->c;
  if (raw->depth == 16) {
    const uint16_t *s = raw->data;
    int32_t *d = rn_tensor_data(*out);
    for (int64_t i = 0; i < n; i++) d[i] = s[i];
  } else {
    memcpy(rn_tensor_data(*out), raw->data, (size_t)n);
  }
  rn_image_raw_free(raw);
  return RN_OK;
}

rn_status rn_image_decode(rn_tensor **out, const void *bytes, size_t n, const rn_image_opts *opts, const char *what) {
  if (!out) return rn_error(RN_ERR_ARG, "image decode: NULL output pointer");
  *out = NULL;
  rn_image_raw raw;
  RN_TRY(rn_image_decode_raw(&raw, bytes, n, opts, what ? what : "<memory>"));
  return raw_to_tensor(out, &raw);
}

/* Reads a whole file; errors name the path. */
static rn_status read_file(const char *path, unsigned char **buf, size_t *n) {
  *buf = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return rn_error(RN_ERR_IO, "image %s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(f);
    return rn_error(RN_ERR_IO, "image %s: not a regular file", path);
  }
  long size = (long)sb.st_size;
  if ((size_t)size > IMAGE_MAX_FILE_BYTES) {
    fclose(f);
    return rn_error(RN_ERR_FORMAT, "image %s: file of %ld bytes is larger than any image we accept", path, size);
  }
  unsigned char *b = malloc(size ? (size_t)size : 1);
  if (!b) { fclose(f); return rn_error(RN_ERR_OOM, "image %s: out of memory reading %ld bytes", path, size); }
  size_t got = fread(b, 1, (size_t)size, f);
  int err = ferror(f);
  fclose(f);
  if (err || got != (size_t)size) { free(b); return rn_error(RN_ERR_IO, "image %s: read failed", path); }
  *buf = b;
  *n = got;
  return RN_OK;
}

rn_status rn_image_read(rn_tensor **out, const char *path, const rn_image_opts *opts) {
  if (!out) return rn_error(RN_ERR_ARG, "image read: NULL output pointer");
  *out = NULL;
  if (!path) return rn_error(RN_ERR_ARG, "image read: NULL path");
  unsigned char *buf;
  size_t n;
  RN_TRY(read_file(path, &buf, &n));
  rn_status st = rn_image_decode(out, buf, n, opts, path);
  free(buf);
  return st;
}

rn_status rn_image_geometry(const rn_tensor *img, const char *what, int64_t *h, int64_t *w, int *c) {
  RN_TRY(rn_check_tensor(img, what));
  if (img->storage->device.type != RN_CPU) return rn_error(RN_ERR_DEVICE, "%s: images live on the CPU", what);
  if (img->ndim != 2 && img->ndim != 3) {
    char b[64];
    return rn_error(RN_ERR_SHAPE, "%s: expected an image [H,W] or [H,W,C], got %s", what, rn_shape_str(img, b, sizeof b));
  }
  *h = img->shape[0];
  *w = img->shape[1];
  *c = img->ndim == 3 ? (int)img->shape[2] : 1;
  if (*h <= 0 || *w <= 0 || *c < 1 || *c > 4) {
    char b[64];
    return rn_error(RN_ERR_SHAPE, "%s: image %s must be non-empty with 1 to 4 channels", what,
                    rn_shape_str(img, b, sizeof b));
  }
  return RN_OK;
}

rn_status rn_image_to_float(rn_tensor **out, const rn_tensor *img) {
  int64_t h, w;
  int c;
  if (!out) return rn_error(RN_ERR_ARG, "image_to_float: NULL output pointer");
  *out = NULL;
  RN_TRY(rn_image_geometry(img, "image_to_float: img", &h, &w, &c));
  if (img->dtype != RN_U8 && img->dtype != RN_I32)
    return rn_error(RN_ERR_SHAPE, "image_to_float: img must be uint8 or int32 (16-bit), not %s",
                    rn_dtype_name(img->dtype));
  rn_tensor *src = NULL;
  RN_TRY(rn_contig_nograd(&src, img));
  int64_t shape[3] = {c, h, w};
  rn_status st = rn_tensor_empty(out, 3, shape, RN_F32, rn_cpu());
  if (st != RN_OK) { rn_tensor_release(src); return st; }
  float *d = rn_f32(*out);
  int64_t hw = h * w;
  if (src->dtype == RN_U8) {
    const uint8_t *s = rn_tensor_data(src);
    for (int64_t i = 0; i < hw; i++)
      for (int k = 0; k < c; k++) d[k * hw + i] = (float)s[i * c + k] / 255.0f;
  } else {
    const int32_t *s = rn_tensor_data(src);
    for (int64_t i = 0; i < hw; i++)
      for (int k = 0; k < c; k++) d[k * hw + i] = (float)s[i * c + k] / 65535.0f;
  }
  rn_tensor_release(src);
  return RN_OK;
}

rn_status rn_image_normalize_imagenet(rn_tensor **out, const rn_tensor *img) {
  static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
  if (!out) return rn_error(RN_ERR_ARG, "normalize_imagenet: NULL output pointer");
  *out = NULL;
  RN_TRY(rn_check_tensor(img, "normalize_imagenet: img"));
  rn_tensor *src = NULL;
  if (img->dtype == RN_F32) {
    if (img->ndim != 3 || img->shape[0] != 3) {
      char b[64];
      return rn_error(RN_ERR_SHAPE, "normalize_imagenet: a float32 img must be [3,H,W] in [0,1], got %s",
                      rn_shape_str(img, b, sizeof b));
    }
    RN_TRY(rn_contig_nograd(&src, img));
  } else {
    int64_t h, w;
    int c;
    RN_TRY(rn_image_geometry(img, "normalize_imagenet: img", &h, &w, &c));
    if (img->dtype != RN_U8)
      return rn_error(RN_ERR_SHAPE, "normalize_imagenet: img must be uint8 [H,W,C] or float32 [3,H,W], not %s",
                      rn_dtype_name(img->dtype));
    rn_tensor *rgb = NULL;
    RN_TRY(c == 3 ? rn_contig_nograd(&rgb, img) : rn_image_to_rgb(&rgb, img));
    rn_status st = rn_image_to_float(&src, rgb);
    rn_tensor_release(rgb);
    RN_TRY(st);
  }
  rn_status st = rn_tensor_empty(out, 3, src->shape, RN_F32, rn_cpu());
  if (st != RN_OK) { rn_tensor_release(src); return st; }
  int64_t hw = src->shape[1] * src->shape[2];
  const float *s = rn_f32(src);
  float *d = rn_f32(*out);
  for (int k = 0; k < 3; k++)
    for (int64_t i = 0; i < hw; i++) d[k * hw + i] = (s[k * hw + i] - mean[k]) / stdv[k];
  rn_tensor_release(src);
  return RN_OK;
}
