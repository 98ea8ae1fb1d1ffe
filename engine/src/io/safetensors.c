/* safetensors.c - safetensors files as tensor sets, with a small strict JSON reader for the header.
 *
 * Every byte of a weight file is treated as hostile: the header length is bounded before allocation, the
 * header must be valid UTF-8 and JSON (nesting depth limited, so a forged "[[[[..." cannot exhaust the stack),
 * every tensor's byte size must equal its offset span, and the spans must tile the data area exactly as the
 * reference implementation requires. All of this is checked at open, so a later load can only fail on I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensorset_internal.h"

#define JSON_MAX_DEPTH 64

/* ------------------------------------------------------------------ dtypes */

typedef enum { CV_COPY, CV_F16, CV_BF16, CV_F64, CV_U32, CV_I16, CV_U16, CV_I8, CV_NONE } conv_kind;

static const struct {
  const char *name;
  int size;          /* bytes per element */
  rn_dtype dt;       /* engine dtype on load */
  conv_kind cv;      /* CV_NONE: known but not loadable */
} dtypes[] = {
  {"F32", 4, RN_F32, CV_COPY}, {"F16", 2, RN_F32, CV_F16},  {"BF16", 2, RN_F32, CV_BF16}, {"F64", 8, RN_F32, CV_F64},
  {"I64", 8, RN_I64, CV_COPY}, {"U32", 4, RN_I64, CV_U32},  {"I32", 4, RN_I32, CV_COPY},  {"I16", 2, RN_I32, CV_I16},
  {"U16", 2, RN_I32, CV_U16},  {"I8", 1, RN_I32, CV_I8},    {"U8", 1, RN_U8, CV_COPY},    {"BOOL", 1, RN_U8, CV_COPY},
  {"U64", 8, RN_I64, CV_NONE}, {"F8_E4M3", 1, RN_F32, CV_NONE}, {"F8_E5M2", 1, RN_F32, CV_NONE},
};
#define NDTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    float v = ldexpf((float)mant, -24);  /* zero or subnormal */
    return sign ? -v : v;
  }
  if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);  /* inf / nan */
  else bits = sign | ((exp + 112u) << 23) | (mant << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static float bf16_to_float(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Converts n elements of little-endian source bytes into dst (of the entry's engine dtype). */
static void convert(conv_kind cv, const unsigned char *src, void *dst, size_t n, int size) {
  switch (cv) {
    case CV_COPY: memcpy(dst, src, n * (size_t)size); break;
    case CV_F16: for (size_t i = 0; i < n; i++) ((float *)dst)[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8)); break;
    case CV_BF16: for (size_t i = 0; i < n; i++) ((float *)dst)[i] = bf16_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8)); break;
    case CV_F64: for (size_t i = 0; i < n; i++) { double v; memcpy(&v, src + 8 * i, 8); ((float *)dst)[i] = (float)v; } break;
    case CV_U32: for (size_t i = 0; i < n; i++) { uint32_t v; memcpy(&v, src + 4 * i, 4); ((int64_t *)dst)[i] = v; } break;
    case CV_I16: for (size_t i = 0; i < n; i++) { int16_t v; memcpy(&v, src + 2 * i, 2); ((int32_t *)dst)[i] = v; } break;
    case CV_U16: for (size_t i = 0; i < n; i++) { uint16_t v; memcpy(&v, src + 2 * i, 2); ((int32_t *)dst)[i] = v; } break;
    case CV_I8: for (size_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int8_t)src[i]; break;
    case CV_NONE: break;
  }
}

/* ------------------------------------------------------------------ generic set */

rn_status rn_tset_new(rn_tensorset **out, rn_tset_kind kind, const char *path) {
  rn_tensorset *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(path))) { free(s); return rn_error(RN_ERR_OOM, "%s: out of memory", path); }
  s->kind = kind;
  s->fd = -1;
  *out = s;
  return RN_OK;
}

rn_tset_entry *rn_tset_add(rn_tensorset *s, const char *name) {
  if (s->n == s->cap) {
    int cap = s->cap ? s->cap * 2 : 32;
    rn_tset_entry *e = realloc(s->e, (size_t)cap * sizeof *e);
    if (!e) { rn_error(RN_ERR_OOM, "%s: out of memory listing tensors", s->path); return NULL; }
    s->e = e;
    s->cap = cap;
  }
  rn_tset_entry *e = &s->e[s->n];
  memset(e, 0, sizeof *e);
  if (!(e->name = strdup(name))) { rn_error(RN_ERR_OOM, "%s: out of memory listing tensors", s->path); return NULL; }
  s->n++;
  return e;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const rn_tset_entry *)a)->name, ((const rn_tset_entry *)b)->name);
}
void rn_tset_sort(rn_tensorset *s) { if (s->n > 1) qsort(s->e, (size_t)s->n, sizeof *s->e, cmp_entry); }

void rn_tensorset_close(rn_tensorset *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) { free(s->e[i].name); free(s->e[i].file); }
  for (int i = 0; i < s->nmeta; i++) { free(s->meta_key[i]); free(s->meta_val[i]); }
  free(s->meta_key);
  free(s->meta_val);
  free(s->e);
  if (s->fd >= 0) close(s->fd);
  free(s->mem);
  free(s->path);
  free(s);
}

const char *rn_tensorset_path(const rn_tensorset *s) { return s ? s->path : NULL; }
int rn_tensorset_count(const rn_tensorset *s) { return s ? s->n : 0; }
const char *rn_tensorset_name(const rn_tensorset *s, int i) { return s && i >= 0 && i < s->n ? s->e[i].name : NULL; }

int rn_tensorset_find(const rn_tensorset *s, const char *name) {
  if (!s || !name || !s->n) return -1;
  rn_tset_entry key = {0};
  key.name = (char *)name;
  rn_tset_entry *hit = bsearch(&key, s->e, (size_t)s->n, sizeof *s->e, cmp_entry);
  return hit ? (int)(hit - s->e) : -1;
}

static rn_status lookup(rn_tensorset *s, const char *name, rn_tset_entry **e) {
  if (!s) return rn_error(RN_ERR_ARG, "tensorset: no set");
  int i = rn_tensorset_find(s, name);
  if (i < 0) return rn_error(RN_ERR_ARG, "%s: no tensor named '%s'", s->path, name ? name : "(null)");
  *e = &s->e[i];
  return RN_OK;
}

rn_status rn_tensorset_info(rn_tensorset *s, const char *name, rn_dtype *dtype, int *ndim, int64_t *shape) {
  rn_tset_entry *e = NULL;
  RN_TRY(lookup(s, name, &e));
  if (s->kind == RN_TSET_NPY_FOLDER) return rn_npy_folder_info(s, e, dtype, ndim, shape);
  if (e->ndim > RN_MAX_DIMS)
    return rn_error(RN_ERR_UNSUPPORTED, "safetensors %s: tensor '%s' has %d dims (at most %d supported)", s->path,
                    e->name, e->ndim, RN_MAX_DIMS);
  if (dtype) *dtype = dtypes[e->dtype_index].dt;
  if (ndim) *ndim = e->ndim;
  if (shape) for (int i = 0; i < e->ndim && i < RN_MAX_DIMS; i++) shape[i] = e->shape[i];
  return RN_OK;
}

const char *rn_tensorset_source_dtype(const rn_tensorset *s, const char *name) {
  int i = rn_tensorset_find(s, name);
  if (i < 0) return NULL;
  return s->kind == RN_TSET_NPY_FOLDER ? "npy" : dtypes[s->e[i].dtype_index].name;
}

/* pread until len bytes arrived; -1 with errno on error, 0 on a short file. */
static int pread_full(int fd, unsigned char *dst, size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    ssize_t r = pread(fd, dst + done, len - done, (off_t)(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return (int)r;
    done += (size_t)r;
  }
  return 1;
}

/* Reads len bytes at data offset off into dst, from memory or from the file. */
static rn_status read_data(rn_tensorset *s, const rn_tset_entry *e, uint64_t off, size_t len, unsigned char *dst) {
  if (s->mem) { memcpy(dst, s->mem + s->data_start + off, len); return RN_OK; }
  int r = pread_full(s->fd, dst, len, s->data_start + off);
  if (r <= 0)
    return rn_error(RN_ERR_IO, "safetensors %s: tensor '%s': %s", s->path, e->name,
                    r < 0 ? strerror(errno) : "file shrank since it was opened");
  return RN_OK;
}

static rn_status load_safetensors(rn_tensor **out, rn_tensorset *s, rn_tset_entry *e) {
  int di = e->dtype_index;
  if (dtypes[di].cv == CV_NONE)
    return rn_error(RN_ERR_UNSUPPORTED, "safetensors %s: tensor '%s': dtype %s cannot be loaded", s->path, e->name,
                    dtypes[di].name);
  if (e->ndim > RN_MAX_DIMS)
    return rn_error(RN_ERR_UNSUPPORTED, "safetensors %s: tensor '%s' has %d dims (at most %d supported)", s->path,
                    e->name, e->ndim, RN_MAX_DIMS);
  rn_tensor *t = NULL;
  RN_TRY(rn_tensor_empty(&t, e->ndim, e->shape, dtypes[di].dt, rn_cpu()));
  size_t n = (size_t)rn_tensor_numel(t), bytes = (size_t)(e->end - e->begin);
  rn_status st = RN_OK;
  if (dtypes[di].cv == CV_COPY) {
    st = read_data(s, e, e->begin, bytes, rn_tensor_data(t));
  } else if (bytes) {
    unsigned char *raw = malloc(bytes);
    if (!raw) st = rn_error(RN_ERR_OOM, "safetensors %s: tensor '%s': out of memory", s->path, e->name);
    else st = read_data(s, e, e->begin, bytes, raw);
    if (st == RN_OK) convert(dtypes[di].cv, raw, rn_tensor_data(t), n, dtypes[di].size);
    free(raw);
  }
  if (st != RN_OK) { rn_tensor_release(t); return st; }
  *out = t;
  return RN_OK;
}

rn_status rn_tensorset_load(rn_tensor **out, rn_tensorset *s, const char *name) {
  if (!out) return rn_error(RN_ERR_ARG, "tensorset_load: no output pointer");
  *out = NULL;
  rn_tset_entry *e = NULL;
  RN_TRY(lookup(s, name, &e));
  return s->kind == RN_TSET_NPY_FOLDER ? rn_npy_folder_load(out, s, e) : load_safetensors(out, s, e);
}

rn_status rn_tensorset_load_all(rn_tensorset *s, rn_tensor **out) {
  if (!s || !out) return rn_error(RN_ERR_ARG, "tensorset_load_all: no set or output array");
  for (int i = 0; i < s->n; i++) out[i] = NULL;
  for (int i = 0; i < s->n; i++) {
    rn_status st = rn_tensorset_load(&out[i], s, s->e[i].name);
    if (st != RN_OK) {
      for (int j = 0; j < i; j++) { rn_tensor_release(out[j]); out[j] = NULL; }
      return st;
    }
  }
  return RN_OK;
}

int rn_tensorset_metadata_count(const rn_tensorset *s) { return s ? s->nmeta : 0; }
const char *rn_tensorset_metadata_key(const rn_tensorset *s, int i) { return s && i >= 0 && i < s->nmeta ? s->meta_key[i] : NULL; }
const char *rn_tensorset_metadata_value(const rn_tensorset *s, int i) { return s && i >= 0 && i < s->nmeta ? s->meta_val[i] : NULL; }
const char *rn_tensorset_metadata(const rn_tensorset *s, const char *key) {
  for (int i = 0; s && key && i < s->nmeta; i++)
    if (strcmp(s->meta_key[i], key) == 0) return s->meta_val[i];
  return NULL;
}

rn_status rn_tensorset_open(rn_tensorset **out, const char *path) {
  if (!out) return rn_error(RN_ERR_ARG, "tensorset_open: no output pointer");
  *out = NULL;
  if (!path) return rn_error(RN_ERR_ARG, "tensorset_open: no path");
  struct stat sb;
  if (stat(path, &sb) != 0) return rn_error(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  return S_ISDIR(sb.st_mode) ? rn_npy_folder_open(out, path) : rn_safetensors_open(out, path);
}

/* ------------------------------------------------------------------ JSON header */

typedef struct {
  const char *start, *p, *end;
  const char *what;
  const char *tensor;  /* the entry being parsed, for messages */
} jcur;

static rn_status jerr(const jcur *c, const char *msg) {
  if (c->tensor)
    return rn_error(RN_ERR_FORMAT, "safetensors %s: malformed header at byte %ld (tensor '%.200s'): %s", c->what,
                    (long)(c->p - c->start), c->tensor, msg);
  return rn_error(RN_ERR_FORMAT, "safetensors %s: malformed header at byte %ld: %s", c->what,
                  (long)(c->p - c->start), msg);
}

static void jws(jcur *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static bool jaccept(jcur *c, char ch) {
  jws(c);
  if (c->p < c->end && *c->p == ch) { c->p++; return true; }
  return false;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static rn_status jhex4(jcur *c, uint32_t *v) {
  if (c->end - c->p < 4) return jerr(c, "truncated \\u escape");
  *v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(c->p[i]);
    if (h < 0) return jerr(c, "bad hex digit in a \\u escape");
    *v = *v << 4 | (uint32_t)h;
  }
  c->p += 4;
  return RN_OK;
}

static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* A JSON string, unescaped into a malloc'd C string (out may be NULL to skip). The decoded text is never
 * longer than the raw text, so one allocation of the raw length suffices. NUL (\u0000) is refused. */
static rn_status jstring(jcur *c, char **out) {
  if (out) *out = NULL;
  jws(c);
  if (c->p >= c->end || *c->p != '"') return jerr(c, "expected a string");
  const char *q = ++c->p;
  while (q < c->end && *q != '"') q += *q == '\\' && q + 1 < c->end ? 2 : 1;
  if (q >= c->end) return jerr(c, "unterminated string");
  char *buf = malloc((size_t)(q - c->p) + 1), *o = buf;
  if (!buf) return rn_error(RN_ERR_OOM, "safetensors %s: out of memory parsing the header", c->what);
  rn_status st = RN_OK;
  while (st == RN_OK && *c->p != '"') {
    unsigned char ch = (unsigned char)*c->p;
    if (ch < 0x20) { st = jerr(c, "control character in a string"); break; }
    if (ch != '\\') { *o++ = (char)ch; c->p++; continue; }
    c->p++;
    char esc = *c->p++;
    switch (esc) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        uint32_t cp, lo;
        if ((st = jhex4(c, &cp)) != RN_OK) break;
        if (cp >= 0xdc00 && cp <= 0xdfff) { st = jerr(c, "lone low surrogate in a \\u escape"); break; }
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u') { st = jerr(c, "lone high surrogate"); break; }
          c->p += 2;
          if ((st = jhex4(c, &lo)) != RN_OK) break;
          if (lo < 0xdc00 || lo > 0xdfff) { st = jerr(c, "bad surrogate pair"); break; }
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (cp == 0) { st = jerr(c, "NUL character (\\u0000) in a string"); break; }
        o += put_utf8(o, cp);
        break;
      }
      default: c->p--; st = jerr(c, "unknown escape in a string");
    }
  }
  if (st != RN_OK) { free(buf); return st; }
  c->p++;  /* closing quote */
  *o = 0;
  if (out) *out = buf; else free(buf);
  return RN_OK;
}

/* A JSON number that must be a non-negative integer fitting int64. */
static rn_status juint(jcur *c, int64_t *v) {
  jws(c);
  if (c->p >= c->end || *c->p < '0' || *c->p > '9') return jerr(c, "expected a non-negative integer");
  if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9') return jerr(c, "leading zero in a number");
  int64_t x = 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    int d = *c->p++ - '0';
    if (x > (INT64_MAX - d) / 10) return jerr(c, "integer too large");
    x = x * 10 + d;
  }
  if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) return jerr(c, "expected an integer, not a fraction");
  *v = x;
  return RN_OK;
}

/* Skips any JSON value (for keys we do not use), depth-limited. */
static rn_status jskip(jcur *c, int depth) {
  if (depth > JSON_MAX_DEPTH) return jerr(c, "nesting too deep");
  jws(c);
  if (c->p >= c->end) return jerr(c, "expected a value");
  char ch = *c->p;
  if (ch == '"') return jstring(c, NULL);
  if (ch == '{' || ch == '[') {
    char close = ch == '{' ? '}' : ']';
    c->p++;
    if (jaccept(c, close)) return RN_OK;
    for (;;) {
      if (ch == '{') {
        RN_TRY(jstring(c, NULL));
        if (!jaccept(c, ':')) return jerr(c, "expected ':'");
      }
      RN_TRY(jskip(c, depth + 1));
      if (jaccept(c, ',')) continue;
      if (jaccept(c, close)) return RN_OK;
      return jerr(c, ch == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
  static const char *const words[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(words[i]);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, words[i], n) == 0) { c->p += n; return RN_OK; }
  }
  /* number: -? digits (. digits)? ([eE] [+-]? digits)? */
  const char *s = c->p;
  if (*c->p == '-') c->p++;
  const char *d = c->p;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  if (c->p == d) { c->p = s; return jerr(c, "expected a value"); }
  if (c->p < c->end && *c->p == '.') {
    d = ++c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    if (c->p == d) return jerr(c, "bad number");
  }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
    c->p++;
    if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
    d = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    if (c->p == d) return jerr(c, "bad number");
  }
  return RN_OK;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). Returns the offset of the first bad
 * byte, or n. */
static size_t utf8_check(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char b = s[i];
    if (b < 0x80) { i++; continue; }
    int len;
    uint32_t cp, min;
    if ((b & 0xe0) == 0xc0) { len = 2; cp = b & 0x1f; min = 0x80; }
    else if ((b & 0xf0) == 0xe0) { len = 3; cp = b & 0x0f; min = 0x800; }
    else if ((b & 0xf8) == 0xf0) { len = 4; cp = b & 0x07; min = 0x10000; }
    else return i;
    if (n - i < (size_t)len) return i;
    for (int k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return i;
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += (size_t)len;
  }
  return n;
}

/* ------------------------------------------------------------------ header -> entries */

static rn_status parse_metadata(jcur *c, rn_tensorset *s) {
  if (!jaccept(c, '{')) return jerr(c, "__metadata__ must be an object of strings");
  if (jaccept(c, '}')) return RN_OK;
  for (;;) {
    char *k = NULL, *v = NULL;
    RN_TRY(jstring(c, &k));
    rn_status st = jaccept(c, ':') ? RN_OK : jerr(c, "expected ':' in __metadata__");
    jws(c);
    if (st == RN_OK && (c->p >= c->end || *c->p != '"')) st = jerr(c, "__metadata__ values must be strings");
    if (st == RN_OK) st = jstring(c, &v);
    if (st == RN_OK) {
      char **nk = realloc(s->meta_key, (size_t)(s->nmeta + 1) * sizeof *nk);
      if (nk) s->meta_key = nk;
      char **nv = nk ? realloc(s->meta_val, (size_t)(s->nmeta + 1) * sizeof *nv) : NULL;
      if (nv) s->meta_val = nv;
      if (!nk || !nv) st = rn_error(RN_ERR_OOM, "safetensors %s: out of memory", s->path);
    }
    if (st != RN_OK) { free(k); free(v); return st; }
    s->meta_key[s->nmeta] = k;
    s->meta_val[s->nmeta++] = v;
    if (jaccept(c, ',')) continue;
    if (jaccept(c, '}')) return RN_OK;
    return jerr(c, "expected ',' or '}' in __metadata__");
  }
}

/* Up to RN_MAX_DIMS dims are kept; the element count covers all of them (overflow flagged). */
static rn_status parse_shape(jcur *c, rn_tset_entry *e, uint64_t *numel, bool *overflow) {
  if (!jaccept(c, '[')) return jerr(c, "'shape' must be an array of integers");
  *numel = 1;
  *overflow = false;
  e->ndim = 0;
  if (jaccept(c, ']')) return RN_OK;
  for (;;) {
    int64_t d;
    RN_TRY(juint(c, &d));
    if (e->ndim < RN_MAX_DIMS) e->shape[e->ndim] = d;
    if (e->ndim >= 1024) return jerr(c, "absurd number of dims");
    e->ndim++;
    if (d == 0) *numel = 0;
    else if (*numel && *numel > UINT64_MAX / (uint64_t)d) *overflow = true;
    else *numel *= (uint64_t)d;
    if (jaccept(c, ',')) continue;
    if (jaccept(c, ']')) break;
    return jerr(c, "expected ',' or ']' in 'shape'");
  }
  if (*numel == 0) *overflow = false;
  return RN_OK;
}

static rn_status parse_offsets(jcur *c, rn_tset_entry *e) {
  int64_t b, en;
  if (!jaccept(c, '[')) return jerr(c, "'data_offsets' must be an array of two integers");
  RN_TRY(juint(c, &b));
  if (!jaccept(c, ',')) return jerr(c, "'data_offsets' must have two integers");
  RN_TRY(juint(c, &en));
  if (!jaccept(c, ']')) return jerr(c, "'data_offsets' must have exactly two integers");
  e->begin = (uint64_t)b;
  e->end = (uint64_t)en;
  return RN_OK;
}

/* One tensor entry {"dtype": ..., "shape": [...], "data_offsets": [b, e]}; unknown keys are skipped. */
static rn_status parse_entry(jcur *c, rn_tensorset *s, rn_tset_entry *e) {
  if (!jaccept(c, '{')) return jerr(c, "a tensor entry must be an object");
  bool have_dt = false, have_shape = false, have_off = false, overflow = false;
  uint64_t numel = 0;
  char *dt = NULL;
  rn_status st = RN_OK;
  if (!jaccept(c, '}'))
    for (;;) {
      char *key = NULL;
      if ((st = jstring(c, &key)) != RN_OK) break;
      if (!jaccept(c, ':')) { free(key); st = jerr(c, "expected ':'"); break; }
      bool *seen = strcmp(key, "dtype") == 0 ? &have_dt : strcmp(key, "shape") == 0 ? &have_shape :
                   strcmp(key, "data_offsets") == 0 ? &have_off : NULL;
      if (seen && *seen) st = rn_error(RN_ERR_FORMAT, "safetensors %s: tensor '%s': key '%s' repeated", s->path, e->name, key);
      else if (seen == &have_dt) st = jstring(c, &dt);
      else if (seen == &have_shape) st = parse_shape(c, e, &numel, &overflow);
      else if (seen == &have_off) st = parse_offsets(c, e);
      else st = jskip(c, 2);
      if (seen) *seen = true;
      free(key);
      if (st != RN_OK) break;
      if (jaccept(c, ',')) continue;
      if (jaccept(c, '}')) break;
      st = jerr(c, "expected ',' or '}' in a tensor entry");
      break;
    }
  if (st == RN_OK && (!have_dt || !have_shape || !have_off))
    st = rn_error(RN_ERR_FORMAT, "safetensors %s: tensor '%s' lacks '%s'", s->path, e->name,
                  !have_dt ? "dtype" : !have_shape ? "shape" : "data_offsets");
  if (st == RN_OK) {
    e->dtype_index = -1;
    for (int i = 0; i < NDTYPES; i++) if (strcmp(dt, dtypes[i].name) == 0) e->dtype_index = i;
    if (e->dtype_index < 0)
      st = rn_error(RN_ERR_FORMAT, "safetensors %s: tensor '%s' has unknown dtype '%.32s'", s->path, e->name, dt);
  }
  free(dt);
  if (st != RN_OK) return st;
  int size = dtypes[e->dtype_index].size;
  if (e->begin > e->end)
    return rn_error(RN_ERR_FORMAT, "safetensors %s: tensor '%s' has misordered data_offsets [%llu, %llu]", s->path,
                    e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
  if (overflow || numel > UINT64_MAX / (uint64_t)size)
    return rn_error(RN_ERR_FORMAT, "safetensors %s: tensor '%s': its shape's byte size overflows 64 bits", s->path,
                    e->name);
  if (numel * (uint64_t)size != e->end - e->begin)
    return rn_error(RN_ERR_FORMAT, "safetensors %s: tensor '%s': its shape needs %llu bytes of %s but data_offsets "
                    "[%llu, %llu] span %llu", s->path, e->name, (unsigned long long)(numel * (uint64_t)size),
                    dtypes[e->dtype_index].name, (unsigned long long)e->begin, (unsigned long long)e->end,
                    (unsigned long long)(e->end - e->begin));
  if (e->end > s->data_len)
    return rn_error(RN_ERR_FORMAT, "safetensors %s: tensor '%s': data_offsets [%llu, %llu] run past the end of the "
                    "data (%llu bytes; truncated file?)", s->path, e->name, (unsigned long long)e->begin,
                    (unsigned long long)e->end, (unsigned long long)s->data_len);
  return RN_OK;
}

static int cmp_span(const void *a, const void *b) {
  const rn_tset_entry *x = *(rn_tset_entry *const *)a, *y = *(rn_tset_entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* The spans must tile [0, data_len) exactly: no overlap, no gap, nothing unaccounted for. */
static rn_status check_tiling(rn_tensorset *s) {
  rn_tset_entry **v = malloc((size_t)(s->n ? s->n : 1) * sizeof *v);
  if (!v) return rn_error(RN_ERR_OOM, "safetensors %s: out of memory", s->path);
  for (int i = 0; i < s->n; i++) v[i] = &s->e[i];
  qsort(v, (size_t)s->n, sizeof *v, cmp_span);
  uint64_t at = 0;
  rn_status st = RN_OK;
  for (int i = 0; i < s->n && st == RN_OK; i++) {
    if (v[i]->begin < at)
      st = rn_error(RN_ERR_FORMAT, "safetensors %s: tensor '%s' (bytes %llu..%llu) overlaps tensor '%s'", s->path,
                    v[i]->name, (unsigned long long)v[i]->begin, (unsigned long long)v[i]->end, v[i - 1]->name);
    else if (v[i]->begin > at)
      st = rn_error(RN_ERR_FORMAT, "safetensors %s: tensor '%s' starts at byte %llu, leaving a gap after byte %llu",
                    s->path, v[i]->name, (unsigned long long)v[i]->begin, (unsigned long long)at);
    at = v[i]->end;
  }
  if (st == RN_OK && at != s->data_len)
    st = rn_error(RN_ERR_FORMAT, "safetensors %s: %llu data bytes after the last tensor are not described by the "
                  "header", s->path, (unsigned long long)(s->data_len - at));
  free(v);
  return st;
}

static rn_status parse_header(rn_tensorset *s, const char *text, size_t len) {
  size_t bad = utf8_check((const unsigned char *)text, len);
  if (bad != len) return rn_error(RN_ERR_FORMAT, "safetensors %s: header is not UTF-8 text (byte %zu; not a "
                                  "safetensors file?)", s->path, bad);
  jcur c = {text, text, text + len, s->path, NULL};
  bool have_meta = false;
  if (!jaccept(&c, '{')) return jerr(&c, "the header must be a JSON object");
  if (!jaccept(&c, '}'))
    for (;;) {
      char *name = NULL;
      RN_TRY(jstring(&c, &name));
      if (!jaccept(&c, ':')) { free(name); return jerr(&c, "expected ':'"); }
      rn_status st = RN_OK;
      if (strcmp(name, "__metadata__") == 0) {
        st = have_meta ? rn_error(RN_ERR_FORMAT, "safetensors %s: __metadata__ repeated", s->path) : parse_metadata(&c, s);
        have_meta = true;
      } else if (!*name) {
        st = rn_error(RN_ERR_FORMAT, "safetensors %s: a tensor has an empty name", s->path);
      } else {
        rn_tset_entry *e = rn_tset_add(s, name);
        c.tensor = name;
        st = e ? parse_entry(&c, s, e) : RN_ERR_OOM;
        c.tensor = NULL;
      }
      free(name);
      RN_TRY(st);
      if (jaccept(&c, ',')) continue;
      if (jaccept(&c, '}')) break;
      return jerr(&c, "expected ',' or '}' after a tensor entry");
    }
  jws(&c);
  if (c.p != c.end) return jerr(&c, "text after the header object");
  rn_tset_sort(s);
  for (int i = 1; i < s->n; i++)
    if (strcmp(s->e[i - 1].name, s->e[i].name) == 0)
      return rn_error(RN_ERR_FORMAT, "safetensors %s: tensor '%s' appears twice", s->path, s->e[i].name);
  return check_tiling(s);
}

/* Header length from the first 8 bytes, bounded by the limit and the file size. */
static rn_status header_len(const char *what, const unsigned char *b8, uint64_t file_size, uint64_t *n) {
  if (file_size < 8) return rn_error(RN_ERR_FORMAT, "safetensors %s: file of %llu bytes is too short for a header",
                                     what, (unsigned long long)file_size);
  /* other formats that end up here by mistake get a message saying what they are */
  if (memcmp(b8, "\x93NUMPY", 6) == 0)
    return rn_error(RN_ERR_FORMAT, "safetensors %s: this is a .npy file, not safetensors (read it as .npy, or open "
                    "its folder as a tensor set)", what);
  if (memcmp(b8, "\x89HDF\r\n\x1a\n", 8) == 0)
    return rn_error(RN_ERR_FORMAT, "safetensors %s: this is an HDF5 file, not safetensors", what);
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | b8[i];
  if (v > RN_SAFETENSORS_MAX_HEADER)
    return rn_error(RN_ERR_FORMAT, "safetensors %s: header length %llu exceeds the 100 MB limit (corrupt or not a "
                    "safetensors file)", what, (unsigned long long)v);
  if (v > file_size - 8)
    return rn_error(RN_ERR_FORMAT, "safetensors %s: header length %llu exceeds the file size %llu (truncated?)", what,
                    (unsigned long long)v, (unsigned long long)file_size);
  if (v < 2) return rn_error(RN_ERR_FORMAT, "safetensors %s: header length %llu is too short", what, (unsigned long long)v);
  *n = v;
  return RN_OK;
}

rn_status rn_safetensors_parse(rn_tensorset **out, const void *bytes, size_t n, const char *what) {
  if (!out) return rn_error(RN_ERR_ARG, "safetensors_parse: no output pointer");
  *out = NULL;
  if (!what) what = "(memory)";
  if (!bytes && n) return rn_error(RN_ERR_ARG, "safetensors %s: no data", what);
  uint64_t hn = 0;
  RN_TRY(header_len(what, bytes, n, &hn));
  rn_tensorset *s = NULL;
  RN_TRY(rn_tset_new(&s, RN_TSET_SAFETENSORS, what));
  if (!(s->mem = malloc(n))) { rn_tensorset_close(s); return rn_error(RN_ERR_OOM, "safetensors %s: out of memory", what); }
  memcpy(s->mem, bytes, n);
  s->data_start = 8 + hn;
  s->data_len = n - s->data_start;
  rn_status st = parse_header(s, (const char *)s->mem + 8, (size_t)hn);
  if (st != RN_OK) { rn_tensorset_close(s); return st; }
  *out = s;
  return RN_OK;
}

rn_status rn_safetensors_open(rn_tensorset **out, const char *path) {
  if (!out) return rn_error(RN_ERR_ARG, "safetensors_open: no output pointer");
  *out = NULL;
  if (!path) return rn_error(RN_ERR_ARG, "safetensors_open: no path");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return rn_error(RN_ERR_IO, "safetensors %s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return rn_error(RN_ERR_IO, "safetensors %s: not a regular file", path);
  }
  rn_tensorset *s = NULL;
  rn_status st = rn_tset_new(&s, RN_TSET_SAFETENSORS, path);
  if (st != RN_OK) { close(fd); return st; }
  s->fd = fd;
  unsigned char b8[8] = {0};
  uint64_t hn = 0;
  char *hdr = NULL;
  st = sb.st_size < 8 || pread_full(fd, b8, 8, 0) > 0 ? RN_OK : rn_error(RN_ERR_IO, "safetensors %s: read failed", path);
  if (st == RN_OK) st = header_len(path, b8, (uint64_t)sb.st_size, &hn);
  if (st == RN_OK && !(hdr = malloc((size_t)hn))) st = rn_error(RN_ERR_OOM, "safetensors %s: out of memory", path);
  if (st == RN_OK) {
    s->data_start = 8 + hn;
    s->data_len = (uint64_t)sb.st_size - s->data_start;
    if (pread_full(fd, (unsigned char *)hdr, (size_t)hn, 8) <= 0)
      st = rn_error(RN_ERR_IO, "safetensors %s: cannot read the header: %s", path, strerror(errno));
  }
  if (st == RN_OK) st = parse_header(s, hdr, (size_t)hn);
  free(hdr);
  if (st != RN_OK) { rn_tensorset_close(s); return st; }
  *out = s;
  return RN_OK;
}
