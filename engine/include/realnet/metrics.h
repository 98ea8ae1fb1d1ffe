/* metrics.h - anomaly-detection metrics: AUROC, AU-PRO (MVTec definition and RealNet's variant), F1-max.
 *
 *   double auc, pro;
 *   if (rn_metric_auroc(&auc, scores, labels) != RN_OK) puts(rn_last_error());   // scores [N], labels [N]
 *   rn_pixel_metrics pm;
 *   rn_metric_pixel(&pm, maps, masks, 0.3);        // maps float [N,H,W], masks [N,H,W] (> 0 = defect)
 *
 * All curves are exact: scores are sorted once (no binning) and tied scores form one curve point, with 64-bit
 * integer counts. AUROC equals scikit-learn's roc_auc_score (ties count one half) and is returned as it is, also
 * below 0.5 (never flipped: the caller warns). AU-PRO follows the MVTec AD evaluation code (realnet.md 10.2a):
 * 8-connected ground-truth regions, descending sort, cumsum of FP and per-region overlap changes, last point of
 * each tie run, both curves clipped to 1 with (0,0) and (1,1) anchors, trapezoid to `limit` with the
 * interpolated partial segment, divided by `limit`. Images without defects contribute OK pixels only.
 *
 * Inputs may be any dtype, device and strides (they are read through a contiguous CPU copy when needed).
 * Maps and masks are [H,W], [N,H,W] or [N,1,H,W] with equal N, H, W; labels and masks count as positive
 * where > 0. Errors (RN_ERR_ARG / RN_ERR_SHAPE, message naming the metric): empty input, shape mismatch,
 * NaN or infinite scores (with their count), NaN labels, only one class present, no defect region or no OK
 * pixel (AU-PRO), a limit outside (0, 1]. Threading: no shared state; callable from any thread.
 */
#ifndef REALNET_METRICS_H
#define REALNET_METRICS_H

#include <stdint.h>

#include "tensor.h"

/* AUROC of scores against binary labels (same number of elements). */
rn_status rn_metric_auroc(double *auroc, rn_tensor *scores, rn_tensor *labels);

/* The best F1 over all thresholds of the exact precision-recall curve, and the threshold reaching it
 * (predicted positive: score >= threshold; among equal F1 values the lowest threshold, as argmax over
 * scikit-learn's precision_recall_curve gives). */
rn_status rn_metric_f1_max(double *f1, double *threshold, rn_tensor *scores, rn_tensor *labels);

/* MVTec AU-PRO of anomaly maps against ground-truth masks, integrated to FPR `limit` (0.3 usual) / limit. */
rn_status rn_metric_aupro(double *aupro, rn_tensor *maps, rn_tensor *masks, double limit);

/* RealNet's PRO variant (realnet.md 10.1, utils/eval_helper.py EvalPixelPro), for comparison with the paper:
 * `steps` float32 thresholds max - s*(max-min)/steps (s = 0..steps-1; 1000 in RealNet), binary = score > thr,
 * per-region overlap |binary & hole-filled region| / area (filled with 8-connected background), mean over all
 * regions, FPR over non-defect pixels, points with FPR <= limit, FPRs min-max rescaled, trapezoid.
 * *pro is NaN when the selected FPRs are all equal (the reference divides 0 by 0 there). */
rn_status rn_metric_pro_realnet(double *pro, rn_tensor *maps, rn_tensor *masks, int steps, double limit);

/* Pixel-level metrics of one pass (one sort of all pixels). */
typedef struct {
  double auroc;            /* pixel AUROC */
  double aupro;            /* MVTec AU-PRO to `limit` */
  double f1_max;           /* pixel F1-max */
  double f1_threshold;     /* the score reaching it */
  int64_t n_pixels;        /* all pixels */
  int64_t n_defect_pixels; /* mask > 0 */
  int64_t n_regions;       /* 8-connected defect regions over all images */
  int64_t n_defect_images; /* images with at least one defect pixel */
} rn_pixel_metrics;

rn_status rn_metric_pixel(rn_pixel_metrics *out, rn_tensor *maps, rn_tensor *masks, double limit);

/* Image labels from masks as RealNet derives them: a new uint8 [N] tensor, 1 where the mask has a pixel > 0. */
rn_status rn_metric_image_labels(rn_tensor **out, rn_tensor *masks);

/* 8-connected component labelling of a binary h x w mask (non-zero = foreground) by two-pass union-find:
 * labels[i] = 0 for background, 1..*count for regions, numbered in raster order of their first pixel. */
rn_status rn_label_regions8(int32_t *labels, const uint8_t *mask, int64_t h, int64_t w, int64_t *count);

#endif
