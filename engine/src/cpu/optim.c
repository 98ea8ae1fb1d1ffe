/* optim.c - the fused Adam/AdamW update on the CPU. */
#include "cpu_kernels.h"

rn_status rn_cpu_adam_step(rn_tensor *p, const rn_tensor *g, rn_tensor *m, rn_tensor *v, float lr, float beta1,
                           float beta2, float eps, float weight_decay, int64_t step, bool decoupled) {
  float *pp = rn_f32(p), *mp = rn_f32(m), *vp = rn_f32(v);
  const float *gp = rn_f32(g);
  int64_t n = rn_tensor_numel(p);
  double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
  float step_size = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
  float decay = decoupled ? 1.0f - lr * weight_decay : 1.0f, l2 = decoupled ? 0.0f : weight_decay;
  #pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; i++) {
    float gi = gp[i] + l2 * pp[i];
    mp[i] = beta1 * mp[i] + (1.0f - beta1) * gi;
    vp[i] = beta2 * vp[i] + (1.0f - beta2) * gi * gi;
    pp[i] = pp[i] * decay - step_size * mp[i] / (sqrtf(vp[i]) * inv_sqrt_bc2 + eps);
  }
  return RN_OK;
}
