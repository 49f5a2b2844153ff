#include "admin/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fd.h"
#include "base/strutil.h"

namespace hpcs {

namespace {

using Clock = std::chrono::steady_clock;

int MakePipe(Fd* read_end, Fd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -errno;
  *read_end = Fd(fds[0]);
  *write_end = Fd(fds[1]);
  return 0;
}

// In the child, between fork and exec: async-signal-safe calls only.
[[noreturn]] void ExecChild(char* const* argv, const char* cwd, int in, int out, int errfd,
                            int report) {
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0) {
    int e = errno;
    (void)!write(report, &e, sizeof e);
    _exit(127);
  }
  if (cwd && chdir(cwd) != 0) {
    int e = errno;
    (void)!write(report, &e, sizeof e);
    _exit(127);
  }
  // Nothing of ours but stdin, stdout and stderr reaches the program: not
  // curl's sockets to the KMS, not a file opened without O_CLOEXEC. The
  // report pipe is close-on-exec already and works until the exec.
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); ++fd) {
      if (fd != report) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  // Its own process group, so that a deadline kills what it started too.
  setpgid(0, 0);
  signal(SIGPIPE, SIG_DFL);
  execvp(argv[0], argv);
  int e = errno;
  (void)!write(report, &e, sizeof e);
  _exit(127);
}

}  // namespace

namespace {

// A started child: its pid and our ends of its stdin, stdout and stderr.
struct Child {
  pid_t pid = -1;
  Fd in, out, err;
};

std::string PipeError(int r) { return std::string("cannot make a pipe: ") + strerror(-r); }

// Forks and execs argv; returns once the exec has happened (or failed, then
// with its errno: a report pipe closes on a successful exec).
int StartChild(const std::vector<std::string>& argv, const ProcessOptions& options, Child* c,
               std::string* err) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  Fd in_r, out_w, err_w, rep_r, rep_w;
  int r = 0;
  if ((r = MakePipe(&c->out, &out_w)) < 0 || (r = MakePipe(&c->err, &err_w)) < 0 ||
      (r = MakePipe(&rep_r, &rep_w)) < 0 ||
      (options.stdin_data && (r = MakePipe(&in_r, &c->in)) < 0)) {
    if (err) *err = PipeError(r);
    return r;
  }
  if (!options.stdin_data) {
    in_r = Fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (in_r.get() < 0) {
      int e = errno;
      if (err) *err = std::string("cannot open /dev/null: ") + strerror(e);
      return -e;
    }
  }
  const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  c->pid = fork();
  if (c->pid < 0) {
    int e = errno;
    if (err) *err = "cannot start '" + argv[0] + "': " + strerror(e);
    return -e;
  }
  if (c->pid == 0) ExecChild(cargv.data(), cwd, in_r.get(), out_w.get(), err_w.get(), rep_w.get());
  setpgid(c->pid, c->pid);  // also here: the child may not have run yet when we kill
  rep_w.Close();
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(rep_r.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof exec_errno)) return 0;
  while (waitpid(c->pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (err) *err = "cannot run '" + argv[0] + "': " + strerror(exec_errno);
  return -exec_errno;
}

// Feeds the child's stdin and collects its output until both output pipes
// close or the deadline passes (then the child is killed).
void Exchange(Child& c, const ProcessOptions& options, ProcessResult* res) {
  const Secret* in = options.stdin_data;
  size_t in_off = 0;
  if (in && in->empty()) c.in.Close();
  if (c.in.get() >= 0) fcntl(c.in.get(), F_SETFL, O_NONBLOCK);
  auto deadline = Clock::now() + options.timeout;
  Secret buf(4096);  // may hold what the child prints of a secret (secret_stdout): wiped
  while (c.out.get() >= 0 || c.err.get() >= 0) {
    struct pollfd p[3];
    Fd* ends[3];
    int np = 0;
    for (Fd* e : {&c.out, &c.err}) {
      if (e->get() >= 0) {
        p[np] = {e->get(), POLLIN, 0};
        ends[np++] = e;
      }
    }
    if (c.in.get() >= 0) {
      p[np] = {c.in.get(), POLLOUT, 0};
      ends[np++] = &c.in;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      res->timed_out = true;
      kill(-c.pid, SIGKILL);  // the child and whatever it started (a decompressor, cpio)
      kill(c.pid, SIGKILL);
      return;
    }
    int pr = poll(p, static_cast<nfds_t>(np), static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return;
    for (int i = 0; i < np; ++i) {
      if (!p[i].revents) continue;
      if (ends[i] == &c.in) {
        ssize_t w = write(c.in.get(), in->data() + in_off, in->size() - in_off);
        if (w > 0) in_off += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == in->size()) c.in.Close();
        continue;
      }
      ssize_t got = read(ends[i]->get(), buf.data(), buf.size());
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        ends[i]->Close();
        continue;
      }
      std::string* text = ends[i] == &c.out ? &res->out : &res->err;
      bool to_secret = ends[i] == &c.out && options.secret_stdout;
      size_t have = to_secret ? res->secret_out.size() : text->size();
      size_t n = std::min(options.max_output > have ? options.max_output - have : 0,
                          static_cast<size_t>(got));
      if (to_secret) {
        res->secret_out.Append(buf.data(), n);
      } else {
        text->append(reinterpret_cast<const char*>(buf.data()), n);
      }
    }
  }
}

}  // namespace

int RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options,
               ProcessResult* result, std::string* err) {
  if (argv.empty()) {
    if (err) *err = "no program to run";
    return -EINVAL;
  }
  Child c;
  if (int r = StartChild(argv, options, &c, err); r < 0) return r;
  // A child that exits before reading all of its stdin must not take us
  // with it (SIGPIPE); the write then fails with EPIPE instead.
  struct sigaction ignore {
  }, old_pipe{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old_pipe);
  ProcessResult res;
  Exchange(c, options, &res);
  c.in.Close();
  sigaction(SIGPIPE, &old_pipe, nullptr);
  int status = 0;
  while (waitpid(c.pid, &status, 0) < 0) {
    if (errno != EINTR) break;
  }
  if (WIFEXITED(status)) {
    res.exit_status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    res.signal = WTERMSIG(status);
  }
  *result = std::move(res);
  return 0;
}

std::string DescribeProcessFailure(const ProcessResult& r) {
  std::string s;
  if (r.timed_out) {
    s = "did not finish in time (killed)";
  } else if (r.exit_status < 0) {
    s = "killed by signal " + std::to_string(r.signal);
  } else {
    s = "exit status " + std::to_string(r.exit_status);
  }
  std::string_view e = Trim(r.err);
  if (size_t nl = e.rfind('\n'); nl != std::string_view::npos) e = e.substr(nl + 1);
  if (!e.empty()) s += ": " + Printable(e, 200);
  return s;
}

}  // namespace hpcs
