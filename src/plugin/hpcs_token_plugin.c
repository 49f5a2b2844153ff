// libcryptsetup-token-hpcs.so: the libcryptsetup plugin for the `hpcs` LUKS2
// token (issue 25; the token's format: core/hpcs_token.h).
//
// This library is loaded into every libcryptsetup consumer (cryptsetup,
// systemd-cryptsetup, udisks), so it brings nothing into their address space
// but libc and libcryptsetup: it is C, includes nothing of ours, and links no
// C++ runtime, no curl, no TLS. All Key Protect work (the config, the
// credential, the unwrap with its AAD and its own deadline) is done by the
// static helper `hpcs-unlock --token-open`, which this plugin runs: token JSON
// on its stdin, the passphrase (raw bytes) on its stdout, its stderr lines
// passed on through crypt_log; exit 0 ok, 75 not now (-EAGAIN), 65 bad token
// (-EINVAL), 77 refused (-ENOENT). validate and dump run `--token-validate`
// and `--token-dump` the same way.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef HPCS_TOKEN_HELPER
#define HPCS_TOKEN_HELPER "/usr/sbin/hpcs-unlock"
#endif
#ifndef HPCS_VERSION
#define HPCS_VERSION "unknown"
#endif
// A hard bound on the helper of open: it owns the real deadline ([HFL]
// token_timeout, at most 60 s); this one only keeps a stuck helper from
// hanging the caller. validate and dump do no I/O but reading stdin.
#ifndef HPCS_OPEN_BOUND_MS
#define HPCS_OPEN_BOUND_MS 65000
#endif
#ifndef HPCS_LOCAL_BOUND_MS
#define HPCS_LOCAL_BOUND_MS 10000
#endif
// The unit test wraps the free of the passphrase buffer to see it wiped.
#ifndef HPCS_PLUGIN_FREE
#define HPCS_PLUGIN_FREE free
#endif

#define HPCS_EXPORT __attribute__((visibility("default")))

enum {
  kPassphraseMax = 512,  // what the helper may give (token_open.h)
  kDumpMax = 16384,      // the dump lines we pass on
  kLineMax = 1024,       // one stderr line; longer ones are split
  kExitTempFail = 75,    // EX_TEMPFAIL
  kExitDataErr = 65,     // EX_DATAERR
  kExitNoPerm = 77,      // EX_NOPERM
  kExitCannotRun = 127,
};

// The helper's program; tests name another with HPCS_TOKEN_HELPER (ignored
// in a setuid or otherwise secure-execution process).
static const char* helper_path(void) {
  const char* p = secure_getenv("HPCS_TOKEN_HELPER");
  return p && *p ? p : HPCS_TOKEN_HELPER;
}

static const char* helper_name(const char* path) {
  const char* slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// One line of the helper's stderr, at the level its "<N>" prefix gives
// (log.h's priority_prefix); a line without one is an error.
static void log_helper_line(struct crypt_device* cd, const char* name, const char* line) {
  int level = CRYPT_LOG_ERROR;
  if (line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>') {
    int prio = line[1] - '0';
    level = prio <= 4   ? CRYPT_LOG_ERROR
            : prio == 5 ? CRYPT_LOG_NORMAL
            : prio == 6 ? CRYPT_LOG_VERBOSE
                        : CRYPT_LOG_DEBUG;
    crypt_logf(cd, level, level == CRYPT_LOG_NORMAL ? "%s: %s\n" : "%s: %s", name, line + 3);
    return;
  }
  crypt_logf(cd, level, "%s", line);
}

struct line_buffer {
  char text[kLineMax + 1];
  size_t len;
};

static void take_stderr(struct crypt_device* cd, const char* name, struct line_buffer* lb,
                        const char* data, size_t n, bool eof) {
  for (size_t i = 0; i < n; i++) {
    if (data[i] != '\n') lb->text[lb->len++] = data[i];
    if (data[i] == '\n' || lb->len == kLineMax) {
      lb->text[lb->len] = '\0';
      log_helper_line(cd, name, lb->text);
      lb->len = 0;
    }
  }
  if (eof && lb->len > 0) {
    lb->text[lb->len] = '\0';
    log_helper_line(cd, name, lb->text);
    lb->len = 0;
  }
}

// What a helper run gives back: its stdout (at most cap bytes kept; more is
// read and dropped, and counts as overflow).
struct helper_output {
  char* data;
  size_t cap;
  size_t len;
  bool overflow;
};

// A pipe end at fd 0..2 (a caller with stdin closed) would be overwritten by
// the child's dup2: moved above them.
static int above_stdio(int fd) {
  if (fd > STDERR_FILENO) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  close(fd);
  return moved;
}

static int make_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0) return -errno;
  fds[0] = above_stdio(fds[0]);
  fds[1] = above_stdio(fds[1]);
  if (fds[0] < 0 || fds[1] < 0) {
    int e = errno;
    if (fds[0] >= 0) close(fds[0]);
    if (fds[1] >= 0) close(fds[1]);
    return -e;
  }
  return 0;
}

static void close_pipe(int fds[2]) {
  for (int i = 0; i < 2; i++) {
    if (fds[i] >= 0) close(fds[i]);
    fds[i] = -1;
  }
}

// The child: the three pipes as its stdio, fd 3 the exec report (close on
// exec), every other fd closed, signals as a fresh process has them. Only
// async-signal-safe calls (the caller may have threads).
static void exec_child(const char* path, char* const argv[], int in, int out, int err, int report,
                       int max_fd) {
  if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0 ||
      dup3(report, 3, O_CLOEXEC) < 0)
    _exit(kExitCannotRun);
  if (close_range(4, ~0U, 0) != 0) {
    for (int fd = 4; fd < max_fd; fd++) close(fd);
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  extern char** environ;
  execve(path, argv, environ);
  int e = errno;
  ssize_t unused = write(3, &e, sizeof e);
  (void)unused;
  _exit(kExitCannotRun);
}

// Feeds input to the child, collects its stdout into out and passes its
// stderr on, until both pipes are closed or the deadline. Writing to a helper
// that is gone must not kill the caller: SIGPIPE is blocked in this thread
// meanwhile, and one that this write raised is taken off again.
static void talk_to_child(struct crypt_device* cd, const char* name, int in, int out_fd, int err_fd,
                          const char* input, size_t input_len, struct helper_output* out,
                          int64_t deadline) {
  sigset_t pipe_set, old_mask, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  bool pipe_was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);

  struct line_buffer lb = {.len = 0};
  char scratch[4096];
  size_t written = 0;
  fcntl(in, F_SETFL, O_NONBLOCK);
  int fds[3] = {in, out_fd, err_fd};
  while (fds[1] >= 0 || fds[2] >= 0) {
    int64_t left = deadline - now_ms();
    if (left <= 0) break;
    struct pollfd p[3];
    for (int i = 0; i < 3; i++)
      p[i] = (struct pollfd){.fd = fds[i], .events = i == 0 ? POLLOUT : POLLIN};
    if (poll(p, 3, left > INT_MAX ? INT_MAX : (int)left) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0] >= 0 && p[0].revents) {
      ssize_t n = written < input_len ? write(fds[0], input + written, input_len - written) : 0;
      if (n > 0) written += (size_t)n;
      if (written == input_len || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(fds[0]);
        fds[0] = -1;
      }
    }
    for (int i = 1; i < 3; i++) {
      if (fds[i] < 0 || !p[i].revents) continue;
      char* dst = scratch;
      size_t room = sizeof scratch;
      if (i == 1 && out->len < out->cap) {
        dst = out->data + out->len;
        room = out->cap - out->len;
      }
      ssize_t n = read(fds[i], dst, room);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        if (i == 2) take_stderr(cd, name, &lb, "", 0, true);
        close(fds[i]);
        fds[i] = -1;
        continue;
      }
      if (i == 2) {
        take_stderr(cd, name, &lb, dst, (size_t)n, false);
      } else if (dst == scratch) {
        out->overflow = true;
      } else {
        out->len += (size_t)n;
      }
    }
  }
  take_stderr(cd, name, &lb, "", 0, true);
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0) close(fds[i]);
  explicit_bzero(scratch, sizeof scratch);

  sigpending(&pending);
  if (!pipe_was_pending && sigismember(&pending, SIGPIPE)) {
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
}

// Waits for the child until the deadline, then kills it: never hangs.
// Returns its wait status, or -errno.
static int reap_child(pid_t pid, int64_t deadline, bool* killed) {
  int status = 0;
  *killed = false;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -errno;
    if (now_ms() >= deadline) break;
    const struct timespec tick = {0, 10 * 1000 * 1000};
    nanosleep(&tick, NULL);
  }
  *killed = true;
  kill(pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -errno;
  }
  return status;
}

// Runs the helper with MODE (and --luks-uuid UUID when given), INPUT on its
// stdin. Returns its exit code (128 + N for signal N), or -errno when it
// could not run (logged, naming the program), -ETIMEDOUT when it was stopped
// at the bound.
static int run_helper(struct crypt_device* cd, const char* mode, const char* luks_uuid,
                      const char* input, struct helper_output* out, int bound_ms) {
  const char* path = helper_path();
  const char* name = helper_name(path);
  char* argv[] = {(char*)path, (char*)mode, luks_uuid ? "--luks-uuid" : NULL, (char*)luks_uuid,
                  NULL};
  int in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, report[2] = {-1, -1};
  int r;
  if ((r = make_pipe(in)) < 0 || (r = make_pipe(outp)) < 0 || (r = make_pipe(errp)) < 0 ||
      (r = make_pipe(report)) < 0) {
    crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token: cannot run %s: pipe: %s", path, strerror(-r));
    close_pipe(in), close_pipe(outp), close_pipe(errp), close_pipe(report);
    return r;
  }
  long max_fd = sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536) max_fd = 65536;
  int64_t deadline = now_ms() + bound_ms;
  pid_t pid = fork();
  if (pid == 0) exec_child(path, argv, in[0], outp[1], errp[1], report[1], (int)max_fd);
  if (pid < 0) {
    r = -errno;
    crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token: cannot run %s: fork: %s", path, strerror(-r));
    close_pipe(in), close_pipe(outp), close_pipe(errp), close_pipe(report);
    return r;
  }
  close(in[0]), close(outp[1]), close(errp[1]), close(report[1]);
  int exec_errno = 0;
  ssize_t n;
  while ((n = read(report[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
  }
  close(report[0]);
  if (n == (ssize_t)sizeof exec_errno) {
    close(in[1]), close(outp[0]), close(errp[0]);
    bool killed;
    reap_child(pid, deadline, &killed);
    crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token: cannot run %s: %s", path, strerror(exec_errno));
    return -exec_errno;
  }
  talk_to_child(cd, name, in[1], outp[0], errp[0], input, strlen(input), out, deadline);
  bool killed;
  int status = reap_child(pid, deadline, &killed);
  if (status < 0) {
    crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token: %s %s: cannot learn how it ended: %s", path, mode,
               strerror(-status));
    return status;
  }
  if (killed) {
    crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token: %s %s gave no answer within %d s: stopped", path,
               mode, bound_ms / 1000);
    return -ETIMEDOUT;
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// The token's JSON, or NULL (logged).
static const char* token_json(struct crypt_device* cd, int token) {
  const char* json = NULL;
  int r = crypt_token_json_get(cd, token, &json);
  if (r < 0 || !json) {
    crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token %d: cannot read its JSON: %s", token,
               strerror(r < 0 ? -r : EINVAL));
    return NULL;
  }
  return json;
}

// The passphrase buffer has a page to itself (mlock and munlock work on
// pages: munlock must not unlock a neighbour's memory).
static size_t passphrase_buffer_size(void) {
  long page = sysconf(_SC_PAGESIZE);
  return page > kPassphraseMax ? (size_t)page : kPassphraseMax + 1;
}

static char* passphrase_buffer_new(void) {
  size_t size = passphrase_buffer_size();
  void* p = NULL;
  if (posix_memalign(&p, size, size) != 0) return NULL;
  memset(p, 0, size);
  mlock(p, size);  // best effort: RLIMIT_MEMLOCK may forbid it
  madvise(p, size, MADV_DONTDUMP);
  return p;
}

static void passphrase_buffer_free(void* p) {
  if (!p) return;
  size_t size = passphrase_buffer_size();
  explicit_bzero(p, size);
  munlock(p, size);
  HPCS_PLUGIN_FREE(p);
}

// The error open returns for the helper's answer; logged.
static int open_result(struct crypt_device* cd, int token, const char* uuid, int code,
                       const struct helper_output* out) {
  const char* path = helper_path();
  switch (code) {
    case 0:
      if (out->overflow || out->len == 0 || out->len > kPassphraseMax) {
        crypt_logf(cd, CRYPT_LOG_ERROR,
                   "hpcs token %d: %s gave a passphrase of %s%zu bytes (1..%d expected)", token,
                   path, out->overflow ? "more than " : "", out->len, kPassphraseMax);
        return -EINVAL;
      }
      crypt_logf(cd, CRYPT_LOG_DEBUG, "hpcs token %d: passphrase from %s", token, path);
      return 0;
    case -ETIMEDOUT:
    case kExitTempFail:
      crypt_logf(
          cd, CRYPT_LOG_ERROR,
          "hpcs token %d: not now: Key Protect could not unwrap the passphrase (unreachable, "
          "too slow, or no credential yet)",
          token);
      return -EAGAIN;
    case kExitDataErr:
      crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token %d: not a valid hpcs token", token);
      return -EINVAL;
    case kExitNoPerm:
      crypt_logf(cd, CRYPT_LOG_ERROR,
                 "hpcs token %d: refused for volume %s (wrong volume, instance or key)", token,
                 uuid);
      return -ENOENT;
    default:
      if (code > 128)
        crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token %d: %s --token-open was killed by signal %d",
                   token, path, code - 128);
      else if (code > 0)
        crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token %d: %s --token-open failed (exit status %d)",
                   token, path, code);
      return -ENOENT;
  }
}

HPCS_EXPORT int cryptsetup_token_open(struct crypt_device* cd, int token, char** buffer,
                                      size_t* buffer_len, void* usrptr) {
  (void)usrptr;
  const char* uuid = crypt_get_uuid(cd);
  if (!uuid) {
    crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token %d: the volume has no LUKS UUID", token);
    return -EINVAL;
  }
  const char* json = token_json(cd, token);
  if (!json) return -EINVAL;
  struct helper_output out = {.data = passphrase_buffer_new(), .cap = kPassphraseMax};
  if (!out.data) return -ENOMEM;
  int code = run_helper(cd, "--token-open", uuid, json, &out, HPCS_OPEN_BOUND_MS);
  if (code < 0 && code != -ETIMEDOUT) {
    passphrase_buffer_free(out.data);
    return -ENOENT;  // could not run it: logged
  }
  int r = open_result(cd, token, uuid, code, &out);
  if (r < 0) {
    passphrase_buffer_free(out.data);
    return r;
  }
  *buffer = out.data;
  *buffer_len = out.len;
  return 0;
}

HPCS_EXPORT void cryptsetup_token_buffer_free(void* buffer, size_t buffer_len) {
  (void)buffer_len;  // the whole buffer is wiped
  passphrase_buffer_free(buffer);
}

HPCS_EXPORT int cryptsetup_token_validate(struct crypt_device* cd, const char* json) {
  char none[1];
  struct helper_output out = {.data = none, .cap = 0};
  int code = run_helper(cd, "--token-validate", NULL, json, &out, HPCS_LOCAL_BOUND_MS);
  if (code == 0) return 0;
  if (code != kExitDataErr && code >= 0)
    crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token: %s --token-validate failed (exit status %d)",
               helper_path(), code);
  return -EINVAL;
}

HPCS_EXPORT void cryptsetup_token_dump(struct crypt_device* cd, const char* json) {
  char* text = malloc(kDumpMax + 2);  // room for a last newline and the NUL
  if (!text) return;
  struct helper_output out = {.data = text, .cap = kDumpMax};
  int code = run_helper(cd, "--token-dump", NULL, json, &out, HPCS_LOCAL_BOUND_MS);
  if (code == 0) {
    if (out.len > 0 && text[out.len - 1] != '\n') text[out.len++] = '\n';
    text[out.len] = '\0';
    crypt_log(cd, CRYPT_LOG_NORMAL, text);
  } else if (code > 0) {
    crypt_logf(cd, CRYPT_LOG_ERROR, "hpcs token: %s --token-dump failed (exit status %d)",
               helper_path(), code);
  }
  free(text);
}

HPCS_EXPORT const char* cryptsetup_token_version(void) { return "hpcs-for-luks " HPCS_VERSION; }
