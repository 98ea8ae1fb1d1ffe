/* test_safetensors.c - safetensors parsing (all dtypes, lying headers), .npy folders, and the real weight
 * files under SHARED_DIR/weights (skipped when absent). Fixtures: tests/fixtures/gen_store.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "realnet/safetensors.h"
#include "testutil.h"

static char path_buf[1024];
static const char *fx(const char *rel) {
  snprintf(path_buf, sizeof path_buf, "%s/store/%s", FIXTURES_DIR, rel);
  return path_buf;
}

static double at(const rn_tensor *t, int64_t i) {
  int64_t idx[RN_MAX_DIMS] = {0};
  for (int d = t->ndim - 1; d >= 0; d--) { idx[d] = i % t->shape[d]; i /= t->shape[d]; }
  double v = 0;
  rn_tensor_get(t, idx, &v);
  return v;
}

static void check_good_set(rn_tensorset *s) {
  CHECK(rn_tensorset_count(s) == 9);
  CHECK(strcmp(rn_tensorset_name(s, 0), "a.f32") == 0);
  CHECK(rn_tensorset_name(s, 9) == NULL && rn_tensorset_name(s, -1) == NULL);
  CHECK(rn_tensorset_find(s, "f.u8") == 5);
  CHECK(rn_tensorset_find(s, "nope") == -1);
  CHECK(rn_tensorset_find(s, "layer/\xc3\xa9\"q") >= 0);  /* \u00e9 and \" unescaped */
  CHECK(strcmp(rn_tensorset_source_dtype(s, "c.bf16"), "BF16") == 0);

  rn_tensor *t = NULL, *ref = NULL;
  CHECK_OK(rn_tensorset_load(&t, s, "a.f32"));
  CHECK(t->dtype == RN_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
  for (int i = 0; i < 6; i++) CHECK_NEAR(at(t, i), i * 0.5 - 1, 0);
  rn_tensor_release(t);

  CHECK_OK(rn_tensorset_load(&t, s, "b.f16"));
  ref = test_fixture("store/good_f16.npy");
  CHECK(t->dtype == RN_F32 && t->ndim == 1 && t->shape[0] == 8);
  for (int i = 0; ref && i < 8; i++) {
    double a = at(t, i), b = at(ref, i);
    CHECK(a == b || (isinf(a) && isinf(b) && (a > 0) == (b > 0)));
  }
  CHECK(signbit(at(t, 5)));  /* -0.0 keeps its sign */
  rn_tensor_release(t);
  rn_tensor_release(ref);

  CHECK_OK(rn_tensorset_load(&t, s, "c.bf16"));
  ref = test_fixture("store/good_bf16.npy");
  CHECK(t->dtype == RN_F32 && t->ndim == 2);
  for (int i = 0; ref && i < 4; i++) CHECK(at(t, i) == at(ref, i));
  rn_tensor_release(t);
  rn_tensor_release(ref);

  CHECK_OK(rn_tensorset_load(&t, s, "d.i64"));
  CHECK(t->dtype == RN_I64 && t->shape[0] == 3);
  CHECK(((int64_t *)rn_tensor_data(t))[0] == -(INT64_C(1) << 40) && ((int64_t *)rn_tensor_data(t))[2] == INT64_C(1) << 62);
  rn_tensor_release(t);
  CHECK_OK(rn_tensorset_load(&t, s, "e.i32"));
  CHECK(t->dtype == RN_I32 && ((int32_t *)rn_tensor_data(t))[0] == -7 && ((int32_t *)rn_tensor_data(t))[1] == INT32_MAX);
  rn_tensor_release(t);
  CHECK_OK(rn_tensorset_load(&t, s, "f.u8"));
  CHECK(t->dtype == RN_U8 && t->shape[0] == 5 && ((uint8_t *)rn_tensor_data(t))[4] == 255);
  rn_tensor_release(t);
  CHECK_OK(rn_tensorset_load(&t, s, "g.scalar"));
  CHECK(t->ndim == 0 && rn_f32(t)[0] == 42.25f);
  rn_tensor_release(t);
  CHECK_OK(rn_tensorset_load(&t, s, "h.empty"));
  CHECK(t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 3);
  rn_tensor_release(t);

  rn_dtype dt;
  int nd;
  int64_t sh[RN_MAX_DIMS];
  CHECK_OK(rn_tensorset_info(s, "c.bf16", &dt, &nd, sh));
  CHECK(dt == RN_F32 && nd == 2 && sh[0] == 2 && sh[1] == 2);
  CHECK_ERR(rn_tensorset_load(&t, s, "missing.weight"), RN_ERR_ARG, "missing.weight");
  CHECK(t == NULL);

  rn_tensor *all[9];
  CHECK_OK(rn_tensorset_load_all(s, all));
  for (int i = 0; i < 9; i++) { CHECK(all[i] != NULL); rn_tensor_release(all[i]); }
}

static void test_good(void) {
  rn_tensorset *s = NULL;
  CHECK_OK(rn_safetensors_open(&s, fx("good.safetensors")));
  if (!s) return;
  check_good_set(s);
  CHECK(rn_tensorset_metadata_count(s) == 2);
  CHECK(strcmp(rn_tensorset_metadata(s, "format"), "pt") == 0);
  CHECK(strcmp(rn_tensorset_metadata(s, "note"), "tab\there \xc3\xa9 \"quoted\"") == 0);
  CHECK(rn_tensorset_metadata(s, "absent") == NULL);
  rn_tensorset_close(s);

  /* the same bytes parsed from memory */
  FILE *f = fopen(fx("good.safetensors"), "rb");
  CHECK(f != NULL);
  if (!f) return;
  unsigned char buf[4096];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  CHECK_OK(rn_safetensors_parse(&s, buf, n, "memory image"));
  if (s) { check_good_set(s); rn_tensorset_close(s); }

  /* physical layout in another order than the names */
  CHECK_OK(rn_tensorset_open(&s, fx("good_reversed.safetensors")));
  if (s) { check_good_set(s); rn_tensorset_close(s); }

  CHECK_OK(rn_safetensors_open(&s, fx("empty_set.safetensors")));
  CHECK(rn_tensorset_count(s) == 0 && strcmp(rn_tensorset_metadata(s, "x"), "y") == 0);
  rn_tensorset_close(s);

  /* well-formed, but tensors this build cannot represent refuse only when loaded */
  CHECK_OK(rn_safetensors_open(&s, fx("unsupported.safetensors")));
  rn_tensor *t = NULL;
  CHECK_ERR(rn_tensorset_load(&t, s, "six"), RN_ERR_UNSUPPORTED, "6 dims");
  CHECK_ERR(rn_tensorset_info(s, "six", NULL, NULL, NULL), RN_ERR_UNSUPPORTED, "'six' has 6 dims");
  CHECK_ERR(rn_tensorset_load(&t, s, "u64"), RN_ERR_UNSUPPORTED, "U64");
  CHECK_OK(rn_tensorset_load(&t, s, "ok"));
  rn_tensor_release(t);
  rn_tensor *all[3];
  CHECK_ERR(rn_tensorset_load_all(s, all), RN_ERR_UNSUPPORTED, NULL);
  CHECK(all[0] == NULL && all[1] == NULL && all[2] == NULL);
  rn_tensorset_close(s);
}

/* Parses a safetensors image made of a JSON header and data bytes. */
static rn_status parse_json(rn_tensorset **s, const char *json, const void *data, size_t dn, const char *what) {
  static unsigned char buf[4096];
  size_t hn = strlen(json);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hn >> (8 * i));
  memcpy(buf + 8, json, hn);
  if (dn) memcpy(buf + 8 + hn, data, dn);
  return rn_safetensors_parse(s, buf, 8 + hn + dn, what);
}

static void test_bad(void) {
  static const struct { const char *file; rn_status st; const char *needle; } cases[] = {
    {"bad_past_end.safetensors", RN_ERR_FORMAT, "past the end"},
    {"bad_overlap.safetensors", RN_ERR_FORMAT, "overlaps"},
    {"bad_misordered.safetensors", RN_ERR_FORMAT, "misordered"},
    {"bad_gap.safetensors", RN_ERR_FORMAT, "gap"},
    {"bad_size.safetensors", RN_ERR_FORMAT, "needs 24 bytes"},
    {"bad_dtype.safetensors", RN_ERR_FORMAT, "unknown dtype 'Q4'"},
    {"bad_trailing.safetensors", RN_ERR_FORMAT, "not described"},
    {"bad_duplicate.safetensors", RN_ERR_FORMAT, "appears twice"},
    {"bad_negative.safetensors", RN_ERR_FORMAT, "(tensor 'x'): expected a non-negative integer"},
    {"bad_float_shape.safetensors", RN_ERR_FORMAT, "fraction"},
    {"bad_missing_field.safetensors", RN_ERR_FORMAT, "lacks 'data_offsets'"},
    {"bad_metadata.safetensors", RN_ERR_FORMAT, "__metadata__"},
    {"bad_shape_overflow.safetensors", RN_ERR_FORMAT, "overflows"},
    {"bad_nul_name.safetensors", RN_ERR_FORMAT, "NUL"},
    {"bad_unterminated.safetensors", RN_ERR_FORMAT, "malformed header"},
    {"bad_trailing_text.safetensors", RN_ERR_FORMAT, "text after"},
    {"bad_deep.safetensors", RN_ERR_FORMAT, "nesting too deep"},
    {"bad_huge_header.safetensors", RN_ERR_FORMAT, "100 MB"},
    {"bad_header_past_file.safetensors", RN_ERR_FORMAT, "exceeds the file size"},
    {"bad_garbage.safetensors", RN_ERR_FORMAT, "not UTF-8"},
    {"bad_text.safetensors", RN_ERR_FORMAT, "header length"},
    {"bad_tiny.safetensors", RN_ERR_FORMAT, "too short"},
    {"bad_empty.safetensors", RN_ERR_FORMAT, "too short"},
    {"bad_truncated.safetensors", RN_ERR_FORMAT, "truncated"},
    {"does_not_exist.safetensors", RN_ERR_IO, "does_not_exist"},
    {"good_f16.npy", RN_ERR_FORMAT, "a .npy file"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rn_tensorset *s = (rn_tensorset *)1;
    const char *p = fx(cases[i].file);
    if (!CHECK_ERR(rn_safetensors_open(&s, p), cases[i].st, cases[i].needle)) fprintf(stderr, "  case %s\n", cases[i].file);
    CHECK(s == NULL);
    /* every message names the file */
    CHECK(strstr(rn_last_error(), cases[i].file) != NULL);
  }
  /* the tensor at fault is named too */
  rn_tensorset *s = NULL;
  CHECK_ERR(rn_safetensors_open(&s, fx("bad_size.safetensors")), RN_ERR_FORMAT, "tensor 'x'");

  /* in-memory edge cases */
  CHECK_ERR(rn_safetensors_parse(&s, NULL, 0, "nothing"), RN_ERR_FORMAT, "nothing");
  CHECK_ERR(parse_json(&s, "{\"\\ud800\": 1}", NULL, 0, "lone"), RN_ERR_FORMAT, "surrogate");
  CHECK_ERR(parse_json(&s, "[1,2,3]", NULL, 0, "arr"), RN_ERR_FORMAT, "JSON object");
  CHECK_ERR(parse_json(&s, "{\"\xc0\xaf", NULL, 0, "overlong"), RN_ERR_FORMAT, "UTF-8");
  CHECK_ERR(parse_json(&s, "{\"a\": {\"dtype\": \"F32\", \"shape\": [[1]], \"data_offsets\": [0, 4]}}", "abcd", 4,
                       "nested shape"), RN_ERR_FORMAT, "non-negative integer");
  CHECK_ERR(parse_json(&s, "{\"\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}}", "abcd", 4,
                       "emptyname"), RN_ERR_FORMAT, "empty name");
  CHECK_ERR(parse_json(&s, "{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}}",
                       "abcd", 4, "twice"), RN_ERR_FORMAT, "repeated");
  CHECK_ERR(parse_json(&s, "{\"a\": {\"dtype\": \"F32\", \"shape\": [01], \"data_offsets\": [0, 4]}}", "abcd", 4,
                       "zero"), RN_ERR_FORMAT, "leading zero");
  /* unknown keys with any JSON value are skipped */
  const float one = 1.0f;
  CHECK_OK(parse_json(&s, "{\"t\": {\"dtype\": \"F32\", \"x\": [true, null, -1.5e3, {\"k\": \"v\\n\"}], "
                          "\"shape\": [1], \"data_offsets\": [0, 4]}}", &one, 4, "extra keys"));
  rn_tensor *t = NULL;
  if (s) {
    CHECK_OK(rn_tensorset_load(&t, s, "t"));
    CHECK(t && rn_f32(t)[0] == 1.0f);
    rn_tensor_release(t);
    rn_tensorset_close(s);
  }
  CHECK_ERR(rn_tensorset_load(&t, NULL, "x"), RN_ERR_ARG, NULL);
}

static void test_npy_folder(void) {
  rn_tensorset *s = NULL;
  CHECK_OK(rn_tensorset_open(&s, fx("npyset/")));
  if (!s) return;
  CHECK(rn_tensorset_count(s) == 4);  /* README.txt is ignored */
  const char *want[] = {"conv1/bias", "conv1/weight", "head/fc/steps", "scale"};
  for (int i = 0; i < 4; i++) CHECK(rn_tensorset_name(s, i) && strcmp(rn_tensorset_name(s, i), want[i]) == 0);
  rn_dtype dt;
  int nd;
  int64_t sh[RN_MAX_DIMS];
  CHECK_OK(rn_tensorset_info(s, "conv1/weight", &dt, &nd, sh));
  CHECK(dt == RN_F32 && nd == 4 && sh[0] == 2 && sh[3] == 3);
  rn_tensor *t = NULL, *ref = test_fixture("store/npyset_conv1_weight.npy");
  CHECK_OK(rn_tensorset_load(&t, s, "conv1/weight"));
  if (t && ref) CHECK(test_max_abs_diff(t, ref) == 0);
  rn_tensor_release(t);
  rn_tensor_release(ref);
  CHECK_OK(rn_tensorset_load(&t, s, "head/fc/steps"));
  CHECK(t && t->dtype == RN_I64 && ((int64_t *)rn_tensor_data(t))[2] == 4);
  rn_tensor_release(t);
  CHECK_OK(rn_tensorset_load(&t, s, "scale"));
  CHECK(t && t->dtype == RN_F32 && t->ndim == 0 && rn_f32(t)[0] == 2.0f);
  rn_tensor_release(t);
  CHECK(strcmp(rn_tensorset_source_dtype(s, "scale"), "npy") == 0);
  CHECK(rn_tensorset_metadata_count(s) == 0);
  CHECK_ERR(rn_tensorset_load(&t, s, "conv1"), RN_ERR_ARG, "conv1");
  rn_tensorset_close(s);

  CHECK_ERR(rn_npy_folder_open(&s, fx("no_such_dir")), RN_ERR_IO, "no_such_dir");
  CHECK_ERR(rn_npy_folder_open(&s, fx("good.safetensors")), RN_ERR_IO, "not a directory");
  CHECK_ERR(rn_tensorset_open(&s, fx("no_such_thing")), RN_ERR_IO, "no_such_thing");
}

/* The real ImageNet exports: counts, a few shapes, finite values. */
static void test_shared(void) {
  static const struct { const char *file; int count; const char *name; int ndim; int64_t shape[4]; } files[] = {
    {"squeezenet1.1_imagenet.safetensors", 52, "squeezenet0_conv0_weight", 4, {64, 3, 3, 3}},
    {"squeezenet1.1_reference_io.safetensors", 6, "input_0", 4, {1, 3, 224, 224}},
    {"mobilenetv2_imagenet_bnfolded.safetensors", 105, "conv_0_weight", 4, {32, 3, 3, 3}},
    {"resnet18_imagenet_bnfolded_conv1-layer3.safetensors", 30, "conv1.weight", 4, {64, 3, 7, 7}},
    {"resnet50v2_imagenet_stages1-3.safetensors", 249, "resnetv24_batchnorm0_gamma", 1, {3}},
  };
  int64_t elements = 0;
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char p[1024];
    snprintf(p, sizeof p, "%s/weights/%s", SHARED_DIR, files[i].file);
    rn_tensorset *s = NULL;
    if (!CHECK_OK(rn_safetensors_open(&s, p))) continue;
    CHECK(rn_tensorset_count(s) == files[i].count);
    CHECK(rn_tensorset_metadata(s, "source") != NULL);
    rn_tensor *t = NULL;
    CHECK_OK(rn_tensorset_load(&t, s, files[i].name));
    if (t) {
      CHECK(t->ndim == files[i].ndim);
      for (int d = 0; d < t->ndim && d < 4; d++) CHECK(t->shape[d] == files[i].shape[d]);
      rn_tensor_release(t);
    }
    for (int k = 0; k < rn_tensorset_count(s); k++) {
      if (!CHECK_OK(rn_tensorset_load(&t, s, rn_tensorset_name(s, k)))) continue;
      CHECK(t->dtype == RN_F32);
      const float *v = rn_f32(t);
      int64_t n = rn_tensor_numel(t), bad = 0;
      for (int64_t j = 0; j < n; j++) bad += !isfinite(v[j]);
      if (!CHECK(bad == 0)) fprintf(stderr, "  %s: %s has %lld non-finite values\n", files[i].file, rn_tensorset_name(s, k), (long long)bad);
      elements += n;
      rn_tensor_release(t);
    }
    rn_tensorset_close(s);
  }
  printf("shared weights: %lld values checked\n", (long long)elements);
}

int main(void) {
  test_good();
  test_bad();
  test_npy_folder();
  struct stat sb;
  char p[1024];
  snprintf(p, sizeof p, "%s/weights", SHARED_DIR);
  if (stat(p, &sb) == 0) test_shared();
  else printf("shared weights absent (%s): skipping the real-file checks\n", p);
  return test_finish("safetensors");
}
