/* h5_tensor.c - tensors as HDF5 datasets: write (plain, chunked+deflate, appendable), append, read, info.
 *
 * The file stores the tensor's own dtype little-endian; reading maps the stored type to the nearest engine
 * dtype and lets HDF5 convert (float64 -> float32 etc.), so weights written by h5py load as well.
 */
#include "h5_internal.h"

#define AUTO_CHUNK_BYTES (1 << 20)
#define DEFAULT_APPEND_DEFLATE 4

static hid_t mem_type(rn_dtype dt) {
  switch (dt) {
    case RN_F32: return H5T_NATIVE_FLOAT;
    case RN_U8: return H5T_NATIVE_UINT8;
    case RN_I32: return H5T_NATIVE_INT32;
    case RN_I64: return H5T_NATIVE_INT64;
    default: return -1;
  }
}

static hid_t file_type(rn_dtype dt) {
  switch (dt) {
    case RN_F32: return H5T_IEEE_F32LE;
    case RN_U8: return H5T_STD_U8LE;
    case RN_I32: return H5T_STD_I32LE;
    case RN_I64: return H5T_STD_I64LE;
    default: return -1;
  }
}

/* Engine dtype for a stored type; RN_ERR_UNSUPPORTED for strings, compounds, uint64, ... */
static rn_status classify(const rn_h5file *f, const char *name, hid_t did, rn_dtype *dt) {
  hid_t t = H5Dget_type(did);
  if (t < 0) return rn_h5__fail(RN_ERR_FORMAT, "h5 %s: dataset '%s': unreadable datatype", f->path, name);
  H5T_class_t c = H5Tget_class(t);
  size_t size = H5Tget_size(t);
  H5T_sign_t sign = c == H5T_INTEGER ? H5Tget_sign(t) : H5T_SGN_NONE;
  H5Tclose(t);
  if (c == H5T_FLOAT && size >= 2 && size <= 8) { *dt = RN_F32; return RN_OK; }
  if (c == H5T_INTEGER) {
    bool u = sign == H5T_SGN_NONE;
    if (size == 1 && u) { *dt = RN_U8; return RN_OK; }
    if (size == 1 || size == 2 || (size == 4 && !u)) { *dt = RN_I32; return RN_OK; }
    if ((size == 4 && u) || (size == 8 && !u)) { *dt = RN_I64; return RN_OK; }
  }
  return rn_error(RN_ERR_UNSUPPORTED, "h5 %s: dataset '%s': stored type (HDF5 class %d, %zu bytes) has no engine dtype",
                  f->path, name, (int)c, size);
}

/* Rank and dims of a dataspace; scalar -> 0 dims. */
static rn_status space_dims(const rn_h5file *f, const char *name, hid_t space, int *ndim, int64_t *shape,
                            hsize_t *maxdims) {
  H5S_class_t c = H5Sget_simple_extent_type(space);
  if (c == H5S_SCALAR) { *ndim = 0; return RN_OK; }
  if (c != H5S_SIMPLE) return rn_h5__fail(RN_ERR_FORMAT, "h5 %s: dataset '%s' has no data (null dataspace)", f->path, name);
  int nd = H5Sget_simple_extent_ndims(space);
  if (nd < 0) return rn_h5__fail(RN_ERR_FORMAT, "h5 %s: dataset '%s': unreadable dataspace", f->path, name);
  if (nd > RN_MAX_DIMS)
    return rn_error(RN_ERR_UNSUPPORTED, "h5 %s: dataset '%s' has %d dims (at most %d supported)", f->path, name, nd,
                    RN_MAX_DIMS);
  hsize_t d[RN_MAX_DIMS], m[RN_MAX_DIMS];
  if (H5Sget_simple_extent_dims(space, d, m) < 0)
    return rn_h5__fail(RN_ERR_FORMAT, "h5 %s: dataset '%s': unreadable dims", f->path, name);
  for (int i = 0; i < nd; i++) {
    if (d[i] > (hsize_t)INT64_MAX) return rn_error(RN_ERR_FORMAT, "h5 %s: dataset '%s': absurd dim", f->path, name);
    shape[i] = (int64_t)d[i];
    if (maxdims) maxdims[i] = m[i];
  }
  *ndim = nd;
  return RN_OK;
}

/* Opens dataset `norm`; RN_ERR_ARG naming it when absent or a group. */
static rn_status open_dataset(const rn_h5file *f, const char *norm, hid_t *did) {
  if (!rn_h5__exists(f->fid, norm)) return rn_error(RN_ERR_ARG, "h5 %s: no dataset '%s'", f->path, norm);
  hid_t o = H5Oopen(f->fid, norm, H5P_DEFAULT);
  if (o < 0) return rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot open '%s'", f->path, norm);
  if (H5Iget_type(o) != H5I_DATASET) {
    H5Oclose(o);
    return rn_error(RN_ERR_ARG, "h5 %s: '%s' is a group, not a dataset", f->path, norm);
  }
  *did = o;
  return RN_OK;
}

/* A contiguous CPU tensor with t's values (t retained when it already is one). */
static rn_status host_contig(rn_tensor **out, const rn_tensor *t) {
  if (rn_tensor_device(t).type == RN_CPU) return rn_contig_nograd(out, t);
  rn_tensor *h = NULL;
  RN_TRY(rn_to_device(&h, (rn_tensor *)t, rn_cpu()));
  rn_status st = rn_contig_nograd(out, h);
  rn_tensor_release(h);
  return st;
}

static rn_status check_write_args(rn_h5file *f, const char *name, const rn_tensor *t, const char *what, char *norm) {
  RN_TRY(rn_h5__check_open(f, what, true));
  RN_TRY(rn_h5__norm_name(f, name, norm, RN_H5_NAME_MAX, false));
  if (!t) return rn_error(RN_ERR_ARG, "h5 %s: %s '%s': no tensor", f->path, what, norm);
  if (mem_type(t->dtype) < 0)
    return rn_error(RN_ERR_ARG, "h5 %s: %s '%s': cannot store dtype %d", f->path, what, norm, (int)t->dtype);
  return RN_OK;
}

/* Dataset creation properties: chunking, shuffle + deflate, unlimited dim 0. */
static rn_status make_dcpl(const rn_h5file *f, const char *norm, const rn_tensor *t, const rn_h5_write_opts *o,
                           hid_t *dcpl) {
  *dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (*dcpl < 0) return rn_h5__fail(RN_ERR_IO, "h5 %s: '%s': cannot make creation properties", f->path, norm);
  bool chunked = o && (o->deflate > 0 || o->chunk_rows > 0 || o->appendable);
  if (!chunked) return RN_OK;
  if (o->deflate < 0 || o->deflate > 9 || o->chunk_rows < 0)
    return rn_error(RN_ERR_ARG, "h5 %s: '%s': deflate must be 0..9 and chunk_rows >= 0 (got %d, %lld)", f->path, norm,
                    o->deflate, (long long)o->chunk_rows);
  if (t->ndim == 0)
    return rn_error(RN_ERR_ARG, "h5 %s: '%s': a 0-dim tensor cannot be chunked or appended to", f->path, norm);
  if (t->shape[0] == 0 && !o->appendable) return RN_OK;  /* nothing to chunk; HDF5 refuses 0-size chunks */
  hsize_t chunk[RN_MAX_DIMS];
  uint64_t row_bytes = rn_dtype_size(t->dtype);
  for (int i = 1; i < t->ndim; i++) {
    chunk[i] = t->shape[i] ? (hsize_t)t->shape[i] : 1;
    row_bytes *= chunk[i];
  }
  int64_t rows = o->chunk_rows;
  if (rows == 0) {  /* ~1 MB, but no more rows than the first write brings (or 64), so small caches stay small */
    rows = row_bytes >= AUTO_CHUNK_BYTES ? 1 : (int64_t)(AUTO_CHUNK_BYTES / row_bytes);
    int64_t cap = t->shape[0] > 64 ? t->shape[0] : 64;
    if (rows > cap) rows = cap;
  }
  if (!o->appendable && rows > t->shape[0]) rows = t->shape[0];
  if ((uint64_t)rows * row_bytes >= (1ull << 32) || row_bytes >= (1ull << 32))
    return rn_error(RN_ERR_UNSUPPORTED, "h5 %s: '%s': a chunk of %lld rows would exceed HDF5's 4 GB chunk limit",
                    f->path, norm, (long long)rows);
  chunk[0] = (hsize_t)rows;
  if (H5Pset_chunk(*dcpl, t->ndim, chunk) < 0)
    return rn_h5__fail(RN_ERR_IO, "h5 %s: '%s': cannot set chunking", f->path, norm);
  if (o->deflate > 0) {
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
      return rn_error(RN_ERR_UNSUPPORTED, "h5 %s: '%s': this libhdf5 has no deflate filter", f->path, norm);
    if (H5Pset_shuffle(*dcpl) < 0 || H5Pset_deflate(*dcpl, (unsigned)o->deflate) < 0)
      return rn_h5__fail(RN_ERR_IO, "h5 %s: '%s': cannot set compression", f->path, norm);
  }
  return RN_OK;
}

/* Removes an existing dataset `norm` so it can be rewritten; refuses to remove a group. */
static rn_status unlink_existing(rn_h5file *f, const char *norm) {
  if (!rn_h5__exists(f->fid, norm)) return RN_OK;
  hid_t o = H5Oopen(f->fid, norm, H5P_DEFAULT);
  if (o < 0) return rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot open existing '%s'", f->path, norm);
  H5I_type_t kind = H5Iget_type(o);
  H5Oclose(o);
  if (kind != H5I_DATASET) return rn_error(RN_ERR_ARG, "h5 %s: '%s' is a group; cannot replace it with a dataset", f->path, norm);
  if (H5Ldelete(f->fid, norm, H5P_DEFAULT) < 0) return rn_h5__fail(RN_ERR_IO, "h5 %s: cannot replace '%s'", f->path, norm);
  return RN_OK;
}

rn_status rn_h5_write_tensor(rn_h5file *f, const char *name, const rn_tensor *t, const rn_h5_write_opts *opts) {
  char norm[RN_H5_NAME_MAX];
  RN_TRY(check_write_args(f, name, t, "write", norm));
  rn_h5__init();
  rn_tensor *c = NULL;
  RN_TRY(host_contig(&c, t));
  hid_t space = -1, dcpl = -1, lcpl = -1, did = -1;
  rn_status st = unlink_existing(f, norm);
  if (st == RN_OK) st = make_dcpl(f, norm, c, opts, &dcpl);
  if (st == RN_OK) {
    hsize_t dims[RN_MAX_DIMS], maxd[RN_MAX_DIMS];
    for (int i = 0; i < c->ndim; i++) dims[i] = maxd[i] = (hsize_t)c->shape[i];
    if (opts && opts->appendable) maxd[0] = H5S_UNLIMITED;
    space = c->ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(c->ndim, dims, maxd);
    lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (space < 0 || lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0)
      st = rn_h5__fail(RN_ERR_IO, "h5 %s: '%s': cannot set up the dataset", f->path, norm);
  }
  if (st == RN_OK) {
    did = H5Dcreate2(f->fid, norm, file_type(c->dtype), space, lcpl, dcpl, H5P_DEFAULT);
    if (did < 0) st = rn_h5__fail(RN_ERR_IO, "h5 %s: cannot create dataset '%s'", f->path, norm);
  }
  if (st == RN_OK && rn_tensor_numel(c) > 0 &&
      H5Dwrite(did, mem_type(c->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, rn_tensor_data(c)) < 0)
    st = rn_h5__fail(RN_ERR_IO, "h5 %s: cannot write dataset '%s'", f->path, norm);
  if (did >= 0) H5Dclose(did);
  if (lcpl >= 0) H5Pclose(lcpl);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  rn_tensor_release(c);
  return st;
}

rn_status rn_h5_append(rn_h5file *f, const char *name, const rn_tensor *t, const rn_h5_write_opts *opts) {
  char norm[RN_H5_NAME_MAX];
  RN_TRY(check_write_args(f, name, t, "append", norm));
  if (t->ndim == 0) return rn_error(RN_ERR_ARG, "h5 %s: append '%s': a 0-dim tensor has no rows", f->path, norm);
  rn_h5__init();
  if (!rn_h5__exists(f->fid, norm)) {
    rn_h5_write_opts o = opts ? *opts : (rn_h5_write_opts){DEFAULT_APPEND_DEFLATE, 0, true};
    o.appendable = true;
    return rn_h5_write_tensor(f, norm, t, &o);
  }
  hid_t did = -1, fspace = -1, mspace = -1;
  RN_TRY(open_dataset(f, norm, &did));
  rn_tensor *c = NULL;
  rn_dtype dt = RN_F32;
  int nd = 0;
  int64_t shape[RN_MAX_DIMS];
  hsize_t maxd[RN_MAX_DIMS];
  char a[96], b[96];
  rn_status st = classify(f, norm, did, &dt);
  if (st == RN_OK) {
    fspace = H5Dget_space(did);
    st = fspace < 0 ? rn_h5__fail(RN_ERR_FORMAT, "h5 %s: '%s': no dataspace", f->path, norm)
                    : space_dims(f, norm, fspace, &nd, shape, maxd);
  }
  if (st == RN_OK && (nd == 0 || maxd[0] != H5S_UNLIMITED))
    st = rn_error(RN_ERR_ARG, "h5 %s: append '%s': the dataset was not written as appendable", f->path, norm);
  if (st == RN_OK) {
    bool fits = nd == t->ndim && dt == t->dtype;
    for (int i = 1; fits && i < nd; i++) fits = shape[i] == t->shape[i];
    if (!fits)
      st = rn_error(RN_ERR_SHAPE, "h5 %s: append '%s': rows %s do not fit the dataset %s", f->path, norm,
                    rn_h5__shape_str(a, sizeof a, t->dtype, t->ndim, t->shape), rn_h5__shape_str(b, sizeof b, dt, nd, shape));
  }
  if (st == RN_OK) st = host_contig(&c, t);
  if (st == RN_OK && c->shape[0] > 0) {
    hsize_t dims[RN_MAX_DIMS], start[RN_MAX_DIMS] = {0}, count[RN_MAX_DIMS];
    for (int i = 0; i < nd; i++) { dims[i] = (hsize_t)shape[i]; count[i] = (hsize_t)c->shape[i]; }
    start[0] = (hsize_t)shape[0];
    dims[0] += count[0];
    H5Sclose(fspace);
    fspace = -1;
    if (H5Dset_extent(did, dims) < 0 || (fspace = H5Dget_space(did)) < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        (mspace = H5Screate_simple(nd, count, NULL)) < 0 ||
        H5Dwrite(did, mem_type(c->dtype), mspace, fspace, H5P_DEFAULT, rn_tensor_data(c)) < 0)
      st = rn_h5__fail(RN_ERR_IO, "h5 %s: cannot append to dataset '%s'", f->path, norm);
  }
  if (mspace >= 0) H5Sclose(mspace);
  if (fspace >= 0) H5Sclose(fspace);
  H5Dclose(did);
  rn_tensor_release(c);
  return st;
}

rn_status rn_h5_info(rn_h5file *f, const char *name, rn_dtype *dtype, int *ndim, int64_t *shape) {
  RN_TRY(rn_h5__check_open(f, "info", false));
  char norm[RN_H5_NAME_MAX];
  RN_TRY(rn_h5__norm_name(f, name, norm, sizeof norm, false));
  rn_h5__init();
  hid_t did;
  RN_TRY(open_dataset(f, norm, &did));
  rn_dtype dt = RN_F32;
  int nd = 0;
  int64_t sh[RN_MAX_DIMS];
  rn_status st = classify(f, norm, did, &dt);
  if (st == RN_OK) {
    hid_t space = H5Dget_space(did);
    st = space < 0 ? rn_h5__fail(RN_ERR_FORMAT, "h5 %s: '%s': no dataspace", f->path, norm)
                   : space_dims(f, norm, space, &nd, sh, NULL);
    if (space >= 0) H5Sclose(space);
  }
  H5Dclose(did);
  if (st != RN_OK) return st;
  if (dtype) *dtype = dt;
  if (ndim) *ndim = nd;
  if (shape) for (int i = 0; i < nd; i++) shape[i] = sh[i];
  return RN_OK;
}

bool rn_h5_has(rn_h5file *f, const char *name) {
  char norm[RN_H5_NAME_MAX];
  if (!f || f->fid < 0 || rn_h5__norm_name(f, name, norm, sizeof norm, false) != RN_OK) return false;
  rn_h5__init();
  if (!rn_h5__exists(f->fid, norm)) return false;
  hid_t o = H5Oopen(f->fid, norm, H5P_DEFAULT);
  if (o < 0) { H5Eclear2(H5E_DEFAULT); return false; }
  bool is = H5Iget_type(o) == H5I_DATASET;
  H5Oclose(o);
  return is;
}

/* Shared by read_tensor (all rows) and read_rows (a dim-0 slab). */
static rn_status read_impl(rn_tensor **out, rn_h5file *f, const char *name, int ndim, const int64_t *want,
                           bool slab, int64_t start, int64_t count) {
  if (!out) return rn_error(RN_ERR_ARG, "h5 read: no output pointer");
  *out = NULL;
  RN_TRY(rn_h5__check_open(f, "read", false));
  char norm[RN_H5_NAME_MAX];
  RN_TRY(rn_h5__norm_name(f, name, norm, sizeof norm, false));
  rn_h5__init();
  hid_t did, fspace = -1, mspace = -1;
  RN_TRY(open_dataset(f, norm, &did));
  rn_dtype dt = RN_F32;
  int nd = 0;
  int64_t sh[RN_MAX_DIMS];
  char a[96], b[96];
  rn_status st = classify(f, norm, did, &dt);
  if (st == RN_OK) {
    fspace = H5Dget_space(did);
    st = fspace < 0 ? rn_h5__fail(RN_ERR_FORMAT, "h5 %s: '%s': no dataspace", f->path, norm)
                    : space_dims(f, norm, fspace, &nd, sh, NULL);
  }
  if (st == RN_OK && ndim >= 0) {
    bool fits = ndim == nd && (want != NULL || nd == 0);
    for (int i = 0; fits && i < nd; i++) fits = want[i] < 0 || want[i] == sh[i];
    if (!fits) {
      int64_t w[RN_MAX_DIMS] = {0};
      for (int i = 0; want && i < ndim && i < RN_MAX_DIMS; i++) w[i] = want[i];
      st = rn_error(RN_ERR_SHAPE, "h5 %s: dataset '%s' has shape %s, expected %s", f->path, norm,
                    rn_h5__shape_str(a, sizeof a, dt, nd, sh),
                    rn_h5__shape_str(b, sizeof b, dt, ndim < RN_MAX_DIMS ? ndim : RN_MAX_DIMS, w));
    }
  }
  if (st == RN_OK && slab) {
    if (nd == 0) st = rn_error(RN_ERR_ARG, "h5 %s: read_rows '%s': a 0-dim dataset has no rows", f->path, norm);
    else if (start < 0 || count < 0 || start > sh[0] || count > sh[0] - start)
      st = rn_error(RN_ERR_ARG, "h5 %s: read_rows '%s': rows [%lld, %lld) are outside [0, %lld)", f->path, norm,
                    (long long)start, (long long)(start + count), (long long)sh[0]);
    else sh[0] = count;
  }
  rn_tensor *t = NULL;
  if (st == RN_OK && (st = rn_tensor_empty(&t, nd, sh, dt, rn_cpu())) != RN_OK) {
    char why[256];
    snprintf(why, sizeof why, "%s", rn_last_error());
    st = rn_error(st, "h5 %s: dataset '%s' of shape %s: %s", f->path, norm, rn_h5__shape_str(a, sizeof a, dt, nd, sh), why);
  }
  if (st == RN_OK && rn_tensor_numel(t) > 0) {
    hid_t ms = H5S_ALL, fs = H5S_ALL;
    if (slab) {
      hsize_t st0[RN_MAX_DIMS] = {0}, cnt[RN_MAX_DIMS];
      for (int i = 0; i < nd; i++) cnt[i] = (hsize_t)sh[i];
      st0[0] = (hsize_t)start;
      if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, st0, NULL, cnt, NULL) < 0 ||
          (mspace = H5Screate_simple(nd, cnt, NULL)) < 0)
        st = rn_h5__fail(RN_ERR_FORMAT, "h5 %s: '%s': cannot select rows", f->path, norm);
      ms = mspace;
      fs = fspace;
    }
    if (st == RN_OK && H5Dread(did, mem_type(dt), ms, fs, H5P_DEFAULT, rn_tensor_data(t)) < 0)
      st = rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot read dataset '%s' (corrupt file?)", f->path, norm);
  }
  if (mspace >= 0) H5Sclose(mspace);
  if (fspace >= 0) H5Sclose(fspace);
  H5Dclose(did);
  if (st != RN_OK) { rn_tensor_release(t); return st; }
  *out = t;
  return RN_OK;
}

rn_status rn_h5_read_tensor(rn_tensor **out, rn_h5file *f, const char *name, int ndim, const int64_t *shape) {
  return read_impl(out, f, name, ndim, shape, false, 0, 0);
}

rn_status rn_h5_read_rows(rn_tensor **out, rn_h5file *f, const char *name, int64_t start, int64_t count) {
  return read_impl(out, f, name, -1, NULL, true, start, count);
}
