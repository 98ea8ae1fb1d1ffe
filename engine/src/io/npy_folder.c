/* npy_folder.c - a directory tree of .npy files as a tensor set ("a/b/c.npy" -> tensor "a/b/c").
 *
 * Exporters that cannot write safetensors (old PyTorch, ONNX tooling) often dump one .npy per parameter; the
 * directory structure carries the module path. Symbolic links are skipped so a link cycle cannot loop.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "tensorset_internal.h"

#define MAX_DEPTH 32

static bool ends_with_npy(const char *s, size_t n) { return n > 4 && strcmp(s + n - 4, ".npy") == 0; }

/* Adds every .npy below dir (path on disk) with names prefixed by rel ("" at the top). */
static rn_status walk(rn_tensorset *s, const char *dir, const char *rel, int depth) {
  if (depth > MAX_DEPTH) return rn_error(RN_ERR_ARG, "npy folder %s: directories nested deeper than %d", s->path, MAX_DEPTH);
  DIR *d = opendir(dir);
  if (!d) return rn_error(RN_ERR_IO, "npy folder %s: cannot read %s: %s", s->path, dir, strerror(errno));
  rn_status st = RN_OK;
  struct dirent *ent;
  while (st == RN_OK && (ent = readdir(d)) != NULL) {
    const char *nm = ent->d_name;
    if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) continue;
    size_t nl = strlen(nm), dl = strlen(dir), rl = strlen(rel);
    char *full = malloc(dl + nl + 2), *name = malloc(rl + nl + 2);
    if (!full || !name) { free(full); free(name); st = rn_error(RN_ERR_OOM, "npy folder %s: out of memory", s->path); break; }
    snprintf(full, dl + nl + 2, "%s/%s", dir, nm);
    snprintf(name, rl + nl + 2, "%s%s%s", rel, rl ? "/" : "", nm);
    struct stat sb;
    if (lstat(full, &sb) != 0) {
      st = rn_error(RN_ERR_IO, "npy folder %s: cannot stat %s: %s", s->path, full, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
      st = walk(s, full, name, depth + 1);
    } else if (S_ISREG(sb.st_mode) && ends_with_npy(nm, nl)) {
      name[strlen(name) - 4] = 0;
      rn_tset_entry *e = rn_tset_add(s, name);
      if (!e) st = RN_ERR_OOM;
      else e->file = full, full = NULL;
    }
    free(full);
    free(name);
  }
  closedir(d);
  return st;
}

rn_status rn_npy_folder_open(rn_tensorset **out, const char *dir) {
  if (!out) return rn_error(RN_ERR_ARG, "npy_folder_open: no output pointer");
  *out = NULL;
  if (!dir || !*dir) return rn_error(RN_ERR_ARG, "npy_folder_open: no path");
  struct stat sb;
  if (stat(dir, &sb) != 0) return rn_error(RN_ERR_IO, "npy folder %s: cannot open: %s", dir, strerror(errno));
  if (!S_ISDIR(sb.st_mode)) return rn_error(RN_ERR_IO, "npy folder %s: not a directory", dir);
  rn_tensorset *s = NULL;
  RN_TRY(rn_tset_new(&s, RN_TSET_NPY_FOLDER, dir));
  size_t n = strlen(s->path);
  while (n > 1 && s->path[n - 1] == '/') s->path[--n] = 0;  /* "dir/" and "dir" name tensors alike */
  rn_status st = walk(s, s->path, "", 0);
  if (st != RN_OK) { rn_tensorset_close(s); return st; }
  rn_tset_sort(s);
  *out = s;
  return RN_OK;
}

rn_status rn_npy_folder_load(rn_tensor **out, rn_tensorset *s, rn_tset_entry *e) {
  rn_tensor *t = NULL;
  RN_TRY(rn_npy_read(&t, e->file));
  e->info_known = true;
  e->npy_dtype = t->dtype;
  e->ndim = t->ndim;
  for (int i = 0; i < t->ndim; i++) e->shape[i] = t->shape[i];
  *out = t;
  return RN_OK;
}

rn_status rn_npy_folder_info(rn_tensorset *s, rn_tset_entry *e, rn_dtype *dt, int *ndim, int64_t *shape) {
  if (!e->info_known) {
    rn_tensor *t = NULL;
    RN_TRY(rn_npy_folder_load(&t, s, e));
    rn_tensor_release(t);
  }
  if (dt) *dt = e->npy_dtype;
  if (ndim) *ndim = e->ndim;
  if (shape) for (int i = 0; i < e->ndim; i++) shape[i] = e->shape[i];
  return RN_OK;
}
