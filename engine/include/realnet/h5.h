/* h5.h - the HDF5 tensor store: weights, checkpoints and feature caches by name.
 *
 *   rn_h5file *f = NULL;
 *   if (rn_h5_create(&f, "model.h5") != RN_OK) puts(rn_last_error());
 *   rn_h5_write_tensor(f, "/model/recon/1/in_conv/weight", w, NULL);   // groups are created
 *   rn_h5_set_attr_str(f, "/", "provenance", "train.lua seed 1");
 *   rn_h5_commit(f);                  // temp file -> model.h5 by rename(2); nothing visible before this
 *   rn_h5_close(f);
 *
 *   rn_h5_open(&f, "model.h5");
 *   rn_h5_read_tensor(&w, f, "/model/recon/1/in_conv/weight", 4, (int64_t[]){64, 3, 3, 3});
 *
 * Names are dataset paths ("a/b/c" and "/a/b/c" are the same); components may not be empty, "." or "..".
 * Tensors are stored with their dtype (float32, uint8, int32, int64 little-endian) and shape; 0-dim tensors
 * as HDF5 scalars. Files from other writers are read when their types convert (float64 -> float32, small
 * integers -> int32, uint32 -> int64).
 *
 * Atomicity: rn_h5_create writes a temporary file next to the target and rn_h5_commit renames it over the
 * target, so readers and crashes see either the old file or the complete new one. Closing without commit
 * discards the temporary file and leaves the old one untouched. rn_h5_open_rw edits a file in place (for
 * appending to a feature cache) and is not atomic.
 *
 * Errors: a missing file or a failed write is RN_ERR_IO, a corrupt or non-HDF5 file RN_ERR_FORMAT, a shape
 * check RN_ERR_SHAPE, a missing name RN_ERR_ARG; each message names the file and the dataset. HDF5's own
 * error printing is switched off. Threading: libhdf5 (serial build) is not thread-safe; use the store from
 * one thread at a time.
 */
#ifndef REALNET_H5_H
#define REALNET_H5_H

#include "tensor.h"

#define RN_H5_FORMAT_VERSION 1 /* root attribute "format_version" written by rn_h5_create */

typedef struct rn_h5file rn_h5file;

/* --- files --- */
rn_status rn_h5_open(rn_h5file **out, const char *path);    /* read-only; refuses a newer format_version */
rn_status rn_h5_open_rw(rn_h5file **out, const char *path); /* read-write in place (not atomic) */
/* A new, empty file written to "<path>.tmp.<pid>.<n>"; it replaces `path` only at rn_h5_commit. Writes the root
 * attributes format_version and writer. */
rn_status rn_h5_create(rn_h5file **out, const char *path);
/* Flushes, closes, fsyncs and renames the temporary file onto the target. The handle is closed afterwards
 * (even on failure, when the temporary file is removed); only rn_h5_close may follow. */
rn_status rn_h5_commit(rn_h5file *f);
/* Closes the file; an uncommitted created file is discarded. Accepts NULL. */
void rn_h5_close(rn_h5file *f);
const char *rn_h5_path(const rn_h5file *f); /* the target path (borrowed) */

/* --- tensors --- */
typedef struct {
  int deflate;        /* 0: no compression, 1..9: deflate level (with byte shuffle); forces chunking */
  int64_t chunk_rows; /* > 0: rows per chunk; 0: automatic (~1 MB, at most max(first write's rows, 64)) */
  bool appendable;    /* chunked with an unlimited dim 0, so rn_h5_append can grow it */
} rn_h5_write_opts;

/* Writes t (any CPU or device tensor, any strides) as dataset `name`, creating intermediate groups and
 * replacing an existing dataset of that name. opts may be NULL (contiguous, uncompressed). */
rn_status rn_h5_write_tensor(rn_h5file *f, const char *name, const rn_tensor *t, const rn_h5_write_opts *opts);
/* Appends t's rows along dim 0 to an appendable dataset (created from t with opts when absent; opts NULL:
 * deflate 4, automatic chunks). Dtype and the trailing dims must match the dataset. */
rn_status rn_h5_append(rn_h5file *f, const char *name, const rn_tensor *t, const rn_h5_write_opts *opts);

/* Reads dataset `name` into a new CPU tensor. When ndim >= 0 the dataset must have that rank and shape
 * (entries of -1 match any size), else RN_ERR_SHAPE naming the dataset and both shapes. */
rn_status rn_h5_read_tensor(rn_tensor **out, rn_h5file *f, const char *name, int ndim, const int64_t *shape);
/* Reads rows [start, start+count) along dim 0. */
rn_status rn_h5_read_rows(rn_tensor **out, rn_h5file *f, const char *name, int64_t start, int64_t count);
/* Dtype and shape of a dataset without reading it (shape has room for RN_MAX_DIMS). */
rn_status rn_h5_info(rn_h5file *f, const char *name, rn_dtype *dtype, int *ndim, int64_t *shape);
bool rn_h5_has(rn_h5file *f, const char *name); /* a dataset of that name exists */

/* --- listing --- */
/* All dataset names ("/a/b/c"), sorted, as a malloc'd array of malloc'd strings; free with rn_h5_names_free. */
rn_status rn_h5_list(rn_h5file *f, char ***names, int *count);
void rn_h5_names_free(char **names, int count);

/* --- attributes (on "/" for the file, on a group, or on a dataset) --- */
typedef enum { RN_H5_ATTR_NONE = 0, RN_H5_ATTR_NUMBER, RN_H5_ATTR_STRING } rn_h5_attr_kind;

rn_status rn_h5_set_attr_str(rn_h5file *f, const char *obj, const char *key, const char *value);
rn_status rn_h5_set_attr_num(rn_h5file *f, const char *obj, const char *key, double value);
/* Type of an attribute, RN_H5_ATTR_NONE when absent (or of another kind, e.g. an array). */
rn_status rn_h5_attr_type(rn_h5file *f, const char *obj, const char *key, rn_h5_attr_kind *type);
/* *value is a malloc'd copy the caller frees with free(). RN_ERR_ARG when absent or not a string. */
rn_status rn_h5_get_attr_str(rn_h5file *f, const char *obj, const char *key, char **value);
rn_status rn_h5_get_attr_num(rn_h5file *f, const char *obj, const char *key, double *value);
/* Attribute names of an object, sorted; free with rn_h5_names_free. */
rn_status rn_h5_list_attrs(rn_h5file *f, const char *obj, char ***names, int *count);

/* --- load sets: what a model expects --- */
typedef struct {
  const char *name;              /* relative to the prefix: "in_conv/weight" */
  rn_dtype dtype;                /* zero-initialised: float32 */
  int ndim;
  int64_t shape[RN_MAX_DIMS];
} rn_h5_expect;

/* Compares the datasets under `prefix` ("/" or "" for the whole file) with what a model expects and reports
 * every missing, extra (unless allow_extra) and mis-shaped/mis-typed name in one message: RN_ERR_FORMAT when
 * names are missing or extra, RN_ERR_SHAPE when only shapes or dtypes differ. */
rn_status rn_h5_check_set(rn_h5file *f, const char *prefix, int n, const rn_h5_expect *want, bool allow_extra);
/* rn_h5_check_set, then reads each expected tensor into out[i] (new references). All or nothing: on failure
 * every out[i] is NULL. */
rn_status rn_h5_load_set(rn_h5file *f, const char *prefix, int n, const rn_h5_expect *want, bool allow_extra,
                         rn_tensor **out);
/* Writes n named tensors into a new file at `path` atomically (create, write, commit); on any failure the
 * old file is untouched. names are relative to prefix (NULL or "/": the root). */
rn_status rn_h5_save(const char *path, const char *prefix, int n, const char *const *names,
                     const rn_tensor *const *tensors);

#endif
