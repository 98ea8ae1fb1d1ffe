/* realnet_main.c - the `realnet` binary: a Lua 5.4 interpreter with realnet preloaded.
 *
 *   realnet                      REPL (line editing, history, tab completion of names, auto-printed values)
 *   realnet run FILE [args]      run a script with `arg` as in `lua`; a file that returns a table is a recipe
 *                                and runs through require("realnet.recipe").main (lua/realnet/recipe.lua)
 *   realnet -e CODE [args]       run a chunk
 *   realnet -i FILE [args]       run a script (or a recipe, leaving `results`, `replot`, `compare`), then the REPL
 *   realnet --version | help
 *   realnet NAME [args]          run scripts/NAME.lua (every subcommand is a readable Lua script)
 *
 * The Lua library and scripts come from $REALNET_HOME, else the source tree this binary was built from, else
 * <prefix>/share/realnet beside the binary, else the configured install directory. Errors print a traceback
 * to stderr and exit 1; an unknown subcommand exits 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lualib.h>

#include "binding.h"

static const char *home;       /* where lua/, scripts/ and recipes/ live */
static lua_State *repl_state;  /* for tab completion */

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* <prefix>/share/realnet next to <prefix>/bin/realnet, so an install moved with --prefix still works. */
static const char *exe_relative_home(void) {
  static char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 32);
  if (n <= 0) return NULL;
  buf[n] = '\0';
  for (int up = 0; up < 2; up++) { /* strip "/realnet" then "/bin" */
    char *slash = strrchr(buf, '/');
    if (!slash) return NULL;
    *slash = '\0';
  }
  strcat(buf, "/share/realnet");
  char probe[4200];
  snprintf(probe, sizeof probe, "%s/lua/realnet", buf);
  return is_dir(probe) ? buf : NULL;
}

static const char *find_home(void) {
  const char *env = getenv("REALNET_HOME");
  if (env && *env) return env;
  if (is_dir(REALNET_SOURCE_DIR "/lua/realnet")) return REALNET_SOURCE_DIR;
  const char *rel = exe_relative_home();
  return rel ? rel : REALNET_INSTALL_DIR;
}

/* ------------------------------------------------------------------ running chunks */

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int st = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return st;
}

static int report(lua_State *L, int st) {
  if (st != LUA_OK) {
    fprintf(stderr, "realnet: %s\n", lua_tostring(L, -1));
    fflush(stderr);
    lua_pop(L, 1);
  }
  return st;
}

/* The global `arg`: arg[0] = script, arg[1..] = args, arg[-1] = the binary. Returns the number of args pushed
 * as varargs for the chunk. */
static int set_args(lua_State *L, char **argv, int prog, const char *script, int first, int argc) {
  lua_createtable(L, argc - first, 2);
  lua_pushstring(L, argv[prog]);
  lua_rawseti(L, -2, -1);
  lua_pushstring(L, script);
  lua_rawseti(L, -2, 0);
  for (int i = first; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - first + 1);
  }
  lua_setglobal(L, "arg");
  return argc - first;
}

/* Runs a script. With `recipes` set, a script that returns a table is a recipe: the table goes to
 * require("realnet.recipe").main(table, path, interactive), which reads `arg` for its options and, when
 * interactive, leaves its results in the globals for the REPL. Plain scripts run as before. */
static int run_file(lua_State *L, const char *path, char **argv, int first, int argc, int recipes, int interactive) {
  set_args(L, argv, 0, path, first, argc);
  if (luaL_loadfile(L, path) != LUA_OK) return report(L, LUA_ERRSYNTAX);
  luaL_checkstack(L, argc - first + 4, "too many arguments");
  for (int i = first; i < argc; i++) lua_pushstring(L, argv[i]);
  int top = lua_gettop(L) - (argc - first) - 1;
  int st = docall(L, argc - first, 1);
  if (st != LUA_OK) return report(L, st);
  if (!recipes || !lua_istable(L, -1)) { lua_settop(L, top); return LUA_OK; }
  lua_getglobal(L, "require");
  lua_pushstring(L, "realnet.recipe");
  st = docall(L, 1, 1);
  if (st != LUA_OK) { report(L, st); lua_settop(L, top); return st; }
  lua_getfield(L, -1, "main");
  lua_pushvalue(L, -3); /* the recipe table */
  lua_pushstring(L, path);
  lua_pushboolean(L, interactive);
  st = report(L, docall(L, 3, 0));
  lua_settop(L, top);
  return st;
}

static int run_string(lua_State *L, const char *code, const char *name) {
  int st = luaL_loadbuffer(L, code, strlen(code), name);
  if (st == LUA_OK) st = docall(L, 0, 0);
  return report(L, st);
}

/* ------------------------------------------------------------------ REPL */

static char *history_path(void) {
  const char *p = getenv("REALNET_HISTORY");
  if (p && *p) return strdup(p);
  const char *h = getenv("HOME");
  if (!h) return NULL;
  size_t n = strlen(h) + 32;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s/.realnet_history", h);
  return s;
}

/* One line, without the newline; NULL at end of input. Prompts only on a terminal. */
static char *read_line(const char *prompt, int tty) {
  if (tty) return readline(prompt);
  size_t cap = 0;
  char *line = NULL;
  ssize_t n = getline(&line, &cap, stdin);
  if (n < 0) { free(line); return NULL; }
  if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
  return line;
}

static int incomplete(lua_State *L, int st) {
  if (st != LUA_ERRSYNTAX) return 0;
  size_t n;
  const char *msg = lua_tolstring(L, -1, &n);
  return n >= 5 && strcmp(msg + n - 5, "<eof>") == 0;
}

/* Compiles one input: first as `return <line>` (so expressions print), then as a statement, reading more
 * lines while the chunk is incomplete. Leaves the function (or an error message) on the stack. */
static int load_input(lua_State *L, char *line, int tty) {
  const char *ret = lua_pushfstring(L, "return %s;", line);
  int st = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
  if (st == LUA_OK) {
    lua_remove(L, -2);
    if (tty) add_history(line);
    return st;
  }
  lua_pop(L, 2);
  lua_pushstring(L, line); /* the chunk so far, below the compile result */
  for (;;) {
    size_t n;
    const char *code = lua_tolstring(L, -1, &n);
    st = luaL_loadbuffer(L, code, n, "=stdin");
    if (!incomplete(L, st)) break;
    lua_pop(L, 1);
    char *more = read_line(">> ", tty);
    if (!more) { st = luaL_loadbuffer(L, code, n, "=stdin"); break; }
    lua_pushfstring(L, "%s\n%s", lua_tostring(L, -1), more);
    lua_remove(L, -2);
    free(more);
  }
  if (tty) add_history(lua_tostring(L, -2));
  lua_remove(L, -2);
  return st;
}

/* Prints results tab-separated, through realnet.format when the library is loaded (tables show contents). */
static void print_results(lua_State *L, int n) {
  if (n <= 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  int first = lua_gettop(L) - n + 1;
  lua_getglobal(L, "realnet");
  int has_format = lua_istable(L, -1) && lua_getfield(L, -1, "format") == LUA_TFUNCTION;
  int fmt = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = first; i < first + n; i++) {
    if (i > first) luaL_addchar(&b, '\t');
    if (has_format && lua_type(L, i) == LUA_TTABLE) {
      lua_pushvalue(L, fmt);
      lua_pushvalue(L, i);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) { lua_pop(L, 1); luaL_tolstring(L, i, NULL); }
    } else {
      luaL_tolstring(L, i, NULL);
    }
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  puts(lua_tostring(L, -1));
  fflush(stdout);
}

/* ---- tab completion: names in the table reached by a dotted prefix (and a value's methods after ':') */

typedef struct { char **v; int n, cap; } strlist;

static void add_candidate(strlist *l, const char *s) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 64;
    char **v = realloc(l->v, (size_t)cap * sizeof *v);
    if (!v) return;
    l->v = v;
    l->cap = cap;
  }
  char *c = strdup(s);
  if (c) l->v[l->n++] = c;
}

static void add_keys(lua_State *L, int tbl, const char *head, const char *partial, strlist *out) {
  size_t pl = strlen(partial);
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      if (strncmp(k, partial, pl) == 0 && (pl > 0 || k[0] != '_')) {
        lua_pushfstring(L, "%s%s", head, k);
        add_candidate(out, lua_tostring(L, -1));
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
}

static void collect(lua_State *L, const char *text, strlist *out) {
  int top = lua_gettop(L);
  const char *sep = NULL;
  for (const char *p = text; *p; p++) if (*p == '.' || *p == ':') sep = p;
  if (!sep) {
    lua_pushglobaltable(L);
    add_keys(L, lua_gettop(L), "", text, out);
    lua_settop(L, top);
    return;
  }
  /* walk the dotted path before sep from the globals */
  lua_pushglobaltable(L);
  const char *p = text;
  while (p < sep) {
    const char *q = p;
    while (q < sep && *q != '.' && *q != ':') q++;
    if (!lua_istable(L, -1)) { lua_settop(L, top); return; }
    lua_pushlstring(L, p, (size_t)(q - p));
    lua_rawget(L, -2);
    lua_remove(L, -2);
    p = q + 1;
  }
  lua_pushlstring(L, text, (size_t)(sep - text + 1));
  const char *head = lua_tostring(L, -1);
  int val = lua_gettop(L) - 1;
  if (*sep == '.' && lua_istable(L, val)) add_keys(L, val, head, sep + 1, out);
  if (lua_getmetatable(L, val)) { /* methods of userdata and objects */
    if (lua_getfield(L, -1, "__index") == LUA_TTABLE) add_keys(L, lua_gettop(L), head, sep + 1, out);
  }
  lua_settop(L, top);
}

static char *completion_gen(const char *text, int state) {
  static strlist list;
  static int next;
  if (state == 0) {
    for (int i = next; i < list.n; i++) free(list.v[i]);
    list.n = 0;
    next = 0;
    if (repl_state) collect(repl_state, text, &list);
  }
  return next < list.n ? list.v[next++] : NULL; /* readline frees the returned strings */
}

static char **complete(const char *text, int start, int end) {
  rl_attempted_completion_over = 1; /* no file-name fallback */
  rl_completion_append_character = '\0';
  return rl_completion_matches(text, completion_gen);
}

static void repl(lua_State *L) {
  int tty = isatty(0);
  char *hist = NULL;
  if (tty) {
    hist = history_path();
    rl_readline_name = "realnet";
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,)}[]+-*/%^~#";
    rl_attempted_completion_function = complete;
    using_history();
    stifle_history(2000);
    if (hist) read_history(hist);
    printf("realnet %s (%s), rn = require \"realnet\"; Ctrl-D quits\n", REALNET_VERSION, LUA_RELEASE);
  }
  repl_state = L;
  lua_getglobal(L, "require");
  lua_pushstring(L, "realnet");
  if (report(L, docall(L, 1, 1)) == LUA_OK) {
    lua_pushvalue(L, -1);
    lua_setglobal(L, "rn");
    lua_setglobal(L, "realnet");
  }
  char *line;
  while ((line = read_line("> ", tty)) != NULL) {
    if (*line == '\0') { free(line); continue; }
    int top = lua_gettop(L);
    int st = load_input(L, line, tty);
    free(line);
    if (st == LUA_OK) st = docall(L, 0, LUA_MULTRET);
    if (st == LUA_OK) print_results(L, lua_gettop(L) - top);
    else report(L, st);
    lua_settop(L, top);
    if (hist) write_history(hist);
  }
  if (tty) putchar('\n');
  free(hist);
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f) {
  fprintf(f,
          "usage: realnet                    interactive REPL\n"
          "       realnet run FILE [args]    run a Lua script, or a recipe (a file returning a table)\n"
          "       realnet -e CODE [args]     run a chunk of Lua\n"
          "       realnet -i FILE [args]     run a script, then the REPL\n"
          "       realnet --version\n"
          "       realnet help               list the subcommands\n"
          "       realnet NAME [args]        run the subcommand scripts/NAME.lua\n");
}

static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  if (!L) return NULL;
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_realnet_core);
  lua_setfield(L, -2, "realnet.core");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s", home, home, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
  return L;
}

int main(int argc, char **argv) {
  home = find_home();
  setenv("REALNET_HOME", home, 0); /* scripts find scripts/ and recipes/ through it */
  lua_State *L = new_state();
  if (!L) { fprintf(stderr, "realnet: cannot create the Lua state (out of memory)\n"); return 1; }
  int st = LUA_OK, code = 0;
  const char *cmd = argc > 1 ? argv[1] : NULL;
  if (!cmd) {
    set_args(L, argv, 0, argv[0], argc, argc);
    repl(L);
  } else if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-v") == 0) {
    printf("realnet %s (%s)\n", REALNET_VERSION, LUA_RELEASE);
  } else if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
    usage(stdout);
  } else if (strcmp(cmd, "-e") == 0) {
    if (argc < 3) { fprintf(stderr, "realnet: -e needs a chunk of code\n"); code = 2; }
    else {
      set_args(L, argv, 0, "-e", 3, argc);
      st = run_string(L, argv[2], "=(command line)");
    }
  } else if (strcmp(cmd, "run") == 0 || strcmp(cmd, "-i") == 0) {
    if (argc < 3) { fprintf(stderr, "realnet: %s needs a script file\n", cmd); code = 2; }
    else if (!is_file(argv[2])) { fprintf(stderr, "realnet: cannot open script %s\n", argv[2]); code = 2; }
    else {
      int interactive = strcmp(cmd, "-i") == 0;
      st = run_file(L, argv[2], argv, 3, argc, 1, interactive);
      if (st == LUA_OK && interactive) repl(L);
    }
  } else if (cmd[0] == '-') {
    fprintf(stderr, "realnet: unknown option '%s'\n", cmd);
    usage(stderr);
    code = 2;
  } else {
    /* a subcommand: scripts/NAME.lua ("help" is one too) */
    lua_pushfstring(L, "%s/scripts/%s.lua", home, cmd);
    const char *script = lua_tostring(L, -1);
    if (strchr(cmd, '/') == NULL && is_file(script)) {
      st = run_file(L, script, argv, 2, argc, 0, 0);
    } else if (strcmp(cmd, "help") == 0) {
      usage(stdout);
    } else {
      fprintf(stderr, "realnet: unknown command '%s'\nRun 'realnet help' to list the commands, or "
                      "'realnet run FILE.lua' to run a script.\n", cmd);
      code = 2;
    }
  }
  lua_close(L);
  if (code) return code;
  return st == LUA_OK ? 0 : 1;
}
