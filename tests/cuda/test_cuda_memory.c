/* test_cuda_memory.c - device tensors: allocation through the caching allocator, host<->device round trips of
 * every dtype, strided and cross-dtype copies on the device, fill, rn_to_device, and clear errors for a
 * missing device and an impossible allocation. Exact comparisons (copies change no bits; float -> integer
 * conversion follows the CPU's rules). */
#include "cuda_check.h"

static void round_trips(void) {
  int64_t shape[3] = {3, 5, 7};
  rn_tensor *x = test_randn(3, shape, 1, 10.0f);
  for (int dt = 0; dt < RN_DTYPE_COUNT; dt++) {
    rn_tensor *c = NULL, *g = NULL, *back = NULL;
    CHECK_OK(rn_to_dtype(&c, x, (rn_dtype)dt));
    CHECK_OK(rn_to_device(&g, c, GPU));
    CHECK(g && rn_tensor_device(g).type == RN_CUDA && g->dtype == (rn_dtype)dt);
    CHECK(g && rn_tensor_data(g) == NULL); /* no host pointer for device tensors */
    CHECK_OK(rn_to_device(&back, g, rn_cpu()));
    char what[64];
    snprintf(what, sizeof what, "round trip %s", rn_dtype_name((rn_dtype)dt));
    test_check_close(back, c, 0, 0, what);
    release_all(3, c, g, back);
  }
  rn_tensor_release(x);
}

/* Copies on the device between views and dtypes, against the same copies on the CPU. */
static void device_copies(void) {
  int64_t shape[3] = {4, 6, 9};
  rn_tensor *x = test_randn(3, shape, 2, 300.0f), *g = to_gpu(x);
  int perm[3] = {2, 0, 1};
  rn_tensor *xp = NULL, *gp = NULL, *xc = NULL, *gc = NULL;
  CHECK_OK(rn_permute(&xp, x, perm));
  CHECK_OK(rn_permute(&gp, g, perm));
  CHECK_OK(rn_clone(&xc, xp)); /* strided -> contiguous on each device */
  CHECK_OK(rn_clone(&gc, gp));
  agree_exact(gc, xc, "clone of a permuted view");
  for (int dt = 1; dt < RN_DTYPE_COUNT; dt++) { /* float -> uint8 saturates, -> int truncates */
    rn_tensor *a = NULL, *b = NULL;
    CHECK_OK(rn_to_dtype(&a, xp, (rn_dtype)dt));
    CHECK_OK(rn_to_dtype(&b, gp, (rn_dtype)dt));
    agree_exact(b, a, "strided float32 -> integer conversion");
    release_all(2, a, b);
  }
  /* narrow (offset view) + copy_ into a strided destination on the device */
  rn_tensor *xn = NULL, *gn = NULL, *xd = NULL, *gd = NULL, *xdt = NULL, *gdt = NULL;
  CHECK_OK(rn_narrow(&xn, x, 1, 2, 3));
  CHECK_OK(rn_narrow(&gn, g, 1, 2, 3));
  int64_t dshape[3] = {4, 9, 3};
  xd = new_on(rn_cpu(), 3, dshape, RN_F32, true);
  gd = new_on(GPU, 3, dshape, RN_F32, true);
  CHECK_OK(rn_transpose(&xdt, xd, 1, 2));
  CHECK_OK(rn_transpose(&gdt, gd, 1, 2));
  CHECK_OK(rn_copy_(xdt, xn));
  CHECK_OK(rn_copy_(gdt, gn));
  agree_exact(gd, xd, "copy_ of an offset view into a transposed view");
  /* host -> device into a strided destination, device -> host from a strided source */
  rn_tensor *h = NULL;
  CHECK_OK(rn_copy_(gdt, xn));
  agree_exact(gd, xd, "copy_ host to strided device view");
  CHECK_OK(rn_clone(&h, xdt));
  CHECK_OK(rn_copy_(h, gdt));
  test_check_close(h, xdt, 0, 0, "copy_ strided device view to host");
  release_all(12, x, g, xp, gp, xc, gc, xn, gn, xd, gd, xdt, gdt);
  rn_tensor_release(h);
}

static void fills(void) {
  int64_t shape[2] = {33, 65};
  for (int dt = 0; dt < RN_DTYPE_COUNT; dt++) {
    rn_tensor *c = new_on(rn_cpu(), 2, shape, (rn_dtype)dt, false), *g = new_on(GPU, 2, shape, (rn_dtype)dt, false);
    CHECK_OK(KC->fill(c, 300.7));
    CHECK_OK(KG->fill(g, 300.7));
    agree_exact(g, c, "fill (uint8 saturates)");
    rn_tensor *cv = NULL, *gv = NULL; /* a strided (transposed) view of the whole tensor */
    CHECK_OK(rn_transpose(&cv, c, 0, 1));
    CHECK_OK(rn_transpose(&gv, g, 0, 1));
    CHECK_OK(KC->fill(cv, -2.0));
    CHECK_OK(KG->fill(gv, -2.0));
    agree_exact(g, c, "fill of a transposed view");
    release_all(4, c, g, cv, gv);
  }
}

static void allocator_and_errors(void) {
  /* a freed block is kept and handed out again */
  int64_t shape[1] = {1 << 20};
  rn_tensor *t = new_on(GPU, 1, shape, RN_F32, false);
  size_t before = rn_cuda_cached_bytes();
  rn_tensor_release(t);
  CHECK(rn_cuda_cached_bytes() >= before + ((size_t)4 << 20));
  t = new_on(GPU, 1, shape, RN_F32, false);
  CHECK(rn_cuda_cached_bytes() == before);
  rn_tensor_release(t);
  rn_cuda_empty_cache();
  CHECK(rn_cuda_cached_bytes() == 0);
  /* empty tensors */
  int64_t zero[2] = {0, 5};
  rn_tensor *e = new_on(GPU, 2, zero, RN_F32, true), *eb = NULL;
  CHECK_OK(rn_to_device(&eb, e, rn_cpu()));
  CHECK(eb && rn_tensor_numel(eb) == 0);
  release_all(2, e, eb);
  /* a device that is not there, an allocation that cannot succeed: errors, not aborts */
  rn_tensor *bad = NULL;
  rn_device far = {RN_CUDA, 99};
  CHECK_ERR(rn_tensor_empty(&bad, 1, shape, RN_F32, far), RN_ERR_DEVICE, "cuda:99");
  int64_t huge[2] = {1LL << 24, 1LL << 24}; /* 1 PiB */
  rn_status st = rn_tensor_empty(&bad, 2, huge, RN_F32, GPU);
  CHECK(st == RN_ERR_OOM && strstr(rn_last_error(), "cudaMalloc"));
  CHECK(bad == NULL);
  /* the device still works after the failed allocation */
  rn_tensor *x = test_randn(1, shape, 3, 1.0f), *g = to_gpu(x);
  agree_exact(g, x, "round trip after an out-of-memory error");
  release_all(2, x, g);
  CHECK_OK(rn_cuda_synchronize(0));
  CHECK_ERR(rn_cuda_synchronize(99), RN_ERR_DEVICE, "cuda:99");
  CHECK(rn_backend_for(GPU)->device_count(rn_backend_for(GPU)) == rn_cuda_device_count());
}

static void arange_on_device(void) {
  rn_tensor *c = NULL, *g = NULL;
  CHECK_OK(rn_arange(&c, 0, 10, 0.5, RN_F32, rn_cpu()));
  CHECK_OK(rn_arange(&g, 0, 10, 0.5, RN_F32, GPU));
  agree_exact(g, c, "arange on the device");
  release_all(2, c, g);
}

int main(void) {
  int skip = cuda_begin("memory");
  if (skip) return skip;
  round_trips();
  device_copies();
  fills();
  allocator_and_errors();
  arange_on_device();
  return test_finish("cuda memory");
}
