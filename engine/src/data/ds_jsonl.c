/* ds_jsonl.c - RealNet's protocol files (spec 2.1): one flat JSON object per line with filename, label,
 * label_name, optional clsname and maskname; paths relative to the image dir. A small JSON reader is enough:
 * strings (with escapes), numbers, literals; nested values are skipped. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_internal.h"

typedef struct { const char *p; char err[128]; } jreader;

static void ws(jreader *r) { while (isspace((unsigned char)*r->p)) r->p++; }

static int fail(jreader *r, const char *what) {
  if (!r->err[0]) snprintf(r->err, sizeof r->err, "%s", what);
  return 0;
}

static void put_utf8(char **w, unsigned cp) {
  char *o = *w;
  if (cp < 0x80) *o++ = (char)cp;
  else if (cp < 0x800) *o++ = (char)(0xC0 | cp >> 6), *o++ = (char)(0x80 | (cp & 63));
  else *o++ = (char)(0xE0 | cp >> 12), *o++ = (char)(0x80 | ((cp >> 6) & 63)), *o++ = (char)(0x80 | (cp & 63));
  *w = o;
}

/* A string at r->p (after ws) into a malloc'd buffer (NULL out: skipped). */
static int jstring(jreader *r, char **out) {
  if (*r->p != '"') return fail(r, "expected a string");
  const char *s = ++r->p;
  size_t n = 0;
  while (s[n] && s[n] != '"') n += s[n] == '\\' && s[n + 1] ? 2 : 1;
  if (!s[n]) return fail(r, "unterminated string");
  char *buf = malloc(n + 1), *w = buf; /* escapes never expand: \uXXXX (6) -> at most 3 bytes */
  if (!buf) return fail(r, "out of memory");
  while (*r->p != '"') {
    char c = *r->p++;
    if (c != '\\') { *w++ = c; continue; }
    c = *r->p++;
    switch (c) {
      case 'n': *w++ = '\n'; break;
      case 't': *w++ = '\t'; break;
      case 'r': *w++ = '\r'; break;
      case 'b': *w++ = '\b'; break;
      case 'f': *w++ = '\f'; break;
      case 'u': {
        unsigned cp = 0;
        for (int i = 0; i < 4; i++) {
          char h = *r->p++;
          if (!isxdigit((unsigned char)h)) { free(buf); return fail(r, "bad \\u escape"); }
          cp = cp * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
        }
        put_utf8(&w, cp);
        break;
      }
      default: *w++ = c; /* \" \\ \/ */
    }
  }
  r->p++;
  *w = '\0';
  if (out) *out = buf; else free(buf);
  return 1;
}

/* Skips any value; a number or literal is copied to num (when given). */
static int jvalue(jreader *r, char **str, double *num, int *is_num) {
  ws(r);
  char c = *r->p;
  if (c == '"') return jstring(r, str);
  if (c == '{' || c == '[') { /* nested: skip to the matching bracket, strings aware */
    int depth = 0;
    do {
      if (*r->p == '"') { if (!jstring(r, NULL)) return 0; continue; }
      if (*r->p == '{' || *r->p == '[') depth++;
      else if (*r->p == '}' || *r->p == ']') depth--;
      else if (!*r->p) return fail(r, "unterminated value");
      r->p++;
    } while (depth > 0);
    return 1;
  }
  if (strncmp(r->p, "true", 4) == 0) { r->p += 4; if (num) *num = 1, *is_num = 1; return 1; }
  if (strncmp(r->p, "false", 5) == 0) { r->p += 5; if (num) *num = 0, *is_num = 1; return 1; }
  if (strncmp(r->p, "null", 4) == 0) { r->p += 4; return 1; }
  char *end;
  double v = strtod(r->p, &end);
  if (end == r->p) return fail(r, "expected a value");
  r->p = end;
  if (num) *num = v, *is_num = 1;
  return 1;
}

typedef struct { char *filename, *maskname, *clsname; double label; int has_label; } jrow;

static void row_free(jrow *o) { free(o->filename), free(o->maskname), free(o->clsname); }

static int parse_row(jreader *r, jrow *o) {
  ws(r);
  if (*r->p++ != '{') return fail(r, "expected '{'");
  ws(r);
  if (*r->p == '}') { r->p++; return 1; }
  for (;;) {
    char *key = NULL;
    ws(r);
    if (!jstring(r, &key)) return 0;
    ws(r);
    if (*r->p++ != ':') { free(key); return fail(r, "expected ':'"); }
    char **slot = strcmp(key, "filename") == 0 ? &o->filename : strcmp(key, "maskname") == 0 ? &o->maskname
                : strcmp(key, "clsname") == 0 ? &o->clsname : NULL;
    int is_label = strcmp(key, "label") == 0, ok;
    free(key);
    char *s = NULL;
    ok = jvalue(r, &s, is_label ? &o->label : NULL, &o->has_label);
    if (!ok) return 0;
    if (slot && s) { free(*slot); *slot = s; } else free(s);
    ws(r);
    if (*r->p == ',') { r->p++; continue; }
    if (*r->p == '}') { r->p++; break; }
    return fail(r, "expected ',' or '}'");
  }
  ws(r);
  return *r->p ? fail(r, "text after the object") : 1;
}

/* Path component [-k] of a relative filename ("bottle/test/broken/000.png": -4 -> bottle), malloc'd or NULL. */
static char *component_from_end(const char *path, int k) {
  const char *end = path + strlen(path);
  for (int i = 1; i < k; i++) {
    while (end > path && end[-1] != '/') end--;
    if (end == path) return NULL;
    end--; /* the slash */
  }
  const char *start = end;
  while (start > path && start[-1] != '/') start--;
  size_t n = (size_t)(end - start);
  char *s = malloc(n + 1);
  if (s) memcpy(s, start, n), s[n] = '\0';
  return s;
}

static rn_status add_row(const char *image_dir, const char *protocol, int64_t lineno, jrow *o, const char *category,
                         const char *split, ds_entries *out, ds_problems *probs) {
  if (!o->filename || !o->has_label || (o->label != 0 && o->label != 1))
    return rn_error(RN_ERR_FORMAT, "jsonl: %s line %lld: needs \"filename\" and \"label\" (0 or 1)", protocol,
                    (long long)lineno);
  char *cls = o->clsname ? ds_strdup(o->clsname) : component_from_end(o->filename, 4);
  bool keep = !category || (cls && strcmp(cls, category) == 0);
  free(cls);
  if (!keep) return RN_OK;
  int label = (int)o->label;
  char *defect = label ? component_from_end(o->filename, 2) : ds_strdup("good");
  char *path = ds_join(image_dir, o->filename);
  char *mask = o->maskname && *o->maskname ? ds_join(image_dir, o->maskname) : NULL;
  rn_status st = RN_OK;
  if (!path) st = rn_error(RN_ERR_OOM, "dataset: out of memory");
  if (st == RN_OK && !ds_is_file(path))
    st = ds_add_problem(probs, RN_PROBLEM_UNREADABLE, path, "image listed in %s line %lld does not exist", protocol,
                        (long long)lineno);
  if (st == RN_OK && mask && !ds_is_file(mask)) {
    st = ds_add_problem(probs, RN_PROBLEM_MISSING_MASK, path, "its mask %s (%s line %lld) does not exist", mask,
                        protocol, (long long)lineno);
    free(mask);
    mask = NULL;
  }
  /* No maskname on an anomalous line is allowed (spec 2.1: the mask is then all 255). */
  if (st == RN_OK) st = ds_add_entry(out, path, mask, defect ? defect : "anomaly", split, label);
  free(defect);
  free(path);
  free(mask);
  return st;
}

rn_status ds_scan_jsonl(const char *image_dir, const char *protocol, const char *category, ds_entries *out,
                        ds_problems *probs) {
  if (!protocol || !*protocol) return rn_error(RN_ERR_ARG, "jsonl: opts.protocol (the .json file) is required");
  if (!ds_is_dir(image_dir)) return rn_error(RN_ERR_IO, "jsonl: image directory %s does not exist", image_dir);
  FILE *fp = fopen(protocol, "rb");
  if (!fp) return rn_error(RN_ERR_IO, "jsonl: cannot open protocol file %s", protocol);
  /* entries are named after the protocol file: train_bottle.json -> "train" */
  const char *base = strrchr(protocol, '/');
  base = base ? base + 1 : protocol;
  const char *split = strncmp(base, "test", 4) == 0 ? "test" : strncmp(base, "train", 5) == 0 ? "train" : "all";
  char *line = NULL;
  size_t cap = 0;
  int64_t lineno = 0, before = out->n;
  rn_status st = RN_OK;
  while (st == RN_OK && getline(&line, &cap, fp) >= 0) {
    lineno++;
    jreader r = {line, ""};
    ws(&r);
    if (!*r.p) continue;
    jrow o = {0};
    if (!parse_row(&r, &o))
      st = rn_error(RN_ERR_FORMAT, "jsonl: %s line %lld: %s", protocol, (long long)lineno, r.err);
    else
      st = add_row(image_dir, protocol, lineno, &o, category, split, out, probs);
    row_free(&o);
  }
  free(line);
  fclose(fp);
  if (st == RN_OK && out->n == before)
    st = ds_add_problem(probs, RN_PROBLEM_EMPTY_SPLIT, protocol, "no entries%s%s", category ? " for category " : "",
                        category ? category : "");
  return st;
}
