/* image_tiff.c - single-channel float32 TIFF for anomaly maps (libtiff), written atomically.
 *
 * libtiff's default handlers print to stderr through process-wide hooks; we pass per-file handlers
 * (TIFFOpenExt, libtiff >= 4.5) that keep the first message for our error text instead.
 */
#include <errno.h>
#include <stdarg.h>
#include <tiffio.h>

#include "image_internal.h"
#include "internal.h"

typedef struct { char msg[256]; } tiff_msgs;

static int on_tiff_error(TIFF *t, void *user, const char *module, const char *fmt, va_list ap) {
  (void)t;
  (void)module;
  tiff_msgs *m = user;
  if (!m->msg[0]) vsnprintf(m->msg, sizeof m->msg, fmt, ap);
  return 1; /* handled: do not call the global handler */
}

static int on_tiff_warning(TIFF *t, void *user, const char *module, const char *fmt, va_list ap) {
  (void)t; (void)user; (void)module; (void)fmt; (void)ap;
  return 1;
}

static TIFF *tiff_open(const char *path, const char *mode, tiff_msgs *m) {
  TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
  if (!o) return NULL;
  TIFFOpenOptionsSetErrorHandlerExtR(o, on_tiff_error, m);
  TIFFOpenOptionsSetWarningHandlerExtR(o, on_tiff_warning, m);
  TIFF *t = TIFFOpenExt(path, mode, o);
  TIFFOpenOptionsFree(o);
  return t;
}

/* Accepts float32 [H,W], [1,H,W] or [H,W,1]. */
static rn_status map_geometry(const rn_tensor *m, const char *what, int64_t *h, int64_t *w) {
  RN_TRY(rn_check_f32(m, what));
  if (m->storage->device.type != RN_CPU) return rn_error(RN_ERR_DEVICE, "%s: maps live on the CPU", what);
  char b[64];
  if (m->ndim == 2) { *h = m->shape[0]; *w = m->shape[1]; }
  else if (m->ndim == 3 && m->shape[0] == 1) { *h = m->shape[1]; *w = m->shape[2]; }
  else if (m->ndim == 3 && m->shape[2] == 1) { *h = m->shape[0]; *w = m->shape[1]; }
  else return rn_error(RN_ERR_SHAPE, "%s: expected a single-channel map [H,W], got %s", what, rn_shape_str(m, b, sizeof b));
  if (*h <= 0 || *w <= 0 || *h > 0x7FFFFFFF || *w > 0x7FFFFFFF)
    return rn_error(RN_ERR_SHAPE, "%s: map %s is empty or too large", what, rn_shape_str(m, b, sizeof b));
  return RN_OK;
}

rn_status rn_image_write_tiff(const char *path, const rn_tensor *map) {
  if (!path) return rn_error(RN_ERR_ARG, "write_tiff: NULL path");
  int64_t h = 0, w = 0;
  char what[80];
  snprintf(what, sizeof what, "write_tiff %.60s", path);
  RN_TRY(map_geometry(map, what, &h, &w));
  rn_tensor *src = NULL;
  RN_TRY(rn_contig_nograd(&src, map));
  rn_atomic_file af;
  rn_status st = rn_atomic_begin(&af, path);
  if (st != RN_OK) { rn_tensor_release(src); return st; }
  fclose(af.f); /* libtiff reopens the temporary file by name (it needs to seek and rewrite the header) */
  af.f = NULL;
  tiff_msgs m = {{0}};
  TIFF *t = tiff_open(af.tmp, "w", &m);
  int ok = t != NULL;
  if (ok) {
    ok = TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w) && TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h) &&
         TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1) && TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 32) &&
         TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_IEEEFP) &&
         TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK) &&
         TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
         TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_NONE) &&
         TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(t, 0));
    const float *d = rn_f32(src);
    for (int64_t y = 0; ok && y < h; y++) ok = TIFFWriteScanline(t, (void *)(d + y * w), (uint32_t)y, 0) == 1;
    if (ok) ok = TIFFFlush(t) == 1;
    TIFFClose(t);
  }
  rn_tensor_release(src);
  if (!ok) {
    rn_atomic_abort(&af);
    return rn_error(RN_ERR_IO, "write_tiff %s: %s", path, m.msg[0] ? m.msg : "libtiff failed");
  }
  return rn_atomic_commit(&af);
}

rn_status rn_image_read_tiff(rn_tensor **out, const char *path) {
  if (!out) return rn_error(RN_ERR_ARG, "read_tiff: NULL output pointer");
  *out = NULL;
  if (!path) return rn_error(RN_ERR_ARG, "read_tiff: NULL path");
  FILE *probe = fopen(path, "rb");
  if (!probe) return rn_error(RN_ERR_IO, "read_tiff %s: cannot open: %s", path, strerror(errno));
  fclose(probe);
  tiff_msgs m = {{0}};
  TIFF *t = tiff_open(path, "r", &m);
  if (!t) return rn_error(RN_ERR_FORMAT, "read_tiff %s: not a readable TIFF: %s", path, m.msg[0] ? m.msg : "?");
  uint32_t w = 0, h = 0;
  uint16_t spp = 1, bps = 1, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &fmt);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
  rn_status st = rn_image_check_size(w, h, RN_IMAGE_MAX_PIXELS, "TIFF header", path);
  int kind = fmt == SAMPLEFORMAT_IEEEFP && bps == 32 ? 0 : fmt == SAMPLEFORMAT_UINT && bps == 8 ? 1
           : fmt == SAMPLEFORMAT_UINT && bps == 16 ? 2 : -1;
  if (st == RN_OK && (spp != 1 || kind < 0 || TIFFIsTiled(t)))
    st = rn_error(RN_ERR_UNSUPPORTED, "read_tiff %s: only stripped single-channel float32/uint8/uint16 TIFFs are "
                  "supported (%u samples of %u bits, format %u%s)", path, spp, bps, fmt, TIFFIsTiled(t) ? ", tiled" : "");
  int64_t shape[2] = {h, w};
  if (st == RN_OK) st = rn_tensor_empty(out, 2, shape, RN_F32, rn_cpu());
  tmsize_t sl = st == RN_OK ? TIFFScanlineSize(t) : 0;
  void *line = NULL;
  if (st == RN_OK && (sl < (tmsize_t)w * (bps / 8) || !(line = malloc((size_t)sl))))
    st = rn_error(RN_ERR_FORMAT, "read_tiff %s: bad scanline size", path);
  for (uint32_t y = 0; st == RN_OK && y < h; y++) {
    if (TIFFReadScanline(t, line, y, 0) != 1) {
      st = rn_error(RN_ERR_FORMAT, "read_tiff %s: corrupt data at row %u: %s", path, y, m.msg[0] ? m.msg : "?");
      break;
    }
    float *d = rn_f32(*out) + (int64_t)y * w;
    for (uint32_t x = 0; x < w; x++)
      d[x] = kind == 0 ? ((float *)line)[x] : kind == 1 ? ((uint8_t *)line)[x] : ((uint16_t *)line)[x];
  }
  free(line);
  TIFFClose(t);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}
