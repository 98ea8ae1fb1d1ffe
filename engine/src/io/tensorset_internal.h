/* tensorset_internal.h - the rn_tensorset struct shared by safetensors.c and npy_folder.c; not installed. */
#ifndef REALNET_TENSORSET_INTERNAL_H
#define REALNET_TENSORSET_INTERNAL_H

#include "internal.h"
#include "realnet/safetensors.h"

typedef enum { RN_TSET_SAFETENSORS = 0, RN_TSET_NPY_FOLDER } rn_tset_kind;

typedef struct {
  char *name;
  /* safetensors */
  int dtype_index;          /* into the dtype table of safetensors.c */
  int ndim;                 /* as stored; may exceed RN_MAX_DIMS (then only the first dims are kept) */
  int64_t shape[RN_MAX_DIMS];
  uint64_t begin, end;      /* byte range within the data area */
  /* .npy folder */
  char *file;               /* full path */
  bool info_known;          /* dtype/shape below filled by a first read */
  rn_dtype npy_dtype;
} rn_tset_entry;

struct rn_tensorset {
  rn_tset_kind kind;
  char *path;
  rn_tset_entry *e;         /* sorted by name */
  int n, cap;
  char **meta_key, **meta_val;
  int nmeta;
  int fd;                   /* safetensors file read with pread, or -1 */
  unsigned char *mem;       /* safetensors image held in memory (rn_safetensors_parse), or NULL */
  uint64_t data_start, data_len;
};

rn_status rn_tset_new(rn_tensorset **out, rn_tset_kind kind, const char *path);
rn_tset_entry *rn_tset_add(rn_tensorset *s, const char *name); /* NULL (and an error set) on OOM */
void rn_tset_sort(rn_tensorset *s);
/* Loader of the npy folder kind (npy_folder.c). */
rn_status rn_npy_folder_load(rn_tensor **out, rn_tensorset *s, rn_tset_entry *e);
rn_status rn_npy_folder_info(rn_tensorset *s, rn_tset_entry *e, rn_dtype *dt, int *ndim, int64_t *shape);

#endif
