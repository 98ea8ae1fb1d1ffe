/* image_bmp.c - our own BMP parser: 1/4/8-bit palette, 16, 24 and 32 bits, bottom-up and top-down,
 * BI_RGB and BI_BITFIELDS (also BI_ALPHABITFIELDS); core (OS/2 v1), INFO and V2..V5 headers.
 *
 * Every offset and length read from the file is checked against the buffer before use. RLE and
 * embedded JPEG/PNG are refused as unsupported. Output channels follow PIL's choices: a palette whose
 * entries are all gray decodes to 1 channel, other palettes to RGB; 32-bit BI_RGB ignores the fourth
 * byte (RGB), bitfields with a non-zero alpha mask give RGBA. Bitfield samples of width b are scaled to
 * 8 bits as v * 255 / (2^b - 1) (PIL's 555/565 unpackers do the same).
 */
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

enum { BI_RGB = 0, BI_RLE8 = 1, BI_RLE4 = 2, BI_BITFIELDS = 3, BI_JPEG = 4, BI_PNG = 5, BI_ALPHABITFIELDS = 6 };

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct { uint32_t mask; int shift, bits; } bitfield;

static bitfield field_of(uint32_t mask) {
  bitfield f = {mask, 0, 0};
  if (!mask) return f;
  while (!((mask >> f.shift) & 1)) f.shift++;
  while (f.shift + f.bits < 32 && ((mask >> (f.shift + f.bits)) & 1)) f.bits++;
  return f;
}

static unsigned char field_value(bitfield f, uint32_t px) {
  if (!f.mask) return 0;
  uint64_t v = (px & f.mask) >> f.shift;
  uint64_t maxv = f.bits >= 32 ? 0xFFFFFFFFull : ((1ull << f.bits) - 1);
  return (unsigned char)(v * 255 / maxv);
}

rn_status rn_bmp_decode(rn_image_raw *out, const unsigned char *b, size_t n, int64_t max_pixels, const char *what) {
  if (n < 14 + 12) return rn_error(RN_ERR_FORMAT, "image %s: truncated BMP (%zu bytes, headers need 26)", what, n);
  uint32_t data_off = le32(b + 10), hsize = le32(b + 14);
  if (hsize < 12 || hsize > n - 14)
    return rn_error(RN_ERR_FORMAT, "image %s: corrupt BMP: info header size %u does not fit the %zu-byte file", what,
                    hsize, n);
  const unsigned char *h = b + 14;
  int64_t w, ht;
  uint32_t bpp, comp = BI_RGB, clr_used = 0;
  int core = hsize < 16;
  if (core) { /* BITMAPCOREHEADER: 16-bit unsigned sizes, 3-byte palette entries */
    w = le16(h + 4);
    ht = le16(h + 6);
    bpp = le16(h + 10);
  } else {
    w = (int32_t)le32(h + 4);
    ht = (int32_t)le32(h + 8);
    bpp = le16(h + 14);
    if (hsize >= 20) comp = le32(h + 16);
    if (hsize >= 36) clr_used = le32(h + 32);
  }
  if (comp == BI_RLE8 || comp == BI_RLE4)
    return rn_error(RN_ERR_UNSUPPORTED, "image %s: RLE-compressed BMP (RLE%d) is not supported", what,
                    comp == BI_RLE8 ? 8 : 4);
  if (comp == BI_JPEG || comp == BI_PNG)
    return rn_error(RN_ERR_UNSUPPORTED, "image %s: BMP with embedded %s data is not supported", what,
                    comp == BI_JPEG ? "JPEG" : "PNG");
  if (comp != BI_RGB && comp != BI_BITFIELDS && comp != BI_ALPHABITFIELDS)
    return rn_error(RN_ERR_FORMAT, "image %s: corrupt BMP: unknown compression %u", what, comp);
  int top_down = ht < 0;
  if (top_down) ht = -ht;
  RN_TRY(rn_image_check_size(w, ht, max_pixels, "BMP header", what));
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
    return rn_error(RN_ERR_FORMAT, "image %s: corrupt BMP: %u bits per pixel", what, bpp);
  if (comp != BI_RGB && bpp != 16 && bpp != 32)
    return rn_error(RN_ERR_FORMAT, "image %s: corrupt BMP: bitfields with %u bits per pixel", what, bpp);

  /* masks: inside V2+ headers, else right after a 40-byte header when bitfields are used */
  bitfield fr = {0}, fg = {0}, fb = {0}, fa = {0};
  size_t after = 14 + (size_t)hsize;
  if (comp != BI_RGB) {
    const unsigned char *m = h + 40;
    size_t mask_bytes = hsize - 40; /* masks inside the header: as many as it holds */
    if (hsize < 52) {
      size_t nm = comp == BI_ALPHABITFIELDS ? 16 : 12;
      if (hsize != 40 || after + nm > n)
        return rn_error(RN_ERR_FORMAT, "image %s: truncated BMP: bitfield masks missing", what);
      m = b + after;
      after += nm;
      mask_bytes = nm;
    }
    fr = field_of(le32(m));
    fg = field_of(le32(m + 4));
    fb = field_of(le32(m + 8));
    if ((comp == BI_ALPHABITFIELDS || hsize >= 56) && mask_bytes >= 16) fa = field_of(le32(m + 12));
  } else if (bpp == 16) {
    fr = field_of(0x7C00); fg = field_of(0x03E0); fb = field_of(0x001F);
  } else if (bpp == 32) {
    fr = field_of(0xFF0000); fg = field_of(0xFF00); fb = field_of(0xFF);
  }

  /* palette */
  unsigned char pal[256][3];
  memset(pal, 0, sizeof pal);
  int c = 3, ncolors = 0;
  if (bpp <= 8) {
    ncolors = 1 << bpp;
    if (clr_used && clr_used < (uint32_t)ncolors) ncolors = (int)clr_used;
    size_t esz = core ? 3 : 4;
    if (after + (size_t)ncolors * esz > n)
      return rn_error(RN_ERR_FORMAT, "image %s: truncated BMP: palette of %d colours missing", what, ncolors);
    int gray = 1;
    for (int i = 0; i < ncolors; i++) {
      const unsigned char *e = b + after + (size_t)i * esz;
      pal[i][0] = e[2]; pal[i][1] = e[1]; pal[i][2] = e[0];
      if (e[0] != e[1] || e[1] != e[2]) gray = 0;
    }
    c = gray ? 1 : 3;
  } else if (fa.mask) {
    c = 4;
  }

  uint64_t stride = (((uint64_t)w * bpp + 31) / 32) * 4;
  if (data_off > n || stride * (uint64_t)ht > n - data_off)
    return rn_error(RN_ERR_FORMAT, "image %s: truncated BMP: %lld rows of %llu bytes at offset %u do not fit the "
                    "%zu-byte file", what, (long long)ht, (unsigned long long)stride, data_off, n);

  unsigned char *px = malloc((size_t)(w * ht * c));
  if (!px) return rn_error(RN_ERR_OOM, "image %s: out of memory for a %lldx%lld BMP", what, (long long)w, (long long)ht);
  for (int64_t y = 0; y < ht; y++) {
    const unsigned char *row = b + data_off + stride * (uint64_t)(top_down ? y : ht - 1 - y);
    unsigned char *o = px + (size_t)(y * w * c);
    for (int64_t x = 0; x < w; x++, o += c) {
      if (bpp <= 8) {
        unsigned idx = bpp == 8 ? row[x] : bpp == 4 ? (row[x >> 1] >> (x & 1 ? 0 : 4)) & 15
                                                    : (row[x >> 3] >> (7 - (x & 7))) & 1;
        const unsigned char *e = idx < (unsigned)ncolors ? pal[idx] : pal[0]; /* out-of-range index: colour 0 */
        o[0] = e[0];
        if (c == 3) { o[1] = e[1]; o[2] = e[2]; }
      } else if (bpp == 24) {
        const unsigned char *s = row + 3 * x;
        o[0] = s[2]; o[1] = s[1]; o[2] = s[0];
      } else {
        uint32_t v = bpp == 16 ? le16(row + 2 * x) : le32(row + 4 * x);
        o[0] = field_value(fr, v);
        o[1] = field_value(fg, v);
        o[2] = field_value(fb, v);
        if (c == 4) o[3] = field_value(fa, v);
      }
    }
  }
  out->w = w;
  out->h = ht;
  out->c = c;
  out->depth = 8;
  out->data = px;
  return RN_OK;
}
