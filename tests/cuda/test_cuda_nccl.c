/* test_cuda_nccl.c - gradient averaging through NCCL over every local GPU (one rank each): tensor i on device d
 * holds (d + 1) * (i + 1) before and the mean over devices, (i + 1) * (n + 1) / 2, after. With one GPU this still
 * exercises the communicator, the grouped all-reduce on the device stream and the checks. Skipped without a GPU
 * or without NCCL in the build. Tolerance 1e-6 relative (an average of small integers). */
#include "cuda_check.h"
#include "cuda/nccl_api.h"

int main(void) {
  int skip = cuda_begin("nccl");
  if (skip) return skip;
  if (!rn_nccl_built()) return test_skip("cuda nccl: this build has no NCCL");
  int n = rn_cuda_device_count(), devices[16];
  if (n > 16) n = 16;
  for (int d = 0; d < n; d++) devices[d] = d;
  rn_nccl *c = NULL;
  CHECK_OK(rn_nccl_new_local(&c, n, devices));
  if (!c) return test_finish("cuda nccl");
  CHECK(rn_nccl_local_count(c) == n);
  enum { P = 3 };
  int64_t shapes[P][2] = {{7, 5}, {1000, 3}, {1, 1}};
  rn_tensor *t[16 * P];
  for (int d = 0; d < n; d++)
    for (int i = 0; i < P; i++) {
      rn_device dev = {RN_CUDA, d};
      CHECK_OK(rn_tensor_full(&t[d * P + i], 2, shapes[i], RN_F32, dev, (double)((d + 1) * (i + 1))));
    }
  CHECK_OK(rn_nccl_all_reduce_mean(c, P, t));
  for (int d = 0; d < n; d++)
    for (int i = 0; i < P; i++) {
      rn_tensor *want = NULL;
      CHECK_OK(rn_tensor_full(&want, 2, shapes[i], RN_F32, rn_cpu(), (i + 1) * (n + 1) / 2.0));
      agree(t[d * P + i], want, 0, 1e-6, "averaged tensor");
      rn_tensor_release(want);
    }
  /* a CPU tensor is refused with a message, not a crash */
  rn_tensor *cpu = NULL;
  CHECK_OK(rn_tensor_zeros(&cpu, 2, shapes[0], RN_F32, rn_cpu()));
  rn_tensor *bad[16 * P];
  for (int k = 0; k < n * P; k++) bad[k] = t[k];
  bad[0] = cpu;
  CHECK_ERR(rn_nccl_all_reduce_mean(c, P, bad), RN_ERR_DEVICE, "CUDA");
  rn_tensor_release(cpu);
  for (int k = 0; k < n * P; k++) rn_tensor_release(t[k]);
  rn_nccl_free(c);
  return test_finish("cuda nccl");
}
