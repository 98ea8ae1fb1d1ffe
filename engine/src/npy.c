/* npy.c - NumPy .npy files: versions 1-3, little-endian <f4 <f8 |u1 <i4 <i8, C order, 0..5 dims.
 *
 * The parser treats every byte of the file as hostile (fixtures and imported weights may be truncated or
 * forged): each length is bounds-checked before use, the header dict is parsed by a tiny strict grammar,
 * and the data length must equal the shape's size exactly, so a header that lies about its shape fails.
 * Malformed content gives RN_ERR_FORMAT; well-formed files we cannot represent (Fortran order, big-endian,
 * other dtypes, more than RN_MAX_DIMS dims) give RN_ERR_UNSUPPORTED. Messages name the file.
 */
#include <errno.h>

#include "internal.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER (1u << 20) /* real headers are < 1 KB; anything past this is corrupt */

/* ------------------------------------------------------------------ header dict parsing */

typedef struct {
  const char *start, *p, *end;  /* cursor over the header text */
  const char *what;     /* file name for messages */
} hdr_cursor;

static void skip_ws(hdr_cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static bool accept(hdr_cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) { c->p++; return true; }
  return false;
}

static rn_status bad_header(hdr_cursor *c, const char *expected) {
  return rn_error(RN_ERR_FORMAT, "npy %s: malformed header: expected %s at header byte %ld", c->what, expected,
                  (long)(c->p - c->start));
}

/* A quoted Python string (no escapes needed for npy keys/dtypes) copied into buf. */
static rn_status parse_string(hdr_cursor *c, char *buf, size_t n) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return bad_header(c, "a quoted string");
  char q = *c->p++;
  size_t k = 0;
  while (c->p < c->end && *c->p != q) {
    if (k + 1 >= n) return rn_error(RN_ERR_FORMAT, "npy %s: malformed header: string too long", c->what);
    buf[k++] = *c->p++;
  }
  if (c->p >= c->end) return bad_header(c, "a closing quote");
  c->p++;
  buf[k] = 0;
  return RN_OK;
}

static rn_status parse_bool(hdr_cursor *c, bool *v) {
  skip_ws(c);
  size_t left = (size_t)(c->end - c->p);
  if (left >= 4 && memcmp(c->p, "True", 4) == 0) { *v = true; c->p += 4; return RN_OK; }
  if (left >= 5 && memcmp(c->p, "False", 5) == 0) { *v = false; c->p += 5; return RN_OK; }
  return bad_header(c, "True or False for 'fortran_order'");
}

/* A tuple of non-negative integers: (), (3,), (2, 3) - trailing comma allowed. */
static rn_status parse_shape(hdr_cursor *c, int *ndim, int64_t *shape) {
  if (!accept(c, '(')) return bad_header(c, "'(' opening the shape");
  int n = 0;
  for (;;) {
    if (accept(c, ')')) break;
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return bad_header(c, "a non-negative integer in the shape");
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
      int digit = *c->p++ - '0';
      if (v > (INT64_MAX - digit) / 10)
        return rn_error(RN_ERR_FORMAT, "npy %s: malformed header: shape entry overflows", c->what);
      v = v * 10 + digit;
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) c->p++; /* Python 2 long suffix */
    if (n >= RN_MAX_DIMS)
      return rn_error(RN_ERR_UNSUPPORTED, "npy %s: more than %d dims are not supported", c->what, RN_MAX_DIMS);
    shape[n++] = v;
    if (accept(c, ',')) continue;
    if (accept(c, ')')) break;
    return bad_header(c, "',' or ')' in the shape");
  }
  *ndim = n;
  return RN_OK;
}

typedef struct {
  rn_dtype dtype;
  int src_size;      /* bytes per element in the file */
  bool f64;          /* converted to float32 on read */
} npy_type;

static rn_status parse_descr(const char *d, const char *what, npy_type *t) {
  static const struct { const char *name; rn_dtype dt; int size; bool f64; } known[] = {
    {"<f4", RN_F32, 4, false}, {"<f8", RN_F32, 8, true}, {"|u1", RN_U8, 1, false}, {"<u1", RN_U8, 1, false},
    {"<i4", RN_I32, 4, false}, {"<i8", RN_I64, 8, false},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(d, known[i].name) == 0) {
      t->dtype = known[i].dt; t->src_size = known[i].size; t->f64 = known[i].f64;
      return RN_OK;
    }
  return rn_error(RN_ERR_UNSUPPORTED, "npy %s: unsupported dtype '%s' (supported: <f4 <f8 |u1 <i4 <i8)", what, d);
}

/* Parses the header dict: exactly the keys descr, fortran_order and shape, each once. */
static rn_status parse_header(const char *text, size_t len, const char *what, npy_type *type, int *ndim,
                              int64_t *shape) {
  hdr_cursor c = {text, text, text + len, what};
  bool have_descr = false, have_order = false, have_shape = false, fortran = false;
  char descr[32];
  if (!accept(&c, '{')) return bad_header(&c, "'{' opening the header dict");
  for (;;) {
    if (accept(&c, '}')) break;
    char key[32];
    RN_TRY(parse_string(&c, key, sizeof key));
    if (!accept(&c, ':')) return bad_header(&c, "':' after a key");
    bool *seen = strcmp(key, "descr") == 0 ? &have_descr : strcmp(key, "fortran_order") == 0 ? &have_order :
                 strcmp(key, "shape") == 0 ? &have_shape : NULL;
    if (!seen) return rn_error(RN_ERR_FORMAT, "npy %s: malformed header: unknown key '%s'", what, key);
    if (*seen) return rn_error(RN_ERR_FORMAT, "npy %s: malformed header: key '%s' repeated", what, key);
    if (seen == &have_descr) RN_TRY(parse_string(&c, descr, sizeof descr));
    else if (seen == &have_order) RN_TRY(parse_bool(&c, &fortran));
    else RN_TRY(parse_shape(&c, ndim, shape));
    *seen = true;
    if (accept(&c, ',')) continue;
    if (accept(&c, '}')) break;
    return bad_header(&c, "',' or '}' in the header dict");
  }
  skip_ws(&c);
  if (c.p != c.end) return bad_header(&c, "the end of the header after '}'");
  if (!have_descr || !have_order || !have_shape)
    return rn_error(RN_ERR_FORMAT, "npy %s: malformed header: missing '%s'", what,
                    !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
  RN_TRY(parse_descr(descr, what, type));
  if (fortran)
    return rn_error(RN_ERR_UNSUPPORTED, "npy %s: Fortran-order arrays are not supported (save in C order)", what);
  return RN_OK;
}

/* ------------------------------------------------------------------ parse / read */

static uint32_t read_le(const unsigned char *p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

rn_status rn_npy_parse(rn_tensor **out, const void *bytes, size_t n, const char *what) {
  if (!out) return rn_error(RN_ERR_ARG, "npy_parse: no output pointer");
  *out = NULL;
  if (!what) what = "(memory)";
  if (!bytes && n) return rn_error(RN_ERR_ARG, "npy %s: no data", what);
  const unsigned char *b = bytes;
  if (n < NPY_MAGIC_LEN + 2 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
    return rn_error(RN_ERR_FORMAT, "npy %s: not a .npy file (bad magic)", what);
  int major = b[6];
  if (major < 1 || major > 3)
    return rn_error(RN_ERR_FORMAT, "npy %s: unknown format version %d.%d (expected 1, 2 or 3)", what, major, b[7]);
  size_t len_bytes = major == 1 ? 2 : 4, start = NPY_MAGIC_LEN + 2 + len_bytes;
  if (n < start) return rn_error(RN_ERR_FORMAT, "npy %s: truncated before the header length", what);
  uint32_t hlen = read_le(b + NPY_MAGIC_LEN + 2, (int)len_bytes);
  if (hlen > NPY_MAX_HEADER)
    return rn_error(RN_ERR_FORMAT, "npy %s: header length %u is implausibly large (corrupt file)", what, hlen);
  if (hlen > n - start)
    return rn_error(RN_ERR_FORMAT, "npy %s: truncated header (%u bytes announced, %zu present)", what, hlen,
                    n - start);
  for (uint32_t i = 0; i < hlen; i++)
    if (b[start + i] == 0 || b[start + i] >= 0x80)
      return rn_error(RN_ERR_FORMAT, "npy %s: malformed header: non-ASCII byte at header byte %u", what, i);

  npy_type type = {RN_F32, 4, false};
  int ndim = 0;
  int64_t shape[RN_MAX_DIMS] = {0};
  RN_TRY(parse_header((const char *)b + start, hlen, what, &type, &ndim, shape));

  /* numel * element size must match the bytes that follow, with overflow checks */
  size_t data_off = start + hlen, have = n - data_off;
  uint64_t numel = 1;
  bool overflow = false;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] != 0 && numel > UINT64_MAX / (uint64_t)shape[i]) overflow = true;
    else numel *= (uint64_t)shape[i];
  }
  if (!overflow && numel > UINT64_MAX / (uint64_t)type.src_size) overflow = true;
  if (overflow || numel * (uint64_t)type.src_size != (uint64_t)have) {
    char sh[96];
    size_t k = (size_t)snprintf(sh, sizeof sh, "(");
    for (int i = 0; i < ndim && k < sizeof sh; i++) k += (size_t)snprintf(sh + k, sizeof sh - k, i ? ",%lld" : "%lld",
                                                                          (long long)shape[i]);
    if (k < sizeof sh) snprintf(sh + k, sizeof sh - k, ")");
    return rn_error(RN_ERR_FORMAT, "npy %s: header shape %s needs %s%llu data bytes but the file has %zu (%s)", what,
                    sh, overflow ? "more than " : "", overflow ? (unsigned long long)UINT64_MAX :
                    (unsigned long long)(numel * (uint64_t)type.src_size), have,
                    overflow || numel * (uint64_t)type.src_size > (uint64_t)have ? "truncated or lying header" :
                    "trailing bytes");
  }

  rn_tensor *t = NULL;
  RN_TRY(rn_tensor_empty(&t, ndim, shape, type.dtype, rn_cpu()));
  const unsigned char *src = b + data_off;
  if (type.f64) {
    float *dst = rn_f32(t);
    for (uint64_t i = 0; i < numel; i++) {
      double v;
      memcpy(&v, src + i * 8, 8); /* unaligned source: memcpy */
      dst[i] = (float)v;
    }
  } else if (numel) {
    memcpy(rn_tensor_data(t), src, (size_t)numel * (size_t)type.src_size);
  }
  *out = t;
  return RN_OK;
}

/* Reads the whole file in growing chunks: works for pipes too, and never trusts a size reported up front
 * (a directory "opens" with a bogus size). */
rn_status rn_npy_read(rn_tensor **out, const char *path) {
  if (!out) return rn_error(RN_ERR_ARG, "npy_read: no output pointer");
  *out = NULL;
  if (!path) return rn_error(RN_ERR_ARG, "npy_read: no path");
  FILE *f = fopen(path, "rb");
  if (!f) return rn_error(RN_ERR_IO, "npy %s: cannot open: %s", path, strerror(errno));
  rn_status st = RN_OK;
  unsigned char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 65536;
      unsigned char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
      if (!nb) { st = rn_error(RN_ERR_OOM, "npy %s: out of memory reading %zu bytes", path, ncap); break; }
      buf = nb;
      cap = ncap;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) st = rn_error(RN_ERR_IO, "npy %s: read failed: %s", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (st == RN_OK) st = rn_npy_parse(out, buf, n, path);
  free(buf);
  return st;
}

/* ------------------------------------------------------------------ write */

rn_status rn_npy_write(const char *path, const rn_tensor *t) {
  if (!path) return rn_error(RN_ERR_ARG, "npy_write: no path");
  RN_TRY(rn_check_tensor(t, "npy_write"));
  const char *descr;
  switch (t->dtype) {
    case RN_F32: descr = "<f4"; break;
    case RN_U8: descr = "|u1"; break;
    case RN_I32: descr = "<i4"; break;
    case RN_I64: descr = "<i8"; break;
    default: return rn_error(RN_ERR_ARG, "npy %s: cannot write dtype %s", path, rn_dtype_name(t->dtype));
  }
  /* header text, padded with spaces so that magic + length + header is a multiple of 64, ending in '\n' */
  char hdr[256];
  int k = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < t->ndim; i++) k += snprintf(hdr + k, sizeof hdr - (size_t)k, "%lld, ", (long long)t->shape[i]);
  if (t->ndim) k -= t->ndim == 1 ? 1 : 2;  /* "(3,)" keeps its comma; "(2, 3)" does not */
  k += snprintf(hdr + k, sizeof hdr - (size_t)k, "), }");
  int total = 10 + k + 1;
  int pad = (64 - total % 64) % 64;
  memset(hdr + k, ' ', (size_t)pad);
  k += pad;
  hdr[k++] = '\n';
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(k & 0xff), (unsigned char)(k >> 8)};

  /* host, contiguous copy of the data */
  rn_tensor *host = NULL, *c = NULL;
  RN_TRY(rn_to_device(&host, (rn_tensor *)t, rn_cpu()));
  rn_status st = rn_contig_nograd(&c, host);
  rn_tensor_release(host);
  if (st != RN_OK) return st;
  FILE *f = fopen(path, "wb");
  if (!f) {
    rn_tensor_release(c);
    return rn_error(RN_ERR_IO, "npy %s: cannot create: %s", path, strerror(errno));
  }
  size_t nbytes = (size_t)rn_tensor_numel(c) * rn_dtype_size(c->dtype);
  bool ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre && fwrite(hdr, 1, (size_t)k, f) == (size_t)k &&
            (nbytes == 0 || fwrite(rn_tensor_data(c), 1, nbytes, f) == nbytes);
  int saved_errno = errno;
  if (fclose(f) != 0) ok = false;
  rn_tensor_release(c);
  if (!ok) return rn_error(RN_ERR_IO, "npy %s: write failed: %s", path, strerror(saved_errno));
  return RN_OK;
}
