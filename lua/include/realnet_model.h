/* realnet_model.h - the deployment API: load a trained model (RealNet or PatchCore) once, score images.
 *
 *   char err[512];
 *   rn_model *m = rn_model_load("runs/bottle", err, sizeof err);     // a run directory or its model.h5
 *   if (!m) { fprintf(stderr, "%s\n", err); return 1; }
 *   float score;
 *   if (rn_model_predict(m, "part.png", &score, NULL, 0, 0) != 0) fprintf(stderr, "%s\n", rn_model_error(m));
 *   int anomalous = score >= rn_model_threshold(m);
 *   rn_model_free(m);
 *
 * Implementation: each model embeds its own Lua 5.4 state with the realnet library loaded (the same code as
 * `realnet predict`, lua/realnet/predictor.lua), so images are prepared exactly as in training (gray and alpha
 * handling, bilinear resize to the model's input size, ImageNet normalisation). The Lua files are found
 * through $REALNET_HOME, else the source tree the library was built from, else the install prefix
 * (<prefix>/share/realnet). Link with the realnet_model library (CMake target realnet_model).
 *
 * Threads: a model is not thread-safe; use one model per thread (models share nothing). Errors: functions
 * return 0 on success and -1 on failure; rn_model_error(m) then names the file, size or channel count at
 * fault. No function exits or aborts the process.
 */
#ifndef REALNET_MODEL_H
#define REALNET_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rn_model rn_model;

/* Loads a model from a run directory (its model.h5) or a model file. Returns NULL on failure with the message
 * in err (errlen bytes, may be NULL/0). The caller frees the model with rn_model_free. */
rn_model *rn_model_load(const char *rundir_or_model, char *err, size_t errlen);

/* Scores an image file (PNG, JPEG, BMP; 8 or 16 bit; gray, gray+alpha, RGB, RGBA). *score gets the image
 * score. When map_out is not NULL it gets the anomaly map resized (bilinear) to map_h x map_w floats, row-major;
 * map_h = map_w = 0 means the image's own size (query it first with rn_model_image_dims). */
int rn_model_predict(rn_model *m, const char *image_path, float *score, float *map_out, int map_h, int map_w);

/* Scores pixels in memory: h x w x channels uint8, row-major, channels 1 (gray), 2 (gray+alpha), 3 (RGB) or
 * 4 (RGBA). map_out (may be NULL) gets h x w floats. */
int rn_model_predict_rgb(rn_model *m, const uint8_t *pixels, int h, int w, int channels, float *score,
                         float *map_out);

/* The height and width of an image file without scoring it (for sizing map_out). */
int rn_model_image_dims(rn_model *m, const char *image_path, int *h, int *w);

/* The image threshold stored in the model (a quantile of held-out normal training images' scores; NaN when the
 * file has none): score >= threshold means anomalous. */
float rn_model_threshold(const rn_model *m);
/* The model's input side in pixels (images are resized to it). */
int rn_model_input_size(const rn_model *m);
/* "realnet" or "patchcore". */
const char *rn_model_method(const rn_model *m);
/* The message of the last failed call on m ("" when none); valid until the next call on m. */
const char *rn_model_error(const rn_model *m);
/* Frees the model and its Lua state; NULL is allowed. */
void rn_model_free(rn_model *m);

#ifdef __cplusplus
}
#endif

#endif
