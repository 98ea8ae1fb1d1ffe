/* test_image_bad.c - hostile and broken image input: every truncation of PNG/JPEG/BMP fixtures, byte flips
 * and seeded random mutations (no crash; an error or a well-formed image), zero-size images, a text file
 * named .png, huge declared dimensions (refused by the pixel limit before allocating), a huge declared
 * ancillary chunk, RLE BMP, missing files and directories, empty files. Every error is RN_ERR_FORMAT /
 * RN_ERR_IO / RN_ERR_UNSUPPORTED with a message naming the file. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "realnet/image.h"
#include "testutil.h"

static char path_buf[1024];

static const char *fixture_path(const char *name) {
  snprintf(path_buf, sizeof path_buf, "%s/image/%s", FIXTURES_DIR, name);
  return path_buf;
}

static unsigned char *load(const char *name, size_t *n) {
  FILE *f = fopen(fixture_path(name), "rb");
  *n = 0;
  if (!CHECK(f != NULL)) return NULL;
  unsigned char *b = malloc(1 << 16);
  *n = fread(b, 1, 1 << 16, f);
  fclose(f);
  return b;
}

/* Decodes and checks the outcome is either success with a sane tensor or a clean error naming `what`. */
static int decode_any(const unsigned char *b, size_t n, const char *what) {
  rn_tensor *t = NULL;
  rn_status st = rn_image_decode(&t, b, n, NULL, what);
  int ok;
  if (st == RN_OK) {
    ok = t && t->ndim == 3 && t->shape[0] > 0 && t->shape[1] > 0 && t->shape[2] >= 1 && t->shape[2] <= 4;
  } else {
    ok = t == NULL && (st == RN_ERR_FORMAT || st == RN_ERR_UNSUPPORTED) && strstr(rn_last_error(), what);
    if (!ok) fprintf(stderr, "  %s: %s: %s\n", what, rn_status_name(st), rn_last_error());
  }
  rn_tensor_release(t);
  return ok;
}

static void truncations(void) {
  static const char *files[] = {"png_rgb8.png", "png_pal_trns.png", "png_gray16.png", "png_rgb8_interlaced.png",
                                "jpg_rgb420.jpg", "jpg_progressive.jpg", "jpg_gray.jpg", "bmp_rgb24.bmp",
                                "bmp_4bit.bmp", "bmp_rgba32_v4.bmp", "bmp_565.bmp", "bmp_core24.bmp"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    size_t n;
    unsigned char *b = load(files[i], &n);
    if (!b) continue;
    int all_ok = 1, fails = 0;
    for (size_t k = 0; k < n; k++) {
      rn_tensor *t = NULL;
      rn_status st = rn_image_decode(&t, b, k, NULL, files[i]);
      if (st != RN_OK) {
        fails++;
        if (!(st == RN_ERR_FORMAT && strstr(rn_last_error(), files[i]) && t == NULL)) {
          all_ok = 0;
          fprintf(stderr, "  %s cut at %zu: %s: %s\n", files[i], k, rn_status_name(st), rn_last_error());
        }
      } else if (strstr(files[i], ".png") == NULL || k + 12 < n) {
        all_ok = 0; /* only a PNG missing its final IEND chunk may still decode */
        fprintf(stderr, "  %s cut at %zu of %zu decoded\n", files[i], k, n);
      }
      rn_tensor_release(t);
    }
    CHECK(all_ok);
    CHECK(fails >= (int)n - 12);
    free(b);
  }
  /* a truncated JPEG says so (no silent gray fill) */
  size_t n;
  unsigned char *b = load("jpg_rgb420.jpg", &n);
  rn_tensor *t = NULL;
  if (b) CHECK_ERR(rn_image_decode(&t, b, n - 40, NULL, "cut.jpg"), RN_ERR_FORMAT, "Premature end");
  free(b);
  b = load("png_rgb8.png", &n);
  if (b) CHECK_ERR(rn_image_decode(&t, b, n - 30, NULL, "cut.png"), RN_ERR_FORMAT, "truncated");
  free(b);
  b = load("bmp_rgb24.bmp", &n);
  if (b) CHECK_ERR(rn_image_decode(&t, b, n - 1, NULL, "cut.bmp"), RN_ERR_FORMAT, "truncated BMP");
  free(b);
}

static void mutations(void) {
  static const char *files[] = {"png_pal_trns.png", "png_la8.png", "jpg_rgb444.jpg", "jpg_progressive.jpg",
                                "bmp_pal8.bmp", "bmp_rgba32_v4.bmp", "bmp_1bit.bmp", "bmp_555.bmp"};
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    size_t n;
    unsigned char *b = load(files[i], &n);
    if (!b) continue;
    unsigned char *m = malloc(n);
    int ok = 1;
    for (size_t k = 0; k < n && k < 700; k++) { /* every single byte inverted (headers first) */
      memcpy(m, b, n);
      m[k] ^= 0xFF;
      ok &= decode_any(m, n, files[i]);
    }
    for (int r = 0; r < 1500; r++) { /* 1..8 random bytes replaced */
      memcpy(m, b, n);
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      int count = 1 + (int)((s >> 60) & 7);
      for (int c = 0; c < count; c++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        m[(s >> 33) % n] = (unsigned char)(s >> 13);
      }
      ok &= decode_any(m, n, files[i]);
    }
    CHECK(ok);
    free(m);
    free(b);
  }
}

/* Rewrites the PNG IHDR size fields and its CRC. */
static void png_set_size(unsigned char *b, uint32_t w, uint32_t h) {
  for (int i = 0; i < 4; i++) { b[16 + i] = (unsigned char)(w >> (24 - 8 * i)); b[20 + i] = (unsigned char)(h >> (24 - 8 * i)); }
  uint32_t crc = (uint32_t)crc32(0, b + 12, 17);
  for (int i = 0; i < 4; i++) b[29 + i] = (unsigned char)(crc >> (24 - 8 * i));
}

/* The SOF marker of a JPEG (offset of the 0xFF), or 0. */
static size_t jpeg_sof(const unsigned char *b, size_t n) {
  for (size_t i = 2; i + 9 < n; i++)
    if (b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC2)) return i;
  return 0;
}

static void sizes(void) {
  size_t n;
  rn_tensor *t = NULL;
  /* PNG */
  unsigned char *b = load("png_rgb8.png", &n);
  if (b) {
    png_set_size(b, 0, 6);
    CHECK_ERR(rn_image_decode(&t, b, n, NULL, "zero.png"), RN_ERR_FORMAT, "zero.png");
    png_set_size(b, 100000, 100000);
    CHECK_ERR(rn_image_decode(&t, b, n, NULL, "huge.png"), RN_ERR_FORMAT, "limit");
    png_set_size(b, 8, 6);
    CHECK_OK(rn_image_decode(&t, b, n, NULL, "restored.png"));
    rn_tensor_release(t);
    t = NULL;
    rn_image_opts o = rn_image_opts_default();
    o.max_pixels = 47; /* 8x6 = 48 */
    CHECK_ERR(rn_image_decode(&t, b, n, &o, "limited.png"), RN_ERR_FORMAT, "more than the limit of 47");
    b[29] ^= 1; /* IHDR CRC */
    CHECK_ERR(rn_image_decode(&t, b, n, NULL, "crc.png"), RN_ERR_FORMAT, "CRC");
    free(b);
  }
  /* JPEG */
  b = load("jpg_rgb420.jpg", &n);
  size_t sof = b ? jpeg_sof(b, n) : 0;
  CHECK(sof > 0);
  if (b && sof) {
    b[sof + 5] = 0; b[sof + 6] = 0; /* height 0 */
    CHECK_ERR(rn_image_decode(&t, b, n, NULL, "zero.jpg"), RN_ERR_FORMAT, "zero.jpg");
    b[sof + 5] = 0x9C; b[sof + 6] = 0x40; b[sof + 7] = 0x9C; b[sof + 8] = 0x40; /* 40000 x 40000 */
    CHECK_ERR(rn_image_decode(&t, b, n, NULL, "huge.jpg"), RN_ERR_FORMAT, "limit");
  }
  free(b);
  /* BMP */
  b = load("bmp_rgb24.bmp", &n);
  if (b) {
    unsigned char w0[4] = {b[18], b[19], b[20], b[21]};
    memset(b + 18, 0, 4);
    CHECK_ERR(rn_image_decode(&t, b, n, NULL, "zero.bmp"), RN_ERR_FORMAT, "zero-size");
    memcpy(b + 18, "\x30\x75\0\0", 4);   /* 30000 wide */
    memcpy(b + 22, "\x30\x75\0\0", 4);   /* 30000 high */
    CHECK_ERR(rn_image_decode(&t, b, n, NULL, "huge.bmp"), RN_ERR_FORMAT, "limit");
    memcpy(b + 22, "\0\0\0\x80", 4);     /* INT32_MIN height */
    CHECK_ERR(rn_image_decode(&t, b, n, NULL, "min.bmp"), RN_ERR_FORMAT, "min.bmp");
    memcpy(b + 18, w0, 4);
    memcpy(b + 22, "\x06\0\0\0", 4);
    b[28] = 7; /* 7 bits per pixel */
    CHECK_ERR(rn_image_decode(&t, b, n, NULL, "bpp.bmp"), RN_ERR_FORMAT, "bits per pixel");
    b[28] = 24;
    memcpy(b + 14, "\xff\xff\0\0", 4);   /* info header larger than the file */
    CHECK_ERR(rn_image_decode(&t, b, n, NULL, "hdr.bmp"), RN_ERR_FORMAT, "header size");
    free(b);
  }
  CHECK(t == NULL);
}

static void files(void) {
  rn_tensor *t = NULL;
  CHECK_ERR(rn_image_read(&t, fixture_path("text.png"), NULL), RN_ERR_FORMAT, "text.png");
  CHECK_ERR(rn_image_read(&t, fixture_path("text.png"), NULL), RN_ERR_FORMAT, "not a PNG, JPEG or BMP");
  CHECK_ERR(rn_image_read(&t, fixture_path("bmp_rle8.bmp"), NULL), RN_ERR_UNSUPPORTED, "RLE");
  CHECK_ERR(rn_image_read(&t, fixture_path("bmp_rle8.bmp"), NULL), RN_ERR_UNSUPPORTED, "bmp_rle8.bmp");
  CHECK_ERR(rn_image_read(&t, fixture_path("no_such_file.png"), NULL), RN_ERR_IO, "no_such_file.png");
  CHECK_ERR(rn_image_read(&t, fixture_path("tiff_f32.tif"), NULL), RN_ERR_UNSUPPORTED, "rn_image_read_tiff");
  /* 42 bytes declaring a 1.9 GB sPLT chunk (found by fuzz/png): a clean error, without libpng allocating the
   * declared length first (the fuzz runs' -malloc_limit_mb catches that; this file is among their seeds) */
  CHECK_ERR(rn_image_read(&t, fixture_path("png_huge_chunk.png"), NULL), RN_ERR_FORMAT, "png_huge_chunk.png");
  char dir[] = "/tmp/rn_image_bad_XXXXXX";
  if (CHECK(mkdtemp(dir) != NULL)) {
    CHECK_ERR(rn_image_read(&t, dir, NULL), RN_ERR_IO, dir);
    char p[256];
    snprintf(p, sizeof p, "%s/empty.png", dir);
    FILE *f = fopen(p, "wb");
    if (f) fclose(f);
    CHECK_ERR(rn_image_read(&t, p, NULL), RN_ERR_FORMAT, "empty");
    unlink(p);
    rmdir(dir);
  }
  CHECK_ERR(rn_image_read(&t, NULL, NULL), RN_ERR_ARG, NULL);
  CHECK_ERR(rn_image_decode(&t, NULL, 5, NULL, "null"), RN_ERR_ARG, "NULL");
  CHECK_ERR(rn_image_decode(&t, "BM", 2, NULL, "tiny.bmp"), RN_ERR_FORMAT, "tiny.bmp");
  CHECK_ERR(rn_image_decode(&t, "\xff\xd8\xff", 3, NULL, "tiny.jpg"), RN_ERR_FORMAT, "tiny.jpg");
  CHECK_ERR(rn_image_decode(&t, "\x89PNG\r\n\x1a\n", 8, NULL, "tiny.png"), RN_ERR_FORMAT, "tiny.png");
  CHECK(t == NULL);
}

int main(void) {
  truncations();
  mutations();
  sizes();
  files();
  return test_finish("image_bad");
}
