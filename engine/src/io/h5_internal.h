/* h5_internal.h - shared pieces of the HDF5 store (h5_store.c, h5_attrs.c, h5_set.c); not installed. */
#ifndef REALNET_H5_INTERNAL_H
#define REALNET_H5_INTERNAL_H

#include <hdf5.h>

#include "internal.h"
#include "realnet/h5.h"

#define RN_H5_NAME_MAX 1024

struct rn_h5file {
  hid_t fid;      /* -1 once closed */
  char *path;     /* the target path */
  char *tmp;      /* the temporary file of an uncommitted rn_h5_create, else NULL */
  bool writable;
};

/* Switches off HDF5's error printing (idempotent; called at every entry point). */
void rn_h5__init(void);
/* rn_error with the message printf'd from fmt plus HDF5's innermost error text; clears HDF5's stack. */
rn_status rn_h5__fail(rn_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Normalises a dataset/group name into "/a/b" (root allowed only when allow_root). */
rn_status rn_h5__norm_name(const rn_h5file *f, const char *name, char *buf, size_t n, bool allow_root);
rn_status rn_h5__check_open(const rn_h5file *f, const char *what, bool write);
/* true when every component of the normalised name exists as a link. */
bool rn_h5__exists(hid_t fid, const char *norm);
/* "float32[3,4]" */
const char *rn_h5__shape_str(char *buf, size_t n, rn_dtype dt, int ndim, const int64_t *shape);

/* A growable list of malloc'd strings. */
typedef struct { char **v; int n, cap; } rn_strlist;
rn_status rn_strlist_push(rn_strlist *l, const char *s);
void rn_strlist_sort(rn_strlist *l);

#endif
