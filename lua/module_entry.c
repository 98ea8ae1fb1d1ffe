/* module_entry.c - luaopen_realnet_core: builds the table `require "realnet.core"` returns. The tensor
 * metatable comes first: the other parts add their methods to it. */
#include "binding.h"

int luaopen_realnet_core(lua_State *L) {
  lua_newtable(L);
  rn_lua_open_tensor(L);
  rn_lua_open_rng(L);
  rn_lua_open_ops(L);
  rn_lua_open_nn(L);
  rn_lua_open_autograd(L);
  rn_lua_open_optim(L);
  rn_lua_open_state(L);
  rn_lua_open_sys(L);
  rn_lua_open_bench(L);
  rn_lua_open_image(L);
  rn_lua_open_h5(L);
  rn_lua_open_backbone(L);
  rn_lua_open_data(L);
  rn_lua_open_synth(L);
  rn_lua_open_metrics(L);
  rn_lua_open_tty(L);
  rn_lua_open_rrs(L);
  rn_lua_open_demo(L);
  rn_lua_open_patchcore(L);
  rn_lua_open_sdas(L);
  rn_lua_open_cuda(L);
  rn_lua_open_select(L);
  rn_lua_open_nccl(L);
  return 1;
}
