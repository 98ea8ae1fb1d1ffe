/* predict.c - the deployment API in a few lines: score images with a trained model.
 *
 *   realnet-predict-example RUNDIR|MODEL.h5 IMAGE...
 *
 * Prints "path score label" per image (label: 1 when score >= the model's threshold) and the map's maximum.
 * Exit status: 0 all scored, 1 on an error. Build: the CMake target realnet_predict_example. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "realnet_model.h"

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s RUNDIR|MODEL.h5 IMAGE...\n", argv[0]);
    return 1;
  }
  char err[1024];
  rn_model *m = rn_model_load(argv[1], err, sizeof err);
  if (!m) {
    fprintf(stderr, "error: %s\n", err);
    return 1;
  }
  float thr = rn_model_threshold(m);
  printf("# %s model, input %dx%d, threshold %g\n", rn_model_method(m), rn_model_input_size(m),
         rn_model_input_size(m), thr);
  int status = 0;
  for (int i = 2; i < argc; i++) {
    int h = 0, w = 0;
    float score = 0;
    if (rn_model_image_dims(m, argv[i], &h, &w) != 0) {
      fprintf(stderr, "error: %s\n", rn_model_error(m));
      status = 1;
      continue;
    }
    float *map = malloc((size_t)h * w * sizeof *map);
    if (!map || rn_model_predict(m, argv[i], &score, map, 0, 0) != 0) {
      fprintf(stderr, "error: %s\n", map ? rn_model_error(m) : "out of memory");
      free(map);
      status = 1;
      continue;
    }
    float peak = -INFINITY;
    for (long k = 0; k < (long)h * w; k++) peak = map[k] > peak ? map[k] : peak;
    printf("%s %.6f %d map %dx%d max %.6f\n", argv[i], score, !isnan(thr) && score >= thr, h, w, peak);
    free(map);
  }
  rn_model_free(m);
  return status;
}
