/* npy.h - NumPy .npy files (version 1-3, little-endian f4/f8/u1/i4/i8, C order).
 * Used for test fixtures and weight import. f8 is read into float32. */
#ifndef REALNET_NPY_H
#define REALNET_NPY_H

#include "tensor.h"

rn_status rn_npy_read(rn_tensor **out, const char *path);
/* Parses an in-memory .npy image (the fuzzing entry point). */
rn_status rn_npy_parse(rn_tensor **out, const void *bytes, size_t n, const char *what);
rn_status rn_npy_write(const char *path, const rn_tensor *t);

#endif
