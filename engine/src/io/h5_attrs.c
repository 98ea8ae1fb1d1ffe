/* h5_attrs.c - attributes (strings and numbers on the root, groups and datasets) and dataset listing.
 *
 * Strings are written as fixed-length UTF-8 scalars; both fixed and variable-length strings (h5py's default)
 * are read. Numbers are written as float64 scalars; any one-element integer or float attribute reads as one.
 */
#include "h5_internal.h"

/* Opens object `obj` ("/" = root) for attribute access. */
static rn_status open_obj(rn_h5file *f, const char *obj, const char *what, bool write, char *norm, hid_t *oid) {
  RN_TRY(rn_h5__check_open(f, what, write));
  RN_TRY(rn_h5__norm_name(f, obj ? obj : "/", norm, RN_H5_NAME_MAX, true));
  rn_h5__init();
  if (!rn_h5__exists(f->fid, norm)) return rn_error(RN_ERR_ARG, "h5 %s: %s: no object '%s'", f->path, what, norm);
  *oid = H5Oopen(f->fid, norm, H5P_DEFAULT);
  if (*oid < 0) return rn_h5__fail(RN_ERR_FORMAT, "h5 %s: %s: cannot open '%s'", f->path, what, norm);
  return RN_OK;
}

static rn_status check_key(const rn_h5file *f, const char *key) {
  if (!key || !*key) return rn_error(RN_ERR_ARG, "h5 %s: empty attribute name", f ? f->path : "");
  return RN_OK;
}

/* Creates attribute key on oid with type/space, replacing an old one, and writes buf. */
static rn_status put_attr(rn_h5file *f, hid_t oid, const char *norm, const char *key, hid_t ftype, hid_t mtype,
                          const void *buf) {
  rn_status st = RN_OK;
  if (H5Aexists(oid, key) > 0 && H5Adelete(oid, key) < 0) return rn_h5__fail(RN_ERR_IO, "h5 %s: cannot replace attribute '%s' of '%s'", f->path, key, norm);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t aid = space < 0 ? -1 : H5Acreate2(oid, key, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
  if (aid < 0 || H5Awrite(aid, mtype, buf) < 0)
    st = rn_h5__fail(RN_ERR_IO, "h5 %s: cannot write attribute '%s' of '%s'", f->path, key, norm);
  if (aid >= 0) H5Aclose(aid);
  if (space >= 0) H5Sclose(space);
  return st;
}

rn_status rn_h5_set_attr_str(rn_h5file *f, const char *obj, const char *key, const char *value) {
  char norm[RN_H5_NAME_MAX];
  hid_t oid = -1;
  RN_TRY(check_key(f, key));
  if (!value) return rn_error(RN_ERR_ARG, "h5 %s: attribute '%s': no value", f ? f->path : "", key);
  RN_TRY(open_obj(f, obj, "set attribute", true, norm, &oid));
  hid_t t = H5Tcopy(H5T_C_S1);
  rn_status st;
  if (t < 0 || H5Tset_size(t, strlen(value) ? strlen(value) : 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0 ||
      H5Tset_cset(t, H5T_CSET_UTF8) < 0)
    st = rn_h5__fail(RN_ERR_IO, "h5 %s: attribute '%s': cannot make a string type", f->path, key);
  else
    st = put_attr(f, oid, norm, key, t, t, strlen(value) ? value : "");
  if (t >= 0) H5Tclose(t);
  H5Oclose(oid);
  return st;
}

rn_status rn_h5_set_attr_num(rn_h5file *f, const char *obj, const char *key, double value) {
  char norm[RN_H5_NAME_MAX];
  hid_t oid = -1;
  RN_TRY(check_key(f, key));
  RN_TRY(open_obj(f, obj, "set attribute", true, norm, &oid));
  rn_status st = put_attr(f, oid, norm, key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
  H5Oclose(oid);
  return st;
}

/* Opens attribute key of obj; *aid < 0 (and RN_OK) when it does not exist. */
static rn_status open_attr(rn_h5file *f, const char *obj, const char *key, char *norm, hid_t *oid, hid_t *aid) {
  *aid = -1;
  RN_TRY(check_key(f, key));
  RN_TRY(open_obj(f, obj, "attribute", false, norm, oid));
  htri_t ex = H5Aexists(*oid, key);
  if (ex < 0) {
    rn_status st = rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot look up attribute '%s' of '%s'", f->path, key, norm);
    H5Oclose(*oid);
    return st;
  }
  if (ex == 0) return RN_OK;
  *aid = H5Aopen(*oid, key, H5P_DEFAULT);
  if (*aid < 0) {
    rn_status st = rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot open attribute '%s' of '%s'", f->path, key, norm);
    H5Oclose(*oid);
    return st;
  }
  return RN_OK;
}

static rn_h5_attr_kind kind_of(hid_t aid) {
  hid_t t = H5Aget_type(aid), s = H5Aget_space(aid);
  H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (n != 1) return RN_H5_ATTR_NONE;
  if (c == H5T_STRING) return RN_H5_ATTR_STRING;
  if (c == H5T_INTEGER || c == H5T_FLOAT) return RN_H5_ATTR_NUMBER;
  return RN_H5_ATTR_NONE;
}

rn_status rn_h5_attr_type(rn_h5file *f, const char *obj, const char *key, rn_h5_attr_kind *type) {
  char norm[RN_H5_NAME_MAX];
  hid_t oid = -1, aid = -1;
  if (!type) return rn_error(RN_ERR_ARG, "h5 attr_type: no output pointer");
  *type = RN_H5_ATTR_NONE;
  RN_TRY(open_attr(f, obj, key, norm, &oid, &aid));
  if (aid >= 0) { *type = kind_of(aid); H5Aclose(aid); }
  H5Oclose(oid);
  H5Eclear2(H5E_DEFAULT);
  return RN_OK;
}

rn_status rn_h5_get_attr_num(rn_h5file *f, const char *obj, const char *key, double *value) {
  char norm[RN_H5_NAME_MAX];
  hid_t oid = -1, aid = -1;
  if (!value) return rn_error(RN_ERR_ARG, "h5 get_attr_num: no output pointer");
  RN_TRY(open_attr(f, obj, key, norm, &oid, &aid));
  rn_status st = RN_OK;
  if (aid < 0) st = rn_error(RN_ERR_ARG, "h5 %s: '%s' has no attribute '%s'", f->path, norm, key);
  else if (kind_of(aid) != RN_H5_ATTR_NUMBER)
    st = rn_error(RN_ERR_ARG, "h5 %s: attribute '%s' of '%s' is not a number", f->path, key, norm);
  else if (H5Aread(aid, H5T_NATIVE_DOUBLE, value) < 0)
    st = rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot read attribute '%s' of '%s'", f->path, key, norm);
  if (aid >= 0) H5Aclose(aid);
  H5Oclose(oid);
  return st;
}

rn_status rn_h5_get_attr_str(rn_h5file *f, const char *obj, const char *key, char **value) {
  char norm[RN_H5_NAME_MAX];
  hid_t oid = -1, aid = -1;
  if (!value) return rn_error(RN_ERR_ARG, "h5 get_attr_str: no output pointer");
  *value = NULL;
  RN_TRY(open_attr(f, obj, key, norm, &oid, &aid));
  rn_status st = RN_OK;
  hid_t ftype = -1, mtype = -1;
  if (aid < 0) st = rn_error(RN_ERR_ARG, "h5 %s: '%s' has no attribute '%s'", f->path, norm, key);
  else if (kind_of(aid) != RN_H5_ATTR_STRING)
    st = rn_error(RN_ERR_ARG, "h5 %s: attribute '%s' of '%s' is not a string", f->path, key, norm);
  else if ((ftype = H5Aget_type(aid)) < 0 || (mtype = H5Tcopy(H5T_C_S1)) < 0)
    st = rn_h5__fail(RN_ERR_FORMAT, "h5 %s: attribute '%s' of '%s': unreadable type", f->path, key, norm);
  if (st == RN_OK && H5Tis_variable_str(ftype) > 0) {
    char *vs = NULL;
    if (H5Tset_size(mtype, H5T_VARIABLE) < 0 || H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0 || H5Aread(aid, mtype, &vs) < 0)
      st = rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot read attribute '%s' of '%s'", f->path, key, norm);
    else if (!(*value = strdup(vs ? vs : "")))
      st = rn_error(RN_ERR_OOM, "h5 %s: out of memory", f->path);
    if (vs) H5free_memory(vs);
  } else if (st == RN_OK) {
    size_t n = H5Tget_size(ftype);
    char *buf = n < ((size_t)1 << 30) ? calloc(n + 1, 1) : NULL;
    if (!buf) st = rn_error(RN_ERR_OOM, "h5 %s: attribute '%s' of '%s': cannot hold %zu bytes", f->path, key, norm, n);
    else if (H5Tset_size(mtype, n) < 0 || H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0 ||
             H5Tset_strpad(mtype, H5Tget_strpad(ftype)) < 0 || H5Aread(aid, mtype, buf) < 0)
      st = rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot read attribute '%s' of '%s'", f->path, key, norm);
    if (st == RN_OK) *value = buf; else free(buf);
  }
  if (mtype >= 0) H5Tclose(mtype);
  if (ftype >= 0) H5Tclose(ftype);
  if (aid >= 0) H5Aclose(aid);
  H5Oclose(oid);
  return st;
}

static herr_t attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
  return rn_strlist_push(data, name) == RN_OK ? 0 : -1;
}

rn_status rn_h5_list_attrs(rn_h5file *f, const char *obj, char ***names, int *count) {
  char norm[RN_H5_NAME_MAX];
  hid_t oid = -1;
  if (!names || !count) return rn_error(RN_ERR_ARG, "h5 list_attrs: no output pointer");
  *names = NULL;
  *count = 0;
  RN_TRY(open_obj(f, obj, "list attributes", false, norm, &oid));
  rn_strlist l = {0};
  hsize_t idx = 0;
  herr_t r = H5Aiterate2(oid, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_cb, &l);
  rn_status st = r < 0 ? rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot list attributes of '%s'", f->path, norm) : RN_OK;
  H5Oclose(oid);
  if (st != RN_OK) { rn_h5_names_free(l.v, l.n); return st; }
  rn_strlist_sort(&l);
  *names = l.v;
  *count = l.n;
  return RN_OK;
}

/* ------------------------------------------------------------------ dataset listing */

typedef struct { rn_strlist l; hid_t fid; rn_status st; } visit_ctx;

#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t link_info;
#else
typedef H5L_info_t link_info;
#endif

static herr_t visit_cb(hid_t g, const char *name, const link_info *info, void *data) {
  visit_ctx *c = data;
  if (info->type != H5L_TYPE_HARD) return 0;  /* soft/external links would list a dataset twice or leave the file */
  hid_t o = H5Oopen(g, name, H5P_DEFAULT);
  if (o < 0) return 0;
  bool ds = H5Iget_type(o) == H5I_DATASET;
  H5Oclose(o);
  if (!ds) return 0;
  size_t n = strlen(name);
  char *full = malloc(n + 2);
  if (!full) { c->st = rn_error(RN_ERR_OOM, "out of memory listing datasets"); return -1; }
  full[0] = '/';
  memcpy(full + 1, name, n + 1);
  c->st = rn_strlist_push(&c->l, full);
  free(full);
  return c->st == RN_OK ? 0 : -1;
}

rn_status rn_h5_list(rn_h5file *f, char ***names, int *count) {
  if (!names || !count) return rn_error(RN_ERR_ARG, "h5 list: no output pointer");
  *names = NULL;
  *count = 0;
  RN_TRY(rn_h5__check_open(f, "list", false));
  rn_h5__init();
  visit_ctx c = {{0}, f->fid, RN_OK};
  herr_t r = H5Lvisit(f->fid, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &c);
  if (r < 0 || c.st != RN_OK) {
    rn_h5_names_free(c.l.v, c.l.n);
    return c.st != RN_OK ? c.st : rn_h5__fail(RN_ERR_FORMAT, "h5 %s: cannot list datasets (corrupt file?)", f->path);
  }
  H5Eclear2(H5E_DEFAULT);
  rn_strlist_sort(&c.l);
  *names = c.l.v;
  *count = c.l.n;
  return RN_OK;
}
