/* image_write.c - atomic file replacement and the PNG writer (libpng).
 *
 * A crash or error while writing never leaves a half-written target: data goes to a temporary file in
 * the target's directory (so rename() stays on one file system and is atomic), which is flushed, synced
 * and renamed over the target only when complete. As in image_png.c the libpng setjmp lives in one
 * function (png_write_run) whose caller owns and frees everything.
 */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_internal.h"
#include "internal.h"

rn_status rn_atomic_begin(rn_atomic_file *a, const char *path) {
  a->f = NULL;
  a->path = path;
  if (!path || !*path) return rn_error(RN_ERR_ARG, "write: empty path");
  if (snprintf(a->tmp, sizeof a->tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof a->tmp)
    return rn_error(RN_ERR_ARG, "write %s: path too long", path);
  int fd = mkstemp(a->tmp);
  if (fd < 0) return rn_error(RN_ERR_IO, "write %s: cannot create a temporary file: %s", path, strerror(errno));
  fchmod(fd, 0644); /* mkstemp makes 0600; images are ordinary shared outputs */
  a->f = fdopen(fd, "wb");
  if (!a->f) {
    int e = errno;
    close(fd);
    unlink(a->tmp);
    return rn_error(RN_ERR_IO, "write %s: %s", path, strerror(e));
  }
  return RN_OK;
}

rn_status rn_atomic_commit(rn_atomic_file *a) {
  int failed = 0, e = 0;
  if (a->f) {
    if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0) { failed = 1; e = errno; }
    if (fclose(a->f) != 0 && !failed) { failed = 1; e = errno; }
    a->f = NULL;
  }
  if (!failed && rename(a->tmp, a->path) != 0) { failed = 1; e = errno; }
  if (failed) {
    unlink(a->tmp);
    return rn_error(RN_ERR_IO, "write %s: %s", a->path, strerror(e));
  }
  return RN_OK;
}

void rn_atomic_abort(rn_atomic_file *a) {
  if (a->f) fclose(a->f);
  a->f = NULL;
  unlink(a->tmp);
}

/* ------------------------------------------------------------------ PNG */

typedef struct {
  FILE *f;
  png_structp png;
  png_infop info;
  png_bytep *rows;
  int64_t h, w;
  int c, depth;
  char msg[256];
} png_wjob;

static void on_werror(png_structp png, png_const_charp msg) {
  png_wjob *j = png_get_error_ptr(png);
  snprintf(j->msg, sizeof j->msg, "%s", msg);
  png_longjmp(png, 1); /* to png_write_run's setjmp */
}

static void on_wwarning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static int png_write_run(png_wjob *j) {
  static const int color_of[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                  PNG_COLOR_TYPE_RGB_ALPHA};
  if (setjmp(png_jmpbuf(j->png))) return 1;
  png_init_io(j->png, j->f);
  png_set_IHDR(j->png, j->info, (png_uint_32)j->w, (png_uint_32)j->h, j->depth, color_of[j->c], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(j->png, j->info);
  png_write_image(j->png, j->rows);
  png_write_end(j->png, NULL);
  return 0;
}

rn_status rn_image_write_png(const char *path, const rn_tensor *img) {
  int64_t h, w;
  int c;
  char what[64];
  snprintf(what, sizeof what, "write_png %.40s", path ? path : "?");
  if (!path) return rn_error(RN_ERR_ARG, "write_png: NULL path");
  RN_TRY(rn_image_geometry(img, what, &h, &w, &c));
  if (h > 0x7FFFFFFF || w > 0x7FFFFFFF) return rn_error(RN_ERR_SHAPE, "write_png %s: image too large", path);
  if (img->dtype == RN_I32 && c != 1)
    return rn_error(RN_ERR_SHAPE, "write_png %s: int32 images are written as 16-bit gray and need 1 channel, not %d",
                    path, c);
  if (img->dtype != RN_U8 && img->dtype != RN_I32)
    return rn_error(RN_ERR_SHAPE, "write_png %s: img must be uint8 (8-bit) or int32 (16-bit gray), not %s", path,
                    rn_dtype_name(img->dtype));
  rn_tensor *src = NULL;
  RN_TRY(rn_contig_nograd(&src, img));
  int depth = src->dtype == RN_I32 ? 16 : 8;
  size_t rowbytes = (size_t)w * c * (depth / 8);
  unsigned char *pix = depth == 16 ? malloc(rowbytes * h) : rn_tensor_data(src);
  png_bytep *rows = malloc(sizeof(png_bytep) * h);
  rn_status st = RN_OK;
  if (!rows || !pix) st = rn_error(RN_ERR_OOM, "write_png %s: out of memory", path);
  if (st == RN_OK && depth == 16) { /* PNG stores big-endian samples */
    const int32_t *s = rn_tensor_data(src);
    for (int64_t i = 0; i < h * w; i++) {
      if (s[i] < 0 || s[i] > 65535) {
        st = rn_error(RN_ERR_ARG, "write_png %s: 16-bit value %d at pixel %lld is outside 0..65535", path, s[i],
                      (long long)i);
        break;
      }
      pix[2 * i] = (unsigned char)(s[i] >> 8);
      pix[2 * i + 1] = (unsigned char)(s[i] & 0xFF);
    }
  }
  rn_atomic_file af;
  if (st == RN_OK) st = rn_atomic_begin(&af, path);
  if (st == RN_OK) {
    for (int64_t y = 0; y < h; y++) rows[y] = pix + (size_t)y * rowbytes;
    png_wjob j;
    memset(&j, 0, sizeof j);
    j.f = af.f;
    j.rows = rows;
    j.h = h;
    j.w = w;
    j.c = c;
    j.depth = depth;
    j.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &j, on_werror, on_wwarning);
    if (j.png) j.info = png_create_info_struct(j.png);
    int failed = !j.png || !j.info || png_write_run(&j);
    png_destroy_write_struct(j.png ? &j.png : NULL, j.info ? &j.info : NULL);
    if (failed) {
      rn_atomic_abort(&af);
      st = rn_error(RN_ERR_IO, "write_png %s: %s", path, j.msg[0] ? j.msg : "cannot create a PNG encoder");
    } else {
      st = rn_atomic_commit(&af);
    }
  }
  free(rows);
  if (depth == 16) free(pix);
  rn_tensor_release(src);
  return st;
}

rn_status rn_image_write(const char *path, const rn_tensor *img) {
  if (!path) return rn_error(RN_ERR_ARG, "image write: NULL path");
  const char *dot = strrchr(path, '.');
  if (dot && strcasecmp(dot, ".png") == 0) return rn_image_write_png(path, img);
  if (dot && (strcasecmp(dot, ".tif") == 0 || strcasecmp(dot, ".tiff") == 0)) return rn_image_write_tiff(path, img);
  return rn_error(RN_ERR_ARG, "image write %s: unknown extension (expected .png, .tif or .tiff)", path);
}
