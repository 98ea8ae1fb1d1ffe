/* image_jpeg.c - JPEG decoding with libjpeg(-turbo) from memory.
 *
 * libjpeg's default error manager calls exit(); ours formats the message and longjmps back into
 * jpeg_run(), the only function with a setjmp, whose caller then destroys the decompressor and frees
 * the pixels. The output matches PIL's Image.open (same library, default islow DCT and fancy upsampling):
 * grayscale stays 1 channel, YCbCr/RGB become RGB, CMYK/YCCK are converted to RGB (Adobe's inverted
 * convention when an Adobe marker is present). A premature end of data is an error, not a gray fill
 * (PIL raises "image file is truncated" too); other corrupt-data warnings are tolerated as PIL does.
 */
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t first */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "image_internal.h"

#define JPEG_MAX_SCANS 1000 /* progressive files with more scans are hostile (decode time explodes) */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
} jpeg_err;

typedef struct {
  struct jpeg_decompress_struct ci;
  jpeg_err err;
  struct jpeg_progress_mgr progress;
  const unsigned char *bytes;
  size_t n;
  int64_t max_pixels;
  const char *what;
  rn_status st;      /* our own failure (limit, memory), message already set */
  unsigned char *cmyk_row;
  rn_image_raw img;
} jpeg_job;

static void on_error_exit(j_common_ptr ci) {
  jpeg_err *e = (jpeg_err *)ci->err;
  (*ci->err->format_message)(ci, e->msg);
  longjmp(e->jump, 1);
}

static void on_emit(j_common_ptr ci, int level) {
  if (level < 0 && ci->err->msg_code == JWRN_JPEG_EOF) on_error_exit(ci); /* truncated: fail */
  if (level < 0) ci->err->num_warnings++;
}

static void on_output(j_common_ptr ci) { (void)ci; } /* never print */

static void on_progress(j_common_ptr ci) {
  j_decompress_ptr d = (j_decompress_ptr)ci;
  if (d->input_scan_number > JPEG_MAX_SCANS) {
    jpeg_err *e = (jpeg_err *)ci->err;
    snprintf(e->msg, sizeof e->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
    longjmp(e->jump, 1);
  }
}

static unsigned char cmyk_channel(unsigned c, unsigned k, int adobe) {
  unsigned v = adobe ? c * k : (255 - c) * (255 - k);
  return (unsigned char)((v + 127) / 255);
}

/* Returns 0, or 1 after a libjpeg error (message in j->err.msg) or our own (j->st set). */
static int jpeg_run(jpeg_job *j) {
  if (setjmp(j->err.jump)) return 1;
  jpeg_create_decompress(&j->ci);
  j->progress.progress_monitor = on_progress;
  j->ci.progress = &j->progress;
  jpeg_mem_src(&j->ci, j->bytes, (unsigned long)j->n);
  jpeg_read_header(&j->ci, TRUE);
  if (rn_image_check_size(j->ci.image_width, j->ci.image_height, j->max_pixels, "JPEG header", j->what) != RN_OK) {
    j->st = RN_ERR_FORMAT;
    return 1;
  }
  int cmyk = 0, c;
  switch (j->ci.jpeg_color_space) {
    case JCS_GRAYSCALE: j->ci.out_color_space = JCS_GRAYSCALE; c = 1; break;
    case JCS_CMYK:
    case JCS_YCCK: j->ci.out_color_space = JCS_CMYK; cmyk = 1; c = 3; break;
    default: j->ci.out_color_space = JCS_RGB; c = 3; break;
  }
  jpeg_start_decompress(&j->ci);
  int64_t w = j->ci.output_width, h = j->ci.output_height;
  if ((int)j->ci.output_components != (cmyk ? 4 : c)) {
    snprintf(j->err.msg, sizeof j->err.msg, "unexpected %d output components", j->ci.output_components);
    return 1;
  }
  j->img.w = w;
  j->img.h = h;
  j->img.c = c;
  j->img.depth = 8;
  j->img.data = malloc((size_t)(w * h * c));
  if (cmyk) j->cmyk_row = malloc((size_t)w * 4);
  if (!j->img.data || (cmyk && !j->cmyk_row)) { j->st = RN_ERR_OOM; return 1; }
  int adobe = j->ci.saw_Adobe_marker;
  while (j->ci.output_scanline < j->ci.output_height) {
    unsigned char *row = (unsigned char *)j->img.data + (size_t)j->ci.output_scanline * w * c;
    JSAMPROW rows[1] = {cmyk ? j->cmyk_row : row};
    jpeg_read_scanlines(&j->ci, rows, 1);
    if (cmyk)
      for (int64_t x = 0; x < w; x++) {
        const unsigned char *s = j->cmyk_row + 4 * x;
        for (int k = 0; k < 3; k++) row[3 * x + k] = cmyk_channel(s[k], s[3], adobe);
      }
  }
  jpeg_finish_decompress(&j->ci);
  return 0;
}

rn_status rn_jpeg_decode(rn_image_raw *out, const unsigned char *bytes, size_t n, int64_t max_pixels,
                         const char *what) {
  jpeg_job *j = calloc(1, sizeof *j); /* ~1 KB of libjpeg state; keep it off the stack */
  if (!j) return rn_error(RN_ERR_OOM, "image %s: out of memory creating a JPEG decoder", what);
  j->bytes = bytes;
  j->n = n;
  j->max_pixels = max_pixels;
  j->what = what;
  j->st = RN_OK;
  j->ci.err = jpeg_std_error(&j->err.pub);
  j->err.pub.error_exit = on_error_exit;
  j->err.pub.emit_message = on_emit;
  j->err.pub.output_message = on_output;
  int failed = jpeg_run(j);
  jpeg_destroy_decompress(&j->ci);
  free(j->cmyk_row);
  rn_status st = RN_OK;
  if (!failed) *out = j->img;
  else {
    free(j->img.data);
    if (j->st == RN_ERR_OOM)
      st = rn_error(RN_ERR_OOM, "image %s: out of memory for a %lldx%lld JPEG", what, (long long)j->img.w,
                    (long long)j->img.h);
    else if (j->st != RN_OK) st = j->st;
    else st = rn_error(RN_ERR_FORMAT, "image %s: corrupt JPEG: %s", what, j->err.msg[0] ? j->err.msg : "unknown error");
  }
  free(j);
  return st;
}
