/* Backbone misuse and bad weights give clear errors and leave the backbone usable: unknown arch or stage,
 * wrong input rank / channels / dtype, too-small images, weights with wrong shapes, missing or unmappable
 * names, duplicate mappings, unreadable files; plus loading from an HDF5 store and stage selection. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "realnet/backbone.h"
#include "testutil.h"

static rn_tensor *zeros4(int64_t n, int64_t c, int64_t h, int64_t w, rn_dtype dt) {
  int64_t shape[4] = {n, c, h, w};
  rn_tensor *t = NULL;
  rn_tensor_zeros(&t, 4, shape, dt, rn_cpu());
  return t;
}

/* The engine-named weights of `src` except those starting with `skip` (NULL: none), as a borrowed list. */
static int engine_list(rn_backbone *src, const char *skip, const char **names, rn_tensor **ts) {
  int n = 0;
  for (int i = 0; i < rn_backbone_param_count(src); i++) {
    const char *nm = rn_backbone_param_name(src, i);
    if (skip && !strncmp(nm, skip, strlen(skip))) continue;
    names[n] = nm;
    ts[n++] = rn_backbone_get_param(src, i);
  }
  return n;
}

static void construction(void) {
  rn_backbone *bb = NULL;
  CHECK_ERR(rn_backbone_new(&bb, "resnet19", NULL), RN_ERR_ARG, "unknown arch");
  CHECK(bb == NULL);
  CHECK_ERR(rn_backbone_new(&bb, NULL, NULL), RN_ERR_ARG, "NULL");
  rn_backbone_opts o = rn_backbone_opts_default();
  o.stages = "layer1,layer9";
  CHECK_ERR(rn_backbone_new(&bb, "resnet18", &o), RN_ERR_ARG, "layer9");
  o.stages = "layer1,,layer2";
  CHECK_ERR(rn_backbone_new(&bb, "resnet18", &o), RN_ERR_ARG, "stage list");
  o.stages = "layer3,layer1";
  CHECK_OK(rn_backbone_new(&bb, "resnet18", &o));
  CHECK(rn_backbone_output_count(bb) == 2 && rn_backbone_output_stage(bb, 0) == 2 && rn_backbone_output_stage(bb, 1) == 0);
  CHECK(rn_backbone_stage_count(bb) == 4 && rn_backbone_stage_channels(bb, 3) == 512 &&
        rn_backbone_stage_reduction(bb, 3) == 32 && rn_backbone_stage_index(bb, "layer2") == 1);
  rn_tensor *x = zeros4(1, 3, 64, 48, RN_F32), *out[2] = {0};
  if (CHECK_OK(rn_backbone_forward(bb, x, out))) {
    CHECK(out[0]->shape[1] == 256 && out[0]->shape[2] == 4 && out[0]->shape[3] == 3);
    CHECK(out[1]->shape[1] == 64 && out[1]->shape[2] == 16 && out[1]->shape[3] == 12);
  }
  rn_tensor_release(out[0]);
  rn_tensor_release(out[1]);
  rn_tensor_release(x);
  rn_backbone_free(bb);
  rn_backbone_free(NULL);
}

static void bad_inputs(void) {
  rn_backbone *bb = NULL, *sq = NULL;
  CHECK_OK(rn_backbone_new(&bb, "resnet18", NULL));
  CHECK_OK(rn_backbone_new(&sq, "squeezenet1_1", NULL));
  rn_tensor *out[4] = {0}, *gray = zeros4(1, 1, 64, 64, RN_F32), *ints = zeros4(1, 3, 64, 64, RN_I32);
  rn_tensor *tiny = zeros4(1, 3, 16, 16, RN_F32), *small = zeros4(2, 3, 8, 8, RN_F32), *x3 = NULL;
  int64_t s3[3] = {3, 64, 64};
  rn_tensor_zeros(&x3, 3, s3, RN_F32, rn_cpu());
  CHECK_ERR(rn_backbone_forward(bb, gray, out), RN_ERR_SHAPE, "[N,3,H,W]");
  CHECK_ERR(rn_backbone_forward(bb, x3, out), RN_ERR_SHAPE, "[N,3,H,W]");
  CHECK_ERR(rn_backbone_forward(bb, ints, out), RN_ERR_SHAPE, "float32");
  CHECK_ERR(rn_backbone_forward(bb, NULL, out), RN_ERR_ARG, "NULL");
  CHECK_ERR(rn_backbone_forward(bb, tiny, out), RN_ERR_SHAPE, "too small");
  CHECK(strstr(rn_last_error(), "32x32") != NULL);
  int s1 = 0, bad = 7;
  CHECK_OK(rn_backbone_forward_stages(bb, tiny, 1, &s1, out)); /* layer1 only needs /4 */
  rn_tensor_release(out[0]);
  CHECK_ERR(rn_backbone_forward_stages(bb, tiny, 1, &bad, out), RN_ERR_ARG, "out of range");
  CHECK_ERR(rn_backbone_forward_stages(bb, tiny, 0, &s1, out), RN_ERR_ARG, "no stages");
  int logits = rn_backbone_stage_index(sq, "logits");
  CHECK_ERR(rn_backbone_forward_stages(sq, small, 1, &logits, out), RN_ERR_SHAPE, "too small");
  rn_tensor_release(gray);
  rn_tensor_release(ints);
  rn_tensor_release(tiny);
  rn_tensor_release(small);
  rn_tensor_release(x3);
  rn_backbone_free(bb);
  rn_backbone_free(sq);
}

static void bad_weights(void) {
  rn_backbone *src = NULL, *bb = NULL;
  CHECK_OK(rn_backbone_new(&src, "resnet18", NULL));
  CHECK_OK(rn_backbone_new(&bb, "resnet18", NULL));
  const char *names[128];
  rn_tensor *ts[128];
  int n = engine_list(src, NULL, names, ts);
  CHECK_OK(rn_backbone_load(bb, n, names, ts, NULL, NULL));
  rn_tensor *before = rn_backbone_get_param(bb, 0);

  /* a wrong shape: named, both shapes given, nothing changed */
  rn_tensor *w = NULL;
  int64_t ws[4] = {64, 3, 3, 3};
  rn_tensor_zeros(&w, 4, ws, RN_F32, rn_cpu());
  rn_tensor *keep = ts[0];
  ts[0] = w;
  CHECK_ERR(rn_backbone_load(bb, n, names, ts, NULL, NULL), RN_ERR_SHAPE, "conv1.weight is [64,3,3,3], expected [64,3,7,7]");
  ts[0] = keep;
  CHECK(rn_backbone_get_param(bb, 0) == before);

  /* an unmappable name, then the same allowed (and reported) */
  names[n] = "layer1.0.conv9.weight";
  ts[n] = w;
  CHECK_ERR(rn_backbone_load(bb, n + 1, names, ts, NULL, NULL), RN_ERR_FORMAT, "layer1.0.conv9.weight");
  rn_backbone_load_opts lo = {true};
  rn_backbone_load_report rep;
  if (CHECK_OK(rn_backbone_load(bb, n + 1, names, ts, &lo, &rep))) {
    CHECK(rep.unmapped == 1 && rep.text && strstr(rep.text, "conv9"));
    rn_backbone_report_free(&rep);
  }

  /* classifier and BN counters are ignored, not errors */
  names[n] = "fc.weight";
  names[n + 1] = "bn1.num_batches_tracked";
  ts[n + 1] = w;
  if (CHECK_OK(rn_backbone_load(bb, n + 2, names, ts, NULL, &rep))) {
    CHECK(rep.ignored == 2 && rep.unmapped == 0);
    rn_backbone_report_free(&rep);
  }

  /* two names for one weight */
  names[n] = names[0];
  CHECK_ERR(rn_backbone_load(bb, n + 1, names, ts, NULL, NULL), RN_ERR_FORMAT, "both map");

  /* nothing maps */
  names[0] = "fc.weight";
  CHECK_ERR(rn_backbone_load(bb, 1, names, ts, NULL, NULL), RN_ERR_FORMAT, "none of");
  CHECK_ERR(rn_backbone_load(bb, -1, names, ts, NULL, NULL), RN_ERR_ARG, "bad tensor list");
  rn_tensor_release(w);

  /* missing stage: fine unless requested */
  n = engine_list(src, "layer4.", names, ts);
  if (CHECK_OK(rn_backbone_load(bb, n, names, ts, NULL, &rep))) {
    CHECK(rep.stages_ready == 3 && strstr(rep.text, "layer4"));
    rn_backbone_report_free(&rep);
  }
  CHECK(!rn_backbone_stage_ready(bb, 3) && rn_backbone_stage_ready(bb, 2) && rn_backbone_output_count(bb) == 3);
  rn_tensor *x = zeros4(1, 3, 64, 64, RN_F32), *out[4] = {0};
  int s4 = 3;
  CHECK_ERR(rn_backbone_forward_stages(bb, x, 1, &s4, out), RN_ERR_ARG, "layer4 has no weights");
  CHECK_OK(rn_backbone_forward(bb, x, out));
  for (int i = 0; i < 3; i++) rn_tensor_release(out[i]);
  rn_backbone *req = NULL;
  rn_backbone_opts o = rn_backbone_opts_default();
  o.stages = "layer4";
  CHECK_OK(rn_backbone_new(&req, "resnet18", &o));
  CHECK_ERR(rn_backbone_load(req, n, names, ts, NULL, NULL), RN_ERR_FORMAT, "layer4.0.conv1.weight");
  rn_backbone_free(req);

  /* a partial batch norm is named */
  rn_tensor *g = NULL;
  int64_t c64 = 64;
  rn_tensor_full(&g, 1, &c64, RN_F32, rn_cpu(), 1.0);
  const char *tv[3] = {"conv1.weight", "bn1.weight", "bn1.bias"};
  rn_tensor *tvt[3] = {rn_backbone_get_param(src, 0), g, g};
  o.stages = "layer1";
  CHECK_OK(rn_backbone_new(&req, "resnet18", &o));
  CHECK_ERR(rn_backbone_load(req, 3, tv, tvt, NULL, NULL), RN_ERR_FORMAT, "bn1.running_mean");
  rn_backbone_free(req);
  rn_tensor_release(g);

  /* Gluon names with impossible numbers do not map */
  rn_backbone *v2 = NULL;
  CHECK_OK(rn_backbone_new(&v2, "resnet50v2", NULL));
  const char *gl[1] = {"resnetv24_stage1_conv99_weight"};
  CHECK_ERR(rn_backbone_load(v2, 1, gl, ts, NULL, NULL), RN_ERR_FORMAT, "resnetv24_stage1_conv99_weight");
  rn_backbone_free(v2);

  /* files */
  CHECK_ERR(rn_backbone_load_file(bb, "/nonexistent/w.safetensors", NULL, NULL), RN_ERR_IO, "/nonexistent/w.safetensors");
  char path[64];
  snprintf(path, sizeof path, "/tmp/rn_backbone_%d.h5", (int)getpid());
  FILE *f = fopen(path, "w");
  if (f) {
    fputs("not weights", f);
    fclose(f);
  }
  CHECK(rn_backbone_load_file(bb, path, NULL, NULL) != RN_OK);

  /* an HDF5 store with '/'-separated engine names under a group */
  n = engine_list(src, NULL, names, ts);
  char *h5names[128];
  for (int i = 0; i < n; i++) {
    h5names[i] = strdup(names[i]);
    for (char *p = h5names[i]; *p; p++)
      if (*p == '.') *p = '/';
  }
  if (CHECK_OK(rn_h5_save(path, "/backbone", n, (const char *const *)h5names, (const rn_tensor *const *)ts))) {
    rn_h5file *h = NULL;
    if (CHECK_OK(rn_h5_open(&h, path))) {
      rn_backbone *b2 = NULL;
      CHECK_OK(rn_backbone_new(&b2, "resnet18", NULL));
      if (CHECK_OK(rn_backbone_load_h5(b2, h, "/backbone", NULL, &rep))) {
        CHECK(rep.loaded == n && rep.stages_ready == 4);
        rn_backbone_report_free(&rep);
        rn_tensor *p0 = rn_backbone_get_param(b2, 5), *q0 = rn_backbone_get_param(src, 5);
        CHECK(p0 && q0 && test_max_abs_diff(p0, q0) == 0);
      }
      CHECK_ERR(rn_backbone_load_h5(b2, h, "/nothing", NULL, NULL), RN_ERR_FORMAT, "no datasets");
      rn_backbone_free(b2);
      rn_h5_close(h);
    }
  }
  for (int i = 0; i < n; i++) free(h5names[i]);
  unlink(path);
  rn_tensor_release(x);
  rn_backbone_free(bb);
  rn_backbone_free(src);
}

int main(void) {
  construction();
  bad_inputs();
  bad_weights();
  return test_finish("backbone_errors");
}
