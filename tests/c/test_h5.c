/* test_h5.c - the HDF5 store: dtype round trips, attributes, listing, shape checks, load sets, atomic saves,
 * appendable compressed feature caches, and corrupt or foreign files. Works in a fresh temporary directory. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "realnet/h5.h"
#include "testutil.h"

static char dir[256];

static const char *tmp(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static int count_dir_entries(void) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static bool same_values(const rn_tensor *a, const rn_tensor *b) {
  if (!a || !b || a->dtype != b->dtype || a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++) if (a->shape[i] != b->shape[i]) return false;
  rn_tensor *ca = NULL, *cb = NULL;
  rn_clone(&ca, a);
  rn_clone(&cb, b);
  bool eq = ca && cb && memcmp(rn_tensor_data(ca), rn_tensor_data(cb), (size_t)rn_tensor_numel(a) * rn_dtype_size(a->dtype)) == 0;
  rn_tensor_release(ca);
  rn_tensor_release(cb);
  return eq;
}

static rn_tensor *filled(int ndim, const int64_t *shape, rn_dtype dt, int seed) {
  rn_tensor *t = NULL;
  rn_tensor_empty(&t, ndim, shape, dt, rn_cpu());
  int64_t n = rn_tensor_numel(t);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = (i * 37 + seed * 11) % 251 - 100;
    switch (dt) {
      case RN_F32: rn_f32(t)[i] = (float)v * 0.125f; break;
      case RN_U8: ((uint8_t *)rn_tensor_data(t))[i] = (uint8_t)(v + 100); break;
      case RN_I32: ((int32_t *)rn_tensor_data(t))[i] = (int32_t)(v * 1000003); break;
      case RN_I64: ((int64_t *)rn_tensor_data(t))[i] = v * (INT64_C(1) << 40); break;
      default: break;
    }
  }
  return t;
}

/* every dtype, rank 0..5, zero-size, strided views and nested names */
static void test_roundtrip(void) {
  static const int64_t s3[] = {2, 3, 4}, s1[] = {7}, s2[] = {3, 2}, s5[] = {2, 1, 3, 1, 2}, s0[] = {0, 3};
  struct { const char *name; int ndim; const int64_t *shape; rn_dtype dt; } cases[] = {
    {"/model/recon/1/in_conv/weight", 3, s3, RN_F32}, {"model/recon/1/in_conv/bias", 1, s1, RN_F32},
    {"u8/img", 1, s1, RN_U8}, {"ints/i32", 2, s2, RN_I32}, {"ints/i64", 2, s2, RN_I64}, {"five", 5, s5, RN_F32},
    {"empty", 2, s0, RN_F32}, {"scalar", 0, NULL, RN_I64},
  };
  enum { N = sizeof cases / sizeof cases[0] };
  rn_tensor *ts[N];
  rn_h5file *f = NULL;
  CHECK_OK(rn_h5_create(&f, tmp("rt.h5")));
  for (int i = 0; i < N; i++) {
    ts[i] = filled(cases[i].ndim, cases[i].shape, cases[i].dt, i);
    CHECK_OK(rn_h5_write_tensor(f, cases[i].name, ts[i], NULL));
  }
  /* a transposed (non-contiguous) view is stored in its logical order */
  rn_tensor *tr = NULL, *trc = NULL;
  CHECK_OK(rn_transpose(&tr, ts[3], 0, 1));
  CHECK_OK(rn_h5_write_tensor(f, "ints/i32_t", tr, NULL));
  CHECK_OK(rn_clone(&trc, tr));
  /* rewriting a name replaces it */
  CHECK_OK(rn_h5_write_tensor(f, "u8/img", ts[2], NULL));
  CHECK(access(tmp("rt.h5"), F_OK) != 0);  /* nothing at the target before commit */
  CHECK_OK(rn_h5_commit(f));
  CHECK_ERR(rn_h5_write_tensor(f, "late", ts[0], NULL), RN_ERR_ARG, "closed");
  rn_h5_close(f);
  CHECK(count_dir_entries() == 1);  /* no temporary left over */

  CHECK_OK(rn_h5_open(&f, tmp("rt.h5")));
  for (int i = 0; i < N; i++) {
    rn_tensor *r = NULL;
    CHECK_OK(rn_h5_read_tensor(&r, f, cases[i].name, cases[i].ndim, cases[i].shape));
    if (!CHECK(same_values(r, ts[i]))) fprintf(stderr, "  round trip of %s\n", cases[i].name);
    rn_tensor_release(r);
    rn_dtype dt;
    int nd;
    int64_t sh[RN_MAX_DIMS];
    CHECK_OK(rn_h5_info(f, cases[i].name, &dt, &nd, sh));
    CHECK(dt == cases[i].dt && nd == cases[i].ndim);
  }
  rn_tensor *r = NULL;
  CHECK_OK(rn_h5_read_tensor(&r, f, "/ints/i32_t", -1, NULL));
  CHECK(same_values(r, trc));
  rn_tensor_release(r);
  CHECK(rn_h5_has(f, "model/recon/1/in_conv/weight") && !rn_h5_has(f, "model/recon") && !rn_h5_has(f, "nope/x"));

  char **names = NULL;
  int n = 0;
  CHECK_OK(rn_h5_list(f, &names, &n));
  CHECK(n == N + 1);
  const char *want[] = {"/empty", "/five", "/ints/i32", "/ints/i32_t", "/ints/i64", "/model/recon/1/in_conv/bias",
                        "/model/recon/1/in_conv/weight", "/scalar", "/u8/img"};
  for (int i = 0; i < n && i < N + 1; i++)
    if (!CHECK(strcmp(names[i], want[i]) == 0)) fprintf(stderr, "  list[%d] = %s\n", i, names[i]);
  rn_h5_names_free(names, n);

  /* read-only: writes refused */
  CHECK_ERR(rn_h5_write_tensor(f, "x", ts[0], NULL), RN_ERR_ARG, "read-only");
  CHECK_ERR(rn_h5_commit(f), RN_ERR_ARG, "read-only");
  rn_h5_close(f);
  for (int i = 0; i < N; i++) rn_tensor_release(ts[i]);
  rn_tensor_release(tr);
  rn_tensor_release(trc);
}

static void test_shapes_and_names(void) {
  rn_h5file *f = NULL;
  CHECK_OK(rn_h5_open(&f, tmp("rt.h5")));
  rn_tensor *r = NULL;
  int64_t good[] = {2, 3, 4}, wrong[] = {2, 4, 3}, wild[] = {-1, 3, -1};
  CHECK_OK(rn_h5_read_tensor(&r, f, "model/recon/1/in_conv/weight", 3, wild));
  rn_tensor_release(r);
  CHECK_ERR(rn_h5_read_tensor(&r, f, "model/recon/1/in_conv/weight", 3, wrong), RN_ERR_SHAPE,
            "'/model/recon/1/in_conv/weight' has shape float32[2,3,4], expected float32[2,4,3]");
  CHECK(r == NULL);
  CHECK_ERR(rn_h5_read_tensor(&r, f, "model/recon/1/in_conv/weight", 2, good), RN_ERR_SHAPE, "expected float32[2,3]");
  CHECK_ERR(rn_h5_read_tensor(&r, f, "model/recon/1/in_conv/missing", -1, NULL), RN_ERR_ARG, "no dataset '/model/recon/1/in_conv/missing'");
  CHECK_ERR(rn_h5_read_tensor(&r, f, "model/recon", -1, NULL), RN_ERR_ARG, "is a group");
  CHECK_ERR(rn_h5_read_tensor(&r, f, "a/../b", -1, NULL), RN_ERR_ARG, "'..'");
  CHECK_ERR(rn_h5_read_tensor(&r, f, "a//b", -1, NULL), RN_ERR_ARG, "empty path component");
  CHECK_ERR(rn_h5_read_tensor(&r, f, "/", -1, NULL), RN_ERR_ARG, "empty dataset name");
  CHECK_ERR(rn_h5_read_tensor(&r, f, NULL, -1, NULL), RN_ERR_ARG, NULL);
  CHECK_ERR(rn_h5_read_rows(&r, f, "five", 1, 5), RN_ERR_ARG, "outside");
  CHECK_ERR(rn_h5_read_rows(&r, f, "scalar", 0, 1), RN_ERR_ARG, "0-dim");
  CHECK_ERR(rn_h5_read_tensor(&r, NULL, "x", -1, NULL), RN_ERR_ARG, NULL);
  rn_h5_close(f);
}

static void test_attrs(void) {
  rn_h5file *f = NULL;
  CHECK_OK(rn_h5_create(&f, tmp("attrs.h5")));
  rn_tensor *t = filled(1, (int64_t[]){4}, RN_F32, 1);
  CHECK_OK(rn_h5_write_tensor(f, "net/w", t, NULL));
  CHECK_OK(rn_h5_set_attr_str(f, "/", "provenance", "recipe quickstart, seed 7, \xc3\xa9"));
  CHECK_OK(rn_h5_set_attr_num(f, "/", "epoch", 12));
  CHECK_OK(rn_h5_set_attr_str(f, "net/w", "init", "kaiming"));
  CHECK_OK(rn_h5_set_attr_num(f, "/net/w", "lr", 1e-4));
  CHECK_OK(rn_h5_set_attr_num(f, "/net/w", "lr", 2e-4));  /* replaced */
  CHECK_OK(rn_h5_set_attr_str(f, "net", "kind", ""));     /* on a group; empty string */
  CHECK_ERR(rn_h5_set_attr_str(f, "no/such", "k", "v"), RN_ERR_ARG, "no object '/no/such'");
  CHECK_ERR(rn_h5_set_attr_str(f, "/", "", "v"), RN_ERR_ARG, "empty attribute");
  CHECK_OK(rn_h5_commit(f));
  rn_h5_close(f);
  rn_tensor_release(t);

  CHECK_OK(rn_h5_open(&f, tmp("attrs.h5")));
  char *s = NULL;
  double v = 0;
  CHECK_OK(rn_h5_get_attr_str(f, "/", "provenance", &s));
  CHECK(s && strcmp(s, "recipe quickstart, seed 7, \xc3\xa9") == 0);
  free(s);
  CHECK_OK(rn_h5_get_attr_str(f, "/", "writer", &s));
  CHECK(s && strncmp(s, "realnet ", 8) == 0);
  free(s);
  CHECK_OK(rn_h5_get_attr_num(f, "/", "format_version", &v));
  CHECK(v == RN_H5_FORMAT_VERSION);
  CHECK_OK(rn_h5_get_attr_num(f, "", "epoch", &v));
  CHECK(v == 12);
  CHECK_OK(rn_h5_get_attr_num(f, "net/w", "lr", &v));
  CHECK(v == 2e-4);
  CHECK_OK(rn_h5_get_attr_str(f, "net/w", "init", &s));
  CHECK(s && strcmp(s, "kaiming") == 0);
  free(s);
  CHECK_OK(rn_h5_get_attr_str(f, "net", "kind", &s));
  CHECK(s && strcmp(s, "") == 0);
  free(s);
  rn_h5_attr_kind k;
  CHECK_OK(rn_h5_attr_type(f, "/", "epoch", &k));
  CHECK(k == RN_H5_ATTR_NUMBER);
  CHECK_OK(rn_h5_attr_type(f, "/", "provenance", &k));
  CHECK(k == RN_H5_ATTR_STRING);
  CHECK_OK(rn_h5_attr_type(f, "/", "absent", &k));
  CHECK(k == RN_H5_ATTR_NONE);
  CHECK_ERR(rn_h5_get_attr_num(f, "/", "provenance", &v), RN_ERR_ARG, "not a number");
  CHECK_ERR(rn_h5_get_attr_str(f, "/", "epoch", &s), RN_ERR_ARG, "not a string");
  CHECK_ERR(rn_h5_get_attr_str(f, "/", "absent", &s), RN_ERR_ARG, "no attribute 'absent'");
  CHECK(s == NULL);
  char **names = NULL;
  int n = 0;
  CHECK_OK(rn_h5_list_attrs(f, "/", &names, &n));
  CHECK(n == 4 && strcmp(names[0], "epoch") == 0 && strcmp(names[1], "format_version") == 0 &&
        strcmp(names[2], "provenance") == 0 && strcmp(names[3], "writer") == 0);
  rn_h5_names_free(names, n);
  CHECK_ERR(rn_h5_set_attr_num(f, "/", "x", 1), RN_ERR_ARG, "read-only");
  rn_h5_close(f);

  /* a file from a newer writer is refused */
  CHECK_OK(rn_h5_create(&f, tmp("future.h5")));
  CHECK_OK(rn_h5_set_attr_num(f, "/", "format_version", RN_H5_FORMAT_VERSION + 1));
  CHECK_OK(rn_h5_commit(f));
  rn_h5_close(f);
  CHECK_ERR(rn_h5_open(&f, tmp("future.h5")), RN_ERR_UNSUPPORTED, "format_version 2");
  CHECK(f == NULL);
  unlink(tmp("future.h5"));
}

static void test_atomic(void) {
  const char *p = tmp("model.h5");
  rn_tensor *a = filled(2, (int64_t[]){3, 3}, RN_F32, 1), *b = filled(2, (int64_t[]){3, 3}, RN_F32, 2), *r = NULL;
  const char *names[] = {"w", "extra/b"};
  const rn_tensor *v1[] = {a, a};
  CHECK_OK(rn_h5_save(p, "/model", 2, names, v1));
  int before = count_dir_entries();

  /* abandoned create: close without commit */
  rn_h5file *f = NULL;
  CHECK_OK(rn_h5_create(&f, p));
  CHECK_OK(rn_h5_write_tensor(f, "model/w", b, NULL));
  CHECK(count_dir_entries() == before + 1);  /* the temporary exists next to the target */
  rn_h5_close(f);
  CHECK(count_dir_entries() == before);

  /* a save that fails half way (second tensor missing) leaves the old file */
  const rn_tensor *v2[] = {b, NULL};
  CHECK_ERR(rn_h5_save(p, "/model", 2, names, v2), RN_ERR_ARG, "no tensor");
  const char *badnames[] = {"w", "x/../y"};
  const rn_tensor *v3[] = {b, b};
  CHECK_ERR(rn_h5_save(p, "/model", 2, badnames, v3), RN_ERR_ARG, "'..'");
  CHECK(count_dir_entries() == before);
  CHECK_OK(rn_h5_open(&f, p));
  CHECK_OK(rn_h5_read_tensor(&r, f, "model/w", 2, (int64_t[]){3, 3}));
  CHECK(same_values(r, a));
  rn_tensor_release(r);
  rn_h5_close(f);

  /* a successful save replaces the content */
  const rn_tensor *v4[] = {b, b};
  CHECK_OK(rn_h5_save(p, "/model", 2, names, v4));
  CHECK_OK(rn_h5_open(&f, p));
  CHECK_OK(rn_h5_read_tensor(&r, f, "model/w", 2, (int64_t[]){3, 3}));
  CHECK(same_values(r, b));
  rn_tensor_release(r);
  rn_h5_close(f);

  /* a commit that cannot rename cleans up and reports the target */
  mkdir(tmp("adir"), 0755);
  CHECK_ERR(rn_h5_create(&f, tmp("adir")), RN_ERR_IO, "is a directory");
  CHECK_ERR(rn_h5_create(&f, tmp("no/such/dir/x.h5")), RN_ERR_IO, "no/such/dir");
  rmdir(tmp("adir"));
  /* the target turns into a directory before commit: rename fails, the temporary is removed */
  CHECK_OK(rn_h5_create(&f, tmp("late.h5")));
  CHECK_OK(rn_h5_write_tensor(f, "w", a, NULL));
  mkdir(tmp("late.h5"), 0755);
  CHECK_ERR(rn_h5_commit(f), RN_ERR_IO, "cannot rename");
  CHECK(strstr(rn_last_error(), "late.h5") != NULL);
  rn_h5_close(f);
  rmdir(tmp("late.h5"));
  CHECK(count_dir_entries() == before);
  CHECK_ERR(rn_h5_save(p, NULL, 1, NULL, NULL), RN_ERR_ARG, "bad tensor list");
  rn_tensor_release(a);
  rn_tensor_release(b);
}

static void test_load_set(void) {
  const char *p = tmp("model.h5");  /* from test_atomic: /model/w [3,3], /model/extra/b [3,3] */
  rn_h5file *f = NULL;
  CHECK_OK(rn_h5_open(&f, p));
  rn_h5_expect ok[] = {{"w", RN_F32, 2, {3, 3}}, {"extra/b", RN_F32, 2, {3, -1}}};
  rn_tensor *out[3] = {0};
  CHECK_OK(rn_h5_check_set(f, "/model", 2, ok, false));
  CHECK_OK(rn_h5_load_set(f, "model/", 2, ok, false, out));
  CHECK(out[0] && out[1] && out[0]->shape[0] == 3);
  rn_tensor_release(out[0]);
  rn_tensor_release(out[1]);

  /* one missing, one extra, one mis-shaped: all in one message */
  rn_h5_expect bad[] = {{"w", RN_F32, 2, {3, 4}}, {"gone/weight", RN_F32, 1, {3}}};
  CHECK_ERR(rn_h5_check_set(f, "/model", 2, bad, false), RN_ERR_FORMAT, "1 missing: gone/weight");
  CHECK(strstr(rn_last_error(), "1 extra: extra/b") && strstr(rn_last_error(), "1 mis-shaped: w (file float32[3,3], model float32[3,4])"));
  CHECK(strstr(rn_last_error(), p) != NULL);
  CHECK_ERR(rn_h5_load_set(f, "/model", 2, bad, false, out), RN_ERR_FORMAT, "missing");
  CHECK(out[0] == NULL && out[1] == NULL);
  /* only shapes wrong -> a shape error; extras allowed */
  rn_h5_expect shape_only[] = {{"w", RN_I64, 2, {3, 3}}};
  CHECK_ERR(rn_h5_check_set(f, "/model", 1, shape_only, true), RN_ERR_SHAPE, "w (file float32[3,3], model int64[3,3])");
  CHECK_ERR(rn_h5_check_set(f, "/model", 1, ok, false), RN_ERR_FORMAT, "1 extra: extra/b");
  CHECK_OK(rn_h5_check_set(f, "/model", 1, ok, true));
  /* a prefix that does not exist: everything missing */
  CHECK_ERR(rn_h5_check_set(f, "/other", 2, ok, false), RN_ERR_FORMAT, "2 missing: w, extra/b");
  /* whole file as the root prefix */
  rn_h5_expect root[] = {{"model/w", RN_F32, 2, {3, 3}}, {"model/extra/b", RN_F32, 2, {3, 3}}};
  CHECK_OK(rn_h5_check_set(f, NULL, 2, root, false));
  rn_h5_expect twice[] = {{"w", RN_F32, 2, {3, 3}}, {"/w", RN_F32, 2, {3, 3}}};
  CHECK_ERR(rn_h5_check_set(f, "/model", 2, twice, true), RN_ERR_ARG, "twice");

  /* many missing names are summarised */
  rn_h5_expect many[80];
  char nm[80][24];
  for (int i = 0; i < 80; i++) {
    snprintf(nm[i], sizeof nm[i], "layer%02d/weight", i);
    many[i] = (rn_h5_expect){nm[i], RN_F32, 1, {1}};
  }
  CHECK_ERR(rn_h5_check_set(f, "/model", 80, many, true), RN_ERR_FORMAT, "80 missing: layer00/weight");
  CHECK(strstr(rn_last_error(), "more") != NULL);
  rn_h5_close(f);
}

static void test_feature_cache(void) {
  const char *p = tmp("cache.h5");
  rn_h5file *f = NULL;
  CHECK_OK(rn_h5_create(&f, p));
  int64_t sh[] = {4, 8, 16, 16};
  rn_tensor *batch[3];
  for (int i = 0; i < 3; i++) {
    batch[i] = filled(4, sh, RN_F32, i);
    CHECK_OK(rn_h5_append(f, "features/layer2", batch[i], NULL));
  }
  rn_h5_write_opts z = {6, 0, false};
  rn_tensor *zeros = NULL;
  CHECK_OK(rn_tensor_zeros(&zeros, 2, (int64_t[]){256, 1024}, RN_F32, rn_cpu()));
  CHECK_OK(rn_h5_write_tensor(f, "zeros", zeros, &z));
  rn_h5_write_opts chunk_only = {0, 3, false};
  CHECK_OK(rn_h5_write_tensor(f, "chunked", batch[0], &chunk_only));
  rn_h5_write_opts bad_level = {12, 0, false};
  CHECK_ERR(rn_h5_write_tensor(f, "bad", batch[0], &bad_level), RN_ERR_ARG, "deflate");
  rn_tensor *sc = NULL;
  CHECK_OK(rn_tensor_scalar(&sc, 1, RN_F32, rn_cpu()));
  CHECK_ERR(rn_h5_append(f, "features/layer2", sc, NULL), RN_ERR_ARG, "0-dim");
  rn_tensor *other = filled(4, (int64_t[]){2, 8, 16, 15}, RN_F32, 0);
  CHECK_ERR(rn_h5_append(f, "features/layer2", other, NULL), RN_ERR_SHAPE, "float32[2,8,16,15] do not fit the dataset float32[12,8,16,16]");
  CHECK_ERR(rn_h5_append(f, "chunked", batch[0], NULL), RN_ERR_ARG, "not written as appendable");
  /* an appendable dataset may start empty */
  rn_tensor *none = NULL, *row = filled(2, (int64_t[]){1, 5}, RN_I32, 4);
  CHECK_OK(rn_tensor_empty(&none, 2, (int64_t[]){0, 5}, RN_I32, rn_cpu()));
  rn_h5_write_opts app = {0, 0, true};
  CHECK_OK(rn_h5_write_tensor(f, "ids", none, &app));
  CHECK_OK(rn_h5_append(f, "ids", none, NULL));
  CHECK_OK(rn_h5_append(f, "ids", row, NULL));
  CHECK_OK(rn_h5_append(f, "ids", row, NULL));
  CHECK_OK(rn_h5_commit(f));
  rn_h5_close(f);

  struct stat sb;
  CHECK(stat(p, &sb) == 0);
  double raw = 256.0 * 1024 * 4 + 12.0 * 8 * 16 * 16 * 4 * 2;
  printf("feature cache file: %lld bytes for %.0f raw bytes\n", (long long)sb.st_size, raw);
  CHECK((double)sb.st_size < raw * 0.75);  /* the deflated zeros shrink to almost nothing */

  CHECK_OK(rn_h5_open_rw(&f, p));  /* another run appends in place */
  CHECK_OK(rn_h5_append(f, "features/layer2", batch[0], NULL));
  rn_h5_close(f);

  CHECK_OK(rn_h5_open(&f, p));
  rn_dtype dt;
  int nd;
  int64_t got[RN_MAX_DIMS];
  CHECK_OK(rn_h5_info(f, "features/layer2", &dt, &nd, got));
  CHECK(nd == 4 && got[0] == 16 && got[1] == 8);
  for (int i = 0; i < 4; i++) {
    rn_tensor *r = NULL;
    CHECK_OK(rn_h5_read_rows(&r, f, "features/layer2", 4 * i, 4));
    CHECK(same_values(r, batch[i % 3]));
    rn_tensor_release(r);
  }
  rn_tensor *r = NULL, *part = NULL;
  CHECK_OK(rn_h5_read_rows(&r, f, "features/layer2", 5, 2));
  CHECK_OK(rn_narrow(&part, batch[1], 0, 1, 2));
  CHECK(same_values(r, part));
  rn_tensor_release(r);
  rn_tensor_release(part);
  CHECK_OK(rn_h5_read_rows(&r, f, "features/layer2", 16, 0));
  CHECK(r && r->shape[0] == 0);
  rn_tensor_release(r);
  CHECK_OK(rn_h5_read_tensor(&r, f, "zeros", 2, (int64_t[]){256, 1024}));
  CHECK(same_values(r, zeros));
  rn_tensor_release(r);
  CHECK_OK(rn_h5_read_tensor(&r, f, "ids", 2, (int64_t[]){2, 5}));
  CHECK_OK(rn_narrow(&part, r, 0, 1, 1));
  CHECK(same_values(part, row));
  rn_tensor_release(part);
  rn_tensor_release(r);
  rn_tensor_release(none);
  rn_tensor_release(row);
  CHECK_OK(rn_h5_read_tensor(&r, f, "chunked", -1, NULL));
  CHECK(same_values(r, batch[0]));
  rn_tensor_release(r);
  rn_h5_close(f);
  for (int i = 0; i < 3; i++) rn_tensor_release(batch[i]);
  rn_tensor_release(zeros);
  rn_tensor_release(sc);
  rn_tensor_release(other);
}

static void write_bytes(const char *p, const void *b, size_t n) {
  FILE *f = fopen(p, "wb");
  if (f) { fwrite(b, 1, n, f); fclose(f); }
}

static void test_bad_files(void) {
  rn_h5file *f = (rn_h5file *)1;
  CHECK_ERR(rn_h5_open(&f, tmp("absent.h5")), RN_ERR_IO, "absent.h5");
  CHECK(f == NULL);
  const char text[] = "this is a text file named .h5\n";
  write_bytes(tmp("text.h5"), text, sizeof text);
  CHECK_ERR(rn_h5_open(&f, tmp("text.h5")), RN_ERR_FORMAT, "not an HDF5 file");
  write_bytes(tmp("empty.h5"), "", 0);
  CHECK_ERR(rn_h5_open(&f, tmp("empty.h5")), RN_ERR_FORMAT, "empty.h5");
  CHECK_ERR(rn_h5_open(&f, dir), RN_ERR_IO, "directory");
  CHECK_ERR(rn_h5_open(&f, NULL), RN_ERR_ARG, NULL);

  /* truncated copies of a real file: every cut either fails cleanly or (past the data) still reads */
  FILE *src = fopen(tmp("rt.h5"), "rb");
  CHECK(src != NULL);
  if (!src) return;
  static unsigned char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, src);
  fclose(src);
  int failures = 0, cuts = 0;
  for (size_t cut = 0; cut < n; cut += n / 23 + 1, cuts++) {
    write_bytes(tmp("cut.h5"), buf, cut);
    rn_status st = rn_h5_open(&f, tmp("cut.h5"));
    if (st == RN_OK) {
      char **names = NULL;
      int cnt = 0;
      st = rn_h5_list(f, &names, &cnt);
      for (int i = 0; st == RN_OK && i < cnt; i++) {
        rn_tensor *t = NULL;
        st = rn_h5_read_tensor(&t, f, names[i], -1, NULL);
        rn_tensor_release(t);
      }
      rn_h5_names_free(names, cnt);
      rn_h5_close(f);
      f = NULL;
    }
    if (st != RN_OK) {
      failures++;
      CHECK(st == RN_ERR_FORMAT || st == RN_ERR_IO);
      CHECK(strstr(rn_last_error(), "cut.h5") != NULL);
    }
  }
  printf("truncated copies: %d of %d cuts refused cleanly\n", failures, cuts);
  CHECK(failures > cuts / 2);
  /* flipped bytes in the data area: reads may fail or return other values, never crash */
  for (size_t pos = n / 2; pos < n; pos += n / 17 + 1) {
    unsigned char save = buf[pos];
    buf[pos] ^= 0xff;
    write_bytes(tmp("flip.h5"), buf, n);
    buf[pos] = save;
    if (rn_h5_open(&f, tmp("flip.h5")) == RN_OK) {
      rn_tensor *t = NULL;
      rn_h5_read_tensor(&t, f, "model/recon/1/in_conv/weight", -1, NULL);
      rn_tensor_release(t);
      rn_h5_close(f);
    }
  }
  unlink(tmp("cut.h5"));
  unlink(tmp("flip.h5"));
  unlink(tmp("text.h5"));
  unlink(tmp("empty.h5"));
}

static void cleanup(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(tmp(e->d_name));
  if (d) closedir(d);
  rmdir(dir);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/rn_h5_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(dir)) return test_skip("cannot make a temporary directory");
  test_roundtrip();
  test_shapes_and_names();
  test_attrs();
  test_atomic();
  test_load_set();
  test_feature_cache();
  test_bad_files();
  cleanup();
  return test_finish("h5");
}
