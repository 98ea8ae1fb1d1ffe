/* image.h - reading, writing, resizing and colouring images (PNG, JPEG, BMP in; PNG, float TIFF out).
 *
 *   rn_tensor *img = NULL, *small = NULL, *x = NULL;
 *   if (rn_image_read(&img, "cat.png", NULL) != RN_OK) fprintf(stderr, "%s\n", rn_last_error());
 *   rn_image_resize(&small, img, 224, 224, RN_RESIZE_BILINEAR);   // uint8 [224,224,3], like PIL
 *   rn_image_normalize_imagenet(&x, small);                        // float32 [3,224,224]
 *   rn_tensor_release(x); rn_tensor_release(small); rn_tensor_release(img);
 *
 * Layout: decoded images are contiguous CPU tensors [H,W,C] with C = 1 (gray), 2 (gray+alpha), 3 (RGB) or
 * 4 (RGBA) as stored, or C forced to 1 or 3 through rn_image_opts.channels. 8-bit data decodes to uint8;
 * 16-bit PNGs decode to int32 holding the true values 0..65535 (so the dtype alone tells the range).
 * The decoder is chosen from the first bytes, never the file name (datasets ship JPEG or BMP data under
 * .png names). Images with more than opts.max_pixels pixels are refused before any pixel memory is
 * allocated. Every error names the file (or the `what` given for in-memory data): RN_ERR_IO when a file
 * cannot be read or written, RN_ERR_FORMAT for malformed content, RN_ERR_UNSUPPORTED for valid files this
 * build does not decode (RLE BMP, TIFF through rn_image_read).
 * Writers are atomic: they write a temporary file in the target's directory and rename it over the target.
 * Ownership as in tensor.h: every rn_tensor **out receives a new reference. All functions are reentrant.
 */
#ifndef REALNET_IMAGE_H
#define REALNET_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

typedef enum { RN_IMAGE_UNKNOWN = 0, RN_IMAGE_PNG, RN_IMAGE_JPEG, RN_IMAGE_BMP, RN_IMAGE_TIFF } rn_image_format;

#define RN_IMAGE_MAX_PIXELS ((int64_t)1 << 28) /* default refusal limit (width * height) */

typedef struct {
  int channels;           /* 0: as stored; 1: gray (PIL "L" weights, alpha dropped); 3: RGB (alpha dropped) */
  int64_t max_pixels;     /* refuse larger images; <= 0 means RN_IMAGE_MAX_PIXELS */
  rn_image_format format; /* RN_IMAGE_UNKNOWN: sniff the first bytes; otherwise require this format */
} rn_image_opts;

/* Defaults: channels as stored, RN_IMAGE_MAX_PIXELS, format sniffed. A NULL opts pointer means these. */
rn_image_opts rn_image_opts_default(void);

/* The format the first bytes announce (RN_IMAGE_UNKNOWN when none); "png", "jpeg", "bmp", "tiff", "unknown". */
rn_image_format rn_image_sniff(const void *bytes, size_t n);
const char *rn_image_format_name(rn_image_format f);

/* Decodes an in-memory file; `what` names it in messages (NULL: "<memory>"). The bytes are only read. */
rn_status rn_image_decode(rn_tensor **out, const void *bytes, size_t n, const rn_image_opts *opts, const char *what);
/* Reads and decodes the file at `path`. */
rn_status rn_image_read(rn_tensor **out, const char *path, const rn_image_opts *opts);

/* uint8 (/255) or int32 16-bit (/65535) [H,W,C] or [H,W] -> float32 [C,H,W] in [0,1]. */
rn_status rn_image_to_float(rn_tensor **out, const rn_tensor *img);
/* ImageNet normalisation as torchvision's ToTensor + Normalize: ((v/255) - mean) / std in float32 with
 * mean 0.485,0.456,0.406 and std 0.229,0.224,0.225. Accepts uint8 [H,W,C] (C = 1 is replicated, alpha
 * dropped) or float32 [3,H,W] already in [0,1]; returns float32 [3,H,W]. */
rn_status rn_image_normalize_imagenet(rn_tensor **out, const rn_tensor *img);

/* Channel conversions of uint8 or int32 [H,W,C] / [H,W] images, as PIL's convert: gray = (19595 R +
 * 38470 G + 7471 B + 32768) >> 16 (PIL's fixed-point 299/587/114), alpha dropped, gray replicated. */
rn_status rn_image_to_gray(rn_tensor **out, const rn_tensor *img); /* -> [H,W,1] */
rn_status rn_image_to_rgb(rn_tensor **out, const rn_tensor *img);  /* -> [H,W,3] */

typedef enum { RN_RESIZE_NEAREST = 0, RN_RESIZE_BILINEAR } rn_resize_filter;

/* PIL's Image.resize: bilinear is PIL's separable triangle filter, antialiased when downscaling (support
 * grows with the scale), horizontal pass first; uint8 uses PIL's 22-bit fixed-point coefficients and
 * rounding (results equal PIL's), float32 uses double coefficients like PIL's "F" mode. Nearest takes
 * source pixel floor((i + 0.5) * in / out) as PIL does. Channels are filtered independently (PIL
 * premultiplies alpha for RGBA; we do not). img: uint8 or float32 [H,W] or [H,W,C]. */
rn_status rn_image_resize(rn_tensor **out, const rn_tensor *img, int64_t out_h, int64_t out_w, rn_resize_filter f);
/* The same on float32 [..., H, W] (e.g. [C,H,W] or [N,C,H,W]), each plane resized like PIL's "F" mode. */
rn_status rn_image_resize_planes(rn_tensor **out, const rn_tensor *x, int64_t out_h, int64_t out_w,
                                 rn_resize_filter f);

/* Viridis heat map: float32 [H,W] (or [1,H,W], [H,W,1]) -> uint8 [H,W,3]. Values are mapped linearly from
 * [lo,hi] to the 256-entry table and clamped; lo >= hi (e.g. 0,0) uses the map's finite min and max.
 * NaN maps to the lowest colour. */
rn_status rn_image_colormap(rn_tensor **out, const rn_tensor *map, double lo, double hi);

typedef struct {
  double lo, hi;      /* heat map range for the colours; lo >= hi: the map's min and max */
  double threshold;   /* predicted mask = heat >= threshold (raw units); NaN: midpoint of the range */
  double heat_alpha;  /* weight of the colour map over the image in the heat panel (1: colours only) */
  int gap;            /* white pixels between panels */
} rn_overlay_opts;

rn_overlay_opts rn_overlay_opts_default(void); /* lo = hi = 0, threshold NaN, heat_alpha 0.5, gap 4 */

/* Four panels side by side, uint8 [H, 4W + 3 gap, 3]: image | ground truth (white on black) | heat map
 * over the image | image with the predicted mask's contour (red) and the ground truth's (green).
 * img: uint8 or int32 [H,W,C] / [H,W]. gt: NULL or uint8 (>= 128) / float32 (>= 0.5) [H,W] or [H,W,1]; resized
 * (nearest) when its size differs. heat: float32 [H,W] (also [1,H,W]); resized (bilinear) when needed. */
rn_status rn_image_overlay(rn_tensor **out, const rn_tensor *img, const rn_tensor *gt, const rn_tensor *heat,
                           const rn_overlay_opts *opts);
rn_status rn_image_write_overlay(const char *path, const rn_tensor *img, const rn_tensor *gt,
                                 const rn_tensor *heat, const rn_overlay_opts *opts);

/* PNG: uint8 [H,W] or [H,W,C] (C = 1..4) as 8-bit gray / gray+alpha / RGB / RGBA; int32 [H,W] or
 * [H,W,1] with values in 0..65535 as 16-bit gray. Atomic. */
rn_status rn_image_write_png(const char *path, const rn_tensor *img);
/* TIFF: float32 [H,W] (also [1,H,W], [H,W,1]) as one 32-bit IEEE float sample per pixel. Atomic. */
rn_status rn_image_write_tiff(const char *path, const rn_tensor *map);
/* Reads a single-channel TIFF (float32, uint8 or uint16 samples, stripped) into float32 [H,W]. */
rn_status rn_image_read_tiff(rn_tensor **out, const char *path);
/* Writes by the path's extension: .png as rn_image_write_png, .tif/.tiff as rn_image_write_tiff. */
rn_status rn_image_write(const char *path, const rn_tensor *img);

#endif
