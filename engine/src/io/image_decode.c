/* image_decode.c - format sniffing, the pixel limit, and channel conversion of decoded images.
 *
 * Tensor-free on purpose (see image_internal.h): the fuzz targets link this file with the decoders only.
 */
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

rn_image_opts rn_image_opts_default(void) {
  rn_image_opts o = {0, RN_IMAGE_MAX_PIXELS, RN_IMAGE_UNKNOWN};
  return o;
}

void rn_image_raw_free(rn_image_raw *r) {
  if (!r) return;
  free(r->data);
  r->data = NULL;
}

rn_image_format rn_image_sniff(const void *bytes, size_t n) {
  const unsigned char *b = bytes;
  if (!b) return RN_IMAGE_UNKNOWN;
  if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return RN_IMAGE_PNG;
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return RN_IMAGE_JPEG;
  if (n >= 2 && b[0] == 'B' && b[1] == 'M') return RN_IMAGE_BMP;
  if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0)) return RN_IMAGE_TIFF;
  return RN_IMAGE_UNKNOWN;
}

const char *rn_image_format_name(rn_image_format f) {
  switch (f) {
    case RN_IMAGE_PNG: return "png";
    case RN_IMAGE_JPEG: return "jpeg";
    case RN_IMAGE_BMP: return "bmp";
    case RN_IMAGE_TIFF: return "tiff";
    default: return "unknown";
  }
}

rn_status rn_image_check_size(int64_t w, int64_t h, int64_t max_pixels, const char *kind, const char *what) {
  if (w <= 0 || h <= 0)
    return rn_error(RN_ERR_FORMAT, "image %s: %s declares a zero-size image (%lldx%lld)", what, kind, (long long)w,
                    (long long)h);
  if (max_pixels <= 0) max_pixels = RN_IMAGE_MAX_PIXELS;
  if (w > max_pixels / h)
    return rn_error(RN_ERR_FORMAT, "image %s: %s declares %lldx%lld pixels, more than the limit of %lld", what, kind,
                    (long long)w, (long long)h, (long long)max_pixels);
  return RN_OK;
}

/* PIL's "L" conversion in 16.16 fixed point (Convert.c: L24). Works for 8- and 16-bit samples. */
static inline uint32_t luma(uint32_t r, uint32_t g, uint32_t b) {
  return (uint32_t)(((uint64_t)r * 19595 + (uint64_t)g * 38470 + (uint64_t)b * 7471 + 0x8000) >> 16);
}

#define CONVERT_LOOP(T)                                                                   \
  do {                                                                                    \
    const T *s = src;                                                                     \
    T *d = dst;                                                                           \
    for (int64_t i = 0; i < npix; i++, s += cin, d += cout) {                             \
      uint32_t r, g, b, a;                                                                \
      if (cin <= 2) { r = g = b = s[0]; a = cin == 2 ? s[1] : maxv; }                     \
      else { r = s[0]; g = s[1]; b = s[2]; a = cin == 4 ? s[3] : maxv; }                  \
      if (cout == 1) d[0] = (T)(cin <= 2 ? r : luma(r, g, b));                            \
      else if (cout == 2) { d[0] = (T)(cin <= 2 ? r : luma(r, g, b)); d[1] = (T)a; }      \
      else { d[0] = (T)r; d[1] = (T)g; d[2] = (T)b; if (cout == 4) d[3] = (T)a; }         \
    }                                                                                     \
  } while (0)

void rn_pixels_convert(const void *src, void *dst, int64_t npix, int cin, int cout, int depth) {
  uint32_t maxv = depth == 16 ? 65535u : 255u;
  if (depth == 16) CONVERT_LOOP(uint16_t);
  else CONVERT_LOOP(uint8_t);
}

rn_status rn_image_decode_raw(rn_image_raw *out, const void *bytes, size_t n, const rn_image_opts *opts,
                              const char *what) {
  rn_image_opts o = opts ? *opts : rn_image_opts_default();
  if (!what) what = "<memory>";
  memset(out, 0, sizeof *out);
  if (o.channels != 0 && o.channels != 1 && o.channels != 3)
    return rn_error(RN_ERR_ARG, "image %s: channels must be 0 (as stored), 1 or 3, not %d", what, o.channels);
  if (!bytes && n) return rn_error(RN_ERR_ARG, "image %s: NULL data", what);
  if (n == 0) return rn_error(RN_ERR_FORMAT, "image %s: empty file", what);
  if (o.max_pixels <= 0) o.max_pixels = RN_IMAGE_MAX_PIXELS;

  rn_image_format f = rn_image_sniff(bytes, n);
  if (o.format != RN_IMAGE_UNKNOWN && f != o.format)
    return rn_error(RN_ERR_FORMAT, "image %s: not a %s file (its first bytes announce %s)", what,
                    rn_image_format_name(o.format), rn_image_format_name(f));
  rn_status st;
  switch (f) {
    case RN_IMAGE_PNG: st = rn_png_decode(out, bytes, n, o.max_pixels, what); break;
    case RN_IMAGE_JPEG: st = rn_jpeg_decode(out, bytes, n, o.max_pixels, what); break;
    case RN_IMAGE_BMP: st = rn_bmp_decode(out, bytes, n, o.max_pixels, what); break;
    case RN_IMAGE_TIFF:
      return rn_error(RN_ERR_UNSUPPORTED, "image %s: TIFF images are read with rn_image_read_tiff, not decoded here",
                      what);
    default: {
      const unsigned char *b = bytes;
      return rn_error(RN_ERR_FORMAT,
                      "image %s: not a PNG, JPEG or BMP image (first bytes %02x %02x %02x %02x), whatever its name",
                      what, b[0], n > 1 ? b[1] : 0, n > 2 ? b[2] : 0, n > 3 ? b[3] : 0);
    }
  }
  if (st != RN_OK) { rn_image_raw_free(out); return st; }

  if (o.channels != 0 && o.channels != out->c) {
    size_t bps = out->depth == 16 ? 2 : 1;
    int64_t npix = out->h * out->w;
    void *conv = malloc((size_t)npix * (size_t)o.channels * bps);
    if (!conv) {
      rn_image_raw_free(out);
      return rn_error(RN_ERR_OOM, "image %s: out of memory converting %lldx%lld pixels", what, (long long)out->w,
                      (long long)out->h);
    }
    rn_pixels_convert(out->data, conv, npix, out->c, o.channels, out->depth);
    free(out->data);
    out->data = conv;
    out->c = o.channels;
  }
  return RN_OK;
}
