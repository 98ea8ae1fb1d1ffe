/* test_npy.c - .npy round trips of each dtype, files written by NumPy, and hostile inputs (truncated, bad
 * magic, lying shapes, huge header lengths, Fortran order, unsupported dtypes, mutated bytes). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static char tmpdir[] = "/tmp/rn_npy_XXXXXX";

static void path_of(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

/* A v1 .npy image with the given header dict (padded to 64) followed by `data`. Returns its size. */
static size_t make_npy(unsigned char *buf, int major, const char *dict, const void *data, size_t nbytes) {
  size_t dl = strlen(dict), pre = major == 1 ? 10 : 12;
  size_t hl = dl + 1;
  hl += (64 - (pre + hl) % 64) % 64;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major;
  buf[7] = 0;
  if (major == 1) { buf[8] = hl & 0xff; buf[9] = hl >> 8; }
  else { buf[8] = hl & 0xff; buf[9] = (hl >> 8) & 0xff; buf[10] = (hl >> 16) & 0xff; buf[11] = (hl >> 24) & 0xff; }
  memcpy(buf + pre, dict, dl);
  memset(buf + pre + dl, ' ', hl - dl - 1);
  buf[pre + hl - 1] = '\n';
  if (nbytes) memcpy(buf + pre + hl, data, nbytes);
  return pre + hl + nbytes;
}

static void round_trips(void) {
  char path[256];
  int64_t shape[3] = {2, 3, 4};
  rn_tensor *f = test_randn(3, shape, 7, 1.0f), *back = NULL;
  path_of(path, sizeof path, "f32.npy");
  CHECK_OK(rn_npy_write(path, f));
  CHECK_OK(rn_npy_read(&back, path));
  if (back) { CHECK(back->dtype == RN_F32); CHECK(test_max_abs_diff(f, back) == 0); }
  rn_tensor_release(back);
  back = NULL;

  /* a non-contiguous view writes its logical (row-major) order */
  rn_tensor *tr = NULL;
  CHECK_OK(rn_transpose(&tr, f, 0, 2));
  path_of(path, sizeof path, "f32t.npy");
  CHECK_OK(rn_npy_write(path, tr));
  CHECK_OK(rn_npy_read(&back, path));
  if (back) { CHECK(back->shape[0] == 4 && back->shape[2] == 2); CHECK(test_max_abs_diff(tr, back) == 0); }
  rn_tensor_release(back);
  rn_tensor_release(tr);
  rn_tensor_release(f);

  rn_dtype types[3] = {RN_U8, RN_I32, RN_I64};
  for (int k = 0; k < 3; k++) {
    rn_tensor *t = NULL;
    back = NULL;
    int64_t s[2] = {3, 5};
    CHECK_OK(rn_tensor_empty(&t, 2, s, types[k], rn_cpu()));
    for (int64_t i = 0; i < 15; i++) {
      int64_t idx[2] = {i / 5, i % 5};
      rn_tensor_set(t, idx, types[k] == RN_U8 ? (double)(i * 17 % 256) : (double)(i * 1000003 - 7000000));
    }
    path_of(path, sizeof path, "int.npy");
    CHECK_OK(rn_npy_write(path, t));
    CHECK_OK(rn_npy_read(&back, path));
    if (back) { CHECK(back->dtype == types[k]); CHECK(test_max_abs_diff(t, back) == 0); }
    rn_tensor_release(back);
    rn_tensor_release(t);
  }

  /* 0-dim, 1-dim, 5-dim and empty tensors */
  int64_t s1[1] = {6}, s5[5] = {1, 2, 1, 3, 2}, s0[2] = {0, 4};
  struct { int nd; int64_t *s; } cases[4] = {{0, NULL}, {1, s1}, {5, s5}, {2, s0}};
  for (int c = 0; c < 4; c++) {
    rn_tensor *t = test_randn(cases[c].nd, cases[c].s, 3 + c, 1.0f);
    back = NULL;
    path_of(path, sizeof path, "shape.npy");
    CHECK_OK(rn_npy_write(path, t));
    CHECK_OK(rn_npy_read(&back, path));
    if (back) { CHECK(rn_tensor_same_shape(back, t)); CHECK(test_max_abs_diff(t, back) == 0); }
    rn_tensor_release(back);
    rn_tensor_release(t);
  }
}

/* Files written by NumPy itself (tests/fixtures/npy, made by gen_npy.py). */
static void numpy_files(void) {
  rn_tensor *a = test_fixture("npy/f4_2x3.npy"), *b = test_fixture("npy/f8_2x3.npy");
  rn_tensor *c = test_fixture("npy/i8_4.npy"), *d = test_fixture("npy/u1_2x2x2.npy");
  rn_tensor *e = test_fixture("npy/i4_3.npy"), *f = test_fixture("npy/v2_f4_3.npy"), *g = test_fixture("npy/scalar.npy");
  double v;
  if (a) { int64_t i[2] = {1, 2}; rn_tensor_get(a, i, &v); CHECK_NEAR(v, 5.5, 0); }
  if (b) { int64_t i[2] = {1, 2}; CHECK(b->dtype == RN_F32); rn_tensor_get(b, i, &v); CHECK_NEAR(v, 0.1f * 5, 1e-7); }
  if (c) { int64_t i[1] = {3}; CHECK(c->dtype == RN_I64); rn_tensor_get(c, i, &v); CHECK_NEAR(v, -3e9, 0); }
  if (d) { int64_t i[3] = {1, 1, 1}; CHECK(d->dtype == RN_U8); rn_tensor_get(d, i, &v); CHECK_NEAR(v, 255, 0); }
  if (e) { int64_t i[1] = {2}; CHECK(e->dtype == RN_I32); rn_tensor_get(e, i, &v); CHECK_NEAR(v, -7, 0); }
  if (f) { int64_t i[1] = {2}; rn_tensor_get(f, i, &v); CHECK_NEAR(v, 2, 0); }
  if (g) { CHECK(g->ndim == 0); rn_tensor_get(g, NULL, &v); CHECK_NEAR(v, 4.25, 0); }
  rn_tensor *ts[7] = {a, b, c, d, e, f, g};
  for (int i = 0; i < 7; i++) rn_tensor_release(ts[i]);
}

static void hostile(void) {
  unsigned char buf[1024];
  float data[6] = {1, 2, 3, 4, 5, 6};
  rn_tensor *t = NULL;
  const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  size_t n = make_npy(buf, 1, good, data, sizeof data);
  CHECK_OK(rn_npy_parse(&t, buf, n, "good.npy"));
  rn_tensor_release(t);
  t = NULL;
  n = make_npy(buf, 3, good, data, sizeof data);
  CHECK_OK(rn_npy_parse(&t, buf, n, "v3.npy"));
  rn_tensor_release(t);
  t = NULL;

  /* every truncation of a good file fails cleanly and names the file */
  n = make_npy(buf, 1, good, data, sizeof data);
  int trunc_ok = 1;
  for (size_t k = 0; k < n; k++) {
    rn_status s = rn_npy_parse(&t, buf, k, "cut.npy");
    if (s != RN_ERR_FORMAT || !strstr(rn_last_error(), "cut.npy") || t) trunc_ok = 0;
  }
  CHECK(trunc_ok);
  CHECK_ERR(rn_npy_parse(&t, buf, n - 1, "cut.npy"), RN_ERR_FORMAT, "truncated");

  unsigned char bad[1024];
  memcpy(bad, buf, n);
  bad[1] = 'X';
  CHECK_ERR(rn_npy_parse(&t, bad, n, "magic.npy"), RN_ERR_FORMAT, "magic");
  memcpy(bad, buf, n);
  bad[6] = 9;
  CHECK_ERR(rn_npy_parse(&t, bad, n, "ver.npy"), RN_ERR_FORMAT, "version");

  /* the header lies about the shape, in both directions */
  size_t m = make_npy(bad, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", data, sizeof data);
  CHECK_ERR(rn_npy_parse(&t, bad, m, "lie.npy"), RN_ERR_FORMAT, "lie.npy");
  m = make_npy(bad, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", data, sizeof data);
  CHECK_ERR(rn_npy_parse(&t, bad, m, "lie.npy"), RN_ERR_FORMAT, "trailing");
  /* a shape whose byte count overflows 64 bits */
  m = make_npy(bad, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }", data,
               sizeof data);
  CHECK_ERR(rn_npy_parse(&t, bad, m, "big.npy"), RN_ERR_FORMAT, "big.npy");
  m = make_npy(bad, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", data, 0);
  CHECK_ERR(rn_npy_parse(&t, bad, m, "ovf.npy"), RN_ERR_FORMAT, "overflow");

  /* huge header length (v2 lets it reach 4 GB) */
  m = make_npy(bad, 2, good, data, sizeof data);
  bad[8] = bad[9] = bad[10] = bad[11] = 0xff;
  CHECK_ERR(rn_npy_parse(&t, bad, m, "huge.npy"), RN_ERR_FORMAT, "header length");
  m = make_npy(bad, 1, good, data, sizeof data);
  bad[8] = 0xff; bad[9] = 0x7f;
  CHECK_ERR(rn_npy_parse(&t, bad, m, "long.npy"), RN_ERR_FORMAT, "truncated header");

  m = make_npy(bad, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data, sizeof data);
  CHECK_ERR(rn_npy_parse(&t, bad, m, "f.npy"), RN_ERR_UNSUPPORTED, "Fortran");
  m = make_npy(bad, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", data, sizeof data);
  CHECK_ERR(rn_npy_parse(&t, bad, m, "be.npy"), RN_ERR_UNSUPPORTED, "'>f4'");
  m = make_npy(bad, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", data, sizeof data);
  CHECK_ERR(rn_npy_parse(&t, bad, m, "c.npy"), RN_ERR_UNSUPPORTED, "dtype");
  m = make_npy(bad, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 6), }", data,
               sizeof data);
  CHECK_ERR(rn_npy_parse(&t, bad, m, "6d.npy"), RN_ERR_UNSUPPORTED, "dims");

  /* malformed dicts */
  const char *dicts[] = {
    "", "{", "}", "{'descr': '<f4', 'fortran_order': False}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1}",
    "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}",
    "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (6,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (6,,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': 6}",
    "{'descr': '<f4 , 'fortran_order': False, 'shape': (6,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} junk",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)",
    "{'descr' '<f4', 'fortran_order': False, 'shape': (6,)}",
  };
  int malformed_ok = 1;
  for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
    m = make_npy(bad, 1, dicts[i], data, sizeof data);
    rn_status s = rn_npy_parse(&t, bad, m, "dict.npy");
    if (s != RN_ERR_FORMAT || !strstr(rn_last_error(), "dict.npy")) {
      malformed_ok = 0;
      fprintf(stderr, "dict %zu: %s %s\n", i, rn_status_name(s), rn_last_error());
    }
    rn_tensor_release(t);
    t = NULL;
  }
  CHECK(malformed_ok);

  /* random single-byte mutations and random garbage never crash and either parse or fail with a message */
  n = make_npy(buf, 1, good, data, sizeof data);
  uint64_t s = 88172645463325252ull;
  int fuzz_ok = 1;
  for (int it = 0; it < 20000; it++) {
    memcpy(bad, buf, n);
    for (int j = 0; j < 1 + it % 3; j++) {
      s ^= s << 13; s ^= s >> 7; s ^= s << 17;
      bad[(s >> 8) % n] = (unsigned char)(s >> 40);
    }
    size_t len = it % 5 == 0 ? (size_t)((s >> 20) % (n + 1)) : n;
    rn_status st = rn_npy_parse(&t, bad, len, "fuzz.npy");
    if (st == RN_OK) { if (!t) fuzz_ok = 0; }
    else if (t || !strstr(rn_last_error(), "fuzz.npy")) fuzz_ok = 0;
    rn_tensor_release(t);
    t = NULL;
  }
  CHECK(fuzz_ok);

  CHECK_ERR(rn_npy_parse(&t, NULL, 0, "empty.npy"), RN_ERR_FORMAT, "empty.npy");
  CHECK_ERR(rn_npy_read(&t, "/nonexistent/dir/x.npy"), RN_ERR_IO, "/nonexistent/dir/x.npy");
  char dirpath[256];
  path_of(dirpath, sizeof dirpath, "");
  CHECK_ERR(rn_npy_read(&t, dirpath), RN_ERR_IO, "read failed");
  rn_tensor *f = test_randn(1, (int64_t[]){3}, 1, 1.0f);
  CHECK_ERR(rn_npy_write("/nonexistent/dir/x.npy", f), RN_ERR_IO, "/nonexistent/dir/x.npy");
  rn_tensor_release(f);
}

int main(void) {
  if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
  round_trips();
  numpy_files();
  hostile();
  const char *names[] = {"f32.npy", "f32t.npy", "int.npy", "shape.npy"};
  for (int i = 0; i < 4; i++) { char p[256]; path_of(p, sizeof p, names[i]); unlink(p); }
  rmdir(tmpdir);
  return test_finish("npy");
}
