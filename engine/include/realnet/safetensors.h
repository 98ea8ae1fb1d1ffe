/* safetensors.h - read-only named tensor sets: safetensors files and folders of .npy files.
 *
 *   rn_tensorset *s = NULL;
 *   if (rn_tensorset_open(&s, "resnet18.safetensors") != RN_OK) puts(rn_last_error());
 *   for (int i = 0; i < rn_tensorset_count(s); i++) {
 *     rn_tensor *t = NULL;
 *     rn_tensorset_load(&t, s, rn_tensorset_name(s, i));   // F16/BF16/F64 arrive as float32
 *     ...
 *     rn_tensor_release(t);
 *   }
 *   rn_tensorset_close(s);
 *
 * safetensors: 8-byte little-endian header length N, N bytes of JSON header, then the raw little-endian data.
 * Opening validates the whole header up front: UTF-8, JSON syntax (nesting depth limited), known dtypes,
 * shapes whose byte size equals their data_offsets span, offsets that tile the data area exactly (no overlap,
 * gap or misordering, nothing past the end), N <= 100 MB and <= the file size. Violations are RN_ERR_FORMAT
 * naming the file and tensor. Data is read lazily with pread, so opening a large file costs only its header.
 * Dtypes: F32, F16, BF16, F64 -> float32; I64, U32 -> int64; I32, I16, U16, I8 -> int32; U8, BOOL -> uint8.
 * Other known dtypes (U64, F8_*) and tensors of more than RN_MAX_DIMS dims open fine but refuse to load
 * (RN_ERR_UNSUPPORTED).
 *
 * .npy folder: every *.npy file below the folder is a tensor named by its relative path without ".npy"
 * ("layer1/0/conv1/weight" for layer1/0/conv1/weight.npy); symbolic links are not followed.
 *
 * Names are sorted (byte order). Threading: a set may be read from one thread at a time.
 */
#ifndef REALNET_SAFETENSORS_H
#define REALNET_SAFETENSORS_H

#include "tensor.h"

#define RN_SAFETENSORS_MAX_HEADER (100u * 1000u * 1000u)

typedef struct rn_tensorset rn_tensorset;

/* A safetensors file (header read and checked now, data on load). */
rn_status rn_safetensors_open(rn_tensorset **out, const char *path);
/* A safetensors image in memory (copied; `what` names it in messages) - the fuzzing entry point. */
rn_status rn_safetensors_parse(rn_tensorset **out, const void *bytes, size_t n, const char *what);
/* A folder of .npy files, walked recursively. */
rn_status rn_npy_folder_open(rn_tensorset **out, const char *dir);
/* A directory opens as an .npy folder, anything else as a safetensors file. */
rn_status rn_tensorset_open(rn_tensorset **out, const char *path);
void rn_tensorset_close(rn_tensorset *s); /* accepts NULL */

const char *rn_tensorset_path(const rn_tensorset *s);      /* borrowed */
int rn_tensorset_count(const rn_tensorset *s);
const char *rn_tensorset_name(const rn_tensorset *s, int i); /* 0-based, sorted; NULL out of range; borrowed */
int rn_tensorset_find(const rn_tensorset *s, const char *name); /* index, or -1 */
/* Engine dtype and shape a load would give (for a .npy folder this reads the file). shape: RN_MAX_DIMS room;
 * RN_ERR_UNSUPPORTED for more dims. */
rn_status rn_tensorset_info(rn_tensorset *s, const char *name, rn_dtype *dtype, int *ndim, int64_t *shape);
/* The stored dtype name ("F16", "BF16", ...; "npy" for a folder); NULL for an unknown name. */
const char *rn_tensorset_source_dtype(const rn_tensorset *s, const char *name);
/* A new CPU tensor with the named tensor's values; RN_ERR_ARG naming it when absent. */
rn_status rn_tensorset_load(rn_tensor **out, rn_tensorset *s, const char *name);
/* Loads every tensor into out[0..count) in name order; all or nothing (out[i] NULL on failure). */
rn_status rn_tensorset_load_all(rn_tensorset *s, rn_tensor **out);

/* The safetensors "__metadata__" string map (empty for folders). Strings are borrowed. */
int rn_tensorset_metadata_count(const rn_tensorset *s);
const char *rn_tensorset_metadata_key(const rn_tensorset *s, int i);
const char *rn_tensorset_metadata_value(const rn_tensorset *s, int i);
const char *rn_tensorset_metadata(const rn_tensorset *s, const char *key); /* NULL when absent */

#endif
