/* h5_store.c - HDF5 files: open, atomic create/commit, close; error translation and name handling.
 *
 * Atomic saves: rn_h5_create writes "<path>.tmp.<pid>.<n>" in the target's directory (same file system, so
 * rename(2) is atomic); rn_h5_commit flushes, fsyncs and renames it over the target, then fsyncs the directory.
 * All handles use H5F_CLOSE_STRONG so that closing the file closes any object a failed call left open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5_internal.h"

/* ------------------------------------------------------------------ errors */

void rn_h5__init(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct { char inner[160], outer[160]; int seen; } h5_detail;

/* Walked upward: entry 0 is where the error was detected, the last one the API call. */
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
  h5_detail *d = data;
  if (n == 0) snprintf(d->inner, sizeof d->inner, "%s", e->desc ? e->desc : "");
  snprintf(d->outer, sizeof d->outer, "%s", e->desc ? e->desc : "");
  d->seen++;
  return 0;
}

rn_status rn_h5__fail(rn_status s, const char *fmt, ...) {
  char msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  h5_detail d = {{0}, {0}, 0};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &d);
  H5Eclear2(H5E_DEFAULT);
  if (!d.seen) return rn_error(s, "%s", msg);
  if (d.seen == 1 || strcmp(d.inner, d.outer) == 0) return rn_error(s, "%s (HDF5: %s)", msg, d.inner);
  return rn_error(s, "%s (HDF5: %s: %s)", msg, d.outer, d.inner);
}

/* ------------------------------------------------------------------ names */

rn_status rn_h5__check_open(const rn_h5file *f, const char *what, bool write) {
  if (!f) return rn_error(RN_ERR_ARG, "h5 %s: no file", what);
  if (f->fid < 0) return rn_error(RN_ERR_ARG, "h5 %s: %s: the file is closed (committed?)", f->path, what);
  if (write && !f->writable) return rn_error(RN_ERR_ARG, "h5 %s: %s: the file is open read-only", f->path, what);
  return RN_OK;
}

rn_status rn_h5__norm_name(const rn_h5file *f, const char *name, char *buf, size_t n, bool allow_root) {
  const char *file = f ? f->path : "";
  if (!name) return rn_error(RN_ERR_ARG, "h5 %s: no dataset name", file);
  size_t k = 0;
  const char *p = name;
  while (*p) {
    while (*p == '/') p++;
    if (!*p) break;
    const char *q = p;
    while (*q && *q != '/') q++;
    size_t len = (size_t)(q - p);
    if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
      return rn_error(RN_ERR_ARG, "h5 %s: bad name '%s': components '.' and '..' are not allowed", file, name);
    if (*q == '/' && q[1] == '/')
      return rn_error(RN_ERR_ARG, "h5 %s: bad name '%s': empty path component", file, name);
    if (k + 1 + len + 1 > n || k + 1 + len + 1 > RN_H5_NAME_MAX)
      return rn_error(RN_ERR_ARG, "h5 %s: name '%.60s...' is too long", file, name);
    buf[k++] = '/';
    memcpy(buf + k, p, len);
    k += len;
    p = q;
  }
  if (k == 0) {
    if (!allow_root) return rn_error(RN_ERR_ARG, "h5 %s: empty dataset name '%s'", file, name);
    if (n < 2) return rn_error(RN_ERR_ARG, "h5 %s: name buffer too small", file);
    buf[k++] = '/';
  }
  buf[k] = 0;
  return RN_OK;
}

bool rn_h5__exists(hid_t fid, const char *norm) {
  if (strcmp(norm, "/") == 0) return true;
  char part[RN_H5_NAME_MAX];
  size_t len = strlen(norm);
  if (len >= sizeof part) return false;
  memcpy(part, norm, len + 1);
  for (size_t i = 1; i <= len; i++) {  /* each prefix "/a", "/a/b", ... must be a link */
    if (part[i] != '/' && part[i] != 0) continue;
    char c = part[i];
    part[i] = 0;
    htri_t e = H5Lexists(fid, part, H5P_DEFAULT);
    part[i] = c;
    if (e <= 0) { H5Eclear2(H5E_DEFAULT); return false; }
  }
  return true;
}

const char *rn_h5__shape_str(char *buf, size_t n, rn_dtype dt, int ndim, const int64_t *shape) {
  size_t k = (size_t)snprintf(buf, n, "%s[", rn_dtype_name(dt));
  for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

rn_status rn_strlist_push(rn_strlist *l, const char *s) {
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 16;
    char **v = realloc(l->v, (size_t)cap * sizeof *v);
    if (!v) return rn_error(RN_ERR_OOM, "out of memory listing names");
    l->v = v;
    l->cap = cap;
  }
  if (!(l->v[l->n] = strdup(s))) return rn_error(RN_ERR_OOM, "out of memory listing names");
  l->n++;
  return RN_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
void rn_strlist_sort(rn_strlist *l) { if (l->n > 1) qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_str); }

void rn_h5_names_free(char **names, int count) {
  if (!names) return;
  for (int i = 0; i < count; i++) free(names[i]);
  free(names);
}

/* ------------------------------------------------------------------ open / create */

static hid_t strong_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0) H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
#if H5_VERSION_GE(1, 10, 7)
  if (fapl >= 0) H5Pset_file_locking(fapl, true, true);  /* lock, but do not fail where the file system cannot */
#endif
  return fapl;
}

static rn_status file_new(rn_h5file **out, const char *path) {
  rn_h5file *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) { free(f); return rn_error(RN_ERR_OOM, "h5 %s: out of memory", path); }
  f->fid = -1;
  *out = f;
  return RN_OK;
}

static rn_status check_version(rn_h5file *f) {
  rn_h5_attr_kind t;
  RN_TRY(rn_h5_attr_type(f, "/", "format_version", &t));
  if (t != RN_H5_ATTR_NUMBER) return RN_OK;  /* files from other writers carry none */
  double v = 0;
  RN_TRY(rn_h5_get_attr_num(f, "/", "format_version", &v));
  if (!(v <= RN_H5_FORMAT_VERSION))
    return rn_error(RN_ERR_UNSUPPORTED, "h5 %s: format_version %g is newer than this build reads (%d)", f->path, v,
                    RN_H5_FORMAT_VERSION);
  return RN_OK;
}

static rn_status open_mode(rn_h5file **out, const char *path, bool rw) {
  if (!out) return rn_error(RN_ERR_ARG, "h5_open: no output pointer");
  *out = NULL;
  if (!path || !*path) return rn_error(RN_ERR_ARG, "h5_open: no path");
  rn_h5__init();
  struct stat sb;
  if (stat(path, &sb) != 0) return rn_error(RN_ERR_IO, "h5 %s: cannot open: %s", path, strerror(errno));
  if (S_ISDIR(sb.st_mode)) return rn_error(RN_ERR_IO, "h5 %s: cannot open: is a directory", path);
  if (access(path, rw ? R_OK | W_OK : R_OK) != 0)
    return rn_error(RN_ERR_IO, "h5 %s: cannot open: %s", path, strerror(errno));
  htri_t is = H5Fis_hdf5(path);
  if (is == 0) return rn_error(RN_ERR_FORMAT, "h5 %s: not an HDF5 file (no HDF5 signature)", path);
  if (is < 0) return rn_h5__fail(RN_ERR_FORMAT, "h5 %s: not a readable HDF5 file", path);
  rn_h5file *f = NULL;
  RN_TRY(file_new(&f, path));
  hid_t fapl = strong_fapl();
  f->fid = H5Fopen(path, rw ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
  if (f->fid < 0) {  /* message first: every later HDF5 call clears its error stack */
    rn_status st = rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot open: corrupt or truncated HDF5 file", path);
    H5Pclose(fapl);
    rn_h5_close(f);
    return st;
  }
  H5Pclose(fapl);
  f->writable = rw;
  rn_status st = check_version(f);
  if (st != RN_OK) { rn_h5_close(f); return st; }
  *out = f;
  return RN_OK;
}

rn_status rn_h5_open(rn_h5file **out, const char *path) { return open_mode(out, path, false); }
rn_status rn_h5_open_rw(rn_h5file **out, const char *path) { return open_mode(out, path, true); }

/* Creates a fresh temporary name next to path with O_EXCL, so two writers never share one. */
static rn_status make_tmp(const char *path, char **tmp) {
  static unsigned counter;
  size_t n = strlen(path) + 48;
  char *t = malloc(n);
  if (!t) return rn_error(RN_ERR_OOM, "h5 %s: out of memory", path);
  for (int attempt = 0; attempt < 100; attempt++) {
    snprintf(t, n, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
    int fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) { close(fd); *tmp = t; return RN_OK; }
    if (errno != EEXIST) {
      rn_status st = rn_error(RN_ERR_IO, "h5 %s: cannot create a temporary file %s: %s", path, t, strerror(errno));
      free(t);
      return st;
    }
  }
  free(t);
  return rn_error(RN_ERR_IO, "h5 %s: cannot find a free temporary file name", path);
}

rn_status rn_h5_create(rn_h5file **out, const char *path) {
  if (!out) return rn_error(RN_ERR_ARG, "h5_create: no output pointer");
  *out = NULL;
  if (!path || !*path) return rn_error(RN_ERR_ARG, "h5_create: no path");
  rn_h5__init();
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return rn_error(RN_ERR_IO, "h5 %s: cannot create: is a directory", path);
  rn_h5file *f = NULL;
  RN_TRY(file_new(&f, path));
  rn_status st = make_tmp(path, &f->tmp);
  if (st != RN_OK) { rn_h5_close(f); return st; }
  hid_t fapl = strong_fapl();
  f->fid = H5Fcreate(f->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (f->fid < 0) {
    st = rn_h5__fail(RN_ERR_IO, "h5 %s: cannot create the temporary file %s", path, f->tmp);
    H5Pclose(fapl);
    rn_h5_close(f);
    return st;
  }
  H5Pclose(fapl);
  f->writable = true;
  st = rn_h5_set_attr_num(f, "/", "format_version", RN_H5_FORMAT_VERSION);
  if (st == RN_OK) st = rn_h5_set_attr_str(f, "/", "writer", "realnet " REALNET_VERSION);
  if (st != RN_OK) { rn_h5_close(f); return st; }
  *out = f;
  return RN_OK;
}

static void fsync_path(const char *p, bool dir) {
  int fd = open(p, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
  if (fd >= 0) { fsync(fd); close(fd); }
}

rn_status rn_h5_commit(rn_h5file *f) {
  RN_TRY(rn_h5__check_open(f, "commit", true));
  if (!f->tmp) return rn_error(RN_ERR_ARG, "h5 %s: commit: only a file made by rn_h5_create can be committed", f->path);
  rn_status st = RN_OK;
  if (H5Fflush(f->fid, H5F_SCOPE_GLOBAL) < 0)
    st = rn_h5__fail(RN_ERR_IO, "h5 %s: commit: cannot flush %s", f->path, f->tmp);
  if (H5Fclose(f->fid) < 0 && st == RN_OK)
    st = rn_h5__fail(RN_ERR_IO, "h5 %s: commit: cannot close %s", f->path, f->tmp);
  f->fid = -1;
  if (st == RN_OK) {
    fsync_path(f->tmp, false);
    if (rename(f->tmp, f->path) != 0)
      st = rn_error(RN_ERR_IO, "h5 %s: commit: cannot rename %s onto it: %s", f->path, f->tmp, strerror(errno));
  }
  if (st != RN_OK) unlink(f->tmp);
  free(f->tmp);
  f->tmp = NULL;
  if (st == RN_OK) {  /* make the rename itself durable */
    char *dir = strdup(f->path);
    if (dir) {
      char *slash = strrchr(dir, '/');
      if (slash) { if (slash == dir) slash[1] = 0; else *slash = 0; }
      fsync_path(slash ? dir : ".", true);
      free(dir);
    }
  }
  return st;
}

void rn_h5_close(rn_h5file *f) {
  if (!f) return;
  if (f->fid >= 0) H5Fclose(f->fid);
  if (f->tmp) unlink(f->tmp);  /* never committed: the target keeps its old content */
  H5Eclear2(H5E_DEFAULT);
  free(f->tmp);
  free(f->path);
  free(f);
}

const char *rn_h5_path(const rn_h5file *f) { return f ? f->path : NULL; }
