/* bind_tty.c - host helpers of the CLI toolkit (realnet.progress, realnet.rundir) that stock Lua lacks:
 * whether a stream is a terminal, the terminal's width, and making a directory. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lualib.h>

#include "bind_internal.h"

/* The descriptor at arg: an integer, or a Lua file handle (io.stdout); -1 for a closed handle. */
static int check_fd(lua_State *L, int arg) {
  luaL_Stream *s = (luaL_Stream *)luaL_testudata(L, arg, LUA_FILEHANDLE);
  if (s) return (s->closef == NULL || s->f == NULL) ? -1 : fileno(s->f);
  lua_Integer fd = luaL_checkinteger(L, arg);
  if (fd < 0 || fd > 1 << 20) luaL_argerror(L, arg, "file descriptor out of range");
  return (int)fd;
}

/* isatty(fd | file) -> boolean */
static int y_isatty(lua_State *L) {
  int fd = check_fd(L, 1);
  lua_pushboolean(L, fd >= 0 && isatty(fd));
  return 1;
}

/* term_width(fd | file) -> columns, or nil when it is not a terminal */
static int y_term_width(lua_State *L) {
  int fd = check_fd(L, 1);
  struct winsize ws;
  if (fd < 0 || ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) { lua_pushnil(L); return 1; }
  lua_pushinteger(L, ws.ws_col);
  return 1;
}

/* mkdir(path) -> true, or nil, msg (one level; an existing directory counts as success) */
static int y_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (mkdir(path, 0777) == 0 || (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
    lua_pushboolean(L, 1);
    return 1;
  }
  int err = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "cannot create directory %s: %s", path, err == EEXIST ? "a file is in the way" : strerror(err));
  return 2;
}

static const luaL_Reg fns[] = {
  {"isatty", y_isatty}, {"term_width", y_term_width}, {"mkdir", y_mkdir}, {NULL, NULL}};

void rn_lua_open_tty(lua_State *L) { rn_lua_register(L, fns, 0); }
