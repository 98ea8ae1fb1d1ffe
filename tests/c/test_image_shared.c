/* test_image_shared.c - the real images of ../shared/data (skipped when absent): the photos decode, and
 * their PIL bilinear resizes (checksums computed once with PIL 9.4) are reproduced exactly; a magnetic tile
 * category decodes with masks of the images' sizes; an overlay of a real image is written. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "realnet/image.h"
#include "testutil.h"

static int64_t u8_sum(const rn_tensor *t) {
  const uint8_t *d = rn_tensor_data(t);
  int64_t s = 0, n = rn_tensor_numel(t);
  for (int64_t i = 0; i < n; i++) s += d[i];
  return s;
}

/* PIL: Image.open(p).resize((w, h), Image.BILINEAR); sum of all samples and the sample at (100,100,0). */
static void photo(const char *rel, int64_t h0, int64_t w0, int c0, int64_t h, int64_t w, int64_t want_sum,
                  int want_px) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", SHARED_DIR, rel);
  rn_tensor *img = NULL, *r = NULL;
  if (!CHECK_OK(rn_image_read(&img, p, NULL))) return;
  CHECK(img->shape[0] == h0 && img->shape[1] == w0 && img->shape[2] == c0);
  if (CHECK_OK(rn_image_resize(&r, img, h, w, RN_RESIZE_BILINEAR))) {
    int64_t s = u8_sum(r);
    printf("%s: resized sum %lld (PIL %lld)\n", rel, (long long)s, (long long)want_sum);
    CHECK(s == want_sum);
    CHECK(((uint8_t *)rn_tensor_data(r))[(100 * w + 100) * c0] == want_px);
  }
  rn_tensor_release(r);
  rn_tensor_release(img);
}

static void tiles(void) {
  char dir[1024], p[2400], q[2400];
  snprintf(dir, sizeof dir, "%s/data/magnetic_tile/test/crack", SHARED_DIR);
  DIR *d = opendir(dir);
  if (!CHECK(d != NULL)) return;
  struct dirent *e;
  int n = 0, ok = 1;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".png") != 0) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    snprintf(q, sizeof q, "%s/data/magnetic_tile/ground_truth/crack/%.*s_mask.png", SHARED_DIR, (int)(len - 4),
             e->d_name);
    rn_tensor *img = NULL, *gt = NULL;
    rn_image_opts o = rn_image_opts_default();
    o.channels = 3;
    if (rn_image_read(&img, p, &o) != RN_OK || rn_image_read(&gt, q, NULL) != RN_OK) {
      ok = 0;
      fprintf(stderr, "  %s\n", rn_last_error());
    } else {
      ok &= img->shape[2] == 3 && gt->shape[2] == 1 && img->shape[0] == gt->shape[0] && img->shape[1] == gt->shape[1];
    }
    rn_tensor_release(img);
    rn_tensor_release(gt);
    n++;
  }
  closedir(d);
  printf("magnetic_tile/test/crack: %d images with masks decoded\n", n);
  CHECK(ok && n > 0);
}

static void real_overlay(void) {
  char p[1024], q[1024], out[] = "/tmp/rn_image_shared_XXXXXX";
  snprintf(p, sizeof p, "%s/data/magnetic_tile/test/crack/000.png", SHARED_DIR);
  snprintf(q, sizeof q, "%s/data/magnetic_tile/ground_truth/crack/000_mask.png", SHARED_DIR);
  rn_tensor *img = NULL, *gt = NULL, *heat = NULL, *x = NULL, *back = NULL;
  if (!CHECK_OK(rn_image_read(&img, p, NULL)) || !CHECK_OK(rn_image_read(&gt, q, NULL))) goto done;
  /* a fake anomaly map: the mask, blurred by a down/up resize in float */
  CHECK_OK(rn_image_to_float(&x, gt));
  rn_tensor *small = NULL;
  if (x && CHECK_OK(rn_image_resize_planes(&small, x, 16, 16, RN_RESIZE_BILINEAR)))
    CHECK_OK(rn_image_resize_planes(&heat, small, img->shape[0], img->shape[1], RN_RESIZE_BILINEAR));
  rn_tensor_release(small);
  int fd = mkstemp(out);
  if (fd >= 0) close(fd);
  if (heat && CHECK_OK(rn_image_write_overlay(out, img, gt, heat, NULL)) && CHECK_OK(rn_image_read(&back, out, NULL)))
    CHECK(back->shape[0] == img->shape[0] && back->shape[1] == 4 * img->shape[1] + 12);
  unlink(out);
done:
  rn_tensor_release(back);
  rn_tensor_release(x);
  rn_tensor_release(heat);
  rn_tensor_release(gt);
  rn_tensor_release(img);
}

int main(void) {
  struct stat sb;
  char p[1024];
  snprintf(p, sizeof p, "%s/data", SHARED_DIR);
  if (stat(p, &sb) != 0) return test_skip("../shared/data is absent");
  photo("data/photos/chelsea.png", 300, 451, 3, 224, 224, 17356379, 64);
  photo("data/magnetic_tile/train/good/000.png", 369, 357, 1, 256, 256, 8780031, 147);
  tiles();
  real_overlay();
  return test_finish("image_shared");
}
