/* Backbones with the real ImageNet weights of ../shared/weights (skipped when ../shared is absent):
 * SqueezeNet 1.1 reproduces the reference logits to 1e-3 and ranks the photos' classes as PyTorch does; ResNet-50 v2,
 * MobileNetV2 and ResNet-18 load from their exports and give finite stage outputs of the documented shapes;
 * stages a file lacks are refused only when requested. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "realnet/backbone.h"
#include "realnet/image.h"
#include "testutil.h"

static char *shared(const char *rel) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", SHARED_DIR, rel);
  return buf[k];
}

static bool finite_all(const rn_tensor *t) {
  for (int64_t i = 0; i < rn_tensor_numel(t); i++)
    if (!isfinite(rn_f32(t)[i])) return false;
  return true;
}

static bool shape_is(const rn_tensor *t, int64_t c, int64_t h, int64_t w) {
  return t && t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == c && t->shape[2] == h && t->shape[3] == w;
}

/* The i-th string of the JSON list in imagenet_classes.json (no escapes occur in it). */
static bool class_name(int idx, char *out, size_t n) {
  FILE *f = fopen(shared("weights/imagenet_classes.json"), "r");
  if (!f) return false;
  int c, k = -1;
  bool in = false;
  size_t len = 0;
  while ((c = fgetc(f)) != EOF) {
    if (c == '"') {
      in = !in;
      if (in) k++;
      else if (k == idx) break;
      continue;
    }
    if (in && k == idx && len + 1 < n) out[len++] = (char)c;
  }
  fclose(f);
  out[len] = 0;
  return k == idx;
}

static void squeezenet(void) {
  rn_backbone *bb = NULL;
  CHECK_OK(rn_backbone_new(&bb, "squeezenet1_1", NULL));
  rn_backbone_load_report rep;
  if (!CHECK_OK(rn_backbone_load_file(bb, shared("weights/squeezenet1.1_imagenet.safetensors"), NULL, &rep))) {
    rn_backbone_free(bb);
    return;
  }
  CHECK(rep.loaded == 52 && rep.unmapped == 0 && rep.stages_ready == 4);
  rn_backbone_report_free(&rep);
  int logits = rn_backbone_stage_index(bb, "logits");
  rn_tensorset *io = NULL;
  CHECK_OK(rn_safetensors_open(&io, shared("weights/squeezenet1.1_reference_io.safetensors")));
  for (int i = 0; io && i < 3; i++) {
    char name[32];
    rn_tensor *x = NULL, *ref = NULL, *y = NULL;
    snprintf(name, sizeof name, "input_%d", i);
    CHECK_OK(rn_tensorset_load(&x, io, name));
    snprintf(name, sizeof name, "output_%d", i);
    CHECK_OK(rn_tensorset_load(&ref, io, name));
    if (CHECK_OK(rn_backbone_forward_stages(bb, x, 1, &logits, &y))) test_check_close(y, ref, 1e-3, 1e-3, name);
    rn_tensor_release(x);
    rn_tensor_release(ref);
    rn_tensor_release(y);
  }
  rn_tensorset_close(io);

  /* The photos: decoded, resized to 224x224 (PIL bilinear), ImageNet-normalised. The issue expects top-1
   * "tabby, tabby cat" for chelsea.png, but PyTorch with these very weights (torchvision's squeezenet1_1
   * loaded from the same file, PIL resize) ranks Egyptian cat 30.51, tiger cat 29.27, tabby 28.95, and no
   * usual preprocessing (bicubic, 256 + centre crop, crop only) changes the winner. So the check is
   * PyTorch's top-3 in order for chelsea.png, and top-1 "espresso" for coffee.png as the issue says. */
  const char *photos[2] = {"data/photos/chelsea.png", "data/photos/coffee.png"};
  const char *want[2][3] = {{"Egyptian cat", "tiger cat", "tabby, tabby cat"}, {"espresso", NULL, NULL}};
  for (int p = 0; p < 2; p++) {
    rn_image_opts o = rn_image_opts_default();
    o.channels = 3;
    rn_tensor *img = NULL, *small = NULL, *x3 = NULL, *x = NULL, *y = NULL;
    if (!CHECK_OK(rn_image_read(&img, shared(photos[p]), &o))) continue;
    CHECK_OK(rn_image_resize(&small, img, 224, 224, RN_RESIZE_BILINEAR));
    CHECK_OK(rn_image_normalize_imagenet(&x3, small));
    if (x3) CHECK_OK(rn_unsqueeze(&x, x3, 0));
    if (x && CHECK_OK(rn_backbone_forward_stages(bb, x, 1, &logits, &y))) {
      int top[3] = {-1, -1, -1};
      for (int r = 0; r < 3; r++)
        for (int k = 0; k < 1000; k++)
          if (k != top[0] && k != top[1] && (top[r] < 0 || rn_f32(y)[k] > rn_f32(y)[top[r]])) top[r] = k;
      for (int r = 0; r < 3 && want[p][r]; r++) {
        char got[128] = "";
        CHECK(class_name(top[r], got, sizeof got));
        if (!CHECK(!strcmp(got, want[p][r])))
          fprintf(stderr, "  %s: rank %d is \"%s\" (class %d), expected \"%s\"\n", photos[p], r + 1, got, top[r], want[p][r]);
      }
    }
    rn_tensor_release(img);
    rn_tensor_release(small);
    rn_tensor_release(x3);
    rn_tensor_release(x);
    rn_tensor_release(y);
  }
  rn_backbone_free(bb);
}

/* Loads `file` into `arch` and checks every ready stage's shape (c[i] channels at 224/r[i]) and finiteness. */
static void features(const char *arch, const char *file, int n_ready, const int *c, const int *r, rn_tensor *x) {
  rn_backbone *bb = NULL;
  CHECK_OK(rn_backbone_new(&bb, arch, NULL));
  rn_backbone_load_report rep;
  if (!CHECK_OK(rn_backbone_load_file(bb, shared(file), NULL, &rep))) {
    fprintf(stderr, "  %s\n", rn_last_error());
    rn_backbone_free(bb);
    return;
  }
  CHECK(rep.unmapped == 0 && rep.stages_ready == n_ready);
  printf("%s\n", rep.text);
  rn_backbone_report_free(&rep);
  if (!CHECK(rn_backbone_output_count(bb) == n_ready)) n_ready = rn_backbone_output_count(bb);
  rn_tensor *out[4] = {0};
  if (CHECK_OK(rn_backbone_forward(bb, x, out)))
    for (int i = 0; i < n_ready; i++) {
      if (!CHECK(shape_is(out[i], c[i], 224 / r[i], 224 / r[i]))) continue;
      CHECK(finite_all(out[i]));
      rn_tensor_release(out[i]);
    }
  if (n_ready < 4) { /* the absent stage: refused when requested, at forward and at load */
    int s = n_ready;
    rn_tensor *y = NULL;
    CHECK_ERR(rn_backbone_forward_stages(bb, x, 1, &s, &y), RN_ERR_ARG, "no weights");
    rn_backbone *b2 = NULL;
    rn_backbone_opts o = rn_backbone_opts_default();
    o.stages = "layer1,layer4";
    CHECK_OK(rn_backbone_new(&b2, arch, &o));
    CHECK_ERR(rn_backbone_load_file(b2, shared(file), NULL, NULL), RN_ERR_FORMAT, "layer4");
    rn_backbone_free(b2);
  }
  rn_backbone_free(bb);
}

int main(void) {
  struct stat sb;
  if (stat(shared("weights/squeezenet1.1_imagenet.safetensors"), &sb) != 0) return test_skip("../shared/weights is absent");
  squeezenet();
  rn_tensorset *io = NULL;
  rn_tensor *x = NULL;
  CHECK_OK(rn_safetensors_open(&io, shared("weights/squeezenet1.1_reference_io.safetensors")));
  if (io) CHECK_OK(rn_tensorset_load(&x, io, "input_0"));
  rn_tensorset_close(io);
  if (x) {
    const int r[4] = {4, 8, 16, 32};
    features("resnet50v2", "weights/resnet50v2_imagenet_stages1-3.safetensors", 3, (const int[]){256, 512, 1024}, r, x);
    features("mobilenetv2", "weights/mobilenetv2_imagenet_bnfolded.safetensors", 4, (const int[]){24, 32, 96, 320}, r, x);
    features("resnet18", "weights/resnet18_imagenet_bnfolded_conv1-layer3.safetensors", 3, (const int[]){64, 128, 256}, r, x);
  }
  rn_tensor_release(x);
  return test_finish("backbone_real");
}
