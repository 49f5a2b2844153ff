// The token plugin against a fake helper (a shell script named by
// HPCS_TOKEN_HELPER) and a real LUKS2 image made with libcryptsetup: the
// protocol, the exit codes, the bound, the fds and signals the helper gets,
// SIGPIPE, and the passphrase buffer wiped when freed. C like the plugin,
// whose source it includes (with shorter bounds and a checking free).
#define _GNU_SOURCE
#define HPCS_OPEN_BOUND_MS 1500
#define HPCS_LOCAL_BOUND_MS 1500
#define HPCS_PLUGIN_FREE checked_free
#include <stdio.h>
#include <stdlib.h>
static void checked_free(void* p);
#include "plugin/hpcs_token_plugin.c"

#include <sys/stat.h>

static int g_failures;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      g_failures++;                                                            \
    }                                                                          \
  } while (0)

// The buffer given to free: was it all zeros?
static int g_freed_wiped = -1;
static void checked_free(void* p) {
  const unsigned char* b = p;
  size_t size = passphrase_buffer_size();
  g_freed_wiped = 1;
  for (size_t i = 0; i < size; i++)
    if (b[i]) g_freed_wiped = 0;
  free(p);
}

// What libcryptsetup was told, one "L:message" per call (L: E, N, V or D).
static char g_log[65536];
static void capture_log(int level, const char* msg, void* usrptr) {
  (void)usrptr;
  char tag = level == CRYPT_LOG_ERROR     ? 'E'
             : level == CRYPT_LOG_NORMAL  ? 'N'
             : level == CRYPT_LOG_VERBOSE ? 'V'
                                          : 'D';
  size_t used = strlen(g_log);
  snprintf(g_log + used, sizeof g_log - used, "%c:%s", tag, msg);
}

static char g_dir[64];

static void write_file(const char* path, const char* text, mode_t mode) {
  FILE* f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  chmod(path, mode);
}

static char* read_file(const char* name) {
  static char text[8192];
  char path[128];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE* f = fopen(path, "r");
  if (!f) return strcpy(text, "(missing)");
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

static const char kFakeHelper[] =
    "#!/bin/sh\n"
    "echo \"$*\" >\"$FAKE_DIR/args\"\n"
    "case $FAKE in hang | nostdin) ;; *) cat >\"$FAKE_DIR/stdin\" ;; esac\n"
    "case $FAKE in\n"
    "ok) printf %s 'the passphrase' ;;\n"
    "75 | 65 | 77) echo \"<3>KMS said no\" >&2; exit \"$FAKE\" ;;\n"
    "crash) kill -SEGV $$ ;;\n"
    "long) head -c 600 /dev/zero | tr '\\0' a ;;\n"
    "empty) ;;\n"
    "hang) exec sleep 30 ;;\n"
    "nostdin) exec 0<&-; sleep 0.3; exit 75 ;;\n"
    "fds) ls /proc/$$/fd >\"$FAKE_DIR/fds\"; printf x ;;\n"
    "stderr) echo '<4>a warning' >&2; echo '<6>some info' >&2; echo 'plain' >&2; printf x ;;\n"
    "dump) printf '\\tcrk: abc\\n\\tname: x' ;;\n"
    "esac\n";

static void fake(const char* behaviour) {
  setenv("FAKE", behaviour, 1);
  g_log[0] = '\0';
  g_freed_wiped = -1;
}

static long locked_kb(void) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmLck: %ld", &kb) == 1) break;
  if (f) fclose(f);
  return kb;
}

static struct crypt_device* make_volume(int* token) {
  char img[128];
  snprintf(img, sizeof img, "%s/luks.img", g_dir);
  int fd = open(img, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  CHECK(fd >= 0 && ftruncate(fd, 32 << 20) == 0);
  close(fd);
  struct crypt_device* cd = NULL;
  CHECK(crypt_init(&cd, img) == 0);
  crypt_set_log_callback(cd, capture_log, NULL);
  struct crypt_pbkdf_type pbkdf = {.type = CRYPT_KDF_PBKDF2,
                                   .hash = "sha256",
                                   .iterations = 1000,
                                   .flags = CRYPT_PBKDF_NO_BENCHMARK};
  CHECK(crypt_set_pbkdf_type(cd, &pbkdf) == 0);
  struct crypt_params_luks2 params = {.sector_size = 512};
  CHECK(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, NULL, 64, &params) == 0);
  CHECK(crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, "the passphrase", 14) == 0);
  *token = crypt_token_json_set(cd, CRYPT_ANY_TOKEN,
                                "{\"type\":\"hpcs\",\"keyslots\":[\"0\"],\"crk\":\"k\"}");
  CHECK(*token >= 0);
  return cd;
}

static int open_token(struct crypt_device* cd, int token, char** buf, size_t* len) {
  *buf = NULL;
  *len = 0;
  return cryptsetup_token_open(cd, token, buf, len, NULL);
}

static void test_open(struct crypt_device* cd, int token) {
  char* buf;
  size_t len;
  char want_args[128];
  snprintf(want_args, sizeof want_args, "--token-open --luks-uuid %s\n", crypt_get_uuid(cd));

  fake("ok");
  long locked_before = locked_kb();
  CHECK(open_token(cd, token, &buf, &len) == 0);
  CHECK(len == 14 && buf && memcmp(buf, "the passphrase", 14) == 0);
  CHECK(locked_kb() > locked_before);  // the buffer is locked in memory
  CHECK(strcmp(read_file("args"), want_args) == 0);
  CHECK(strstr(read_file("stdin"), "\"type\":\"hpcs\"") != NULL);
  cryptsetup_token_buffer_free(buf, len);
  CHECK(g_freed_wiped == 1);
  CHECK(locked_kb() == locked_before);

  fake("75");
  CHECK(open_token(cd, token, &buf, &len) == -EAGAIN);
  CHECK(strstr(g_log, "E:hpcs-helper: KMS said no\n") != NULL);
  CHECK(strstr(g_log, "not now") != NULL);
  fake("65");
  CHECK(open_token(cd, token, &buf, &len) == -EINVAL);
  fake("77");
  CHECK(open_token(cd, token, &buf, &len) == -ENOENT);
  CHECK(strstr(g_log, "refused for volume") != NULL);
  fake("crash");
  CHECK(open_token(cd, token, &buf, &len) == -ENOENT);
  CHECK(strstr(g_log, "killed by signal 11") != NULL);
  CHECK(g_freed_wiped == 1);  // a failed open frees its buffer wiped too

  // The passphrase must be 1..512 bytes.
  fake("long");
  CHECK(open_token(cd, token, &buf, &len) == -EINVAL);
  CHECK(strstr(g_log, "more than 512 bytes") != NULL);
  fake("empty");
  CHECK(open_token(cd, token, &buf, &len) == -EINVAL);
  CHECK(buf == NULL);
}

// A stuck helper is killed at the bound, reaped, and reads as "not now".
static void test_bound(struct crypt_device* cd, int token) {
  char* buf;
  size_t len;
  fake("hang");
  int64_t start = now_ms();
  CHECK(open_token(cd, token, &buf, &len) == -EAGAIN);
  int64_t took = now_ms() - start;
  CHECK(took >= 1400 && took < 3000);
  CHECK(strstr(g_log, "gave no answer within 1 s: stopped") != NULL);
  CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);  // no zombie left
}

// The helper gets stdin, stdout, stderr and nothing else of ours; its stderr
// lines at their levels.
static void test_child(struct crypt_device* cd, int token) {
  char* buf;
  size_t len;
  int leaked = open("/dev/null", O_RDONLY);  // no O_CLOEXEC: must not reach the helper
  fake("fds");
  CHECK(open_token(cd, token, &buf, &len) == 0);
  cryptsetup_token_buffer_free(buf, len);
  // 0, 1, 2 and the shell's own (dash keeps the script and saved fds at 10
  // and above); nothing in 3..9, not the one we left open.
  int stdio = 0;
  for (char* p = read_file("fds"); *p;) {
    int fd = atoi(p);
    if (fd <= 2) stdio++;
    if (!(fd <= 2 || (fd >= 10 && fd != leaked)))
      fprintf(stderr, "helper had fd %d (leaked %d)\n", fd, leaked);
    CHECK(fd <= 2 || (fd >= 10 && fd != leaked));
    p = strchr(p, '\n');
    if (!p) break;
    p++;
  }
  CHECK(stdio == 3);
  close(leaked);

  fake("stderr");
  CHECK(open_token(cd, token, &buf, &len) == 0);
  cryptsetup_token_buffer_free(buf, len);
  CHECK(strstr(g_log, "E:hpcs-helper: a warning\n") != NULL);
  CHECK(strstr(g_log, "V:hpcs-helper: some info\n") != NULL);
  CHECK(strstr(g_log, "E:plain\n") != NULL);

  // A helper that closes its stdin early: the write fails, SIGPIPE does not
  // end us and is not left pending.
  static char big[1 << 20];
  memset(big, 'j', sizeof big - 1);
  char none[1];
  struct helper_output out = {.data = none, .cap = 0};
  fake("nostdin");
  CHECK(run_helper(cd, "--token-open", "u", big, &out, 5000) == 75);
  sigset_t pending;
  sigpending(&pending);
  CHECK(!sigismember(&pending, SIGPIPE));
}

static void test_missing_helper(struct crypt_device* cd, int token) {
  char* buf;
  size_t len;
  setenv("HPCS_TOKEN_HELPER", "/nonexistent/hpcs-unlock", 1);
  fake("ok");
  CHECK(open_token(cd, token, &buf, &len) == -ENOENT);
  CHECK(strstr(g_log,
               "E:hpcs token: cannot run /nonexistent/hpcs-unlock: No such file or directory\n") !=
        NULL);
  fake("ok");
  CHECK(cryptsetup_token_validate(cd, "{}") == -EINVAL);
  CHECK(strstr(g_log, "cannot run /nonexistent/hpcs-unlock") != NULL);
}

static void test_validate_dump(struct crypt_device* cd) {
  fake("ok");
  CHECK(cryptsetup_token_validate(cd, "{\"type\":\"hpcs\"}") == 0);
  CHECK(strcmp(read_file("args"), "--token-validate\n") == 0);
  CHECK(strcmp(read_file("stdin"), "{\"type\":\"hpcs\"}") == 0);
  fake("65");
  CHECK(cryptsetup_token_validate(cd, "{}") == -EINVAL);
  fake("dump");
  cryptsetup_token_dump(cd, "{\"type\":\"hpcs\"}");
  CHECK(strcmp(read_file("args"), "--token-dump\n") == 0);
  CHECK(strstr(g_log, "N:\tcrk: abc\n\tname: x\n") != NULL);
  CHECK(strcmp(cryptsetup_token_version(), "hpcs-for-luks " HPCS_VERSION) == 0);
}

int main(void) {
  // As in a caller that leaves SIGPIPE alone (this may have inherited it ignored).
  signal(SIGPIPE, SIG_DFL);
  // Our plugin, where installed, stays out of crypt_token_json_set.
  crypt_token_external_disable();
  snprintf(g_dir, sizeof g_dir, "%s", "/tmp/hpcs-plugin-test.XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  char helper[128];
  snprintf(helper, sizeof helper, "%s/hpcs-helper", g_dir);
  write_file(helper, kFakeHelper, 0700);
  setenv("FAKE_DIR", g_dir, 1);
  setenv("HPCS_TOKEN_HELPER", helper, 1);

  int token = -1;
  struct crypt_device* cd = make_volume(&token);
  test_open(cd, token);
  test_bound(cd, token);
  test_child(cd, token);
  test_validate_dump(cd);
  test_missing_helper(cd, token);
  crypt_free(cd);

  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) g_failures++;
  printf("hpcs_token_plugin_test: %s (%d failed checks)\n", g_failures ? "FAILED" : "ok",
         g_failures);
  return g_failures ? 1 : 0;
}
