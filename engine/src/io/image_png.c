/* image_png.c - PNG decoding with libpng from memory.
 *
 * libpng reports errors by longjmp. The only setjmp is in png_run(); every object it creates lives in a
 * png_job owned by the caller, so after a jump rn_png_decode frees everything and no jump ever crosses a
 * frame of ours other than the callbacks libpng itself invoked. Transforms: palette -> RGB (RGBA when a
 * tRNS chunk exists), gray below 8 bits -> 8 bits, 16-bit samples -> native uint16. tRNS on gray or RGB
 * images is ignored (PIL keeps it as metadata too). No gamma correction, as PIL.
 */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "image_png.c swaps 16-bit samples to little-endian; add a big-endian path"
#endif

typedef struct {
  const unsigned char *bytes;
  size_t n, pos;
  const char *what;
  int64_t max_pixels;
  char msg[256];          /* libpng's error text */
  rn_status st;           /* set when the failure is ours (limits, memory) rather than libpng's */
  png_structp png;
  png_infop info;
  png_bytep *rows;
  rn_image_raw img;
} png_job;

static void on_read(png_structp png, png_bytep dst, png_size_t len) {
  png_job *j = png_get_io_ptr(png);
  if (len > j->n - j->pos) png_error(png, "truncated file (data ends early)");
  memcpy(dst, j->bytes + j->pos, len);
  j->pos += len;
}

static void on_error(png_structp png, png_const_charp msg) {
  png_job *j = png_get_error_ptr(png);
  snprintf(j->msg, sizeof j->msg, "%s", msg);
  png_longjmp(png, 1); /* to png_run's setjmp (returning would make libpng print to stderr first) */
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

/* Reads the whole image into j->img. Returns 0, or 1 after a libpng error (message in j->msg). */
static int png_run(png_job *j) {
  if (setjmp(png_jmpbuf(j->png))) return 1;
  png_set_read_fn(j->png, j, on_read);
  png_read_info(j->png, j->info);
  png_uint_32 w, h;
  int depth, color, interlace;
  png_get_IHDR(j->png, j->info, &w, &h, &depth, &color, &interlace, NULL, NULL);
  if (rn_image_check_size(w, h, j->max_pixels, "PNG header", j->what) != RN_OK) { j->st = RN_ERR_FORMAT; return 1; }

  if (color == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(j->png);
    if (png_get_valid(j->png, j->info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(j->png);
  }
  if ((color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) && depth < 8)
    png_set_expand_gray_1_2_4_to_8(j->png);
  if (depth == 16) png_set_swap(j->png); /* big-endian file samples -> host order (x86 is little-endian) */
  png_set_interlace_handling(j->png);
  png_read_update_info(j->png, j->info);

  int c = png_get_channels(j->png, j->info);
  int d = png_get_bit_depth(j->png, j->info);
  size_t rowbytes = png_get_rowbytes(j->png, j->info);
  if (c < 1 || c > 4 || (d != 8 && d != 16) || rowbytes != (size_t)w * c * (d / 8)) {
    snprintf(j->msg, sizeof j->msg, "unexpected layout after transforms (%d channels, %d bits)", c, d);
    return 1;
  }
  j->img.h = h;
  j->img.w = w;
  j->img.c = c;
  j->img.depth = d;
  j->img.data = malloc(rowbytes * h);
  j->rows = malloc(sizeof(png_bytep) * h);
  if (!j->img.data || !j->rows) { j->st = RN_ERR_OOM; return 1; }
  for (png_uint_32 y = 0; y < h; y++) j->rows[y] = (png_bytep)j->img.data + (size_t)y * rowbytes;
  png_read_image(j->png, j->rows);
  return 0;
}

rn_status rn_png_decode(rn_image_raw *out, const unsigned char *bytes, size_t n, int64_t max_pixels, const char *what) {
  png_job j;
  memset(&j, 0, sizeof j);
  j.bytes = bytes;
  j.n = n;
  j.what = what;
  j.max_pixels = max_pixels;
  j.st = RN_OK;
  j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, on_error, on_warning);
  if (j.png) j.info = png_create_info_struct(j.png);
  if (!j.png || !j.info) {
    png_destroy_read_struct(j.png ? &j.png : NULL, NULL, NULL);
    return rn_error(RN_ERR_OOM, "image %s: out of memory creating a PNG decoder", what);
  }
  /* libpng allocates some ancillary chunks' declared length before reading them (a 42-byte file declaring a
   * 1.9 GB sPLT chunk took 1.9 GB; png_set_chunk_malloc_max does not cover sPLT). The pixels need none of them
   * (no gamma, background or shift transforms here), so every known ancillary chunk but tRNS is skipped
   * unread, as unknown chunks are; decompressed chunks are capped too. */
  static const png_byte skipped[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0"
                                     "sRGB\0tEXt\0tIME\0zTXt";
  png_set_keep_unknown_chunks(j.png, PNG_HANDLE_CHUNK_NEVER, skipped, (int)(sizeof skipped / 5));
  png_set_chunk_malloc_max(j.png, n > ((size_t)8 << 20) ? n : ((size_t)8 << 20));
  int failed = png_run(&j);
  png_destroy_read_struct(&j.png, &j.info, NULL);
  free(j.rows);
  if (!failed) { *out = j.img; return RN_OK; }
  free(j.img.data);
  if (j.st == RN_ERR_OOM)
    return rn_error(RN_ERR_OOM, "image %s: out of memory for a %lldx%lld PNG", what, (long long)j.img.w,
                    (long long)j.img.h);
  if (j.st != RN_OK) return j.st; /* message already set */
  return rn_error(RN_ERR_FORMAT, "image %s: corrupt PNG: %s", what, j.msg[0] ? j.msg : "unknown libpng error");
}
