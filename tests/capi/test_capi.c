/* test_capi.c - the deployment API on a trained run (run by tests/capi/run_example.sh):
 *   test_capi RUNDIR IMAGE
 * Checks loading errors, file and in-memory prediction, map sizes, and bad arguments (channel counts, sizes,
 * NULLs). Prints "test_capi: ok" and exits 0 when every check passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "realnet_model.h"

static int failures = 0;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: test_capi RUNDIR IMAGE\n"); return 2; }
  char err[512];
  CHECK(rn_model_load("/nonexistent/run", err, sizeof err) == NULL);
  CHECK(strstr(err, "/nonexistent/run") != NULL);
  rn_model *m = rn_model_load(argv[1], err, sizeof err);
  if (!m) { fprintf(stderr, "load failed: %s\n", err); return 1; }
  CHECK(strcmp(rn_model_method(m), "realnet") == 0);
  int S = rn_model_input_size(m);
  CHECK(S > 0);
  CHECK(!isnan(rn_model_threshold(m)));

  /* a file: the map at the image's size, and resized on request */
  int h = 0, w = 0;
  CHECK(rn_model_image_dims(m, argv[2], &h, &w) == 0 && h > 0 && w > 0);
  float score = -1, score2 = -1;
  float *map = malloc((size_t)h * w * sizeof *map), *small = malloc(16 * 20 * sizeof *small);
  CHECK(rn_model_predict(m, argv[2], &score, map, 0, 0) == 0);
  CHECK(score >= 0 && score <= 1);
  CHECK(rn_model_predict(m, argv[2], &score2, small, 16, 20) == 0);
  CHECK(fabsf(score - score2) < 1e-6f);
  CHECK(rn_model_predict(m, argv[2], &score2, NULL, 0, 0) == 0);
  for (int i = 0; i < h * w; i++) CHECK(map[i] >= 0 && map[i] <= 1);

  /* pixels in memory: gray and RGB of the same content give the same score */
  int H = 40, W = 50;
  uint8_t *gray = malloc((size_t)H * W), *rgb = malloc((size_t)H * W * 3);
  for (int i = 0; i < H * W; i++) {
    gray[i] = (uint8_t)((i * 7) % 251);
    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i];
  }
  float *pmap = malloc((size_t)H * W * sizeof *pmap);
  float sg = -1, sr = -1;
  CHECK(rn_model_predict_rgb(m, gray, H, W, 1, &sg, pmap) == 0);
  CHECK(rn_model_predict_rgb(m, rgb, H, W, 3, &sr, NULL) == 0);
  CHECK(fabsf(sg - sr) < 1e-6f);
  CHECK(isfinite(pmap[0]) && isfinite(pmap[H * W - 1]));

  /* bad input: clear errors, no crash */
  CHECK(rn_model_predict_rgb(m, rgb, H, W, 5, &sr, NULL) == -1);
  CHECK(strstr(rn_model_error(m), "5 channels") != NULL);
  CHECK(rn_model_predict_rgb(m, rgb, 0, W, 3, &sr, NULL) == -1);
  CHECK(strstr(rn_model_error(m), "size") != NULL);
  CHECK(rn_model_predict(m, "/nonexistent.png", &sr, NULL, 0, 0) == -1);
  CHECK(strstr(rn_model_error(m), "/nonexistent.png") != NULL);
  CHECK(rn_model_predict(m, argv[2], &sr, map, 5, 0) == -1);
  CHECK(rn_model_predict(m, NULL, &sr, NULL, 0, 0) == -1);
  /* the model still works after errors */
  CHECK(rn_model_predict(m, argv[2], &score2, NULL, 0, 0) == 0 && fabsf(score - score2) < 1e-6f);

  free(map); free(small); free(gray); free(rgb); free(pmap);
  rn_model_free(m);
  rn_model_free(NULL);
  if (failures) { fprintf(stderr, "test_capi: %d failures\n", failures); return 1; }
  printf("test_capi: ok\n");
  return 0;
}
